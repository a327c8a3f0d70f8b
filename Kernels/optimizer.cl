// optimizer.cl: the fused Adam/AdamW step (PyTorch's torch/optim/adam.py rule), per element:
//   grad += gradientDecay * p (Adam's L2); p *= parameterDecay (AdamW); m = lerp(m, grad, 1 - beta1);
//   v = beta2 v + (1 - beta2) grad^2; p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps)
//   (1 - beta) comes from the host, rounded once from double as PyTorch's Python floats are.
//   adam_update24(p0, g0, m0, v0, ..., p23, g23, m23, v23, end0..end23, scalars...)   24 tensors in
//       one launch over end23 items; item i belongs to the first tensor whose end exceeds it (unused
//       slots repeat the last tensor with the same end, so they are never chosen)

inline void adam_element(__global float* p, __global const float* g, __global float* m, __global float* v, const int i,
                         const float oneMinusBeta1, const float beta2, const float oneMinusBeta2, const float eps,
                         const float gradientDecay, const float parameterDecay, const float stepSize,
                         const float bc2Sqrt) {
    const float grad = g[i] + gradientDecay * p[i];
    const float param = p[i] * parameterDecay;
    const float mi = m[i] + oneMinusBeta1 * (grad - m[i]);
    const float vi = v[i] * beta2 + oneMinusBeta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = param - stepSize * (mi / (sqrt(vi) / bc2Sqrt + eps));
}

#define ADAM_SLOT(k) __global float* p##k, __global const float* g##k, __global float* m##k, __global float* v##k
#define ADAM_IF(k, start) if (i < end##k) { adam_element(p##k, g##k, m##k, v##k, i - (start), oneMinusBeta1, beta2, \
    oneMinusBeta2, eps, gradientDecay, parameterDecay, stepSize, bc2Sqrt); return; }
#define ADAM_SLOTS8(a, b, c, d, e, f, g, h) ADAM_SLOT(a), ADAM_SLOT(b), ADAM_SLOT(c), ADAM_SLOT(d), ADAM_SLOT(e), \
    ADAM_SLOT(f), ADAM_SLOT(g), ADAM_SLOT(h)
#define ADAM_ENDS8(a, b, c, d, e, f, g, h) const int end##a, const int end##b, const int end##c, const int end##d, \
    const int end##e, const int end##f, const int end##g, const int end##h

// X(k, start of tensor k) for every slot, in order: the chain that finds an index's tensor as the
// first whose end exceeds it.
#define CHAIN24(X) X(0, 0) X(1, end0) X(2, end1) X(3, end2) X(4, end3) X(5, end4) X(6, end5) X(7, end6) X(8, end7) \
    X(9, end8) X(10, end9) X(11, end10) X(12, end11) X(13, end12) X(14, end13) X(15, end14) X(16, end15) \
    X(17, end16) X(18, end17) X(19, end18) X(20, end19) X(21, end20) X(22, end21) X(23, end22)
#define CHAIN32(X) CHAIN24(X) X(24, end23) X(25, end24) X(26, end25) X(27, end26) X(28, end27) X(29, end28) \
    X(30, end29) X(31, end30)

// 24 slots: 96 pointers and 32 scalars are 896 bytes of arguments, within the 1,024 every
// OpenCL device must accept (CL_DEVICE_MAX_PARAMETER_SIZE).
__kernel void adam_update24(ADAM_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                            ADAM_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7),
                            ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15), ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23),
                            const float oneMinusBeta1, const float beta2, const float oneMinusBeta2, const float eps,
                            const float gradientDecay, const float parameterDecay, const float stepSize,
                            const float bc2Sqrt) {
    const int i = (int)get_global_id(0);
    if (i >= end23) return;
    CHAIN24(ADAM_IF)
}

// adam_update24_rows: the same update and arguments for CPU devices, 16 floats per work-item (global
// ceil(end23 / 16)): a chunk inside one tensor is one float16 pass with a vector sqrt and divide;
// the few chunks that straddle two tensors go element by element. PoCL leaves adam_update24's
// chain of tensors scalar (a BasicUNet step's 309k parameters took 40-50 ms, 14% of the step).
inline void adam_vector(__global float* p, __global const float* g, __global float* m, __global float* v, const int i,
                        const float oneMinusBeta1, const float beta2, const float oneMinusBeta2, const float eps,
                        const float gradientDecay, const float parameterDecay, const float stepSize,
                        const float bc2Sqrt) {
    const float16 pi = vload16(0, p + i);
    const float16 grad = vload16(0, g + i) + gradientDecay * pi;
    const float16 param = pi * parameterDecay;
    const float16 m0 = vload16(0, m + i);
    const float16 mi = m0 + oneMinusBeta1 * (grad - m0);
    const float16 vi = vload16(0, v + i) * beta2 + oneMinusBeta2 * grad * grad;
    vstore16(mi, 0, m + i);
    vstore16(vi, 0, v + i);
    vstore16(param - stepSize * (mi / (sqrt(vi) / bc2Sqrt + eps)), 0, p + i);
}

#define ADAM_ROWS_IF(k, start) if (first < end##k) { \
    if (first + 16 <= end##k) { adam_vector(p##k, g##k, m##k, v##k, first - (start), oneMinusBeta1, beta2, \
        oneMinusBeta2, eps, gradientDecay, parameterDecay, stepSize, bc2Sqrt); return; } \
    break; }
#define ADAM_ELEMENT_IF(k, start) if (i < end##k) { adam_element(p##k, g##k, m##k, v##k, i - (start), oneMinusBeta1, \
    beta2, oneMinusBeta2, eps, gradientDecay, parameterDecay, stepSize, bc2Sqrt); continue; }

__kernel void adam_update24_rows(ADAM_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                                 ADAM_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7),
                                 ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15), ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23),
                                 const float oneMinusBeta1, const float beta2, const float oneMinusBeta2,
                                 const float eps, const float gradientDecay, const float parameterDecay,
                                 const float stepSize, const float bc2Sqrt) {
    const int first = (int)get_global_id(0) * 16;
    if (first >= end23) return;
    // The chunk's first element's tensor: the whole chunk in one vector pass when it ends inside it.
    do {
        CHAIN24(ADAM_ROWS_IF)
    } while (0);
    const int last = min(first + 16, end23);
    for (int i = first; i < last; ++i) {
        CHAIN24(ADAM_ELEMENT_IF)
    }
}

// ema_update32(a0, v0, ..., a31, v31, end0..end31, decay, oneMinusDecay): an exponential moving
// average of 32 tensors in one launch, a = decay * a + oneMinusDecay * v (laid out as adam_update24).
#define EMA_SLOT(k) __global float* a##k, __global const float* v##k
#define EMA_IF(k, start) if (i < end##k) { const int j = i - (start); a##k[j] = decay * a##k[j] + oneMinusDecay * v##k[j]; \
    return; }
#define EMA_SLOTS8(a, b, c, d, e, f, g, h) EMA_SLOT(a), EMA_SLOT(b), EMA_SLOT(c), EMA_SLOT(d), EMA_SLOT(e), EMA_SLOT(f), \
    EMA_SLOT(g), EMA_SLOT(h)

// 32 slots: 64 pointers and 34 scalars are 648 bytes of arguments (within 1,024).
__kernel void ema_update32(EMA_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), EMA_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                           EMA_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), EMA_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                           ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                           ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31),
                           const float decay, const float oneMinusDecay) {
    const int i = (int)get_global_id(0);
    if (i >= end31) return;
    CHAIN32(EMA_IF)
}

// Gradient clipping over many tensors (torch.nn.utils.clip_grad_norm_ with norm 2) in three kinds
// of launch: sum_squares32 writes one partial sum of squares per 4,096 elements of up to 32
// tensors; clip_factor adds all partials up in one work-group and writes
//   factor[0] = min(maxNorm / (sqrt(total) + 1e-6), 1), factor[1] = sqrt(total);
// scale32 multiplies up to 32 tensors by factor[0].
#define CLIP_CHUNK 4096
#define CLIP_READ(k, start) if (i < end##k) { const float x = g##k[i - (start)]; acc += x * x; continue; }
#define CLIP_SLOT(k) __global const float* g##k
#define CLIP_SLOTS8(a, b, c, d, e, f, g, h) CLIP_SLOT(a), CLIP_SLOT(b), CLIP_SLOT(c), CLIP_SLOT(d), CLIP_SLOT(e), \
    CLIP_SLOT(f), CLIP_SLOT(g), CLIP_SLOT(h)

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void sum_squares32(CLIP_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), CLIP_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                   CLIP_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), CLIP_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                   ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                   ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31),
                   __global float* partials, const int partialOffset) {
    __local float scratch[64];
    const int lid = (int)get_local_id(0);
    const int start = (int)get_group_id(0) * CLIP_CHUNK;
    const int stop = min(start + CLIP_CHUNK, end31);
    float acc = 0.0f;
    for (int i = start + lid; i < stop; i += 64) {
        CHAIN32(CLIP_READ)
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partials[partialOffset + (int)get_group_id(0)] = scratch[0];
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void clip_factor(__global const float* partials, const int count, const float maxNorm, __global float* factor) {
    __local float scratch[64];
    const int lid = (int)get_local_id(0);
    float acc = 0.0f;
    for (int i = lid; i < count; i += 64) acc += partials[i];
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const float total = sqrt(scratch[0]);
        factor[0] = min(maxNorm / (total + 1e-6f), 1.0f);
        factor[1] = total;
    }
}

#define SCALE_SLOT(k) __global float* g##k
#define SCALE_SLOTS8(a, b, c, d, e, f, g, h) SCALE_SLOT(a), SCALE_SLOT(b), SCALE_SLOT(c), SCALE_SLOT(d), SCALE_SLOT(e), \
    SCALE_SLOT(f), SCALE_SLOT(g), SCALE_SLOT(h)
#define SCALE_IF(k, start) if (i < end##k) { g##k[i - (start)] *= s; return; }

__kernel void scale32(SCALE_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), SCALE_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                      SCALE_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), SCALE_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                      ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                      ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31),
                      __global const float* factor) {
    const int i = (int)get_global_id(0);
    if (i >= end31) return;
    const float s = factor[0];
    CHAIN32(SCALE_IF)
}

// The sum of a float16's lanes (groupnorm_rows.cl uses it too).
inline float sum16(const float16 v) {
    const float8 h = v.lo + v.hi;
    const float4 q = h.lo + h.hi;
    const float2 d = q.lo + q.hi;
    return d.x + d.y;
}

// CPU devices' variants of ema_update32, sum_squares32 and scale32 (same arguments), 16 floats per
// step as adam_update24_rows: a chunk inside one tensor is one float16 pass, one across tensors
// goes element by element. ema_update32_rows and scale32_rows: global ceil(end31 / 16);
// sum_squares32_rows: one work-item per CLIP_CHUNK floats (global = the partials' count), no
// work-group sums (PoCL runs sum_squares32's 64-wide loops with their chains scalar).
#define EMA_ROWS_IF(k, start) if (first < end##k) { if (first + 16 <= end##k) { const int j = first - (start); \
    vstore16(decay * vload16(0, a##k + j) + oneMinusDecay * vload16(0, v##k + j), 0, a##k + j); return; } break; }
#define EMA_ELEMENT_IF(k, start) if (i < end##k) { const int j = i - (start); \
    a##k[j] = decay * a##k[j] + oneMinusDecay * v##k[j]; continue; }

__kernel void ema_update32_rows(EMA_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), EMA_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                                EMA_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), EMA_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                                ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                                ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31),
                                const float decay, const float oneMinusDecay) {
    const int first = (int)get_global_id(0) * 16;
    if (first >= end31) return;
    do { CHAIN32(EMA_ROWS_IF) } while (0);
    const int last = min(first + 16, end31);
    for (int i = first; i < last; ++i) { CHAIN32(EMA_ELEMENT_IF) }
}

#define SCALE_ROWS_IF(k, start) if (first < end##k) { if (first + 16 <= end##k) { const int j = first - (start); \
    vstore16(s * vload16(0, g##k + j), 0, g##k + j); return; } break; }
#define SCALE_ELEMENT_IF(k, start) if (i < end##k) { g##k[i - (start)] *= s; continue; }

__kernel void scale32_rows(SCALE_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), SCALE_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                           SCALE_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), SCALE_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                           ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                           ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23), ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31),
                           __global const float* factor) {
    const int first = (int)get_global_id(0) * 16;
    if (first >= end31) return;
    const float s = factor[0];
    do { CHAIN32(SCALE_ROWS_IF) } while (0);
    const int last = min(first + 16, end31);
    for (int i = first; i < last; ++i) { CHAIN32(SCALE_ELEMENT_IF) }
}

#define SQUARES_ROWS_IF(k, start) if (first < end##k) { if (first + 16 <= end##k) { \
    const float16 x = vload16(0, g##k + (first - (start))); vector = fma(x, x, vector); done = 1; } break; }

__kernel void sum_squares32_rows(CLIP_SLOTS8(0, 1, 2, 3, 4, 5, 6, 7), CLIP_SLOTS8(8, 9, 10, 11, 12, 13, 14, 15),
                                 CLIP_SLOTS8(16, 17, 18, 19, 20, 21, 22, 23), CLIP_SLOTS8(24, 25, 26, 27, 28, 29, 30, 31),
                                 ADAM_ENDS8(0, 1, 2, 3, 4, 5, 6, 7), ADAM_ENDS8(8, 9, 10, 11, 12, 13, 14, 15),
                                 ADAM_ENDS8(16, 17, 18, 19, 20, 21, 22, 23),
                                 ADAM_ENDS8(24, 25, 26, 27, 28, 29, 30, 31), __global float* partials,
                                 const int partialOffset, const int count) {
    const int chunk = (int)get_global_id(0);
    if (chunk >= count) return;
    const int start = chunk * CLIP_CHUNK;
    const int stop = min(start + CLIP_CHUNK, end31);
    float16 vector = (float16)(0.0f);
    float acc = 0.0f;
    for (int first = start; first < stop; first += 16) {
        // The whole 16 inside one tensor: a vector step; else element by element.
        int done = 0;
        do { CHAIN32(SQUARES_ROWS_IF) } while (0);
        if (done) continue;
        const int last = min(first + 16, stop);
        for (int i = first; i < last; ++i) { CHAIN32(CLIP_READ) }
    }
    partials[partialOffset + chunk] = sum16(vector) + acc;
}
