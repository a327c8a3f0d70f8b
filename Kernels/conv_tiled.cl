// conv_tiled.cl: implicit-GEMM convolution (as cuDNN's and CUTLASS's implicit GEMM) on gemm_tiled's
// tiles, for GPUs. The im2col matrix X^ is never written: each tile of it is gathered from the image
// straight into local memory, so a convolution is one launch where im2col + GEMM (or GEMM + col2im)
// took two and wrote, then read back, nine floats per input float (a 3x3 kernel).
// Uses gemm_tiled.cl's GT_* shape, local-memory layout and K-blocked accumulation.
// Geometry g = (C, H, W, kh, kw, sh, sw, ph, pw, oh, ow); taps = kh*kw; plane = oh*ow;
// X^[b](k, p) = x[b, c, oy*sh - ph + ky, ox*sw - pw + kx] for k = (c, ky, kx), p = (oy, ox), 0 outside.
//   mode 0, forward:       C[b](o, p) = sum_k W[o, k] X^[b](k, p) + bias[o]            M = Cout, N = plane, K = C*taps
//   mode 1, weight grad:   C(o, k) = sum_t dY[t / plane](o, t % plane) X^[t / plane](k, t % plane)
//                          over t < batch*plane; M = Cout, N = C*taps (+1: hasBias 3 makes the last
//                          column ones, so it holds the bias gradient)
//   mode 2, input grad:    C[b](c, q) = sum_(o,r) W[o, c, r] dY[b](o, (qy + ph - ky) / sh, (qx + pw - kx) / sw)
//                          where those divide exactly and land inside dY; M = C, N = H*W, K = Cout*taps
// Split-K: work-group z = s * gridBatch + b takes slice s, K indices [s*per, min(K, (s+1)*per)), and
// writes C at out + z*M*N; the host sums the slices (sum_batch / sum_batch_split) when there are
// several, adding the bias there (hasBias 1 only with one slice). gridBatch is the batch for modes 0
// and 2 and 1 for mode 1, whose K already runs over the batch. With `accumulate` the result is added
// to what C holds (a second gradient of the same input, summed in place). With `silu` (mode 0, one
// slice) the epilogue also writes activated = C / (1 + exp(-C)), activation.cl's SiLU, so that
// BasicUNet's conv-then-SiLU is one launch; C stays, as SiLU's gradient reads it.

#define CONV_GEOMETRY const int C, const int H, const int W, const int kh, const int kw, const int sh, \
                      const int sw, const int ph, const int pw, const int oh, const int ow
#define CONV_GEOMETRY_ARGS C, H, W, kh, kw, sh, sw, ph, pw, oh, ow
// The run-time divisors of the gathers, each as (magic, shift) from the host (FastDivisor.swift):
// taps = kh*kw, kw, ow, plane = oh*ow, W, sh and sw.
#define CONV_DIVISORS const uint2 dTaps, const uint2 dKw, const uint2 dOw, const uint2 dPlane, const uint2 dW, \
                      const uint2 dSh, const uint2 dSw
#define CONV_DIVISOR_ARGS dTaps, dKw, dOw, dPlane, dW, dSh, dSw

// n / d for 0 <= n < 2^31 as a multiply-high, an add and a shift (Granlund and Montgomery; CUTLASS's
// FastDivmod): GPUs have no integer divide, and a `/` by a run-time value costs ~20 instructions,
// two or three of them per gathered float here.
inline int fdiv(const int n, const uint2 d) { return (int)((mul_hi((uint)n, d.x) + (uint)n) >> d.y); }

// Gathers index in 32-bit ints: every buffer holds fewer than 2^31 floats (OpenCLDevice.allocate),
// so an index inside one fits, and a GPU's 64-bit multiply is several instructions.

// X^[b](k, p) with p already split into (oy, ox).
inline float conv_patch(__global const float* x, const int b, const int k, const int oy, const int ox, CONV_GEOMETRY,
                        CONV_DIVISORS) {
    const int taps = kh * kw;
    const int c = fdiv(k, dTaps);
    const int r = k - c * taps;
    const int ky = fdiv(r, dKw);
    const int iy = oy * sh - ph + ky;
    const int ix = ox * sw - pw + (r - ky * kw);
    if (iy < 0 || iy >= H || ix < 0 || ix >= W) return 0.0f;
    return x[((b * C + c) * H + iy) * W + ix];
}

// A(i, k) of each mode: the weight (modes 0 and 2, the latter read as W[o, c, r] for k = (o, r)) or dY.
inline float conv_a(const int mode, __global const float* A, const int i, const int k, const int M,
                    const int Cout, CONV_GEOMETRY, CONV_DIVISORS) {
    const int taps = kh * kw;
    if (mode == 0) return A[i * (C * taps) + k];
    if (mode == 1) {
        const int plane = oh * ow;
        const int b = fdiv(k, dPlane);
        return A[(b * Cout + i) * plane + (k - b * plane)];
    }
    const int o = fdiv(k, dTaps);
    return A[(o * C + i) * taps + (k - o * taps)];
}

// B(k, j) of each mode: X^ (modes 0 and 1, the latter with k and j swapped) or the shifted dY.
inline float conv_b(const int mode, __global const float* B, const int b, const int k, const int j, const int N,
                    const int hasBias, const int Cout, CONV_GEOMETRY, CONV_DIVISORS) {
    if (mode == 0) {
        const int oy = fdiv(j, dOw);
        return conv_patch(B, b, k, oy, j - oy * ow, CONV_GEOMETRY_ARGS, CONV_DIVISOR_ARGS);
    }
    if (mode == 1) {
        if (hasBias == 3 && j == N - 1) return 1.0f;
        const int plane = oh * ow;
        const int image = fdiv(k, dPlane);
        const int p = k - image * plane;
        const int oy = fdiv(p, dOw);
        return conv_patch(B, image, j, oy, p - oy * ow, CONV_GEOMETRY_ARGS, CONV_DIVISOR_ARGS);
    }
    const int taps = kh * kw;
    const int o = fdiv(k, dTaps);
    const int r = k - o * taps;
    const int ky = fdiv(r, dKw);
    const int qy = fdiv(j, dW);
    const int ny = qy + ph - ky;
    const int nx = j - qy * W + pw - (r - ky * kw);
    if (ny < 0 || nx < 0) return 0.0f;
    const int oy = fdiv(ny, dSh), ox = fdiv(nx, dSw);
    if (oy * sh != ny || ox * sw != nx || oy >= oh || ox >= ow) return 0.0f;
    return B[(b * Cout + o) * (oh * ow) + (oy * ow + ox)];
}

__kernel __attribute__((reqd_work_group_size(GT_WG_N, GT_WG_M, 1)))
void conv_tiled(__global const float* A, __global const float* B, __global float* out, __global const float* bias,
                __global float* activated, const int mode, const int M, const int N, const int K, const int per,
                const int gridBatch, const int hasBias, const int accumulate, const int silu, const int Cout,
                CONV_GEOMETRY, CONV_DIVISORS) {
    __local float As[GT_BK * GT_LDA];
    __local float Bs[GT_BK * GT_LDB];
    const int tx = (int)get_local_id(0);
    const int ty = (int)get_local_id(1);
    const int lid = ty * GT_WG_N + tx;
    const int i0 = (int)get_group_id(1) * GT_BM;
    const int j0 = (int)get_group_id(0) * GT_BN;
    const int z = (int)get_group_id(2);
    const int b = z % gridBatch;
    const int kStart = (z / gridBatch) * per;
    const int kEnd = min(K, kStart + per);
    // A always walks K fastest (rows of W, pixels of dY); B walks its pixels fastest: N in modes 0
    // and 2, K in mode 1. Uniform over the work-group.
    const int bAlongK = mode == 1;

    float acc[GT_REG_M][GT_REG_N];
    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) acc[r][c] = 0.0f;
    }
    for (int k0 = kStart; k0 < kEnd; k0 += GT_BK) {
        #pragma unroll
        for (int p = 0; p < GT_LOADS_A; ++p) {
            const int l = lid + p * GT_THREADS;
            if (l < GT_BM * GT_BK) {
                const int ii = l / GT_BK, kk = l % GT_BK;
                const int i = i0 + ii, k = k0 + kk;
                As[kk * GT_LDA + ii] = (i < M && k < kEnd) ? conv_a(mode, A, i, k, M, Cout, CONV_GEOMETRY_ARGS, CONV_DIVISOR_ARGS) : 0.0f;
            }
        }
        #pragma unroll
        for (int p = 0; p < GT_LOADS_B; ++p) {
            const int l = lid + p * GT_THREADS;
            if (l < GT_BN * GT_BK) {
                const int jj = bAlongK ? l / GT_BK : l % GT_BN;
                const int kk = bAlongK ? l % GT_BK : l / GT_BN;
                const int j = j0 + jj, k = k0 + kk;
                Bs[kk * GT_LDB + jj] = (j < N && k < kEnd)
                    ? conv_b(mode, B, b, k, j, N, hasBias, Cout, CONV_GEOMETRY_ARGS, CONV_DIVISOR_ARGS) : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        gt_accumulate_tile(As, Bs, tx, ty, acc);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    #pragma unroll
    for (int r = 0; r < GT_REG_M; ++r) {
        const int i = i0 + ty + r * GT_WG_M;
        if (i >= M) continue;
        const float rowBias = hasBias == 1 ? bias[i] : 0.0f;
        #pragma unroll
        for (int c = 0; c < GT_REG_N; ++c) {
            const int j = j0 + tx + c * GT_WG_N;
            if (j >= N) continue;
            const size_t at = (size_t)z * (size_t)M * (size_t)N + (size_t)i * (size_t)N + (size_t)j;
            const float v = accumulate ? out[at] + (acc[r][c] + rowBias) : acc[r][c] + rowBias;
            out[at] = v;
            if (silu) activated[at] = v / (1.0f + exp(-v));
        }
    }
}
