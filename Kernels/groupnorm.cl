// groupnorm.cl: group normalisation of [N, C, spatial] float32 with optional per-channel affine,
// optionally followed by SiLU in the same pass (silu = 1: ResnetBlock2D's norm and nonlinearity).
// A group is channelsPerGroup * spatial contiguous floats; (n, g) index the N*G groups.
//   group_norm_stats(x, mean, rstd, groupSize, eps, groups, C, spatial, G, shift, shifted, hasShift)
//       two-pass, one work-group of 64 per group
//   group_norm_apply(x, gamma, beta, mean, rstd, out, C, spatial, G, hasAffine, silu, total)
//   group_norm_forward(x, gamma, beta, mean, rstd, out, C, spatial, G, eps, hasAffine, silu, shift, shifted,
//                      hasShift)
//       both in one launch, a work-group of 64 per group (for groups small enough that 64
//       work-items pass over them quickly; larger ones take stats + apply)
//   With hasShift the norm is of shifted = x + shift[n, c] (ResnetBlock2D's time-embedding add),
//   written in the first pass for the backward pass (and for group_norm_apply, given it as x);
//   later passes read it back at the same indices from the same work-item.
// Backward, with dy the gradient at the norm's output (times silu'(y), y recomputed, when fused):
//   group_norm_backward_planes(x, gamma, beta, mean, rstd, dout, partials, C, spatial, G, hasAffine, silu, planes)
//       one work-group of 64 per (n, c) plane: partials[2(nC + c)] = sum dy * xhat, [.. + 1] = sum dy;
//       these give both the input gradient's group sums and (added over n by sum_deferred) dgamma, dbeta
//   group_norm_backward_input(x, gamma, beta, mean, rstd, dout, partials, dx, C, spatial, G, hasAffine, silu,
//                             accumulate, total)
//       dx = rstd * (dy * gamma - a - xhat * b), a = mean(dy * gamma), b = mean(dy * gamma * xhat) over
//       the group, each gathered from the group's channels' partials
//   group_norm_backward(x, gamma, beta, mean, rstd, dout, partials, dx, C, spatial, G, hasAffine, silu, accumulate)
//       both in one launch, a work-group of 64 per (n, g): the group's planes' sums (written to partials
//       as above), then its input gradient; the same sums in the same order, so the same floats

inline float silu_of(const float v) { return v / (1.0f + exp(-v)); }

// dy * silu'(y), in activation.cl's order of operations.
inline float silu_gradient(const float y, const float dy) {
    const float s = 1.0f / (1.0f + exp(-y));
    return dy * s * (1.0f + y * (1.0f - s));
}

// i / d for i = start, start + 64, start + 128, ... (a work-item's indices in a 64-wide loop) by a
// carry per step instead of a division per element, which a GPU does not have in hardware.
typedef struct { int q, r, dq, dr, d; } step_div;
inline step_div step_div_start(const int start, const int d) {
    const step_div s = { start / d, start % d, 64 / d, 64 % d, d };
    return s;
}
inline void step_div_next(step_div* s) {
    s->q += s->dq;
    s->r += s->dr;
    if (s->r >= s->d) { s->r -= s->d; s->q += 1; }
}

// Sums one value per work-item of a 64-wide work-group; every work-item gets the total.
inline float group_sum(float value, __local float* scratch) {
    const int lid = (int)get_local_id(0);
    barrier(CLK_LOCAL_MEM_FENCE); // scratch may still be read by the previous call
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return scratch[0];
}

// This work-item's part of the first pass over a group of n floats at v: their sum, or with
// hasShift the sum of v[i] + shift[first + i / spatial], each written to w[i] for the later passes
// to read (without a shift, `shift` is a stand-in buffer and is not read).
inline float first_pass(__global const float* v, __global float* w, __global const float* shift, const size_t first,
                        const int n, const int spatial, const int hasShift) {
    const int lid = (int)get_local_id(0);
    float sum = 0.0f;
    step_div plane = step_div_start(lid, spatial);
    for (int i = lid; i < n; i += 64, step_div_next(&plane)) {
        float value = v[i];
        if (hasShift) {
            value += shift[first + (size_t)plane.q];
            w[i] = value;
        }
        sum += value;
    }
    return sum;
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_stats(__global const float* x, __global float* mean, __global float* rstd,
                      const int groupSize, const float eps, const int groups, const int C, const int spatial,
                      const int G, __global const float* shift, __global float* shifted, const int hasShift) {
    __local float scratch[64];
    const size_t ng = get_group_id(0);
    const int lid = (int)get_local_id(0);
    if (ng >= (size_t)groups) return; // whole work-group leaves together
    __global const float* v = x + ng * (size_t)groupSize;
    __global float* w = shifted + ng * (size_t)groupSize;
    const float sum = first_pass(v, w, shift, (ng / (size_t)G) * (size_t)C + (ng % (size_t)G) * (size_t)(C / G),
                                 groupSize, spatial, hasShift);
    if (hasShift) v = w;
    const float mu = group_sum(sum, scratch) / (float)groupSize;
    float squares = 0.0f;
    for (int i = lid; i < groupSize; i += 64) { const float d = v[i] - mu; squares += d * d; }
    const float variance = group_sum(squares, scratch) / (float)groupSize;
    if (lid == 0) {
        mean[ng] = mu;
        rstd[ng] = rsqrt(variance + eps);
    }
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_forward(__global const float* x, __global const float* gamma, __global const float* beta,
                        __global float* mean, __global float* rstd, __global float* out, const int C,
                        const int spatial, const int G, const float eps, const int hasAffine, const int silu,
                        __global const float* shift, __global float* shifted, const int hasShift) {
    // The global size is exactly 64 per group, so no work-group returns early: with an early return
    // before its barriers PoCL 3.1 miscompiled this kernel into writes outside its buffers.
    __local float scratch[64];
    const size_t ng = get_group_id(0);
    const int lid = (int)get_local_id(0);
    const int cpg = C / G;
    const int groupSize = cpg * spatial;
    const int firstChannel = (int)(ng % (size_t)G) * cpg;
    __global const float* v = x + ng * (size_t)groupSize;
    __global float* o = out + ng * (size_t)groupSize;
    __global float* w = shifted + ng * (size_t)groupSize;
    const float sum = first_pass(v, w, shift, (ng / (size_t)G) * (size_t)C + (size_t)firstChannel, groupSize, spatial,
                                 hasShift);
    if (hasShift) v = w;
    const float mu = group_sum(sum, scratch) / (float)groupSize;
    float squares = 0.0f;
    for (int i = lid; i < groupSize; i += 64) { const float d = v[i] - mu; squares += d * d; }
    const float r = rsqrt(group_sum(squares, scratch) / (float)groupSize + eps);
    if (lid == 0) {
        mean[ng] = mu;
        rstd[ng] = r;
    }
    step_div plane = step_div_start(lid, spatial);
    for (int i = lid; i < groupSize; i += 64, step_div_next(&plane)) {
        const int c = firstChannel + plane.q;
        const float normed = (v[i] - mu) * r;
        const float y = hasAffine ? normed * gamma[c] + beta[c] : normed;
        o[i] = silu ? silu_of(y) : y;
    }
}

__kernel void group_norm_apply(__global const float* x, __global const float* gamma, __global const float* beta,
                               __global const float* mean, __global const float* rstd, __global float* out,
                               const int C, const int spatial, const int G, const int hasAffine, const int silu,
                               const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int nc = i / spatial;
    const int c = nc % C;
    const int ng = (nc / C) * G + c / (C / G);
    const float normed = (x[i] - mean[ng]) * rstd[ng];
    const float y = hasAffine ? normed * gamma[c] + beta[c] : normed;
    out[i] = silu ? silu_of(y) : y;
}

// The gradient at the norm's output of element i: dout, or dout * silu'(y) with y recomputed.
inline float norm_output_gradient(__global const float* x, __global const float* gamma, __global const float* beta,
                                  __global const float* dout, const size_t i, const int c, const float mu,
                                  const float r, const int hasAffine, const int silu) {
    if (!silu) return dout[i];
    const float normed = (x[i] - mu) * r;
    const float y = hasAffine ? normed * gamma[c] + beta[c] : normed;
    return silu_gradient(y, dout[i]);
}

// Sums over one (n, c) plane of dy * xhat and of dy, by a 64-wide work-group: (sum dy xhat, sum dy).
inline float2 plane_sums(__global const float* x, __global const float* gamma, __global const float* beta,
                         __global const float* dout, const size_t base, const int spatial, const int c,
                         const float mu, const float r, const int hasAffine, const int silu,
                         __local float* scratch) {
    const int lid = (int)get_local_id(0);
    float sumDyXhat = 0.0f;
    float sumDy = 0.0f;
    for (int s = lid; s < spatial; s += 64) {
        const size_t i = base + (size_t)s;
        const float dy = norm_output_gradient(x, gamma, beta, dout, i, c, mu, r, hasAffine, silu);
        sumDyXhat += dy * (x[i] - mu) * r;
        sumDy += dy;
    }
    const float totalDyXhat = group_sum(sumDyXhat, scratch);
    return (float2)(totalDyXhat, group_sum(sumDy, scratch));
}

// dx of element i (channel c), given its group's a = sum gamma dy and b = sum gamma dy xhat.
inline float input_gradient(__global const float* x, __global const float* gamma, __global const float* beta,
                            __global const float* dout, const size_t i, const int c, const float mu, const float r,
                            const float a, const float b, const float inverseSize, const int hasAffine,
                            const int silu) {
    const float xhat = (x[i] - mu) * r;
    const float scale = hasAffine ? gamma[c] : 1.0f;
    const float dy = norm_output_gradient(x, gamma, beta, dout, i, c, mu, r, hasAffine, silu);
    return r * (dy * scale - a * inverseSize - xhat * b * inverseSize);
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_backward_planes(__global const float* x, __global const float* gamma, __global const float* beta,
                                __global const float* mean, __global const float* rstd,
                                __global const float* dout, __global float* partials, const int C,
                                const int spatial, const int G, const int hasAffine, const int silu,
                                const int planes) {
    __local float scratch[64];
    const size_t nc = get_group_id(0);
    const int lid = (int)get_local_id(0);
    if (nc >= (size_t)planes) return; // whole work-group leaves together
    const int c = (int)(nc % (size_t)C);
    const size_t ng = (nc / (size_t)C) * (size_t)G + (size_t)(c / (C / G));
    const float mu = mean[ng];
    const float r = rstd[ng];
    const float2 sums = plane_sums(x, gamma, beta, dout, nc * (size_t)spatial, spatial, c, mu, r, hasAffine, silu,
                                   scratch);
    if (lid == 0) {
        partials[2 * nc] = sums.x;
        partials[2 * nc + 1] = sums.y;
    }
}

__kernel void group_norm_backward_input(__global const float* x, __global const float* gamma,
                                        __global const float* beta, __global const float* mean,
                                        __global const float* rstd, __global const float* dout,
                                        __global const float* partials, __global float* dx, const int C,
                                        const int spatial, const int G, const int hasAffine, const int silu,
                                        const int accumulate, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int nc = i / spatial;
    const int n = nc / C;
    const int c = nc % C;
    const int cpg = C / G;
    const int first = c - c % cpg;
    const int ng = n * G + c / cpg;
    float a = 0.0f, b = 0.0f;
    for (int k = first; k < first + cpg; ++k) {
        const float scale = hasAffine ? gamma[k] : 1.0f;
        b = fma(scale, partials[2 * (n * C + k)], b);
        a = fma(scale, partials[2 * (n * C + k) + 1], a);
    }
    const float value = input_gradient(x, gamma, beta, dout, (size_t)i, c, mean[ng], rstd[ng], a, b,
                                       1.0f / (float)(cpg * spatial), hasAffine, silu);
    // accumulate: dx already holds another gradient of the same input (autograd's in-place sum).
    dx[i] = accumulate ? dx[i] + value : value;
}

// group_norm_backward_planes then group_norm_backward_input for one group in one work-group (the
// global size is exactly 64 per group: no work-group returns early, see group_norm_forward).
__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_backward(__global const float* x, __global const float* gamma, __global const float* beta,
                         __global const float* mean, __global const float* rstd, __global const float* dout,
                         __global float* partials, __global float* dx, const int C, const int spatial, const int G,
                         const int hasAffine, const int silu, const int accumulate) {
    __local float scratch[64];
    const size_t ng = get_group_id(0);
    const int lid = (int)get_local_id(0);
    const int cpg = C / G;
    const size_t n = ng / (size_t)G;
    const int firstChannel = (int)(ng % (size_t)G) * cpg;
    const float mu = mean[ng];
    const float r = rstd[ng];
    float a = 0.0f, b = 0.0f;
    for (int cc = 0; cc < cpg; ++cc) {
        const int c = firstChannel + cc;
        const size_t nc = n * (size_t)C + (size_t)c;
        const float2 sums = plane_sums(x, gamma, beta, dout, nc * (size_t)spatial, spatial, c, mu, r, hasAffine, silu,
                                       scratch);
        if (lid == 0) {
            partials[2 * nc] = sums.x;
            partials[2 * nc + 1] = sums.y;
        }
        const float scale = hasAffine ? gamma[c] : 1.0f;
        b = fma(scale, sums.x, b);
        a = fma(scale, sums.y, a);
    }
    const int groupSize = cpg * spatial;
    const float inverseSize = 1.0f / (float)groupSize;
    const size_t first = ng * (size_t)groupSize;
    step_div plane = step_div_start(lid, spatial);
    for (int k = lid; k < groupSize; k += 64, step_div_next(&plane)) {
        const size_t i = first + (size_t)k;
        const float value =
            input_gradient(x, gamma, beta, dout, i, firstChannel + plane.q, mu, r, a, b, inverseSize, hasAffine, silu);
        dx[i] = accumulate ? dx[i] + value : value;
    }
}
