// AVX2 2x2 stride-2 max pooling (BasicUNet): eight windows per step, their four values split
// into even and odd columns of the two rows and scanned with compare-and-blend, so the window
// that wins is not a branch (on noisy activations a coin toss the predictor loses).
#include "CKernels.h"
#include <math.h>

/// The scan of one window (values in order): index of the winner, best value in *best.
static inline int scan4(const float v[4], float *best) {
    float b = -INFINITY;
    int index = 0;
    for (int k = 0; k < 4; k++) {
        if (v[k] > b || isnan(v[k])) { b = v[k]; index = k; }
    }
    *best = b;
    return index;
}

static inline void window(const float *x, long w, long oy, long ox, float v[4]) {
    const float *top = x + 2 * oy * w + 2 * ox, *bottom = top + w;
    v[0] = top[0]; v[1] = top[1]; v[2] = bottom[0]; v[3] = bottom[1];
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

/// Even and odd columns of 16 floats.
static inline AVX2 void split(const float *p, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/// The scan over eight windows: best values and winner indices (as floats 0-3).
static inline AVX2 void scan8(const float *top, const float *bottom, __m256 *best, __m256 *index) {
    __m256 v[4];
    split(top, &v[0], &v[1]);
    split(bottom, &v[2], &v[3]);
    __m256 b = _mm256_set1_ps(-INFINITY), i = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        __m256 take = _mm256_or_ps(_mm256_cmp_ps(v[k], b, _CMP_GT_OQ), _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
        b = _mm256_blendv_ps(b, v[k], take);
        i = _mm256_blendv_ps(i, _mm256_set1_ps((float)k), take);
    }
    *best = b;
    *index = i;
}

static AVX2 void max_pool2_avx2(const float *x, float *y, long h, long w) {
    long oh = h / 2, ow = w / 2;
    for (long oy = 0; oy < oh; oy++) {
        const float *top = x + 2 * oy * w, *bottom = top + w;
        long ox = 0;
        for (; ox + 8 <= ow; ox += 8) {
            __m256 best, index;
            scan8(top + 2 * ox, bottom + 2 * ox, &best, &index);
            _mm256_storeu_ps(y + oy * ow + ox, best);
        }
        for (; ox < ow; ox++) {
            float v[4], best;
            window(x, w, oy, ox, v);
            scan4(v, &best);
            y[oy * ow + ox] = best;
        }
    }
}

static AVX2 void max_pool2_backward_avx2(const float *x, const float *dy, float *dx, long h, long w) {
    long oh = h / 2, ow = w / 2;
    const __m256 zero = _mm256_setzero_ps();
    for (long oy = 0; oy < oh; oy++) {
        const float *top = x + 2 * oy * w, *bottom = top + w;
        float *gradTop = dx + 2 * oy * w, *gradBottom = gradTop + w;
        long ox = 0;
        for (; ox + 8 <= ow; ox += 8) {
            __m256 best, index;
            scan8(top + 2 * ox, bottom + 2 * ox, &best, &index);
            __m256 d = _mm256_loadu_ps(dy + oy * ow + ox);
            __m256 g[4];
            for (int k = 0; k < 4; k++) {
                // + 0 as the scatter's 0 + dy does (it turns -0 into +0).
                __m256 mine = _mm256_cmp_ps(index, _mm256_set1_ps((float)k), _CMP_EQ_OQ);
                g[k] = _mm256_add_ps(_mm256_blendv_ps(zero, d, mine), zero);
            }
            // Interleave back into columns 2x (even) and 2x + 1 (odd).
            __m256 lo = _mm256_unpacklo_ps(g[0], g[1]), hi = _mm256_unpackhi_ps(g[0], g[1]);
            _mm256_storeu_ps(gradTop + 2 * ox, _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_storeu_ps(gradTop + 2 * ox + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
            lo = _mm256_unpacklo_ps(g[2], g[3]);
            hi = _mm256_unpackhi_ps(g[2], g[3]);
            _mm256_storeu_ps(gradBottom + 2 * ox, _mm256_permute2f128_ps(lo, hi, 0x20));
            _mm256_storeu_ps(gradBottom + 2 * ox + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
        }
        for (; ox < ow; ox++) {
            float v[4], best;
            window(x, w, oy, ox, v);
            int k = scan4(v, &best);
            float d = dy[oy * ow + ox];
            gradTop[2 * ox] = k == 0 ? 0.0f + d : 0.0f;
            gradTop[2 * ox + 1] = k == 1 ? 0.0f + d : 0.0f;
            gradBottom[2 * ox] = k == 2 ? 0.0f + d : 0.0f;
            gradBottom[2 * ox + 1] = k == 3 ? 0.0f + d : 0.0f;
        }
        // An odd width leaves the last column outside every window.
        for (long c = 2 * ow; c < w; c++) gradTop[c] = gradBottom[c] = 0;
    }
    // An odd height leaves the last row outside every window.
    for (long r = 2 * oh; r < h; r++) {
        for (long c = 0; c < w; c++) dx[r * w + c] = 0;
    }
}

int diffuse_max_pool2(const float *x, float *y, long h, long w) {
    if (!diffuse_cpu_has_avx2_fma()) return 0;
    max_pool2_avx2(x, y, h, w);
    return 1;
}

int diffuse_max_pool2_backward(const float *x, const float *dy, float *dx, long h, long w) {
    if (!diffuse_cpu_has_avx2_fma()) return 0;
    max_pool2_backward_avx2(x, dy, dx, h, w);
    return 1;
}

#else

int diffuse_max_pool2(const float *x, float *y, long h, long w) { return 0; }
int diffuse_max_pool2_backward(const float *x, const float *dy, float *dx, long h, long w) { return 0; }

#endif
