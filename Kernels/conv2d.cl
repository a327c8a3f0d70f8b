// conv2d.cl: convolution of NCHW float32 images with [Cout, Cin, kh, kw] weights. Large layers go
// through im2col + gemm (gemm.cl, which also adds the bias); layers with few output channels use
// the direct kernels.
// Geometry arguments g = (C, H, W, kh, kw, sh, sw, ph, pw, oh, ow).
//   im2col(x, cols, g..., firstImage, total, transposed)   cols[g][K][plane], or [g][plane][K] if transposed;
//       total counts work-items: images*K*oh rows, or images*plane*C when transposed
//   col2im(cols, dx, g..., firstImage, total, accumulate)  gathers dcol[g][K][plane] into dx (no atomics),
//       adding to what dx holds when accumulate is 1 (a second gradient for the same input)
//   conv_direct(x, w, bias, out, Cout, hasBias, g..., total)          8 output columns per work-item:
//       total = N * Cout * oh * ceil(ow/8); stride 1 only
//   conv_direct_backward_input(dy, w, dx, Cout, g..., total, accumulate)   total = N * C * H * ceil(W/8)
// Weight gradients of every layer go through im2col + per-image gemm + sum_batch (reduce.cl).
// GPUs run all of these as implicit GEMMs instead (conv_tiled.cl).

#define GEOMETRY const int C, const int H, const int W, const int kh, const int kw, const int sh, const int sw, \
                 const int ph, const int pw, const int oh, const int ow

__kernel void im2col(__global const float* x, __global float* cols, GEOMETRY, const int firstImage,
                     const int total, const int transposed) {
    // One work-item per output row segment, so the index arithmetic (divisions) is paid once per
    // row instead of once per float: (g, k, y) writes ow floats, or, transposed, (g, p, c) writes
    // the kh*kw taps of one channel.
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int plane = oh * ow;
    const int taps = kh * kw;
    const int K = C * taps;
    if (!transposed) {
        const int y = i % oh;
        const int k = (i / oh) % K;
        const int g = i / (oh * K);
        const int c = k / taps;
        const int ki = (k / kw) % kh;
        const int kj = k % kw;
        const int iy = y * sh - ph + ki;
        __global float* out = cols + ((size_t)g * (size_t)K + (size_t)k) * (size_t)plane + (size_t)(y * ow);
        if (iy < 0 || iy >= H) {
            for (int xo = 0; xo < ow; ++xo) out[xo] = 0.0f;
            return;
        }
        __global const float* line = x + (((size_t)(firstImage + g) * (size_t)C + (size_t)c) * (size_t)H + (size_t)iy) * (size_t)W;
        if (sw == 1) {
            // Zeros, a straight copy, zeros: no per-element bounds test.
            const int lo = min(max(0, pw - kj), ow);
            const int hi = max(min(ow, W + pw - kj), lo);
            for (int xo = 0; xo < lo; ++xo) out[xo] = 0.0f;
            for (int xo = lo; xo < hi; ++xo) out[xo] = line[xo - pw + kj];
            for (int xo = hi; xo < ow; ++xo) out[xo] = 0.0f;
            return;
        }
        for (int xo = 0; xo < ow; ++xo) {
            const int ix = xo * sw - pw + kj;
            out[xo] = (ix >= 0 && ix < W) ? line[ix] : 0.0f;
        }
    } else {
        const int c = i % C;
        const int p = (i / C) % plane;
        const int g = i / (C * plane);
        const int y = p / ow;
        const int xo = p % ow;
        __global float* out = cols + ((size_t)g * (size_t)plane + (size_t)p) * (size_t)K + (size_t)(c * taps);
        __global const float* image = x + ((size_t)(firstImage + g) * (size_t)C + (size_t)c) * (size_t)H * (size_t)W;
        for (int ki = 0; ki < kh; ++ki) {
            const int iy = y * sh - ph + ki;
            for (int kj = 0; kj < kw; ++kj) {
                const int ix = xo * sw - pw + kj;
                out[ki * kw + kj] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? image[iy * W + ix] : 0.0f;
            }
        }
    }
}

__kernel void col2im(__global const float* cols, __global float* dx, GEOMETRY, const int firstImage, const int total,
                     const int accumulate) {
    // 32-bit index arithmetic: sizes are checked to fit an int on the host, and 64-bit division
    // is several times slower on CPUs.
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int imageSize = C * H * W;
    const int g = i / imageSize;
    const int within = i % imageSize;
    const int c = within / (H * W);
    const int iy = (within / W) % H;
    const int ix = within % W;
    const int plane = oh * ow;
    const int K = C * kh * kw;
    __global const float* col = cols + (size_t)g * (size_t)K * (size_t)plane;
    float acc = 0.0f;
    if (sh == 1 && sw == 1) {
        // Stride 1: every tap maps to one output position, no divisibility tests.
        for (int ki = 0; ki < kh; ++ki) {
            const int y = iy + ph - ki;
            if (y < 0 || y >= oh) continue;
            for (int kj = 0; kj < kw; ++kj) {
                const int xo = ix + pw - kj;
                if (xo < 0 || xo >= ow) continue;
                acc += col[(size_t)((c * kh + ki) * kw + kj) * (size_t)plane + (size_t)(y * ow + xo)];
            }
        }
        {
            __global float* at = dx + (size_t)(firstImage + g) * (size_t)imageSize + (size_t)within;
            *at = accumulate ? *at + acc : acc;
        }
        return;
    }
    for (int ki = 0; ki < kh; ++ki) {
        const int ny = iy + ph - ki;
        if (ny < 0 || ny % sh != 0) continue;
        const int y = ny / sh;
        if (y >= oh) continue;
        for (int kj = 0; kj < kw; ++kj) {
            const int nx = ix + pw - kj;
            if (nx < 0 || nx % sw != 0) continue;
            const int xo = nx / sw;
            if (xo >= ow) continue;
            acc += col[(size_t)((c * kh + ki) * kw + kj) * (size_t)plane + (size_t)(y * ow + xo)];
        }
    }
    __global float* at = dx + (size_t)(firstImage + g) * (size_t)imageSize + (size_t)within;
    *at = accumulate ? *at + acc : acc;
}

// The direct kernels run at stride 1 only (the backends route strided layers to im2col). Each
// work-item handles 8 neighbouring columns as one float8, loading shifted input rows with vload8
// where they lie inside the image.
inline float8 load_row8(__global const float* line, const int start, const int width) {
    if (start >= 0 && start + 8 <= width) return vload8(0, line + start);
    float t[8];
    for (int e = 0; e < 8; ++e) t[e] = (start + e >= 0 && start + e < width) ? line[start + e] : 0.0f;
    return vload8(0, t);
}

inline void store_row8(__global float* line, const int start, const int width, const float8 value) {
    if (start + 8 <= width) { vstore8(value, 0, line + start); return; }
    float t[8];
    vstore8(value, 0, t);
    for (int e = 0; start + e < width; ++e) line[start + e] = t[e];
}

__kernel void conv_direct(__global const float* x, __global const float* w, __global const float* bias,
                          __global float* out, const int Cout, const int hasBias, GEOMETRY, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int blocks = (ow + 7) / 8;
    const int x0 = (i % blocks) * 8;
    const int y = (i / blocks) % oh;
    const int co = (i / (blocks * oh)) % Cout;
    const int n = i / (blocks * oh * Cout);
    float8 acc = (float8)(hasBias ? bias[co] : 0.0f);
    for (int c = 0; c < C; ++c) {
        __global const float* image = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)(H * W);
        __global const float* weights = w + ((size_t)co * (size_t)C + (size_t)c) * (size_t)(kh * kw);
        for (int ki = 0; ki < kh; ++ki) {
            const int iy = y - ph + ki;
            if (iy < 0 || iy >= H) continue;
            __global const float* line = image + iy * W;
            for (int kj = 0; kj < kw; ++kj) {
                acc = fma((float8)(weights[ki * kw + kj]), load_row8(line, x0 - pw + kj, W), acc);
            }
        }
    }
    store_row8(out + ((size_t)(n * Cout + co) * (size_t)oh + (size_t)y) * (size_t)ow, x0, ow, acc);
}

__kernel void conv_direct_backward_input(__global const float* dy, __global const float* w, __global float* dx,
                                         const int Cout, GEOMETRY, const int total, const int accumulate) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int blocks = (W + 7) / 8;
    const int x0 = (i % blocks) * 8;
    const int iy = (i / blocks) % H;
    const int c = (i / (blocks * H)) % C;
    const int n = i / (blocks * H * C);
    float8 acc = (float8)(0.0f);
    for (int co = 0; co < Cout; ++co) {
        __global const float* grad = dy + ((size_t)n * (size_t)Cout + (size_t)co) * (size_t)(oh * ow);
        __global const float* weights = w + ((size_t)co * (size_t)C + (size_t)c) * (size_t)(kh * kw);
        for (int ki = 0; ki < kh; ++ki) {
            const int y = iy + ph - ki;
            if (y < 0 || y >= oh) continue;
            __global const float* line = grad + y * ow;
            for (int kj = 0; kj < kw; ++kj) {
                acc = fma((float8)(weights[ki * kw + kj]), load_row8(line, x0 + pw - kj, ow), acc);
            }
        }
    }
    __global float* line = dx + ((size_t)(n * C + c) * (size_t)H + (size_t)iy) * (size_t)W;
    if (accumulate) acc += load_row8(line, x0, W);
    store_row8(line, x0, W, acc);
}
