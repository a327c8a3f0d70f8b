// attention.cl: the softmax rows of softmax(scale * Q K^T) V; the two products run in gemm.cl, so
// attention forward is gemm -> softmax_rows -> gemm and its backward gemm -> softmax_backward_rows -> gemm.
//   softmax_rows(x, out, rows, columns)                  one work-item per row, max-subtracted
//   softmax_backward_rows(y, dy, dx, rows, columns)      dx = y * (dy - sum(dy * y)); dx may alias dy

__kernel void softmax_rows(__global const float* x, __global float* out, const int rows, const int columns) {
    const size_t row = get_global_id(0);
    if (row >= (size_t)rows) return;
    __global const float* in = x + row * (size_t)columns;
    __global float* o = out + row * (size_t)columns;
    float peak = -INFINITY;
    for (int i = 0; i < columns; ++i) peak = fmax(peak, in[i]);
    float total = 0.0f;
    for (int i = 0; i < columns; ++i) { const float e = exp(in[i] - peak); o[i] = e; total += e; }
    const float inverse = 1.0f / total;
    for (int i = 0; i < columns; ++i) o[i] *= inverse;
}

__kernel void softmax_backward_rows(__global const float* y, __global const float* dy, __global float* dx,
                                    const int rows, const int columns) {
    const size_t row = get_global_id(0);
    if (row >= (size_t)rows) return;
    __global const float* ys = y + row * (size_t)columns;
    __global const float* gs = dy + row * (size_t)columns;
    __global float* out = dx + row * (size_t)columns;
    float dot = 0.0f;
    for (int i = 0; i < columns; ++i) dot += ys[i] * gs[i];
    for (int i = 0; i < columns; ++i) out[i] = ys[i] * (gs[i] - dot);
}
