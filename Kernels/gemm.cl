// gemm.cl: batched GEMM, C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b], any transposes through strides:
// A(i,k) = A[offA + b*strideA + i*rsA + k*csA], B(k,j) = B[offB + b*strideB + k*rsB + j*csB],
// C(i,j) = C[offC + b*strideC + i*N + j]. strideC == 0 with batch > 1 sums the batch into one C.
//   gemm(A, B, C, M, N, K, rsA, csA, rsB, csB, offA, offB, offC, strideA, strideB, strideC, batch, alpha, beta,
//        bias, hasBias)      hasBias 1 adds bias[i] to every C(i, j) (a convolution's per-channel bias),
//                            2 adds bias[j] (a Linear layer's per-feature bias), 3 reads B's last column
//                            as ones (C's last column is then A's row sums: a bias gradient)
// Each work-item computes a TILE_M x TILE_N block (TILE_N 8 or 16) with floatTILE_N accumulators
// (explicit vectors are what PoCL turns into AVX; see README). Global size:
// (ceil(N/TILE_N), ceil(M/TILE_M), batch or 1), no barriers. Tiles are -D options chosen per device.
#ifndef TILE_M
#define TILE_M 4
#endif
#ifndef TILE_N
#define TILE_N 8
#endif
#define GEMM_K_BLOCK 64
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VEC CAT(float, TILE_N)
#define VLOAD CAT(vload, TILE_N)
#define VSTORE CAT(vstore, TILE_N)

// The sum of a VEC's lanes (conv_rows.cl and attention_lanes.cl use it too).
inline float vec_sum(const VEC v) {
#if TILE_N == 16
    const float8 e = v.lo + v.hi;
#else
    const float8 e = v;
#endif
    const float4 h = e.lo + e.hi;
    return h.x + h.y + h.z + h.w;
}

// Accumulators are named variables, not an array, so the compiler keeps them in registers.
#define FOR_ROWS(X) X(0) \
    IF_ROW1(X(1)) IF_ROW2(X(2)) IF_ROW3(X(3)) IF_ROW4(X(4)) IF_ROW5(X(5)) IF_ROW6(X(6)) IF_ROW7(X(7))
#if TILE_M > 1
#define IF_ROW1(x) x
#else
#define IF_ROW1(x)
#endif
#if TILE_M > 2
#define IF_ROW2(x) x
#else
#define IF_ROW2(x)
#endif
#if TILE_M > 3
#define IF_ROW3(x) x
#else
#define IF_ROW3(x)
#endif
#if TILE_M > 4
#define IF_ROW4(x) x
#define IF_ROW5(x) x
#define IF_ROW6(x) x
#define IF_ROW7(x) x
#else
#define IF_ROW4(x)
#define IF_ROW5(x)
#define IF_ROW6(x)
#define IF_ROW7(x)
#endif
#if TILE_M != 1 && TILE_M != 2 && TILE_M != 4 && TILE_M != 8
#error TILE_M must be 1, 2, 4 or 8
#endif

// Rows past M read row M-1 (valid memory) and are never stored.
#define DECLARE_ROW(r) VEC acc##r = (VEC)(0.0f); VEC part##r; \
    const size_t rowOffset##r = (size_t)min(i0 + r, M - 1) * (size_t)rsA;
#define ACCUMULATE_ROW(r) part##r = fma((VEC)(a[rowOffset##r + kOffset]), bv, part##r);
#define CLEAR_PART(r) part##r = (VEC)(0.0f);
#define ADD_PART(r) acc##r += part##r;
#define STORE_ROW(r) if (i0 + r < M) store_row(c + (size_t)(i0 + r) * (size_t)N, j0, N, \
    alpha * acc##r + (hasBias == 1 ? (VEC)(bias[i0 + r]) : columnBias), beta);

inline void store_row(__global float* crow, const int j0, const int N, const VEC value, const float beta) {
    if (j0 + TILE_N <= N) {
        VSTORE(beta != 0.0f ? value + beta * VLOAD(0, crow + j0) : value, 0, crow + j0);
    } else {
        float t[TILE_N];
        VSTORE(value, 0, t);
        for (int j = 0; j < N - j0; ++j) crow[j0 + j] = t[j] + (beta != 0.0f ? beta * crow[j0 + j] : 0.0f);
    }
}

__kernel void gemm(__global const float* A, __global const float* B, __global float* C,
                   const int M, const int N, const int K, const int rsA, const int csA, const int rsB, const int csB,
                   const int offA, const int offB, const int offC, const int strideA, const int strideB,
                   const int strideC, const int batch, const float alpha, const float beta,
                   __global const float* bias, const int hasBias) {
    const int j0 = (int)get_global_id(0) * TILE_N;
    const int i0 = (int)get_global_id(1) * TILE_M;
    const int bz = (int)get_global_id(2);
    if (i0 >= M || j0 >= N) return;
    const int firstBatch = strideC == 0 ? 0 : bz;
    const int lastBatch = strideC == 0 ? batch : bz + 1;
    const int onesColumn = hasBias == 3;
    const int contiguous = (csB == 1) && (j0 + TILE_N <= N - onesColumn);
    FOR_ROWS(DECLARE_ROW)
    for (int b = firstBatch; b < lastBatch; ++b) {
        __global const float* a = A + offA + (size_t)b * (size_t)strideA;
        __global const float* bb = B + offB + (size_t)b * (size_t)strideB;
        // K in blocks of GEMM_K_BLOCK, each summed on its own and then added: a long K summed in one
        // accumulator loses about K rounding steps (weight and bias gradients sum 784-3,136 terms),
        // blocked about K_BLOCK + K / K_BLOCK, as a BLAS's K-blocking does.
        for (int k0 = 0; k0 < K; k0 += GEMM_K_BLOCK) {
            FOR_ROWS(CLEAR_PART)
            const int kEnd = min(K, k0 + GEMM_K_BLOCK);
            for (int k = k0; k < kEnd; ++k) {
                VEC bv;
                __global const float* brow = bb + (size_t)k * (size_t)rsB;
                if (contiguous) {
                    bv = VLOAD(0, brow + j0);
                } else {
                    float t[TILE_N];
                    for (int j = 0; j < TILE_N; ++j) {
                        t[j] = j0 + j >= N ? 0.0f
                            : onesColumn && j0 + j == N - 1 ? 1.0f : brow[(size_t)(j0 + j) * (size_t)csB];
                    }
                    bv = VLOAD(0, t);
                }
                const size_t kOffset = (size_t)k * (size_t)csA;
                FOR_ROWS(ACCUMULATE_ROW)
            }
            FOR_ROWS(ADD_PART)
        }
    }
    __global float* c = C + offC + (size_t)(strideC == 0 ? 0 : bz) * (size_t)strideC;
    VEC columnBias = (VEC)(0.0f);
    if (hasBias == 2) {
        float t[TILE_N];
        for (int j = 0; j < TILE_N; ++j) t[j] = j0 + j < N ? bias[j0 + j] : 0.0f;
        columnBias = VLOAD(0, t);
    }
    FOR_ROWS(STORE_ROW)
}
