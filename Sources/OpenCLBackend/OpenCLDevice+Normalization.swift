// OpenCL group norm, softmax, attention (GEMM + softmax kernels), max pooling and nearest upsampling.
import COpenCL
import Tensor

extension OpenCLDevice {
    public func groupNorm(_ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, out: DeviceBuffer,
                          mean: DeviceBuffer, rstd: DeviceBuffer, _ g: GroupNormGeometry) throws {
        let groups = g.batch * g.groups
        let groupSize = g.channelsPerGroup * g.spatial
        // One work-group of 64 per group, reducing in local memory (a work-item per group looped
        // over up to thousands of values while a GPU waited).
        try launch("group_norm_stats", global: [groups * 64], local: [64], serial: 2 * ((groupSize + 63) / 64),
                   bytes: 8.0 * Double(groups * groupSize), flops: 4.0 * Double(groups * groupSize),
                   [.buffer(x), .buffer(mean), .buffer(rstd), .int(groupSize), .float(g.epsilon), .int(groups)])
        let total = g.batch * g.channels * g.spatial
        let affine = gamma != nil && beta != nil
        try launch1D("group_norm_apply", count: total, bytes: 8.0 * Double(total), flops: 4.0 * Double(total), [
            .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd), .buffer(out),
            .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine ? 1 : 0), .int(total)])
    }

    public func groupNormBackward(_ x: DeviceBuffer, gamma: DeviceBuffer?, mean: DeviceBuffer, rstd: DeviceBuffer,
                                  gradOut: DeviceBuffer, gradIn: DeviceBuffer, gradGamma: DeviceBuffer?,
                                  gradBeta: DeviceBuffer?, _ g: GroupNormGeometry) throws {
        let groups = g.batch * g.groups
        let a = try allocate(count: groups)
        let b = try allocate(count: groups)
        let affine = gamma != nil ? 1 : 0
        let groupSize = g.channelsPerGroup * g.spatial
        try launch("group_norm_backward_stats", global: [groups * 64], local: [64], serial: (groupSize + 63) / 64,
                   bytes: 8.0 * Double(groups * groupSize), flops: 6.0 * Double(groups * groupSize), [
            .buffer(x), .buffer(gamma ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut), .buffer(a), .buffer(b),
            .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine), .int(groups)])
        let total = g.batch * g.channels * g.spatial
        try launch1D("group_norm_backward_input", count: total, bytes: 12.0 * Double(total), flops: 8.0 * Double(total), [
            .buffer(x), .buffer(gamma ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut), .buffer(a), .buffer(b),
            .buffer(gradIn), .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine), .int(total)])
        if gradGamma != nil || gradBeta != nil {
            // Both sums come from one pass; a missing output gets a throwaway buffer.
            let dGamma = try gradGamma ?? allocate(count: g.channels)
            let dBeta = try gradBeta ?? allocate(count: g.channels)
            // Per (image, channel) sums in parallel, then the batch added up: one work-item per
            // channel looped over the whole batch.
            let planes = g.batch * g.channels
            let partials = try scratch(ScratchSlot.normPartials, count: 2 * planes)
            try launch1D("group_norm_backward_params", count: planes, serial: g.spatial,
                         bytes: 8.0 * Double(planes * g.spatial), flops: 4.0 * Double(planes * g.spatial), [
                .buffer(x), .buffer(mean), .buffer(rstd), .buffer(gradOut), .memory(partials),
                .int(g.batch), .int(g.channels), .int(g.spatial), .int(g.groups)])
            try launch1D("sum_batch_pair", count: g.channels, serial: g.batch, bytes: 8.0 * Double(planes), [
                .memory(partials), .buffer(dGamma), .buffer(dBeta), .int(g.channels), .int(g.batch)])
        }
    }

    public func softmax(_ x: DeviceBuffer, out: DeviceBuffer, rows: Int, columns: Int) throws {
        try launch1D("softmax_rows", count: rows, serial: 3 * columns, bytes: 8.0 * Double(rows * columns),
                     flops: 5.0 * Double(rows * columns), [.buffer(x), .buffer(out), .int(rows), .int(columns)])
    }

    public func softmaxBackward(y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int,
                                columns: Int) throws {
        try launch1D("softmax_backward_rows", count: rows, serial: 2 * columns, bytes: 12.0 * Double(rows * columns),
                     flops: 4.0 * Double(rows * columns), [.buffer(y), .buffer(gradOut), .buffer(gradIn), .int(rows),
                                                            .int(columns)])
    }

    public func attention(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
                          probabilities: DeviceBuffer, _ g: AttentionGeometry) throws {
        let (lq, lk, d, b) = (g.queryLength, g.keyLength, g.headDim, g.batch)
        // scores = scale * Q K^T, then softmax in place, then P V.
        try enqueueGemm(memory(q), memory(k), memory(probabilities), .batched(
            m: lq, n: lk, k: d, rsA: d, csA: 1, rsB: 1, csB: d, batch: b, strideA: lq * d, strideB: lk * d,
            strideC: lq * lk, alpha: g.scale))
        try softmax(probabilities, out: probabilities, rows: b * lq, columns: lk)
        try enqueueGemm(memory(probabilities), memory(v), memory(out), .batched(
            m: lq, n: d, k: lk, rsA: lk, csA: 1, rsB: d, csB: 1, batch: b, strideA: lq * lk, strideB: lk * d,
            strideC: lq * d))
    }

    public func attentionBackward(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, probabilities: DeviceBuffer,
                                  gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
                                  _ g: AttentionGeometry) throws {
        let (lq, lk, d, b) = (g.queryLength, g.keyLength, g.headDim, g.batch)
        // dV = P^T dO
        try enqueueGemm(memory(probabilities), memory(gradOut), memory(gradV), .batched(
            m: lk, n: d, k: lq, rsA: 1, csA: lk, rsB: d, csB: 1, batch: b, strideA: lq * lk, strideB: lq * d,
            strideC: lk * d))
        // dP = dO V^T, then dS = softmax'(dP) in place
        let dScores = try scratch(ScratchSlot.attention, count: b * lq * lk)
        try enqueueGemm(memory(gradOut), memory(v), dScores, .batched(
            m: lq, n: lk, k: d, rsA: d, csA: 1, rsB: 1, csB: d, batch: b, strideA: lq * d, strideB: lk * d,
            strideC: lq * lk))
        try launch1D("softmax_backward_rows", count: b * lq, serial: 2 * lk, bytes: 12.0 * Double(b * lq * lk),
                     flops: 4.0 * Double(b * lq * lk), [.buffer(probabilities), .memory(dScores),
                                                              .memory(dScores), .int(b * lq), .int(lk)])
        // dQ = scale dS K; dK = scale dS^T Q
        try enqueueGemm(dScores, memory(k), memory(gradQ), .batched(
            m: lq, n: d, k: lk, rsA: lk, csA: 1, rsB: d, csB: 1, batch: b, strideA: lq * lk, strideB: lk * d,
            strideC: lq * d, alpha: g.scale))
        try enqueueGemm(dScores, memory(q), memory(gradK), .batched(
            m: lk, n: d, k: lq, rsA: 1, csA: lk, rsB: d, csB: 1, batch: b, strideA: lq * lk, strideB: lq * d,
            strideC: lk * d, alpha: g.scale))
    }

    public func maxPool2d(_ x: DeviceBuffer, out: DeviceBuffer, _ g: PoolGeometry) throws {
        let total = g.planes * g.outHeight
        try launch1D("max_pool", count: total, serial: g.outWidth * g.kernel * g.kernel, [.buffer(x), .buffer(out), .int(g.height), .int(g.width), .int(g.kernel),
                                                .int(g.stride), .int(g.outHeight), .int(g.outWidth), .int(total)])
    }

    public func maxPool2dBackward(_ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer,
                                  _ g: PoolGeometry) throws {
        let total = g.planes * g.height * g.width
        try launch1D("max_pool_backward", count: total, serial: g.kernel * g.kernel * g.kernel * g.kernel, [
            .buffer(x), .buffer(gradOut), .buffer(gradIn), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride),
            .int(g.outHeight), .int(g.outWidth), .int(total)])
    }

    public func upsampleNearest(_ x: DeviceBuffer, out: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.factor
        try launch1D("upsample_nearest", count: total, serial: g.width * g.factor, [.buffer(x), .buffer(out), .int(g.height), .int(g.width),
                                                        .int(g.factor), .int(total)])
    }

    public func upsampleNearestBackward(gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.width
        try launch1D("upsample_nearest_backward", count: total, serial: g.factor * g.factor, [.buffer(gradOut), .buffer(gradIn), .int(g.height),
                                                                 .int(g.width), .int(g.factor), .int(total)])
    }
}
