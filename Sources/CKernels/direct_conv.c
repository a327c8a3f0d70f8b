// AVX2/FMA direct convolution for layers with very few output channels (BasicUNet's last layer,
// 32 -> 1 at 5x5): the image is copied once into zero-padded rows, so every tap of an output row
// is an unmasked multiply-add of 32-lane blocks held in four registers, with no edge cases.
#include "CKernels.h"
#include <string.h>

enum { BLOCK = 32 };

static long round_up(long v, long m) { return (v + m - 1) / m * m; }

long diffuse_direct_conv_scratch(long cin, long h, long w, long kh, long kw, long ph, long pw) {
    long oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1;
    if (oh < 1 || ow < 1) return 1;
    long width = round_up(ow, BLOCK) + kw - 1;
    return cin * (oh + kh - 1) * width + BLOCK;
}

long diffuse_direct_conv_weight_scratch(long cin, long cout, long h, long w, long kh, long kw, long ph, long pw) {
    long oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1;
    if (oh < 1 || ow < 1) return 1;
    return diffuse_direct_conv_scratch(cin, h, w, kh, kw, ph, pw) + cout * oh * round_up(ow, BLOCK);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/// Padded row r of channel c holds input row r - ph at offset pw, zeros elsewhere; input rows
/// or columns past the output's reach (negative padding) are simply not copied.
static void pad_image(const float *x, long cin, long h, long w, long ph, long pw, long rows, long width,
                      float *padded) {
    memset(padded, 0, sizeof(float) * cin * rows * width);
    for (long c = 0; c < cin; c++) {
        for (long r = 0; r < rows; r++) {
            long iy = r - ph;
            if (iy < 0 || iy >= h) continue;
            long x0 = pw < 0 ? -pw : 0;
            long x1 = w < width - pw ? w : width - pw;
            if (x1 > x0) memcpy(padded + (c * rows + r) * width + pw + x0, x + (c * h + iy) * w + x0,
                                sizeof(float) * (x1 - x0));
        }
    }
}

static inline __attribute__((target("avx2,fma"))) float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/// dw[co][c][ki][kj] += sum over output pixels of dy[co] * padded x[c] shifted by (ki, kj). dY is
/// copied into rows padded with zeros to whole 32-lane blocks, so the lanes past the output
/// width add nothing.
static __attribute__((target("avx2,fma"))) void direct_conv_weight_avx2(
    const float *x, const float *dy, float *dw, long cin, long cout, long h, long w, long kh, long kw,
    long ph, long pw, float *scratch) {
    const long oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1;
    const long width = round_up(ow, BLOCK) + kw - 1, rows = oh + kh - 1, dyWidth = round_up(ow, BLOCK);
    float *padded = scratch;
    float *upstream = scratch + diffuse_direct_conv_scratch(cin, h, w, kh, kw, ph, pw);
    pad_image(x, cin, h, w, ph, pw, rows, width, padded);
    memset(upstream, 0, sizeof(float) * cout * oh * dyWidth);
    for (long r = 0; r < cout * oh; r++) memcpy(upstream + r * dyWidth, dy + r * ow, sizeof(float) * ow);
    for (long co = 0; co < cout; co++) {
        for (long c = 0; c < cin; c++) {
            for (long ki = 0; ki < kh; ki++) {
                for (long kj = 0; kj < kw; kj++) {
                    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                    for (long y = 0; y < oh; y++) {
                        const float *g = upstream + (co * oh + y) * dyWidth;
                        const float *row = padded + (c * rows + y + ki) * width + kj;
                        for (long x0 = 0; x0 < dyWidth; x0 += BLOCK) {
                            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(g + x0), _mm256_loadu_ps(row + x0), a0);
                            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(g + x0 + 8), _mm256_loadu_ps(row + x0 + 8), a1);
                            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(g + x0 + 16), _mm256_loadu_ps(row + x0 + 16), a2);
                            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(g + x0 + 24), _mm256_loadu_ps(row + x0 + 24), a3);
                        }
                    }
                    dw[((co * cin + c) * kh + ki) * kw + kj] +=
                        sum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
                }
            }
        }
    }
}

int diffuse_direct_conv_weight_grad_image(const float *x, const float *dy, float *dw, long cin, long cout,
                                          long h, long w, long kh, long kw, long ph, long pw, float *scratch) {
    if (!diffuse_cpu_has_avx2_fma()) return 0;
    if (h + 2 * ph - kh + 1 < 1 || w + 2 * pw - kw + 1 < 1) return 0;
    direct_conv_weight_avx2(x, dy, dw, cin, cout, h, w, kh, kw, ph, pw, scratch);
    return 1;
}

static __attribute__((target("avx2,fma"))) void direct_conv_avx2(
    const float *x, const float *weight, const float *bias, float *out, long cin, long cout, long h,
    long w, long kh, long kw, long ph, long pw, float *scratch) {
    const long oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1;
    const long width = round_up(ow, BLOCK) + kw - 1, rows = oh + kh - 1;
    pad_image(x, cin, h, w, ph, pw, rows, width, scratch);
    const long taps = kh * kw;
    for (long co = 0; co < cout; co++) {
        const float *wc = weight + co * cin * taps;
        const __m256 b = _mm256_set1_ps(bias ? bias[co] : 0.0f);
        for (long y = 0; y < oh; y++) {
            for (long x0 = 0; x0 < ow; x0 += BLOCK) {
                __m256 a0 = b, a1 = b, a2 = b, a3 = b;
                for (long c = 0; c < cin; c++) {
                    for (long ki = 0; ki < kh; ki++) {
                        const float *row = scratch + (c * rows + y + ki) * width + x0;
                        const float *wk = wc + c * taps + ki * kw;
                        for (long kj = 0; kj < kw; kj++) {
                            const __m256 wv = _mm256_set1_ps(wk[kj]);
                            a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + kj), a0);
                            a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + kj + 8), a1);
                            a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + kj + 16), a2);
                            a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(row + kj + 24), a3);
                        }
                    }
                }
                float lanes[BLOCK];
                _mm256_storeu_ps(lanes, a0);
                _mm256_storeu_ps(lanes + 8, a1);
                _mm256_storeu_ps(lanes + 16, a2);
                _mm256_storeu_ps(lanes + 24, a3);
                long n = ow - x0 < BLOCK ? ow - x0 : BLOCK;
                memcpy(out + (co * oh + y) * ow + x0, lanes, sizeof(float) * n);
            }
        }
    }
}

int diffuse_direct_conv_image(const float *x, const float *weight, const float *bias, float *out,
                              long cin, long cout, long h, long w, long kh, long kw, long ph, long pw,
                              float *scratch) {
    if (!diffuse_cpu_has_avx2_fma()) return 0;
    if (h + 2 * ph - kh + 1 < 1 || w + 2 * pw - kw + 1 < 1) return 0;
    direct_conv_avx2(x, weight, bias, out, cin, cout, h, w, kh, kw, ph, pw, scratch);
    return 1;
}

#else

int diffuse_direct_conv_image(const float *x, const float *weight, const float *bias, float *out,
                              long cin, long cout, long h, long w, long kh, long kw, long ph, long pw,
                              float *scratch) { return 0; }
int diffuse_direct_conv_weight_grad_image(const float *x, const float *dy, float *dw, long cin, long cout,
                                          long h, long w, long kh, long kw, long ph, long pw,
                                          float *scratch) { return 0; }

#endif
