// groupnorm.cl: group normalisation of [N, C, spatial] float32 with optional per-channel affine.
// A group is channelsPerGroup * spatial contiguous floats; (n, g) index the N*G groups.
//   group_norm_stats(x, mean, rstd, groupSize, eps, groups)                 two-pass, one work-item per group
//   group_norm_apply(x, gamma, beta, mean, rstd, out, C, spatial, G, hasAffine, total)
//   group_norm_backward_stats(x, gamma, mean, rstd, dy, a, b, C, spatial, G, hasAffine, groups)
//       a = mean(dy * gamma), b = mean(dy * gamma * xhat) over the group
//   group_norm_backward_input(x, gamma, mean, rstd, dy, a, b, dx, C, spatial, G, hasAffine, total)
//       dx = rstd * (dy * gamma - a - xhat * b)
//   group_norm_backward_params(x, mean, rstd, dy, dgamma, dbeta, N, C, spatial, G)  one work-item per channel

__kernel void group_norm_stats(__global const float* x, __global float* mean, __global float* rstd,
                               const int groupSize, const float eps, const int groups) {
    const size_t ng = get_global_id(0);
    if (ng >= (size_t)groups) return;
    __global const float* v = x + ng * (size_t)groupSize;
    float sum = 0.0f;
    for (int i = 0; i < groupSize; ++i) sum += v[i];
    const float mu = sum / (float)groupSize;
    float squares = 0.0f;
    for (int i = 0; i < groupSize; ++i) { const float d = v[i] - mu; squares += d * d; }
    mean[ng] = mu;
    rstd[ng] = rsqrt(squares / (float)groupSize + eps);
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

__kernel void group_norm_backward_stats(__global const float* x, __global const float* gamma,
                                        __global const float* mean, __global const float* rstd,
                                        __global const float* dy, __global float* a, __global float* b,
                                        const int C, const int spatial, const int G, const int hasAffine,
                                        const int groups) {
    const size_t ng = get_global_id(0);
    if (ng >= (size_t)groups) return;
    const int cpg = C / G;
    const int group = (int)(ng % (size_t)G);
    const size_t groupSize = (size_t)cpg * (size_t)spatial;
    const float mu = mean[ng];
    const float r = rstd[ng];
    float sumA = 0.0f;
    float sumB = 0.0f;
    for (int cc = 0; cc < cpg; ++cc) {
        const float scale = hasAffine ? gamma[group * cpg + cc] : 1.0f;
        __global const float* xs = x + ng * groupSize + (size_t)cc * (size_t)spatial;
        __global const float* gs = dy + ng * groupSize + (size_t)cc * (size_t)spatial;
        for (int s = 0; s < spatial; ++s) {
            const float d = gs[s] * scale;
            sumA += d;
            sumB += d * (xs[s] - mu) * r;
        }
    }
    a[ng] = sumA / (float)groupSize;
    b[ng] = sumB / (float)groupSize;
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
                                         __global float* dgamma, __global float* dbeta,
                                         const int N, const int C, const int spatial, const int G) {
    const size_t c = get_global_id(0);
    if (c >= (size_t)C) return;
    const int cpg = C / G;
    float sumGamma = 0.0f;
    float sumBeta = 0.0f;
    for (int n = 0; n < N; ++n) {
        const size_t ng = (size_t)n * (size_t)G + c / (size_t)cpg;
        const float mu = mean[ng];
        const float r = rstd[ng];
        __global const float* xs = x + ((size_t)n * (size_t)C + c) * (size_t)spatial;
        __global const float* gs = dy + ((size_t)n * (size_t)C + c) * (size_t)spatial;
        for (int s = 0; s < spatial; ++s) {
            sumGamma += gs[s] * (xs[s] - mu) * r;
            sumBeta += gs[s];
        }
    }
    dgamma[c] = sumGamma;
    dbeta[c] = sumBeta;
}
