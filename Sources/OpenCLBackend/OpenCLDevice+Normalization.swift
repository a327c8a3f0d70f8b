// OpenCL group norm, softmax, attention (GEMM + softmax kernels), max pooling and nearest upsampling.
import COpenCL
import Tensor

extension OpenCLDevice {
    public func groupNorm(_ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, out: DeviceBuffer,
                          mean: DeviceBuffer, rstd: DeviceBuffer, _ g: GroupNormGeometry) throws {
        let groups = g.batch * g.groups
        try launch1D("group_norm_stats", count: groups, [.buffer(x), .buffer(mean), .buffer(rstd),
                                                         .int(g.channelsPerGroup * g.spatial), .float(g.epsilon),
                                                         .int(groups)])
        let total = g.batch * g.channels * g.spatial
        let affine = gamma != nil && beta != nil
        try launch1D("group_norm_apply", count: total, [
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
        try launch1D("group_norm_backward_stats", count: groups, [
            .buffer(x), .buffer(gamma ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut), .buffer(a), .buffer(b),
            .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine), .int(groups)])
        let total = g.batch * g.channels * g.spatial
        try launch1D("group_norm_backward_input", count: total, [
            .buffer(x), .buffer(gamma ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut), .buffer(a), .buffer(b),
            .buffer(gradIn), .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine), .int(total)])
        if gradGamma != nil || gradBeta != nil {
            // Both sums come from one pass; a missing output gets a throwaway buffer.
            let dGamma = try gradGamma ?? allocate(count: g.channels)
            let dBeta = try gradBeta ?? allocate(count: g.channels)
            try launch1D("group_norm_backward_params", count: g.channels, [
                .buffer(x), .buffer(mean), .buffer(rstd), .buffer(gradOut), .buffer(dGamma), .buffer(dBeta),
                .int(g.batch), .int(g.channels), .int(g.spatial), .int(g.groups)])
        }
    }

    public func softmax(_ x: DeviceBuffer, out: DeviceBuffer, rows: Int, columns: Int) throws {
        try launch1D("softmax_rows", count: rows, [.buffer(x), .buffer(out), .int(rows), .int(columns)])
    }

    public func softmaxBackward(y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int,
                                columns: Int) throws {
        try launch1D("softmax_backward_rows", count: rows, [.buffer(y), .buffer(gradOut), .buffer(gradIn), .int(rows),
                                                            .int(columns)])
    }

    public func attention(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
                          probabilities: DeviceBuffer, _ g: AttentionGeometry) throws {
        let (lq, lk, d) = (g.queryLength, g.keyLength, g.headDim)
        // scores = scale * Q K^T, then softmax in place, then P V.
        var scores = StridedGemm(m: lq, n: lk, k: d, rsA: d, csA: 1, rsB: 1, csB: d)
        scores.strideA = lq * d
        scores.strideB = lk * d
        scores.strideC = lq * lk
        scores.batch = g.batch
        scores.alpha = g.scale
        try enqueueGemm(memory(q), memory(k), memory(probabilities), scores)
        try softmax(probabilities, out: probabilities, rows: g.batch * lq, columns: lk)
        var values = StridedGemm(m: lq, n: d, k: lk, rsA: lk, csA: 1, rsB: d, csB: 1)
        values.strideA = lq * lk
        values.strideB = lk * d
        values.strideC = lq * d
        values.batch = g.batch
        try enqueueGemm(memory(probabilities), memory(v), memory(out), values)
    }

    public func attentionBackward(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, probabilities: DeviceBuffer,
                                  gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
                                  _ g: AttentionGeometry) throws {
        let (lq, lk, d) = (g.queryLength, g.keyLength, g.headDim)
        // dV = P^T dO
        var dv = StridedGemm(m: lk, n: d, k: lq, rsA: 1, csA: lk, rsB: d, csB: 1)
        dv.strideA = lq * lk
        dv.strideB = lq * d
        dv.strideC = lk * d
        dv.batch = g.batch
        try enqueueGemm(memory(probabilities), memory(gradOut), memory(gradV), dv)
        // dP = dO V^T, then dS = softmax'(dP) in place
        let dScores = try scratch(ScratchSlot.attention, count: g.batch * lq * lk)
        var dp = StridedGemm(m: lq, n: lk, k: d, rsA: d, csA: 1, rsB: 1, csB: d)
        dp.strideA = lq * d
        dp.strideB = lk * d
        dp.strideC = lq * lk
        dp.batch = g.batch
        try enqueueGemm(memory(gradOut), memory(v), dScores, dp)
        try launch1D("softmax_backward_rows", count: g.batch * lq, [.buffer(probabilities), .memory(dScores),
                                                                    .memory(dScores), .int(g.batch * lq), .int(lk)])
        // dQ = scale dS K; dK = scale dS^T Q
        var dq = StridedGemm(m: lq, n: d, k: lk, rsA: lk, csA: 1, rsB: d, csB: 1)
        dq.strideA = lq * lk
        dq.strideB = lk * d
        dq.strideC = lq * d
        dq.batch = g.batch
        dq.alpha = g.scale
        try enqueueGemm(dScores, memory(k), memory(gradQ), dq)
        var dk = StridedGemm(m: lk, n: d, k: lq, rsA: 1, csA: lk, rsB: d, csB: 1)
        dk.strideA = lq * lk
        dk.strideB = lq * d
        dk.strideC = lk * d
        dk.batch = g.batch
        dk.alpha = g.scale
        try enqueueGemm(dScores, memory(q), memory(gradK), dk)
    }

    public func maxPool2d(_ x: DeviceBuffer, out: DeviceBuffer, _ g: PoolGeometry) throws {
        let total = g.planes * g.outHeight * g.outWidth
        try launch1D("max_pool", count: total, [.buffer(x), .buffer(out), .int(g.height), .int(g.width), .int(g.kernel),
                                                .int(g.stride), .int(g.outHeight), .int(g.outWidth), .int(total)])
    }

    public func maxPool2dBackward(_ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer,
                                  _ g: PoolGeometry) throws {
        let total = g.planes * g.height * g.width
        try launch1D("max_pool_backward", count: total, [
            .buffer(x), .buffer(gradOut), .buffer(gradIn), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride),
            .int(g.outHeight), .int(g.outWidth), .int(total)])
    }

    public func upsampleNearest(_ x: DeviceBuffer, out: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.width * g.factor * g.factor
        try launch1D("upsample_nearest", count: total, [.buffer(x), .buffer(out), .int(g.height), .int(g.width),
                                                        .int(g.factor), .int(total)])
    }

    public func upsampleNearestBackward(gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.width
        try launch1D("upsample_nearest_backward", count: total, [.buffer(gradOut), .buffer(gradIn), .int(g.height),
                                                                 .int(g.width), .int(g.factor), .int(total)])
    }
}
