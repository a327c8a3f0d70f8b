// attention_lanes.cl: the fused attention of attention_fused.cl shaped for CPU devices (PoCL): one
// work-item per query (or key) with no barriers, and LANES keys (or queries) per step in the lanes
// of a vector, so the compiler emits vector code where attention_fused.cl's per-key loop stays
// scalar (PoCL vectorises across work-items only in loops without inner loops). The same
// equations: online softmax forward saving the log-sum-exp; backward recomputing P.
// The lanes run along the token axis, contiguous in the channel-major layout (ts == 1); other
// layouts gather. Per-item vectors are arrays of exactly D so they stay in registers.
//   attention_forward_lanes_dD(...), attention_backward_query_lanes_dD(...),
//   attention_backward_key_lanes_dD(...): arguments as in attention_fused.cl; global [lq or lk, batch].

// LANES tokens per step, gemm.cl's vector tile (VEC, VLOAD): 16 on CPU devices, where AVX-512
// takes a float16 in one instruction (eight lanes left half of each idle), 8 if tuned so.
#define LANES TILE_N
#define LVEC VEC
#define LVLOAD VLOAD
#if TILE_N == 16
#define LIVEC int16
#define LANE_INDEX (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#else
#define LIVEC int8
#define LANE_INDEX (int8)(0, 1, 2, 3, 4, 5, 6, 7)
#endif

// Tokens t0..t0+LANES-1 of channel row `row` (strided by ts); tokens past `length` read 0.
inline LVEC lanes_load(__global const float* row, const int t0, const int length, const int ts) {
    if (ts == 1 && t0 + LANES <= length) return LVLOAD(0, row + t0);
    float v[LANES];
    for (int l = 0; l < LANES; ++l) v[l] = t0 + l < length ? row[(size_t)(t0 + l) * ts] : 0.0f;
    return LVLOAD(0, v);
}

inline float lanes_max(const LVEC v) {
#if LANES == 16
    const float8 e = fmax(v.lo, v.hi);
#else
    const float8 e = v;
#endif
    const float4 h = fmax(e.lo, e.hi);
    return fmax(fmax(h.x, h.y), fmax(h.z, h.w));
}

// Lanes at or past `length` get -INFINITY, so they weigh nothing.
inline LVEC lanes_mask(const LVEC s, const int t0, const int length) {
    if (t0 + LANES <= length) return s;
    const LIVEC index = LANE_INDEX + (LIVEC)(t0);
    return select(s, (LVEC)(-INFINITY), index >= (LIVEC)(length));
}

inline void attention_forward_lanes(const int D, float* qv, LVEC* acc, __global const float* q,
                                    __global const float* k, __global const float* v, __global float* out,
                                    __global float* lse, const int lq, const int lk, const int d, const float scale,
                                    const int qcs, const int qts, const int kcs, const int kts) {
    const int i = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    if (i >= lq) return;
    __global const float* qh = q + (size_t)b * d * lq;
    __global const float* kh = k + (size_t)b * d * lk;
    __global const float* vh = v + (size_t)b * d * lk;
    for (int c = 0; c < D; ++c) {
        qv[c] = c < d ? qh[(size_t)c * qcs + (size_t)i * qts] * scale : 0.0f;
        acc[c] = (LVEC)(0.0f);
    }
    float peak = -INFINITY;
    LVEC total = (LVEC)(0.0f);
    for (int j0 = 0; j0 < lk; j0 += LANES) {
        LVEC s = (LVEC)(0.0f);
        for (int c = 0; c < D; ++c) if (c < d) s = fma((LVEC)(qv[c]), lanes_load(kh + (size_t)c * kcs, j0, lk, kts), s);
        s = lanes_mask(s, j0, lk);
        const float chunkPeak = lanes_max(s);
        if (chunkPeak > peak) {
            // Online softmax: rescale what was summed against the old maximum.
            const float correction = exp(peak - chunkPeak);
            total *= correction;
            for (int c = 0; c < D; ++c) acc[c] *= correction;
            peak = chunkPeak;
        }
        const LVEC p = exp(s - (LVEC)(peak));
        total += p;
        for (int c = 0; c < D; ++c) if (c < d) acc[c] = fma(p, lanes_load(vh + (size_t)c * kcs, j0, lk, kts), acc[c]);
    }
    const float sum = vec_sum(total);
    const float inverse = 1.0f / sum;
    __global float* oh = out + (size_t)b * d * lq;
    for (int c = 0; c < D; ++c) {
        if (c < d) oh[(size_t)c * qcs + (size_t)i * qts] = vec_sum(acc[c]) * inverse;
    }
    lse[(size_t)b * lq + i] = peak + log(sum);
}

inline void attention_backward_query_lanes(const int D, float* qv, float* go, LVEC* acc, __global const float* q,
                                           __global const float* k, __global const float* v,
                                           __global const float* out, __global const float* lse,
                                           __global const float* dout, __global float* dq, __global float* delta,
                                           const int lq, const int lk, const int d, const float scale, const int qcs,
                                           const int qts, const int kcs, const int kts) {
    const int i = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    if (i >= lq) return;
    const size_t qoff = (size_t)b * d * lq;
    __global const float* kh = k + (size_t)b * d * lk;
    __global const float* vh = v + (size_t)b * d * lk;
    float rowDelta = 0.0f;
    for (int c = 0; c < D; ++c) {
        const size_t at = qoff + (size_t)c * qcs + (size_t)i * qts;
        qv[c] = c < d ? q[at] * scale : 0.0f;
        go[c] = c < d ? dout[at] : 0.0f;
        if (c < d) rowDelta = fma(go[c], out[at], rowDelta);
        acc[c] = (LVEC)(0.0f);
    }
    const float rowLse = lse[(size_t)b * lq + i];
    // dq_i = scale sum_j P_ij (dP_ij - delta_i) k_j with delta_i = dO_i . O_i.
    for (int j0 = 0; j0 < lk; j0 += LANES) {
        LVEC s = (LVEC)(0.0f), dp = (LVEC)(0.0f);
        for (int c = 0; c < D; ++c) if (c < d) {
            s = fma((LVEC)(qv[c]), lanes_load(kh + (size_t)c * kcs, j0, lk, kts), s);
            dp = fma((LVEC)(go[c]), lanes_load(vh + (size_t)c * kcs, j0, lk, kts), dp);
        }
        const LVEC p = exp(lanes_mask(s, j0, lk) - (LVEC)(rowLse));
        const LVEC ds = p * (dp - (LVEC)(rowDelta));
        for (int c = 0; c < D; ++c) if (c < d) acc[c] = fma(ds, lanes_load(kh + (size_t)c * kcs, j0, lk, kts), acc[c]);
    }
    delta[(size_t)b * lq + i] = rowDelta;
    for (int c = 0; c < D; ++c) {
        if (c < d) dq[qoff + (size_t)c * qcs + (size_t)i * qts] = vec_sum(acc[c]) * scale;
    }
}

inline void attention_backward_key_lanes(const int D, float* kv, float* vv, LVEC* gk, LVEC* gv,
                                         __global const float* q, __global const float* k, __global const float* v,
                                         __global const float* lse, __global const float* dout,
                                         __global const float* delta, __global float* dk, __global float* dv,
                                         const int lq, const int lk, const int d, const float scale, const int qcs,
                                         const int qts, const int kcs, const int kts) {
    const int j = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    if (j >= lk) return;
    const size_t koff = (size_t)b * d * lk;
    __global const float* qh = q + (size_t)b * d * lq;
    __global const float* oh = dout + (size_t)b * d * lq;
    __global const float* lseh = lse + (size_t)b * lq;
    __global const float* deltah = delta + (size_t)b * lq;
    for (int c = 0; c < D; ++c) {
        const size_t at = koff + (size_t)c * kcs + (size_t)j * kts;
        kv[c] = c < d ? k[at] * scale : 0.0f;
        vv[c] = c < d ? v[at] : 0.0f;
        gk[c] = (LVEC)(0.0f);
        gv[c] = (LVEC)(0.0f);
    }
    for (int i0 = 0; i0 < lq; i0 += LANES) {
        LVEC s = (LVEC)(0.0f), dp = (LVEC)(0.0f);
        for (int c = 0; c < D; ++c) if (c < d) {
            s = fma((LVEC)(kv[c]), lanes_load(qh + (size_t)c * qcs, i0, lq, qts), s);
            dp = fma((LVEC)(vv[c]), lanes_load(oh + (size_t)c * qcs, i0, lq, qts), dp);
        }
        const LVEC p = exp(lanes_mask(s, i0, lq) - lanes_load(lseh, i0, lq, 1));
        const LVEC ds = p * (dp - lanes_load(deltah, i0, lq, 1));
        for (int c = 0; c < D; ++c) if (c < d) {
            gv[c] = fma(p, lanes_load(oh + (size_t)c * qcs, i0, lq, qts), gv[c]);
            gk[c] = fma(ds, lanes_load(qh + (size_t)c * qcs, i0, lq, qts), gk[c]);
        }
    }
    for (int c = 0; c < D; ++c) {
        if (c < d) {
            const size_t at = koff + (size_t)c * kcs + (size_t)j * kts;
            dk[at] = vec_sum(gk[c]) * scale;
            dv[at] = vec_sum(gv[c]);
        }
    }
}

#define ATTENTION_LANE_KERNELS(D) \
__kernel void attention_forward_lanes_d##D(__global const float* q, __global const float* k, \
        __global const float* v, __global float* out, __global float* lse, const int lq, const int lk, const int d, \
        const float scale, const int qcs, const int qts, const int kcs, const int kts) { \
    float qv[D]; LVEC acc[D]; \
    attention_forward_lanes(D, qv, acc, q, k, v, out, lse, lq, lk, d, scale, qcs, qts, kcs, kts); \
} \
__kernel void attention_backward_query_lanes_d##D(__global const float* q, __global const float* k, \
        __global const float* v, __global const float* out, __global const float* lse, __global const float* dout, __global float* dq, \
        __global float* delta, const int lq, const int lk, const int d, const float scale, const int qcs, \
        const int qts, const int kcs, const int kts) { \
    float qv[D], go[D]; LVEC acc[D]; \
    attention_backward_query_lanes(D, qv, go, acc, q, k, v, out, lse, dout, dq, delta, lq, lk, d, scale, qcs, qts, \
                                   kcs, kts); \
} \
__kernel void attention_backward_key_lanes_d##D(__global const float* q, __global const float* k, \
        __global const float* v, __global const float* lse, __global const float* dout, \
        __global const float* delta, __global float* dk, __global float* dv, const int lq, const int lk, \
        const int d, const float scale, const int qcs, const int qts, const int kcs, const int kts) { \
    float kv[D], vv[D]; LVEC gk[D], gv[D]; \
    attention_backward_key_lanes(D, kv, vv, gk, gv, q, k, v, lse, dout, delta, dk, dv, lq, lk, d, scale, qcs, \
                                 qts, kcs, kts); \
}

ATTENTION_LANE_KERNELS(8)
ATTENTION_LANE_KERNELS(16)
ATTENTION_LANE_KERNELS(32)
ATTENTION_LANE_KERNELS(64)
