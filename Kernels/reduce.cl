// reduce.cl: sums. A general reduction over broadcast dimensions (one work-group of 64 per output),
// and a two-stage full sum (work-groups of 64 reduce in local memory, then one group adds the partials).
//   reduce_sum(x, out, meta, outputCount, reducedCount)          global size outputCount * 64
//       meta = [rank, shape[rank], inputStrides[rank], outputStrides[rank]]; outputStride 0 = summed
//   sum_partials(x, y, partials, n, mode)    mode 0: sum x;  mode 1: sum (x - y)^2   (local size 64)
//   sum_final(partials, out, count, scale)   out[0] = scale * sum(partials)          (local size 64)
//   sum_batch(partials, c, size, batch, offset, beta, bias, biasMode, columns, rows)
//       c[offset + i] = sum_b partials[b*size + i] + beta c[offset + i]
//                       + bias[(i / columns) % rows] (biasMode 1) or bias[i % columns] (biasMode 2)
//   sum_batch_split(partials, w, bias, size, batch, columns, beta)   sums [rows, columns] products over the
//       batch into w [rows, columns - 1] and bias [rows] (the last column), + beta times what was there
//   sum_batch_pair(partials, a, b, size, batch)  a[i] = sum_n partials[2 (n*size + i)], b from the odd slots

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void reduce_sum(__global const float* x, __global float* out, __constant int* meta, const int outputCount,
                const int reducedCount) {
    // One work-group per output: its 64 work-items stride over the summed elements, then add up in
    // local memory. (One work-item per output left GPUs idle on bias gradients: 1 output, 100k terms.)
    __local float scratch[64];
    const int o = (int)get_group_id(0);
    const int lid = (int)get_local_id(0);
    const int rank = meta[0];
    __constant int* shape = meta + 1;
    __constant int* inStrides = meta + 1 + rank;
    __constant int* outStrides = meta + 1 + 2 * rank;
    float acc = 0.0f;
    if (o < outputCount) {
        size_t base = 0;
        for (int d = 0; d < rank; ++d) {
            if (outStrides[d] != 0) base += (size_t)((o / outStrides[d]) % shape[d]) * (size_t)inStrides[d];
        }
        for (int r = lid; r < reducedCount; r += 64) {
            int rest = r;
            size_t offset = base;
            for (int d = rank - 1; d >= 0; --d) {
                if (outStrides[d] == 0) {
                    offset += (size_t)(rest % shape[d]) * (size_t)inStrides[d];
                    rest /= shape[d];
                }
            }
            acc += x[offset];
        }
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0 && o < outputCount) out[o] = scratch[0];
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void sum_partials(__global const float* x, __global const float* y, __global float* partials, const int n,
                  const int mode) {
    __local float scratch[64];
    const size_t lid = get_local_id(0);
    float acc = 0.0f;
    for (size_t i = get_global_id(0); i < (size_t)n; i += get_global_size(0)) {
        if (mode == 1) { const float e = x[i] - y[i]; acc += e * e; } else { acc += x[i]; }
    }
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < (size_t)s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partials[get_group_id(0)] = scratch[0];
}

__kernel __attribute__((reqd_work_group_size(64, 1, 1)))
void sum_final(__global const float* partials, __global float* out, const int count, const float scale) {
    __local float scratch[64];
    const size_t lid = get_local_id(0);
    float acc = 0.0f;
    for (size_t i = lid; i < (size_t)count; i += 64) acc += partials[i];
    scratch[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 32; s > 0; s >>= 1) {
        if (lid < (size_t)s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[0] = scratch[0] * scale;
}

// Adds up partial products: a GEMM whose batch is summed (one product per entry), or the K slices
// of a split-K GEMM (with the row bias the GEMM would have added).
__kernel void sum_batch(__global const float* partials, __global float* c, const int size, const int batch,
                        const int offset, const float beta, __global const float* bias, const int hasBias,
                        const int columns, const int rows) {
    const int i = (int)get_global_id(0);
    if (i >= size) return;
    float acc = 0.0f;
    for (int b = 0; b < batch; ++b) acc += partials[(size_t)b * (size_t)size + (size_t)i];
    if (hasBias == 1) acc += bias[(i / columns) % rows];
    if (hasBias == 2) acc += bias[i % columns];
    c[offset + i] = beta != 0.0f ? acc + beta * c[offset + i] : acc;
}

__kernel void sum_batch_split(__global const float* partials, __global float* w, __global float* bias,
                              const int size, const int batch, const int columns, const float beta) {
    const int i = (int)get_global_id(0);
    if (i >= size) return;
    float acc = 0.0f;
    for (int b = 0; b < batch; ++b) acc += partials[(size_t)b * (size_t)size + (size_t)i];
    const int row = i / columns;
    const int column = i % columns;
    __global float* at = column < columns - 1 ? w + (size_t)row * (size_t)(columns - 1) + column : bias + row;
    *at = beta != 0.0f ? acc + beta * *at : acc;
}

// Two interleaved sums over the batch: per-(image, channel) pairs into per-channel totals.
__kernel void sum_batch_pair(__global const float* partials, __global float* a, __global float* b, const int size,
                             const int batch) {
    const int i = (int)get_global_id(0);
    if (i >= size) return;
    float sumA = 0.0f;
    float sumB = 0.0f;
    for (int n = 0; n < batch; ++n) {
        const size_t at = 2 * ((size_t)n * (size_t)size + (size_t)i);
        sumA += partials[at];
        sumB += partials[at + 1];
    }
    a[i] = sumA;
    b[i] = sumB;
}
