// loss.cl: the MSE gradient (the forward is a sum_partials/sum_final reduction in reduce.cl).
//   mse_backward(prediction, target, gradOut, gradIn, n)   gradIn = 2 (p - t) / n * gradOut[0]

__kernel void mse_backward(__global const float* p, __global const float* t, __global const float* g,
                           __global float* dp, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) dp[i] = (p[i] - t[i]) * (2.0f / (float)n) * g[0];
}
