// optimizer.cl: one fused Adam/AdamW step per parameter tensor (PyTorch's torch/optim/adam.py rule).
//   adam_update(p, g, m, v, n, oneMinusBeta1, beta2, oneMinusBeta2, eps, gradientDecay, parameterDecay,
//               stepSize, bc2Sqrt)
//   grad += gradientDecay * p (Adam's L2); p *= parameterDecay (AdamW); m = lerp(m, grad, 1 - beta1);
//   v = beta2 v + (1 - beta2) grad^2; p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps)
//   (1 - beta) comes from the host, rounded once from double as PyTorch's Python floats are.

__kernel void adam_update(__global float* p, __global const float* g, __global float* m, __global float* v,
                          const int n, const float oneMinusBeta1, const float beta2, const float oneMinusBeta2,
                          const float eps,
                          const float gradientDecay, const float parameterDecay, const float stepSize,
                          const float bc2Sqrt) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n) return;
    const float grad = g[i] + gradientDecay * p[i];
    const float param = p[i] * parameterDecay;
    const float mi = m[i] + oneMinusBeta1 * (grad - m[i]);
    const float vi = v[i] * beta2 + oneMinusBeta2 * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] = param - stepSize * (mi / (sqrt(vi) / bc2Sqrt + eps));
}
