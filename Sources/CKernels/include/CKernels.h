// Exponential-heavy CPU loops with AVX2 and FMA, chosen at run time. Each returns 0 without doing
// anything where the CPU (or the build's architecture) lacks those, and the caller runs its
// portable Swift loop instead. Swift cannot target an instruction set per function; C can.
#ifndef DIFFUSE_CKERNELS_H
#define DIFFUSE_CKERNELS_H

#include "CParallel.h"

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

#endif
