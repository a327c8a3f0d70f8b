// AVX2/FMA versions of the exponential loops (see CKernels.h). The exponential is Cephes' expf,
// as in the Swift fallback (VectorKernels.swift): within 2 ulp of libm for x in [-87, 88]; any
// eight-lane step with an argument outside that range or NaN is redone with libm's expf, and so
// are the n % 8 tail elements, so edge cases match libm exactly.
#include "CKernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

static int has_avx2_fma(void) {
    // Workers call this concurrently; every thread computes the same answer, so relaxed is enough.
    static int cached = -1;
    int known = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, known, __ATOMIC_RELAXED);
    }
    return known;
}

int diffuse_cpu_has_avx2_fma(void) { return has_avx2_fma(); }

/// e^x per lane; *outside gets a nonzero bit for a lane outside [-87, 88] or NaN.
static inline AVX2 __m256 exp8(__m256 x, int *outside) {
    __m256 inside = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ),
                                  _mm256_cmp_ps(x, _mm256_set1_ps(88.0f), _CMP_LE_OQ));
    *outside = _mm256_movemask_ps(inside) ^ 0xff;
    // Adding 1.5 * 2^23 rounds to an integer; the +127 bias leaves n + 127 in the low mantissa bits.
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504f), magic);
    __m256 n = _mm256_sub_ps(t, magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
    return _mm256_mul_ps(p, scale);
}

/// e^x per lane, libm for the lanes exp8 cannot take.
static inline AVX2 __m256 exp8_exact(__m256 x) {
    int outside;
    __m256 e = exp8(x, &outside);
    if (__builtin_expect(outside != 0, 0)) {
        float lanes[8];
        _mm256_storeu_ps(lanes, x);
        for (int i = 0; i < 8; i++) lanes[i] = expf(lanes[i]);
        e = _mm256_loadu_ps(lanes);
    }
    return e;
}

static AVX2 void silu_avx2(const float *x, float *y, long n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp8_exact(_mm256_xor_ps(v, sign));
        _mm256_storeu_ps(y + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) y[i] = x[i] / (1 + expf(-x[i]));
}

static AVX2 void silu_backward_avx2(const float *x, const float *dy, float *dx, long n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8_exact(_mm256_xor_ps(v, sign))));
        // dy * s * (1 + x (1 - s)), in the Swift loop's order of operations.
        __m256 inner = _mm256_add_ps(one, _mm256_mul_ps(v, _mm256_sub_ps(one, s)));
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), s), inner));
    }
    for (; i < n; i++) {
        float s = 1 / (1 + expf(-x[i]));
        dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
    }
}

static AVX2 void sigmoid_avx2(const float *x, float *y, long n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8_exact(_mm256_xor_ps(_mm256_loadu_ps(x + i), sign));
        _mm256_storeu_ps(y + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) y[i] = 1 / (1 + expf(-x[i]));
}

static AVX2 void exp_avx2(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8_exact(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = expf(x[i]);
}

static inline AVX2 float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline AVX2 float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static AVX2 void softmax_row_avx2(const float *x, float *y, long n) {
    long i = 0;
    float peak = -INFINITY;
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        peak = horizontal_max(m);
    }
    for (; i < n; i++) peak = x[i] > peak ? x[i] : peak;
    const __m256 top = _mm256_set1_ps(peak);
    __m256 sums = _mm256_setzero_ps();
    float total = 0;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8_exact(_mm256_sub_ps(_mm256_loadu_ps(x + i), top));
        sums = _mm256_add_ps(sums, e);
        _mm256_storeu_ps(y + i, e);
    }
    for (; i < n; i++) {
        y[i] = expf(x[i] - peak);
        total += y[i];
    }
    total += horizontal_sum(sums);
    const __m256 inverse = _mm256_set1_ps(1 / total);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inverse));
    for (; i < n; i++) y[i] *= 1 / total;
}

static AVX2 void sum_squares_avx2(const float *x, long n, double *sum, double *squares) {
    // Four double lanes per quantity, two sets so consecutive adds do not wait on each other.
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
        __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
        s0 = _mm256_add_pd(s0, a);
        s1 = _mm256_add_pd(s1, b);
        q0 = _mm256_fmadd_pd(a, a, q0);
        q1 = _mm256_fmadd_pd(b, b, q1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    _mm256_storeu_pd(lanes, _mm256_add_pd(q0, q1));
    double q = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; i < n; i++) {
        double v = x[i];
        s += v;
        q += v * v;
    }
    *sum = s;
    *squares = q;
}

int diffuse_sum_squares(const float *x, long n, double *sum, double *squares) {
    if (!has_avx2_fma()) return 0;
    sum_squares_avx2(x, n, sum, squares);
    return 1;
}

int diffuse_silu(const float *x, float *y, long n) {
    if (!has_avx2_fma()) return 0;
    silu_avx2(x, y, n);
    return 1;
}

int diffuse_silu_backward(const float *x, const float *dy, float *dx, long n) {
    if (!has_avx2_fma()) return 0;
    silu_backward_avx2(x, dy, dx, n);
    return 1;
}

int diffuse_sigmoid(const float *x, float *y, long n) {
    if (!has_avx2_fma()) return 0;
    sigmoid_avx2(x, y, n);
    return 1;
}

int diffuse_exp(const float *x, float *y, long n) {
    if (!has_avx2_fma()) return 0;
    exp_avx2(x, y, n);
    return 1;
}

int diffuse_softmax_row(const float *x, float *y, long n) {
    if (!has_avx2_fma()) return 0;
    softmax_row_avx2(x, y, n);
    return 1;
}

#else

int diffuse_cpu_has_avx2_fma(void) { return 0; }
int diffuse_silu(const float *x, float *y, long n) { return 0; }
int diffuse_silu_backward(const float *x, const float *dy, float *dx, long n) { return 0; }
int diffuse_sigmoid(const float *x, float *y, long n) { return 0; }
int diffuse_exp(const float *x, float *y, long n) { return 0; }
int diffuse_softmax_row(const float *x, float *y, long n) { return 0; }
int diffuse_sum_squares(const float *x, long n, double *sum, double *squares) { return 0; }

#endif
