// activation.cl: SiLU and the other unary ops with their derivatives, elementwise over n floats.
//   unary(op, x, out, n)
//   unary_backward(op, x, y, dy, dx, n)     dx = dy * op'(x); y = op(x) for the ops that reuse it
// op codes (Tensor.UnaryOp): 0 silu, 1 exp, 2 sin, 3 cos, 4 negate, 5 square, 6 sqrt, 7 relu,
// 8 tanh, 9 sigmoid.

__kernel void unary(const int op, __global const float* x, __global float* out, const int n) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n) return;
    const float v = x[i];
    float r;
    switch (op) {
    case 0: r = v / (1.0f + exp(-v)); break;
    case 1: r = exp(v); break;
    case 2: r = sin(v); break;
    case 3: r = cos(v); break;
    case 4: r = -v; break;
    case 5: r = v * v; break;
    case 6: r = sqrt(v); break;
    case 7: r = fmax(v, 0.0f); break;
    case 8: r = tanh(v); break;
    default: r = 1.0f / (1.0f + exp(-v)); break;
    }
    out[i] = r;
}

__kernel void unary_backward(const int op, __global const float* x, __global const float* y,
                             __global const float* dy, __global float* dx, const int n) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n) return;
    const float v = x[i];
    const float g = dy[i];
    float r;
    switch (op) {
    case 0: { const float s = 1.0f / (1.0f + exp(-v)); r = g * s * (1.0f + v * (1.0f - s)); break; }
    case 1: r = g * y[i]; break;
    case 2: r = g * cos(v); break;
    case 3: r = -g * sin(v); break;
    case 4: r = -g; break;
    case 5: r = 2.0f * v * g; break;
    case 6: r = g / (2.0f * y[i]); break;
    case 7: r = v > 0.0f ? g : 0.0f; break;
    case 8: r = g * (1.0f - y[i] * y[i]); break;
    default: r = g * y[i] * (1.0f - y[i]); break;
    }
    dx[i] = r;
}

// SiLU and its gradient for CPU devices: 16 floats per work-item as one float16, so the exp is a
// vector exp (PoCL leaves `unary`'s switch scalar: ~3 ns a float); same formulas as op 0 above.
//   silu_rows(x, out, n), silu_backward_rows(x, dy, dx, n)     global ceil(n / 16)
__kernel void silu_rows(__global const float* x, __global float* out, const int n) {
    const int i = (int)get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        const float16 v = vload16(0, x + i);
        vstore16(v / (1.0f + exp(-v)), 0, out + i);
        return;
    }
    for (int e = i; e < n; ++e) out[e] = x[e] / (1.0f + exp(-x[e]));
}

__kernel void silu_backward_rows(__global const float* x, __global const float* dy, __global float* dx, const int n) {
    const int i = (int)get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        const float16 v = vload16(0, x + i);
        const float16 s = 1.0f / (1.0f + exp(-v));
        vstore16(vload16(0, dy + i) * s * (1.0f + v * (1.0f - s)), 0, dx + i);
        return;
    }
    for (int e = i; e < n; ++e) {
        const float s = 1.0f / (1.0f + exp(-x[e]));
        dx[e] = dy[e] * s * (1.0f + x[e] * (1.0f - s));
    }
}
