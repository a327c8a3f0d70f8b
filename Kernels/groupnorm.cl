// groupnorm.cl: group normalisation of [N, C, spatial] float32 with optional per-channel affine.
// A group is channelsPerGroup * spatial contiguous floats; (n, g) index the N*G groups.
//   group_norm_stats(x, mean, rstd, groupSize, eps, groups)   two-pass, one work-group of 64 per group
//   group_norm_apply(x, gamma, beta, mean, rstd, out, C, spatial, G, hasAffine, total)
//   group_norm_backward_stats(x, gamma, mean, rstd, dy, a, b, C, spatial, G, hasAffine, groups)
//       a = mean(dy * gamma), b = mean(dy * gamma * xhat) over the group; one work-group of 64 per group
//   group_norm_backward_input(x, gamma, mean, rstd, dy, a, b, dx, C, spatial, G, hasAffine, total)
//       dx = rstd * (dy * gamma - a - xhat * b)
//   group_norm_backward_params(x, mean, rstd, dy, partials, N, C, spatial, G)  one work-item per (n, c):
//       partials[2(nC + c)] = sum dy * xhat, partials[2(nC + c) + 1] = sum dy; sum_batch_pair adds them up

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

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_stats(__global const float* x, __global float* mean, __global float* rstd,
                      const int groupSize, const float eps, const int groups) {
    __local float scratch[64];
    const size_t ng = get_group_id(0);
    const int lid = (int)get_local_id(0);
    if (ng >= (size_t)groups) return; // whole work-group leaves together
    __global const float* v = x + ng * (size_t)groupSize;
    float sum = 0.0f;
    for (int i = lid; i < groupSize; i += 64) sum += v[i];
    const float mu = group_sum(sum, scratch) / (float)groupSize;
    float squares = 0.0f;
    for (int i = lid; i < groupSize; i += 64) { const float d = v[i] - mu; squares += d * d; }
    const float variance = group_sum(squares, scratch) / (float)groupSize;
    if (lid == 0) {
        mean[ng] = mu;
        rstd[ng] = rsqrt(variance + eps);
    }
}

__kernel void group_norm_apply(__global const float* x, __global const float* gamma, __global const float* beta,
                               __global const float* mean, __global const float* rstd, __global float* out,
                               const int C, const int spatial, const int G, const int hasAffine, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int nc = i / spatial;
    const int c = nc % C;
    const int ng = (nc / C) * G + c / (C / G);
    const float normed = (x[i] - mean[ng]) * rstd[ng];
    out[i] = hasAffine ? normed * gamma[c] + beta[c] : normed;
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void group_norm_backward_stats(__global const float* x, __global const float* gamma,
                               __global const float* mean, __global const float* rstd,
                               __global const float* dy, __global float* a, __global float* b,
                               const int C, const int spatial, const int G, const int hasAffine,
                               const int groups) {
    __local float scratch[64];
    const size_t ng = get_group_id(0);
    const int lid = (int)get_local_id(0);
    if (ng >= (size_t)groups) return;
    const int cpg = C / G;
    const int group = (int)(ng % (size_t)G);
    const int groupSize = cpg * spatial;
    const float mu = mean[ng];
    const float r = rstd[ng];
    __global const float* xs = x + ng * (size_t)groupSize;
    __global const float* gs = dy + ng * (size_t)groupSize;
    float sumA = 0.0f;
    float sumB = 0.0f;
    for (int i = lid; i < groupSize; i += 64) {
        const float scale = hasAffine ? gamma[group * cpg + i / spatial] : 1.0f;
        const float d = gs[i] * scale;
        sumA += d;
        sumB += d * (xs[i] - mu) * r;
    }
    const float totalA = group_sum(sumA, scratch);
    const float totalB = group_sum(sumB, scratch);
    if (lid == 0) {
        a[ng] = totalA / (float)groupSize;
        b[ng] = totalB / (float)groupSize;
    }
}

__kernel void group_norm_backward_input(__global const float* x, __global const float* gamma,
                                        __global const float* mean, __global const float* rstd,
                                        __global const float* dy, __global const float* a, __global const float* b,
                                        __global float* dx, const int C, const int spatial, const int G,
                                        const int hasAffine, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int nc = i / spatial;
    const int c = nc % C;
    const int ng = (nc / C) * G + c / (C / G);
    const float r = rstd[ng];
    const float xhat = (x[i] - mean[ng]) * r;
    const float scale = hasAffine ? gamma[c] : 1.0f;
    dx[i] = r * (dy[i] * scale - a[ng] - xhat * b[ng]);
}

__kernel void group_norm_backward_params(__global const float* x, __global const float* mean,
                                         __global const float* rstd, __global const float* dy,
                                         __global float* partials, const int N, const int C, const int spatial,
                                         const int G) {
    const size_t nc = get_global_id(0);
    if (nc >= (size_t)N * (size_t)C) return;
    const size_t n = nc / (size_t)C;
    const size_t c = nc % (size_t)C;
    const size_t ng = n * (size_t)G + c / (size_t)(C / G);
    const float mu = mean[ng];
    const float r = rstd[ng];
    __global const float* xs = x + nc * (size_t)spatial;
    __global const float* gs = dy + nc * (size_t)spatial;
    float sumGamma = 0.0f;
    float sumBeta = 0.0f;
    for (int s = 0; s < spatial; ++s) {
        sumGamma += gs[s] * (xs[s] - mu) * r;
        sumBeta += gs[s];
    }
    partials[2 * nc] = sumGamma;
    partials[2 * nc + 1] = sumBeta;
}
