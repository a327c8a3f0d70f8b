// scheduler.cl: sampler updates, so a sampling loop never leaves the device.
//   linear_combination(x, a, y, b, out, n)    out = a x + b y: the tutorial's x0-mixing step
//       (x = (1 - 1/(n-i)) x + 1/(n-i) pred)
//   scheduler_step(...)                       one DDPM/DDIM step (arguments below)

__kernel void linear_combination(__global const float* x, const float a, __global const float* y, const float b,
                                 __global float* out, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = a * x[i] + b * y[i];
}

// scheduler_step(sample, output, noise, prev, x0, n, prediction, sqrtAlpha, sqrtBeta, clip, clipRange,
//                recomputeEps, x0Coef, sampleCoef, epsCoef, noiseCoef, hasNoise)
//   One DDPM/DDIM step in diffusers' operation order (Tensor/SchedulerStepGeometry.swift is the twin):
//   prediction 0 epsilon, 1 sample, 2 v; prev = x0Coef x0 + sampleCoef s + epsCoef eps + noiseCoef noise.
__kernel void scheduler_step(__global const float* sample, __global const float* output, __global const float* noise,
                             __global float* prev, __global float* x0out, const int n, const int prediction,
                             const float sa, const float sb, const int clip, const float clipRange,
                             const int recomputeEps, const float x0Coef, const float sampleCoef, const float epsCoef,
                             const float noiseCoef, const int hasNoise) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n) return;
    const float s = sample[i];
    const float o = output[i];
    float x0;
    float eps;
    if (prediction == 0) { x0 = (s - sb * o) / sa; eps = o; }
    else if (prediction == 1) { x0 = o; eps = (s - sa * x0) / sb; }
    else { x0 = sa * s - sb * o; eps = sa * o + sb * s; }
    if (clip) x0 = fmin(fmax(x0, -clipRange), clipRange);
    if (recomputeEps) eps = (s - sa * x0) / sb;
    prev[i] = x0Coef * x0 + sampleCoef * s + epsCoef * eps + noiseCoef * (hasNoise ? noise[i] : 0.0f);
    x0out[i] = x0;
}
