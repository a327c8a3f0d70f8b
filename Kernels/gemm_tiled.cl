// gemm_tiled.cl: the classic local-memory tiled SGEMM with register blocking (as in CLBlast's xgemm,
// Nugteren's "tutorial" kernels and Volkov & Demmel's register-blocked GEMM), for GPUs. Same
// arguments and semantics as `gemm` in gemm.cl, so the host can launch either:
//   C[b](i,j) = alpha * sum_k A(i,k) B(k,j) + bias[i] (hasBias 1) or bias[j] (hasBias 2) + beta * C[b](i,j);
//   hasBias 3 reads B's last column (j = N - 1) as ones (a bias gradient beside a weight gradient)
//   A(i,k) = A[offA + b*strideA + i*rsA + k*csA], B(k,j) = B[offB + b*strideB + k*rsB + j*csB],
//   C(i,j) = C[offC + b*strideC + i*N + j]; strideC == 0 with batch > 1 sums the batch into one C;
//   beta == 0 never reads C (it may hold NaN garbage).
// Parameters (-D options, chosen per device in ProgramBuilder; defaults below):
//   GT_WG_M x GT_WG_N  work-items per work-group (rows x columns of C), local size (GT_WG_N, GT_WG_M, 1)
//   GT_REG_M x GT_REG_N  outputs per work-item, kept in registers
//   GT_BK  depth of the K tile staged in __local memory
// A work-group computes a BM x BN block of C (BM = GT_WG_M * GT_REG_M, BN = GT_WG_N * GT_REG_N):
// for each K tile it loads BM x BK of A and BK x BN of B into local memory (zero-filled past M, N,
// K), waits at a barrier, and every work-item runs BK rank-1 updates of its register block from
// local memory. Each element loaded from global memory is used BN (or BM) times, against once per
// work-item tile in `gemm`: that reuse is what a GPU needs, and what a CPU (whose caches already
// give it) pays barriers for, so CPU devices keep `gemm`.
// Global size: (ceil(N/BN) * GT_WG_N, ceil(M/BM) * GT_WG_M, batch, or 1 when strideC == 0).
// Local memory: 4 * GT_BK * (BM + BN + 2) bytes (8.3 KiB at the defaults).
#ifndef GT_WG_M
#define GT_WG_M 16
#endif
#ifndef GT_WG_N
#define GT_WG_N 16
#endif
#ifndef GT_REG_M
#define GT_REG_M 4
#endif
#ifndef GT_REG_N
#define GT_REG_N 4
#endif
#ifndef GT_BK
#define GT_BK 16
#endif
#define GT_BM (GT_WG_M * GT_REG_M)
#define GT_BN (GT_WG_N * GT_REG_N)
#define GT_THREADS (GT_WG_M * GT_WG_N)
#define GT_LOADS_A ((GT_BM * GT_BK + GT_THREADS - 1) / GT_THREADS)
#define GT_LOADS_B ((GT_BN * GT_BK + GT_THREADS - 1) / GT_THREADS)
// One float of padding per local row: the loads that walk K (A not transposed, B transposed)
// write local rows GT_BM (or GT_BN) apart, which without padding lands every work-item of a warp
// in the same bank.
#define GT_LDA (GT_BM + 1)
#define GT_LDB (GT_BN + 1)

#if GT_REG_M < 1 || GT_REG_M > 8 || GT_REG_N < 1 || GT_REG_N > 8
#error GT_REG_M and GT_REG_N must be 1 to 8
#endif

// One staged K tile into the work-item's register block: GT_BK rank-1 updates from local memory.
// Zero-filled rows and columns add nothing, so the last partial tile needs no bound. The tile is
// summed on its own and then added (K-blocking: a long K summed in one accumulator loses about K
// rounding steps, this about GT_BK + K / GT_BK). conv_tiled.cl shares it.
inline void gt_accumulate_tile(__local const float* As, __local const float* Bs, const int tx, const int ty,
                               float acc[GT_REG_M][GT_REG_N]) {
    float part[GT_REG_M][GT_REG_N];
    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) part[r][c] = 0.0f;
    }
    #pragma unroll
    for (int kk = 0; kk < GT_BK; ++kk) {
        float av[GT_REG_M], bv[GT_REG_N];
        #pragma unroll
        for (int r = 0; r < GT_REG_M; ++r) av[r] = As[kk * GT_LDA + ty + r * GT_WG_M];
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) bv[c] = Bs[kk * GT_LDB + tx + c * GT_WG_N];
        #pragma unroll
        for (int r = 0; r < GT_REG_M; ++r) {
            #pragma unroll
            for (int c = 0; c < GT_REG_N; ++c) part[r][c] = fma(av[r], bv[c], part[r][c]);
        }
    }
    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) acc[r][c] += part[r][c];
    }
}

// Work-item (tx, ty) owns rows ty + r * GT_WG_M and columns tx + c * GT_WG_N of the block (strided,
// not contiguous): neighbouring work-items then read neighbouring local addresses (no bank
// conflicts) and store neighbouring columns of C (coalesced stores).
__kernel __attribute__((reqd_work_group_size(GT_WG_N, GT_WG_M, 1)))
void gemm_tiled(__global const float* A, __global const float* B, __global float* C,
                const int M, const int N, const int K, const int rsA, const int csA, const int rsB, const int csB,
                const int offA, const int offB, const int offC, const int strideA, const int strideB,
                const int strideC, const int batch, const float alpha, const float beta,
                __global const float* bias, const int hasBias) {
    __local float As[GT_BK * GT_LDA];   // As[k * GT_LDA + i]: the K tile of A, i within the block
    __local float Bs[GT_BK * GT_LDB];   // Bs[k * GT_LDB + j]
    const int tx = (int)get_local_id(0);
    const int ty = (int)get_local_id(1);
    const int lid = ty * GT_WG_N + tx;
    const int i0 = (int)get_group_id(1) * GT_BM;
    const int j0 = (int)get_group_id(0) * GT_BN;
    const int bz = (int)get_group_id(2);
    const int firstBatch = strideC == 0 ? 0 : bz;
    const int lastBatch = strideC == 0 ? batch : bz + 1;
    // Which index the load loops walk fastest: the one with unit stride, so that consecutive
    // work-items read consecutive addresses (A row-major walks k, A transposed walks i; likewise B).
    // Uniform over the work-group, so the branch below does not diverge.
    const int aAlongK = csA == 1 && rsA != 1;
    const int bAlongK = rsB == 1 && csB != 1;

    float acc[GT_REG_M][GT_REG_N];
    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) acc[r][c] = 0.0f;
    }

    for (int b = firstBatch; b < lastBatch; ++b) {
        __global const float* a = A + offA + (size_t)b * (size_t)strideA;
        __global const float* bb = B + offB + (size_t)b * (size_t)strideB;
        for (int k0 = 0; k0 < K; k0 += GT_BK) {
            // Stage the tiles: every work-item loads up to GT_LOADS_A elements of A and GT_LOADS_B of B.
            #pragma unroll
            for (int p = 0; p < GT_LOADS_A; ++p) {
                const int l = lid + p * GT_THREADS;
                if (l < GT_BM * GT_BK) {
                    const int ii = aAlongK ? l / GT_BK : l % GT_BM;
                    const int kk = aAlongK ? l % GT_BK : l / GT_BM;
                    const int i = i0 + ii, k = k0 + kk;
                    As[kk * GT_LDA + ii] = (i < M && k < K) ? a[i * rsA + k * csA] : 0.0f;
                }
            }
            #pragma unroll
            for (int p = 0; p < GT_LOADS_B; ++p) {
                const int l = lid + p * GT_THREADS;
                if (l < GT_BN * GT_BK) {
                    const int jj = bAlongK ? l / GT_BK : l % GT_BN;
                    const int kk = bAlongK ? l % GT_BK : l / GT_BN;
                    const int j = j0 + jj, k = k0 + kk;
                    Bs[kk * GT_LDB + jj] = (j >= N || k >= K) ? 0.0f
                        : (hasBias == 3 && j == N - 1) ? 1.0f : bb[k * rsB + j * csB];
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            gt_accumulate_tile(As, Bs, tx, ty, acc);
            // The next tile overwrites As and Bs: every work-item must be done reading them.
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }

    __global float* out = C + offC + (size_t)(strideC == 0 ? 0 : bz) * (size_t)strideC;
    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        const int i = i0 + ty + r * GT_WG_M;
        if (i >= M) continue;
        const float rowBias = hasBias == 1 ? bias[i] : 0.0f;
        __global float* crow = out + (size_t)i * (size_t)N;
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) {
            const int j = j0 + tx + c * GT_WG_N;
            if (j >= N) continue;
            const float value = alpha * acc[r][c] + rowBias + (hasBias == 2 ? bias[j] : 0.0f);
            crow[j] = beta != 0.0f ? value + beta * crow[j] : value;
        }
    }
}
