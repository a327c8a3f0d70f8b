// groupnorm_rows.cl: group norm (with SiLU fused) for CPU devices, one work-item per group reading
// its contiguous floats as float16 vectors (SiLU's exp vectorized too) with a scalar tail. The
// work-group kernels of groupnorm.cl stride each of 64 work-items through memory with barriers
// between passes, which PoCL runs as scalar loops: ~1.5 GB/s, a fifth of a training step.
// Same equations and outputs as groupnorm.cl (its header gives them), sums in another order:
//   group_norm_forward_rows(x, gamma, beta, mean, rstd, out, C, spatial, G, eps, hasAffine, silu, groups,
//                           shift, shifted, hasShift)
//       with hasShift, the norm of shifted = x + shift[n, c] (written out for the backward pass)
//   group_norm_backward_rows(x, gamma, beta, mean, rstd, dout, partials, dx, C, spatial, G, hasAffine, silu,
//                            accumulate, groups)
//       partials[2(nC + c)] = sum dy * xhat, [.. + 1] = sum dy over plane (n, c), as group_norm_backward
// (sum16 is optimizer.cl's; silu_of and silu_gradient are groupnorm.cl's.)

inline float16 gn_silu16(const float16 v) { return v / (1.0f + exp(-v)); }

// dy * silu'(y), in activation.cl's order of operations.
inline float16 gn_silu_gradient16(const float16 y, const float16 dy) {
    const float16 s = 1.0f / (1.0f + exp(-y));
    return dy * s * (1.0f + y * (1.0f - s));
}

// Sum over n floats, and sum of squared deviations from mu.
inline float gn_sum(__global const float* v, const int n) {
    float16 acc = (float16)(0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) acc += vload16(0, v + i);
    float tail = 0.0f;
    for (; i < n; ++i) tail += v[i];
    return sum16(acc) + tail;
}

inline float gn_squares(__global const float* v, const int n, const float mu) {
    float16 acc = (float16)(0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) { const float16 d = vload16(0, v + i) - mu; acc = fma(d, d, acc); }
    float tail = 0.0f;
    for (; i < n; ++i) { const float d = v[i] - mu; tail = fma(d, d, tail); }
    return sum16(acc) + tail;
}

__kernel void group_norm_forward_rows(__global const float* x, __global const float* gamma,
                                      __global const float* beta, __global float* mean, __global float* rstd,
                                      __global float* out, const int C, const int spatial, const int G,
                                      const float eps, const int hasAffine, const int silu, const int groups,
                                      __global const float* shift, __global float* shifted, const int hasShift) {
    const int ng = (int)get_global_id(0);
    if (ng >= groups) return;
    const int cpg = C / G;
    const int groupSize = cpg * spatial;
    const int firstChannel = (ng % G) * cpg;
    __global const float* v = x + (size_t)ng * (size_t)groupSize;
    __global float* o = out + (size_t)ng * (size_t)groupSize;
    if (hasShift) {
        // shifted = x + shift, which the passes below read (ResnetBlock2D's time-embedding add).
        __global float* w = shifted + (size_t)ng * (size_t)groupSize;
        for (int cc = 0; cc < cpg; ++cc) {
            const float t = shift[(ng / G) * C + firstChannel + cc];
            __global const float* p = v + cc * spatial;
            __global float* q = w + cc * spatial;
            int s = 0;
            for (; s + 16 <= spatial; s += 16) vstore16(vload16(0, p + s) + t, 0, q + s);
            for (; s < spatial; ++s) q[s] = p[s] + t;
        }
        v = w;
    }
    const float mu = gn_sum(v, groupSize) / (float)groupSize;
    const float r = rsqrt(gn_squares(v, groupSize, mu) / (float)groupSize + eps);
    mean[ng] = mu;
    rstd[ng] = r;
    for (int cc = 0; cc < cpg; ++cc) {
        const int c = firstChannel + cc;
        const float scale = hasAffine ? gamma[c] : 1.0f;
        const float shift = hasAffine ? beta[c] : 0.0f;
        __global const float* p = v + cc * spatial;
        __global float* q = o + cc * spatial;
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 normed = (vload16(0, p + s) - mu) * r;
            const float16 y = hasAffine ? normed * scale + shift : normed;
            vstore16(silu ? gn_silu16(y) : y, 0, q + s);
        }
        for (; s < spatial; ++s) {
            const float normed = (p[s] - mu) * r;
            const float y = hasAffine ? normed * scale + shift : normed;
            q[s] = silu ? silu_of(y) : y;
        }
    }
}

// dy at the norm's output for 16 elements: dout, or dout * silu'(y) with y recomputed from x.
inline float16 gn_output_gradient16(const float16 xv, const float16 d, const float mu, const float r,
                                    const float scale, const float shift, const int hasAffine, const int silu) {
    if (!silu) return d;
    const float16 normed = (xv - mu) * r;
    return gn_silu_gradient16(hasAffine ? normed * scale + shift : normed, d);
}

inline float gn_output_gradient(const float xv, const float d, const float mu, const float r, const float scale,
                                const float shift, const int hasAffine, const int silu) {
    if (!silu) return d;
    const float normed = (xv - mu) * r;
    return silu_gradient(hasAffine ? normed * scale + shift : normed, d);
}

__kernel void group_norm_backward_rows(__global const float* x, __global const float* gamma,
                                       __global const float* beta, __global const float* mean,
                                       __global const float* rstd, __global const float* dout,
                                       __global float* partials, __global float* dx, const int C, const int spatial,
                                       const int G, const int hasAffine, const int silu, const int accumulate,
                                       const int groups) {
    const int ng = (int)get_global_id(0);
    if (ng >= groups) return;
    const int cpg = C / G;
    const int n = ng / G;
    const int firstChannel = (ng % G) * cpg;
    const float mu = mean[ng];
    const float r = rstd[ng];
    const size_t first = (size_t)ng * (size_t)(cpg * spatial);
    float a = 0.0f, b = 0.0f;
    for (int cc = 0; cc < cpg; ++cc) {
        const int c = firstChannel + cc;
        const float scale = hasAffine ? gamma[c] : 1.0f;
        const float shift = hasAffine ? beta[c] : 0.0f;
        __global const float* p = x + first + (size_t)(cc * spatial);
        __global const float* d = dout + first + (size_t)(cc * spatial);
        float16 dyXhat = (float16)(0.0f), dySum = (float16)(0.0f);
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 xv = vload16(0, p + s);
            const float16 dy = gn_output_gradient16(xv, vload16(0, d + s), mu, r, scale, shift, hasAffine, silu);
            dyXhat = fma(dy, (xv - mu) * r, dyXhat);
            dySum += dy;
        }
        float tailXhat = 0.0f, tailSum = 0.0f;
        for (; s < spatial; ++s) {
            const float dy = gn_output_gradient(p[s], d[s], mu, r, scale, shift, hasAffine, silu);
            tailXhat = fma(dy, (p[s] - mu) * r, tailXhat);
            tailSum += dy;
        }
        const float sumDyXhat = sum16(dyXhat) + tailXhat;
        const float sumDy = sum16(dySum) + tailSum;
        const size_t nc = (size_t)n * (size_t)C + (size_t)c;
        partials[2 * nc] = sumDyXhat;
        partials[2 * nc + 1] = sumDy;
        b = fma(scale, sumDyXhat, b);
        a = fma(scale, sumDy, a);
    }
    const float inverseSize = 1.0f / (float)(cpg * spatial);
    const float aMean = a * inverseSize, bMean = b * inverseSize;
    for (int cc = 0; cc < cpg; ++cc) {
        const int c = firstChannel + cc;
        const float scale = hasAffine ? gamma[c] : 1.0f;
        const float shift = hasAffine ? beta[c] : 0.0f;
        const size_t base = first + (size_t)(cc * spatial);
        int s = 0;
        for (; s + 16 <= spatial; s += 16) {
            const float16 xv = vload16(0, x + base + s);
            const float16 dy = gn_output_gradient16(xv, vload16(0, dout + base + s), mu, r, scale, shift, hasAffine, silu);
            float16 value = r * (dy * scale - aMean - (xv - mu) * r * bMean);
            if (accumulate) value += vload16(0, dx + base + s);
            vstore16(value, 0, dx + base + s);
        }
        for (; s < spatial; ++s) {
            const float xv = x[base + s];
            const float dy = gn_output_gradient(xv, dout[base + s], mu, r, scale, shift, hasAffine, silu);
            const float value = r * (dy * scale - aMean - (xv - mu) * r * bMean);
            dx[base + s] = accumulate ? dx[base + s] + value : value;
        }
    }
}
