// conv2d.cl: convolution of NCHW float32 images with [Cout, Cin, kh, kw] weights. Large layers go
// through im2col + gemm (gemm.cl); layers with few output channels use the direct kernels.
// Geometry arguments g = (C, H, W, kh, kw, sh, sw, ph, pw, oh, ow).
//   im2col(x, cols, g..., firstImage, total, transposed)   cols[g][K][plane], or [g][plane][K] if transposed;
//       total counts work-items: images*K*oh rows, or images*plane*C when transposed
//   col2im(cols, dx, g..., firstImage, total)              gathers dcol[g][K][plane] into dx (no atomics)
//   add_channel_bias(out, bias, channels, plane, total)
//   conv_direct(x, w, bias, out, Cout, hasBias, g..., total)              one output element per work-item
//   conv_direct_backward_input(dy, w, dx, Cout, g..., total)              stride 1 only
//   conv_direct_backward_weight(x, dy, dw, Cout, batch, g..., total)     one weight per work-item

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

__kernel void col2im(__global const float* cols, __global float* dx, GEOMETRY, const int firstImage, const int total) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)total) return;
    const size_t imageSize = (size_t)C * (size_t)H * (size_t)W;
    const size_t g = i / imageSize;
    const int c = (int)((i % imageSize) / (size_t)(H * W));
    const int iy = (int)((i % (size_t)(H * W)) / (size_t)W);
    const int ix = (int)(i % (size_t)W);
    const size_t plane = (size_t)oh * (size_t)ow;
    const size_t K = (size_t)C * (size_t)kh * (size_t)kw;
    __global const float* col = cols + g * K * plane;
    float acc = 0.0f;
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
            acc += col[((size_t)(c * kh + ki) * (size_t)kw + (size_t)kj) * plane + (size_t)y * (size_t)ow + (size_t)xo];
        }
    }
    dx[((size_t)firstImage + g) * imageSize + (i % imageSize)] = acc;
}

__kernel void add_channel_bias(__global float* out, __global const float* bias, const int channels, const int plane,
                               const int total) {
    const size_t i = get_global_id(0);
    if (i < (size_t)total) out[i] += bias[(i / (size_t)plane) % (size_t)channels];
}

__kernel void conv_direct(__global const float* x, __global const float* w, __global const float* bias,
                          __global float* out, const int Cout, const int hasBias, GEOMETRY, const int total) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)total) return;
    const size_t plane = (size_t)oh * (size_t)ow;
    const size_t n = i / ((size_t)Cout * plane);
    const int co = (int)((i / plane) % (size_t)Cout);
    const int y = (int)((i % plane) / (size_t)ow);
    const int xo = (int)(i % (size_t)ow);
    float acc = hasBias ? bias[co] : 0.0f;
    for (int c = 0; c < C; ++c) {
        __global const float* image = x + (n * (size_t)C + (size_t)c) * (size_t)H * (size_t)W;
        __global const float* weights = w + ((size_t)co * (size_t)C + (size_t)c) * (size_t)(kh * kw);
        for (int ki = 0; ki < kh; ++ki) {
            const int iy = y * sh - ph + ki;
            if (iy < 0 || iy >= H) continue;
            for (int kj = 0; kj < kw; ++kj) {
                const int ix = xo * sw - pw + kj;
                if (ix < 0 || ix >= W) continue;
                acc = fma(weights[ki * kw + kj], image[(size_t)iy * (size_t)W + (size_t)ix], acc);
            }
        }
    }
    out[i] = acc;
}

__kernel void conv_direct_backward_input(__global const float* dy, __global const float* w, __global float* dx,
                                         const int Cout, GEOMETRY, const int total) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)total) return;
    const size_t hw = (size_t)H * (size_t)W;
    const size_t n = i / ((size_t)C * hw);
    const int c = (int)((i / hw) % (size_t)C);
    const int iy = (int)((i % hw) / (size_t)W);
    const int ix = (int)(i % (size_t)W);
    const size_t plane = (size_t)oh * (size_t)ow;
    float acc = 0.0f;
    for (int co = 0; co < Cout; ++co) {
        __global const float* grad = dy + (n * (size_t)Cout + (size_t)co) * plane;
        __global const float* weights = w + ((size_t)co * (size_t)C + (size_t)c) * (size_t)(kh * kw);
        for (int ki = 0; ki < kh; ++ki) {
            const int y = iy + ph - ki;
            if (y < 0 || y >= oh) continue;
            for (int kj = 0; kj < kw; ++kj) {
                const int xo = ix + pw - kj;
                if (xo < 0 || xo >= ow) continue;
                acc = fma(weights[ki * kw + kj], grad[(size_t)y * (size_t)ow + (size_t)xo], acc);
            }
        }
    }
    dx[i] = acc;
}

__kernel void conv_direct_backward_weight(__global const float* x, __global const float* dy, __global float* dw,
                                          const int Cout, const int batch, GEOMETRY, const int total) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)total) return;
    const int taps = kh * kw;
    const int co = (int)(i / (size_t)(C * taps));
    const int c = (int)((i / (size_t)taps) % (size_t)C);
    const int ki = (int)((i % (size_t)taps) / (size_t)kw);
    const int kj = (int)(i % (size_t)kw);
    const size_t plane = (size_t)oh * (size_t)ow;
    float acc = 0.0f;
    for (int n = 0; n < batch; ++n) {
        __global const float* image = x + ((size_t)n * (size_t)C + (size_t)c) * (size_t)H * (size_t)W;
        __global const float* grad = dy + ((size_t)n * (size_t)Cout + (size_t)co) * plane;
        for (int y = 0; y < oh; ++y) {
            const int iy = y * sh - ph + ki;
            if (iy < 0 || iy >= H) continue;
            for (int xo = 0; xo < ow; ++xo) {
                const int ix = xo * sw - pw + kj;
                if (ix < 0 || ix >= W) continue;
                acc = fma(grad[(size_t)y * (size_t)ow + (size_t)xo], image[(size_t)iy * (size_t)W + (size_t)ix], acc);
            }
        }
    }
    dw[i] = acc;
}
