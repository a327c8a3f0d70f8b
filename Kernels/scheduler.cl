// scheduler.cl: sampler updates, so a sampling loop never leaves the device.
//   linear_combination(x, a, y, b, out, n)    out = a x + b y: the tutorial's x0-mixing step
//   (x = (1 - 1/(n-i)) x + 1/(n-i) pred); DDPM/DDIM steps join this file with their schedulers.

__kernel void linear_combination(__global const float* x, const float a, __global const float* y, const float b,
                                 __global float* out, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = a * x[i] + b * y[i];
}
