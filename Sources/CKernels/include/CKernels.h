// Exponential-heavy CPU loops with AVX2 and FMA, chosen at run time. Each returns 0 without doing
// anything where the CPU (or the build's architecture) lacks those, and the caller runs its
// portable Swift loop instead. Swift cannot target an instruction set per function; C can.
#ifndef DIFFUSE_CKERNELS_H
#define DIFFUSE_CKERNELS_H

#include "CParallel.h"

/// Whether this CPU runs the AVX2/FMA kernels (else each returns 0).
int diffuse_cpu_has_avx2_fma(void);

/// y = x / (1 + e^-x)
int diffuse_silu(const float *x, float *y, long n);
/// dx = dy * s * (1 + x (1 - s)), s = 1 / (1 + e^-x)
int diffuse_silu_backward(const float *x, const float *dy, float *dx, long n);
/// y = 1 / (1 + e^-x)
int diffuse_sigmoid(const float *x, float *y, long n);
/// y = e^x
int diffuse_exp(const float *x, float *y, long n);
/// y = softmax(x) over one row of n values (y may be x).
int diffuse_softmax_row(const float *x, float *y, long n);
/// *sum = sum(x), *squares = sum(x^2), accumulated in double (group norm statistics).
int diffuse_sum_squares(const float *x, long n, double *sum, double *squares);
/// Stride-1 convolution of one image with few output channels (the CPU backend's direct path):
/// out[co] = bias[co] + sum over ci and taps, in that order. `scratch` holds
/// diffuse_direct_conv_scratch(...) floats (the zero-padded input).
int diffuse_direct_conv_image(const float *x, const float *weight, const float *bias, float *out,
                              long cin, long cout, long h, long w, long kh, long kw, long ph, long pw,
                              float *scratch);
long diffuse_direct_conv_scratch(long cin, long h, long w, long kh, long kw, long ph, long pw);
/// Adds one image's weight gradient of that convolution into dw ([cout, cin, kh, kw]); `scratch`
/// holds diffuse_direct_conv_weight_scratch(...) floats.
int diffuse_direct_conv_weight_grad_image(const float *x, const float *dy, float *dw, long cin, long cout,
                                          long h, long w, long kh, long kw, long ph, long pw, float *scratch);
long diffuse_direct_conv_weight_scratch(long cin, long cout, long h, long w, long kh, long kw, long ph, long pw);
/// 2x2 stride-2 max pooling of one h x w plane, and its gradient (dx written everywhere): the
/// first maximum of each window in scan order wins and a NaN is always taken, as in the Swift loop.
int diffuse_max_pool2(const float *x, float *y, long h, long w);
int diffuse_max_pool2_backward(const float *x, const float *dy, float *dx, long h, long w);

#endif
