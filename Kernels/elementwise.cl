// elementwise.cl: fills, strided block copies, batched transposes, affine maps, clamps and
// broadcasting binary ops. Layout: dense float32; every kernel is 1-D over its outputs.
//   fill(out, value, n)
//   copy_blocks(src, dst, blockLength, srcOffset, srcStride, dstOffset, dstStride, accumulate, total)
//   copy_blocks_pair(the same for copy a, then for copy b)   two copies in one launch over totalA + totalB
//   copy_blocks_rows, copy_blocks_pair_rows(the same arguments, with items for total)
//       for CPU devices: 16 floats of a block per work-item (a float16 load and store where they
//       fit, a scalar tail), items = blockCount * ceil(blockLength / 16); PoCL leaves one float per
//       work-item with its divisions scalar
//   transpose(x, out, rows, columns, total)            out[b][j][i] = x[b][i][j]
//   affine(x, out, scale, shift, n)                    out = x * scale + shift
//   clamp_values(x, out, low, high, n)
//   binary(op, a, b, out, meta, n)                     op: 0 add, 1 subtract, 2 multiply, 3 divide;
//       meta = [rank, shape[rank], stridesA[rank], stridesB[rank]] (coalesced broadcast geometry)
//   binary_same(op, a, b, out, n)                      the same op when both shapes equal

__kernel void fill(__global float* out, const float value, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = value;
}

__kernel void copy_blocks(__global const float* src, __global float* dst, const int blockLength,
                          const int srcOffset, const int srcStride, const int dstOffset, const int dstStride,
                          const int accumulate, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const size_t block = (size_t)(i / blockLength);
    const size_t j = (size_t)(i % blockLength);
    const size_t s = (size_t)srcOffset + block * (size_t)srcStride + j;
    const size_t d = (size_t)dstOffset + block * (size_t)dstStride + j;
    if (accumulate) dst[d] += src[s]; else dst[d] = src[s];
}

inline void copy_block_element(__global const float* src, __global float* dst, const int i, const int blockLength,
                               const int srcOffset, const int srcStride, const int dstOffset, const int dstStride,
                               const int accumulate) {
    const size_t block = (size_t)(i / blockLength);
    const size_t j = (size_t)(i % blockLength);
    const size_t s = (size_t)srcOffset + block * (size_t)srcStride + j;
    const size_t d = (size_t)dstOffset + block * (size_t)dstStride + j;
    if (accumulate) dst[d] += src[s]; else dst[d] = src[s];
}

// Work-item i of a rows copy: floats 16c ..< 16c + 16 of block b, for i = b * chunks + c.
inline void copy_block_row(__global const float* src, __global float* dst, const int i, const int blockLength,
                           const int srcOffset, const int srcStride, const int dstOffset, const int dstStride,
                           const int accumulate) {
    const int chunks = (blockLength + 15) / 16;
    const size_t block = (size_t)(i / chunks);
    const int j = (i % chunks) * 16;
    __global const float* s = src + (size_t)srcOffset + block * (size_t)srcStride + (size_t)j;
    __global float* d = dst + (size_t)dstOffset + block * (size_t)dstStride + (size_t)j;
    if (j + 16 <= blockLength) {
        const float16 v = vload16(0, s);
        if (accumulate) vstore16(vload16(0, d) + v, 0, d); else vstore16(v, 0, d);
    } else {
        for (int k = 0; k < blockLength - j; ++k) d[k] = accumulate ? d[k] + s[k] : s[k];
    }
}

__kernel void copy_blocks_rows(__global const float* src, __global float* dst, const int blockLength,
                               const int srcOffset, const int srcStride, const int dstOffset, const int dstStride,
                               const int accumulate, const int items) {
    const int i = (int)get_global_id(0);
    if (i < items) copy_block_row(src, dst, i, blockLength, srcOffset, srcStride, dstOffset, dstStride, accumulate);
}

__kernel void copy_blocks_pair_rows(__global const float* srcA, __global float* dstA, const int blockLengthA,
                                    const int srcOffsetA, const int srcStrideA, const int dstOffsetA,
                                    const int dstStrideA, const int accumulateA, const int itemsA,
                                    __global const float* srcB, __global float* dstB, const int blockLengthB,
                                    const int srcOffsetB, const int srcStrideB, const int dstOffsetB,
                                    const int dstStrideB, const int accumulateB, const int itemsB) {
    const int i = (int)get_global_id(0);
    if (i < itemsA) {
        copy_block_row(srcA, dstA, i, blockLengthA, srcOffsetA, srcStrideA, dstOffsetA, dstStrideA, accumulateA);
    } else if (i < itemsA + itemsB) {
        copy_block_row(srcB, dstB, i - itemsA, blockLengthB, srcOffsetB, srcStrideB, dstOffsetB, dstStrideB,
                       accumulateB);
    }
}

// A concatenation of two tensors, or its gradient's two slices, in one launch.
__kernel void copy_blocks_pair(__global const float* srcA, __global float* dstA, const int blockLengthA,
                               const int srcOffsetA, const int srcStrideA, const int dstOffsetA, const int dstStrideA,
                               const int accumulateA, const int totalA,
                               __global const float* srcB, __global float* dstB, const int blockLengthB,
                               const int srcOffsetB, const int srcStrideB, const int dstOffsetB, const int dstStrideB,
                               const int accumulateB, const int totalB) {
    const int i = (int)get_global_id(0);
    if (i < totalA) {
        copy_block_element(srcA, dstA, i, blockLengthA, srcOffsetA, srcStrideA, dstOffsetA, dstStrideA, accumulateA);
    } else if (i < totalA + totalB) {
        copy_block_element(srcB, dstB, i - totalA, blockLengthB, srcOffsetB, srcStrideB, dstOffsetB, dstStrideB,
                           accumulateB);
    }
}

__kernel void transpose(__global const float* x, __global float* out, const int rows, const int columns,
                        const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    const int plane = rows * columns;
    const int b = i / plane;
    const int r = (i % plane) / columns;
    const int c = i % columns;
    out[b * plane + c * rows + r] = x[i];
}

__kernel void affine(__global const float* x, __global float* out, const float scale, const float shift, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = x[i] * scale + shift;
}

__kernel void clamp_values(__global const float* x, __global float* out, const float low, const float high, const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = fmin(fmax(x[i], low), high);
}

inline float apply_binary(const int op, const float x, const float y) {
    return op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
}

__kernel void binary(const int op, __global const float* a, __global const float* b, __global float* out,
                     __constant int* meta, const int n) {
    const int i = (int)get_global_id(0);
    if (i >= n) return;
    const int rank = meta[0];
    int rest = i;
    int oa = 0;
    int ob = 0;
    for (int d = rank - 1; d >= 0; --d) {
        const int size = meta[1 + d];
        const int index = rest % size;
        rest /= size;
        oa += index * meta[1 + rank + d];
        ob += index * meta[1 + 2 * rank + d];
    }
    out[i] = apply_binary(op, a[oa], b[ob]);
}

__kernel void binary_same(const int op, __global const float* a, __global const float* b, __global float* out,
                          const int n) {
    const size_t i = get_global_id(0);
    if (i < (size_t)n) out[i] = apply_binary(op, a[i], b[i]);
}
