// attention_fused.cl: softmax(scale * Q K^T) V and its gradients without materialising the scores,
// after FlashAttention (Dao et al. 2022, Algorithm 1 forward with the online softmax of Milakov and
// Gimelshein 2018; Algorithm 2's backward, recomputing P from the saved log-sum-exp).
// Element (b, c, i) of a [batch, headDim, length] or [batch, length, headDim] tensor is at
// b * d * length + c * cs + i * ts, so the channel-major layout a 1x1 projection writes needs no
// transposes (cs = length, ts = 1) and the token-major one works too (cs = 1, ts = d).
// One work-item per query (forward, dQ) or key (dK, dV); a work-group of ATTN_TILE shares tiles of
// keys or queries in local memory. Kernels exist per head-dim bound D (8, 16, 32, 64) so per-item
// vectors stay in registers; channels c >= d read as zero.
//   attention_forward_dD(q, k, v, out, lse, lq, lk, d, scale, qcs, qts, kcs, kts)
//       global [roundup(lq, ATTN_TILE), batch]: out, and lse[b * lq + i] = log sum_j exp(s_ij)
//   attention_backward_query_dD(q, k, v, out, lse, dout, dq, delta, lq, lk, d, scale, qcs, qts, kcs, kts)
//       delta_i = dO_i . O_i (= sum_j P_ij dP_ij), dq_i = scale sum_j P_ij (dP_ij - delta_i) k_j
//   attention_backward_key_dD(q, k, v, lse, dout, delta, dk, dv, lq, lk, d, scale, qcs, qts, kcs, kts)
//       global [roundup(lk, ATTN_TILE), batch]: dv_j = sum_i P_ij dO_i, dk_j = scale sum_i dS_ij q_i
#define ATTN_TILE 64
#define ATTN_MAX_D 64

inline float attn_dot(const int D, const float* a, __local const float* b) {
    float s = 0.0f;
    for (int c = 0; c < D; ++c) s = fma(a[c], b[c], s);
    return s;
}

// Loads row `row` (< length, else zeros) of a [d, length] head into tile[t * D ...].
inline void attn_load(const int D, __global const float* x, const int row, const int length, const int d,
                      const int cs, const int ts, __local float* tile, const int t) {
    for (int c = 0; c < D; ++c) {
        tile[t * D + c] = (row < length && c < d) ? x[(size_t)c * cs + (size_t)row * ts] : 0.0f;
    }
}

inline void attention_forward_body(const int D, __global const float* q, __global const float* k,
                                   __global const float* v, __global float* out, __global float* lse,
                                   const int lq, const int lk, const int d, const float scale, const int qcs,
                                   const int qts, const int kcs, const int kts, __local float* kt, __local float* vt) {
    const int i = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    const int t = (int)get_local_id(0);
    __global const float* qh = q + (size_t)b * d * lq;
    __global const float* kh = k + (size_t)b * d * lk;
    __global const float* vh = v + (size_t)b * d * lk;
    float qv[ATTN_MAX_D], acc[ATTN_MAX_D];
    for (int c = 0; c < D; ++c) {
        qv[c] = (i < lq && c < d) ? qh[(size_t)c * qcs + (size_t)i * qts] * scale : 0.0f;
        acc[c] = 0.0f;
    }
    float peak = -INFINITY, total = 0.0f;
    for (int j0 = 0; j0 < lk; j0 += ATTN_TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        attn_load(D, kh, j0 + t, lk, d, kcs, kts, kt, t);
        attn_load(D, vh, j0 + t, lk, d, kcs, kts, vt, t);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = min(ATTN_TILE, lk - j0);
        for (int jj = 0; jj < n; ++jj) {
            const float s = attn_dot(D, qv, kt + jj * D);
            if (s > peak) {
                // Online softmax: rescale what was summed against the old maximum.
                const float correction = exp(peak - s);
                total *= correction;
                for (int c = 0; c < D; ++c) acc[c] *= correction;
                peak = s;
            }
            const float p = exp(s - peak);
            total += p;
            for (int c = 0; c < D; ++c) acc[c] = fma(p, vt[jj * D + c], acc[c]);
        }
    }
    if (i >= lq) return;
    const float inverse = 1.0f / total;
    __global float* oh = out + (size_t)b * d * lq;
    for (int c = 0; c < D; ++c) {
        if (c < d) oh[(size_t)c * qcs + (size_t)i * qts] = acc[c] * inverse;
    }
    lse[(size_t)b * lq + i] = peak + log(total);
}

inline void attention_backward_query_body(const int D, __global const float* q, __global const float* k,
                                          __global const float* v, __global const float* out,
                                          __global const float* lse, __global const float* dout, __global float* dq,
                                          __global float* delta, const int lq, const int lk, const int d,
                                          const float scale, const int qcs, const int qts, const int kcs, const int kts,
                                          __local float* kt, __local float* vt) {
    const int i = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    const int t = (int)get_local_id(0);
    const size_t qoff = (size_t)b * d * lq;
    __global const float* kh = k + (size_t)b * d * lk;
    __global const float* vh = v + (size_t)b * d * lk;
    float qv[ATTN_MAX_D], go[ATTN_MAX_D], acc[ATTN_MAX_D];
    float rowDelta = 0.0f;
    for (int c = 0; c < D; ++c) {
        const int ok = i < lq && c < d;
        const size_t at = qoff + (size_t)c * qcs + (size_t)i * qts;
        qv[c] = ok ? q[at] * scale : 0.0f;
        go[c] = ok ? dout[at] : 0.0f;
        rowDelta = fma(go[c], ok ? out[at] : 0.0f, rowDelta);
        acc[c] = 0.0f;
    }
    const float rowLse = i < lq ? lse[(size_t)b * lq + i] : 0.0f;
    for (int j0 = 0; j0 < lk; j0 += ATTN_TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        attn_load(D, kh, j0 + t, lk, d, kcs, kts, kt, t);
        attn_load(D, vh, j0 + t, lk, d, kcs, kts, vt, t);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = min(ATTN_TILE, lk - j0);
        for (int jj = 0; jj < n; ++jj) {
            const float p = exp(attn_dot(D, qv, kt + jj * D) - rowLse);
            const float ds = p * (attn_dot(D, go, vt + jj * D) - rowDelta);
            for (int c = 0; c < D; ++c) acc[c] = fma(ds, kt[jj * D + c], acc[c]);
        }
    }
    if (i >= lq) return;
    delta[(size_t)b * lq + i] = rowDelta;
    for (int c = 0; c < D; ++c) {
        if (c < d) dq[qoff + (size_t)c * qcs + (size_t)i * qts] = acc[c] * scale;
    }
}

inline void attention_backward_key_body(const int D, __global const float* q, __global const float* k,
                                        __global const float* v, __global const float* lse,
                                        __global const float* dout, __global const float* delta, __global float* dk,
                                        __global float* dv, const int lq, const int lk, const int d, const float scale,
                                        const int qcs, const int qts, const int kcs, const int kts, __local float* qt,
                                        __local float* ot, __local float* rows) {
    const int j = (int)get_global_id(0);
    const int b = (int)get_global_id(1);
    const int t = (int)get_local_id(0);
    const size_t koff = (size_t)b * d * lk;
    __global const float* qh = q + (size_t)b * d * lq;
    __global const float* oh = dout + (size_t)b * d * lq;
    float kv[ATTN_MAX_D], vv[ATTN_MAX_D], gk[ATTN_MAX_D], gv[ATTN_MAX_D];
    for (int c = 0; c < D; ++c) {
        const int ok = j < lk && c < d;
        const size_t at = koff + (size_t)c * kcs + (size_t)j * kts;
        kv[c] = ok ? k[at] * scale : 0.0f;
        vv[c] = ok ? v[at] : 0.0f;
        gk[c] = 0.0f;
        gv[c] = 0.0f;
    }
    for (int i0 = 0; i0 < lq; i0 += ATTN_TILE) {
        barrier(CLK_LOCAL_MEM_FENCE);
        attn_load(D, qh, i0 + t, lq, d, qcs, qts, qt, t);
        attn_load(D, oh, i0 + t, lq, d, qcs, qts, ot, t);
        const int row = i0 + t;
        rows[2 * t] = row < lq ? lse[(size_t)b * lq + row] : 0.0f;
        rows[2 * t + 1] = row < lq ? delta[(size_t)b * lq + row] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        const int n = min(ATTN_TILE, lq - i0);
        for (int ii = 0; ii < n; ++ii) {
            const float p = exp(attn_dot(D, kv, qt + ii * D) - rows[2 * ii]);
            const float dp = attn_dot(D, vv, ot + ii * D);
            const float ds = p * (dp - rows[2 * ii + 1]);
            for (int c = 0; c < D; ++c) {
                gv[c] = fma(p, ot[ii * D + c], gv[c]);
                gk[c] = fma(ds, qt[ii * D + c], gk[c]);
            }
        }
    }
    if (j >= lk) return;
    for (int c = 0; c < D; ++c) {
        if (c < d) {
            const size_t at = koff + (size_t)c * kcs + (size_t)j * kts;
            dk[at] = gk[c] * scale;
            dv[at] = gv[c];
        }
    }
}

#define ATTENTION_KERNELS(D) \
__kernel __attribute__((reqd_work_group_size(ATTN_TILE, 1, 1))) \
void attention_forward_d##D(__global const float* q, __global const float* k, __global const float* v, \
        __global float* out, __global float* lse, const int lq, const int lk, const int d, const float scale, \
        const int qcs, const int qts, const int kcs, const int kts) { \
    __local float kt[ATTN_TILE * D], vt[ATTN_TILE * D]; \
    attention_forward_body(D, q, k, v, out, lse, lq, lk, d, scale, qcs, qts, kcs, kts, kt, vt); \
} \
__kernel __attribute__((reqd_work_group_size(ATTN_TILE, 1, 1))) \
void attention_backward_query_d##D(__global const float* q, __global const float* k, __global const float* v, \
        __global const float* out, __global const float* lse, __global const float* dout, __global float* dq, __global float* delta, \
        const int lq, const int lk, const int d, const float scale, const int qcs, const int qts, const int kcs, \
        const int kts) { \
    __local float kt[ATTN_TILE * D], vt[ATTN_TILE * D]; \
    attention_backward_query_body(D, q, k, v, out, lse, dout, dq, delta, lq, lk, d, scale, qcs, qts, kcs, kts, kt, vt); \
} \
__kernel __attribute__((reqd_work_group_size(ATTN_TILE, 1, 1))) \
void attention_backward_key_d##D(__global const float* q, __global const float* k, __global const float* v, \
        __global const float* lse, __global const float* dout, __global const float* delta, __global float* dk, \
        __global float* dv, const int lq, const int lk, const int d, const float scale, const int qcs, \
        const int qts, const int kcs, const int kts) { \
    __local float qt[ATTN_TILE * D], ot[ATTN_TILE * D], rows[2 * ATTN_TILE]; \
    attention_backward_key_body(D, q, k, v, lse, dout, delta, dk, dv, lq, lk, d, scale, qcs, qts, kcs, kts, \
                                qt, ot, rows); \
}

ATTENTION_KERNELS(8)
ATTENTION_KERNELS(16)
ATTENTION_KERNELS(32)
ATTENTION_KERNELS(64)
