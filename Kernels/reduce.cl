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
//   sum_deferred(P0, D0, E0, ..., P15, D15, E15, table, jobs, total)   up to 16 sums like the two above,
//       or of interleaved pairs (a group norm's per-(image, channel) sums into gamma and beta
//       gradients), deferred by the host until something reads their results
//       (OpenCLDevice+DeferredReductions)

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

// Up to 16 deferred sums in one launch: job j reads Pj and writes Dj (and Ej). table holds five ints
// per job: first work-item, size, slices, mode (0 plain sum into D like sum_batch, 1 split into
// D [rows, columns - 1] and E [rows] like sum_batch_split, 2 interleaved pairs a, b into D and E,
// 3 runs of `slices` contiguous floats, one sum each, into D), columns. Each job adds its slices in the same order as the kernels it replaces, so the results
// are the same floats.
#define JOB(n) __global const float* P##n, __global float* D##n, __global float* E##n
__kernel void sum_deferred(JOB(0),
                           JOB(1),
                           JOB(2),
                           JOB(3),
                           JOB(4),
                           JOB(5),
                           JOB(6),
                           JOB(7),
                           JOB(8),
                           JOB(9),
                           JOB(10),
                           JOB(11),
                           JOB(12),
                           JOB(13),
                           JOB(14),
                           JOB(15),
                           __global const int* table, const int jobs, const int total) {
    const int i = (int)get_global_id(0);
    if (i >= total) return;
    int j = 0;
    while (j + 1 < jobs && table[5 * (j + 1)] <= i) ++j;
    const int t = i - table[5 * j];
    const int size = table[5 * j + 1];
    const int slices = table[5 * j + 2];
    const int mode = table[5 * j + 3];
    const int columns = table[5 * j + 4];
    __global const float* p = P0;
    __global float* d = D0;
    __global float* e = E0;
    switch (j) {
        case 0: p = P0; d = D0; e = E0; break;
        case 1: p = P1; d = D1; e = E1; break;
        case 2: p = P2; d = D2; e = E2; break;
        case 3: p = P3; d = D3; e = E3; break;
        case 4: p = P4; d = D4; e = E4; break;
        case 5: p = P5; d = D5; e = E5; break;
        case 6: p = P6; d = D6; e = E6; break;
        case 7: p = P7; d = D7; e = E7; break;
        case 8: p = P8; d = D8; e = E8; break;
        case 9: p = P9; d = D9; e = E9; break;
        case 10: p = P10; d = D10; e = E10; break;
        case 11: p = P11; d = D11; e = E11; break;
        case 12: p = P12; d = D12; e = E12; break;
        case 13: p = P13; d = D13; e = E13; break;
        case 14: p = P14; d = D14; e = E14; break;
        case 15: p = P15; d = D15; e = E15; break;
    }
    if (mode == 2) {
        float sumA = 0.0f;
        float sumB = 0.0f;
        for (int n = 0; n < slices; ++n) {
            const size_t at = 2 * ((size_t)n * (size_t)size + (size_t)t);
            sumA += p[at];
            sumB += p[at + 1];
        }
        d[t] = sumA;
        e[t] = sumB;
        return;
    }
    float acc = 0.0f;
    if (mode == 3) {
        for (int n = 0; n < slices; ++n) acc += p[(size_t)t * (size_t)slices + (size_t)n];
        d[t] = acc;
        return;
    }
    for (int n = 0; n < slices; ++n) acc += p[(size_t)n * (size_t)size + (size_t)t];
    if (mode == 0) {
        d[t] = acc;
        return;
    }
    const int row = t / columns;
    const int column = t % columns;
    if (column < columns - 1) d[(size_t)row * (size_t)(columns - 1) + column] = acc;
    else e[row] = acc;
}
#undef JOB
