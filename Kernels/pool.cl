// pool.cl: max pooling (no padding) and nearest upsampling of [planes, H, W] float32, with gradients.
//   max_pool(x, out, H, W, kernel, stride, oh, ow, total)                one output row per work-item
//   max_pool_backward(x, dy, dx, H, W, kernel, stride, oh, ow, total)    one input per work-item: it
//       gathers dy of every window whose first maximum it is (PyTorch's choice), so windows may overlap
//   max_pool_backward_windows(x, dy, dx, H, W, kernel, oh, ow, total)   stride == kernel dividing H and W:
//       one output row of windows per work-item (total = planes * oh), each window's maximum found once
//   upsample_nearest(x, out, H, W, factor, total)                        one output row per work-item
//   upsample_nearest_backward(dy, dx, H, W, factor, total)              sums each factor x factor block

__kernel void max_pool(__global const float* x, __global float* out, const int H, const int W, const int kernel_,
                       const int stride, const int oh, const int ow, const int total) {
    // One work-item per output row (total = planes * oh): index arithmetic once per row.
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int p = i / oh;
    const int y = i % oh;
    __global const float* plane = x + (size_t)p * (size_t)(H * W);
    __global float* row = out + (size_t)i * (size_t)ow;
    for (int xo = 0; xo < ow; ++xo) {
        float best = -INFINITY;
        for (int a = 0; a < kernel_; ++a) {
            __global const float* line = plane + (y * stride + a) * W + xo * stride;
            for (int b = 0; b < kernel_; ++b) {
                const float v = line[b];
                if (v > best || isnan(v)) best = v;
            }
        }
        row[xo] = best;
    }
}

__kernel void max_pool_backward(__global const float* x, __global const float* dy, __global float* dx,
                                const int H, const int W, const int kernel_, const int stride, const int oh,
                                const int ow, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int p = i / (H * W);
    const int iy = (i / W) % H;
    const int ix = i % W;
    __global const float* plane = x + (size_t)p * (size_t)(H * W);
    __global const float* grad = dy + (size_t)p * (size_t)(oh * ow);
    float acc = 0.0f;
    const int yFirst = max(0, (iy - kernel_ + stride) / stride);
    const int yLast = min(oh - 1, iy / stride);
    const int xFirst = max(0, (ix - kernel_ + stride) / stride);
    const int xLast = min(ow - 1, ix / stride);
    for (int y = yFirst; y <= yLast; ++y) {
        for (int xo = xFirst; xo <= xLast; ++xo) {
            float best = -INFINITY;
            int where = (y * stride) * W + xo * stride;
            for (int a = 0; a < kernel_; ++a) {
                for (int b = 0; b < kernel_; ++b) {
                    const int index = (y * stride + a) * W + (xo * stride + b);
                    const float v = plane[index];
                    if (v > best || isnan(v)) { best = v; where = index; }
                }
            }
            if (where == iy * W + ix) acc += grad[y * ow + xo];
        }
    }
    dx[i] = acc;
}

// Windows that tile the plane (stride == kernel, sides divisible by it): one work-item per output
// row finds each window's first maximum once and writes the whole window, dy at the maximum and 0
// elsewhere. The same choice as max_pool_backward, which finds it again for every input it owns.
__kernel void max_pool_backward_windows(__global const float* x, __global const float* dy, __global float* dx,
                                        const int H, const int W, const int kernel_, const int oh, const int ow,
                                        const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int p = i / oh;
    const int y = i % oh;
    const size_t first = (size_t)p * (size_t)(H * W) + (size_t)(y * kernel_ * W);
    __global const float* plane = x + first;
    __global float* out = dx + first;
    __global const float* grad = dy + (size_t)i * (size_t)ow;
    for (int xo = 0; xo < ow; ++xo) {
        float best = -INFINITY;
        int where = xo * kernel_;
        for (int a = 0; a < kernel_; ++a) {
            for (int b = 0; b < kernel_; ++b) {
                const int index = a * W + xo * kernel_ + b;
                const float v = plane[index];
                if (v > best || isnan(v)) { best = v; where = index; }
            }
        }
        for (int a = 0; a < kernel_; ++a) {
            for (int b = 0; b < kernel_; ++b) {
                const int index = a * W + xo * kernel_ + b;
                out[index] = index == where ? grad[xo] : 0.0f;
            }
        }
    }
}

__kernel void upsample_nearest(__global const float* x, __global float* out, const int H, const int W,
                               const int factor, const int total) {
    // One work-item per output row (total = planes * H * factor).
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int OH = H * factor;
    const int OW = W * factor;
    const int p = i / OH;
    const int y = i % OH;
    __global const float* line = x + (size_t)p * (size_t)(H * W) + (size_t)((y / factor) * W);
    __global float* row = out + (size_t)i * (size_t)OW;
    for (int xo = 0; xo < OW; ++xo) row[xo] = line[xo / factor];
}

__kernel void upsample_nearest_backward(__global const float* dy, __global float* dx, const int H, const int W,
                                        const int factor, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int p = i / (H * W);
    const int y = (i / W) % H;
    const int xo = i % W;
    const int OW = W * factor;
    __global const float* grad = dy + (size_t)p * (size_t)(H * factor * OW);
    float acc = 0.0f;
    for (int a = 0; a < factor; ++a) {
        for (int b = 0; b < factor; ++b) acc += grad[(y * factor + a) * OW + xo * factor + b];
    }
    dx[i] = acc;
}
