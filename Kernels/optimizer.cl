// optimizer.cl: one fused Adam/AdamW step per parameter tensor (PyTorch's torch/optim/adam.py rule).
//   adam_update(p, g, m, v, n, oneMinusBeta1, beta2, oneMinusBeta2, eps, gradientDecay, parameterDecay,
//               stepSize, bc2Sqrt)
//   grad += gradientDecay * p (Adam's L2); p *= parameterDecay (AdamW); m = lerp(m, grad, 1 - beta1);
//   v = beta2 v + (1 - beta2) grad^2; p -= stepSize * m / (sqrt(v) / bc2Sqrt + eps)
//   (1 - beta) comes from the host, rounded once from double as PyTorch's Python floats are.
//   adam_update8(p0, g0, m0, v0, ..., p7, g7, m7, v7, end0..end7, scalars...)   eight tensors in one
//       launch over end7 items; item i belongs to the first tensor whose end exceeds it (unused
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

__kernel void adam_update(__global float* p, __global const float* g, __global float* m, __global float* v,
                          const int n, const float oneMinusBeta1, const float beta2, const float oneMinusBeta2,
                          const float eps, const float gradientDecay, const float parameterDecay, const float stepSize,
                          const float bc2Sqrt) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    adam_element(p, g, m, v, i, oneMinusBeta1, beta2, oneMinusBeta2, eps, gradientDecay, parameterDecay, stepSize, bc2Sqrt);
}

#define ADAM_SLOT(k) __global float* p##k, __global const float* g##k, __global float* m##k, __global float* v##k
#define ADAM_IF(k, start) if (i < end##k) { adam_element(p##k, g##k, m##k, v##k, i - (start), oneMinusBeta1, beta2, \
    oneMinusBeta2, eps, gradientDecay, parameterDecay, stepSize, bc2Sqrt); return; }

__kernel void adam_update8(ADAM_SLOT(0), ADAM_SLOT(1), ADAM_SLOT(2), ADAM_SLOT(3), ADAM_SLOT(4), ADAM_SLOT(5),
                           ADAM_SLOT(6), ADAM_SLOT(7), const int end0, const int end1, const int end2, const int end3,
                           const int end4, const int end5, const int end6, const int end7,
                           const float oneMinusBeta1, const float beta2, const float oneMinusBeta2, const float eps,
                           const float gradientDecay, const float parameterDecay, const float stepSize,
                           const float bc2Sqrt) {
    const int i = (int)get_global_id(0);
    if (i >= end7) return;
    ADAM_IF(0, 0) ADAM_IF(1, end0) ADAM_IF(2, end1) ADAM_IF(3, end2)
    ADAM_IF(4, end3) ADAM_IF(5, end4) ADAM_IF(6, end5) ADAM_IF(7, end6)
}
