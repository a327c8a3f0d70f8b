// OpenCL group norm, softmax, attention (fused kernels, or GEMM + softmax for large heads), max pooling
// and nearest upsampling.
import COpenCL
import Tensor

extension OpenCLDevice {
    /// The forward kernels, which add the shift in their first pass when given one.
    public func groupNorm(
        _ x: DeviceBuffer, shift: DeviceBuffer?, sum: DeviceBuffer?, gamma: DeviceBuffer?, beta: DeviceBuffer?,
        out: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, _ g: GroupNormGeometry
    ) throws {
        let shifted = shift.flatMap { shift in sum.map { (shift: shift, sum: $0) } }
        let groups = g.batch * g.groups
        let groupSize = g.channelsPerGroup * g.spatial
        let total = g.batch * g.channels * g.spatial
        let affine = gamma != nil && beta != nil
        // With a shift the kernels also write x + shift: one more pass of traffic.
        let bytes = (shifted == nil ? 12.0 : 16.0) * Double(total)
        let shiftArguments: [KernelArgument] = [
            .buffer(shifted?.shift ?? mean), .buffer(shifted?.sum ?? out), .int(shifted == nil ? 0 : 1),
        ]
        if let serial = rowNormPasses(shifted == nil ? 3 : 4, groups: groups, perGroup: groupSize) {
            return try launch(
                "group_norm_forward_rows", global: [groups], local: [8], serial: serial, bytes: bytes,
                flops: 8.0 * Double(total),
                [
                    .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd), .buffer(out),
                    .int(g.channels), .int(g.spatial), .int(g.groups), .float(g.epsilon), .int(affine ? 1 : 0),
                    .int(g.silu ? 1 : 0), .int(groups),
                ] + shiftArguments)
        }
        let passes = 3 * ((groupSize + 63) / 64)
        if passes <= LaunchLedger.longLoop || groups * 64 >= LaunchLedger.narrowWorkItems {
            // Statistics and output in one launch: a work-group per group reads it three times.
            return try launch(
                "group_norm_forward", global: [groups * 64], local: [64], serial: passes, bytes: bytes,
                flops: 8.0 * Double(total),
                [
                    .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd), .buffer(out),
                    .int(g.channels), .int(g.spatial), .int(g.groups), .float(g.epsilon), .int(affine ? 1 : 0),
                    .int(g.silu ? 1 : 0),
                ] + shiftArguments)
        }
        // Few large groups: statistics per work-group, then the output over every element.
        try launch(
            "group_norm_stats", global: [groups * 64], local: [64], serial: 2 * ((groupSize + 63) / 64),
            bytes: (shifted == nil ? 8.0 : 12.0) * Double(total), flops: 4.0 * Double(total),
            [
                .buffer(x), .buffer(mean), .buffer(rstd), .int(groupSize), .float(g.epsilon), .int(groups), .int(g.channels),
                .int(g.spatial), .int(g.groups),
            ] + shiftArguments)
        try launch1D(
            "group_norm_apply", count: total, bytes: 8.0 * Double(total), flops: 4.0 * Double(total),
            [
                .buffer(shifted?.sum ?? x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd),
                .buffer(out), .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine ? 1 : 0), .int(g.silu ? 1 : 0),
                .int(total),
            ])
    }

    /// The loop length of a groupnorm_rows.cl kernel making `passes` vector passes over groups of
    /// `perGroup` floats, a work-item per group, or nil where it does not run: on GPUs (a work-item
    /// per group leaves most of one idle), and where the launch would be narrow and long.
    func rowNormPasses(_ passes: Int, groups: Int, perGroup: Int) -> Int? {
        let serial = passes * ((perGroup + 15) / 16)
        let fits = serial <= LaunchLedger.longLoop || groups >= LaunchLedger.narrowWorkItems
        return !runsGPUKernels && fits ? serial : nil
    }

    /// On CPU devices one launch of `group_norm_backward_rows` (a work-item per group). Elsewhere
    /// one launch (`group_norm_backward`, a work-group per group: its planes' sums of dy and
    /// dy * xhat, then the input gradient) or, for few large groups, two (the sums a work-group per
    /// plane, then the input gradient per element); then the batch sum of the same per-plane sums
    /// for gamma and beta, deferred. With SiLU fused, dy = dout * silu'(y) is recomputed in both passes.
    public func groupNormBackward(
        _ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, mean: DeviceBuffer,
        rstd: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool,
        gradGamma: DeviceBuffer?, gradBeta: DeviceBuffer?, _ g: GroupNormGeometry
    ) throws {
        let affine = gamma != nil && beta != nil ? 1 : 0
        let silu = g.silu ? 1 : 0
        let planes = g.batch * g.channels
        let total = planes * g.spatial
        // Pooled, not scratch: the gamma/beta sum over the batch is deferred (DeferredReductions).
        let partialsBuffer = try allocate(count: 2 * planes)
        let partials = memory(partialsBuffer)
        let groups = g.batch * g.groups
        let passes = 2 * g.channelsPerGroup * ((g.spatial + 63) / 64)
        if let serial = rowNormPasses(2, groups: groups, perGroup: g.channelsPerGroup * g.spatial) {
            try launch(
                "group_norm_backward_rows", global: [groups], local: [8], serial: serial,
                bytes: 16.0 * Double(total), flops: 16.0 * Double(total),
                [
                    .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd),
                    .buffer(gradOut), .memory(partials), .buffer(gradIn), .int(g.channels), .int(g.spatial),
                    .int(g.groups), .int(affine), .int(silu), .int(accumulate ? 1 : 0), .int(groups),
                ])
        } else if passes <= LaunchLedger.longLoop || groups * 64 >= LaunchLedger.narrowWorkItems {
            // Both in one launch, a work-group per group (as the forward), for groups that are not
            // both few and large.
            try launch(
                "group_norm_backward", global: [groups * 64], local: [64], serial: passes,
                bytes: 16.0 * Double(total), flops: 16.0 * Double(total),
                [
                    .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd),
                    .buffer(gradOut), .memory(partials), .buffer(gradIn), .int(g.channels), .int(g.spatial),
                    .int(g.groups), .int(affine), .int(silu), .int(accumulate ? 1 : 0),
                ])
        } else {
            try groupNormBackwardInTwoLaunches(
                x, gamma: gamma, beta: beta, mean: mean, rstd: rstd, gradOut: gradOut, gradIn: gradIn,
                accumulate: accumulate, partials: partials, g)
        }
        if gradGamma != nil || gradBeta != nil {
            // Both sums come from one pass; a missing output gets a throwaway buffer.
            let dGamma = try gradGamma ?? allocate(count: g.channels)
            let dBeta = try gradBeta ?? allocate(count: g.channels)
            try enqueueReduction(
                DeferredReduction(
                    partials: partialsBuffer, destination: dGamma, second: dBeta, size: g.channels, slices: g.batch,
                    mode: .pairs))
        }
    }

    /// Few large groups: the per-plane sums a work-group each, then the input gradient per element.
    func groupNormBackwardInTwoLaunches(
        _ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, mean: DeviceBuffer, rstd: DeviceBuffer,
        gradOut: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool, partials: cl_mem, _ g: GroupNormGeometry
    ) throws {
        let affine = gamma != nil && beta != nil ? 1 : 0
        let silu = g.silu ? 1 : 0
        let planes = g.batch * g.channels
        let total = planes * g.spatial
        try launch(
            "group_norm_backward_planes", global: [planes * 64], local: [64], serial: (g.spatial + 63) / 64,
            bytes: 8.0 * Double(total), flops: 6.0 * Double(total),
            [
                .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut),
                .memory(partials), .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine), .int(silu),
                .int(planes),
            ])
        try launch1D(
            "group_norm_backward_input", count: total, serial: g.channelsPerGroup, bytes: 12.0 * Double(total),
            flops: 10.0 * Double(total),
            [
                .buffer(x), .buffer(gamma ?? mean), .buffer(beta ?? mean), .buffer(mean), .buffer(rstd), .buffer(gradOut),
                .memory(partials), .buffer(gradIn), .int(g.channels), .int(g.spatial), .int(g.groups), .int(affine),
                .int(silu), .int(accumulate ? 1 : 0), .int(total),
            ])
    }

    public func softmax(_ x: DeviceBuffer, out: DeviceBuffer, rows: Int, columns: Int) throws {
        try launch1D(
            "softmax_rows", count: rows, serial: 3 * columns, bytes: 8.0 * Double(rows * columns),
            flops: 5.0 * Double(rows * columns), [.buffer(x), .buffer(out), .int(rows), .int(columns)])
    }

    public func softmaxBackward(
        y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int,
        columns: Int
    ) throws {
        try launch1D(
            "softmax_backward_rows", count: rows, serial: 2 * columns, bytes: 12.0 * Double(rows * columns),
            flops: 4.0 * Double(rows * columns),
            [
                .buffer(y), .buffer(gradOut), .buffer(gradIn), .int(rows),
                .int(columns),
            ])
    }

    /// The fused kernel variant (attention_fused.cl) for a head dim: the smallest bound of 8, 16, 32,
    /// 64 that holds it. The kernels keep one query's or key's vectors in registers, so larger heads
    /// take the GEMM + softmax route.
    static func fusedAttentionBound(_ headDim: Int) -> Int? {
        [8, 16, 32, 64].first { headDim <= $0 }
    }

    var attentionSuffix: String { attentionKernels == .lanes ? "_lanes" : "" }

    public func attentionSavedCount(_ g: AttentionGeometry) -> Int {
        OpenCLDevice.fusedAttentionBound(g.headDim) != nil ? g.batch * g.queryLength : g.batch * g.queryLength * g.keyLength
    }

    public func attention(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
        saved: DeviceBuffer, _ g: AttentionGeometry
    ) throws {
        let (lq, lk, d, b) = (g.queryLength, g.keyLength, g.headDim, g.batch)
        let (qs, ks) = (g.queryStrides, g.keyStrides)
        if let bound = OpenCLDevice.fusedAttentionBound(d) {
            // saved = one log-sum-exp per query row; the probabilities are never stored.
            let tiles: Int = (lq + 63) / 64
            let traffic: Int = b * d * (2 * lq + 2 * lk * tiles)
            return try launch(
                "attention_forward\(attentionSuffix)_d\(bound)", global: [lq, b], local: [64, 1], serial: lk,
                bytes: 4 * Double(traffic), flops: 4 * Double(b * lq * lk * d),
                [
                    .buffer(q), .buffer(k), .buffer(v), .buffer(out), .buffer(saved), .int(lq), .int(lk), .int(d),
                    .float(g.scale), .int(qs.channel), .int(qs.token), .int(ks.channel), .int(ks.token),
                ])
        }
        // scores = scale * Q K^T, then softmax in place, then P V.
        try enqueueGemm(
            memory(q), memory(k), memory(saved),
            .batched(
                m: lq, n: lk, k: d, rsA: qs.token, csA: qs.channel, rsB: ks.channel, csB: ks.token, batch: b,
                strideA: lq * d, strideB: lk * d, strideC: lq * lk, alpha: g.scale))
        try softmax(saved, out: saved, rows: b * lq, columns: lk)
        try product(
            memory(saved), rsA: lk, csA: 1, strideA: lq * lk, memory(v), rsB: ks.token, csB: ks.channel,
            strideB: lk * d, into: memory(out), m: lq, n: d, k: lk, batch: b, transposed: g.channelMajor)
    }

    public func attentionBackward(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer, saved: DeviceBuffer,
        gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
        _ g: AttentionGeometry
    ) throws {
        let (lq, lk, d, b) = (g.queryLength, g.keyLength, g.headDim, g.batch)
        let (qs, ks) = (g.queryStrides, g.keyStrides)
        if let bound = OpenCLDevice.fusedAttentionBound(d) {
            // delta_i = dO_i . O_i and dQ, then dK and dV.
            let delta = try scratch(ScratchSlot.attention, count: b * lq)
            let strides: [KernelArgument] = [
                .int(lq), .int(lk), .int(d), .float(g.scale), .int(qs.channel),
                .int(qs.token), .int(ks.channel), .int(ks.token),
            ]
            let flops = 8 * Double(b * lq * lk * d)
            let queryTiles: Int = (lq + 63) / 64, keyTiles: Int = (lk + 63) / 64
            let queryTraffic: Int = b * d * (3 * lq + 4 * lk * queryTiles)
            let keyTraffic: Int = b * d * (4 * lk + 2 * lq * keyTiles)
            try launch(
                "attention_backward_query\(attentionSuffix)_d\(bound)", global: [lq, b], local: [64, 1], serial: lk,
                bytes: 4 * Double(queryTraffic), flops: flops,
                [
                    .buffer(q), .buffer(k), .buffer(v), .buffer(out), .buffer(saved), .buffer(gradOut), .buffer(gradQ),
                    .memory(delta),
                ] + strides)
            return try launch(
                "attention_backward_key\(attentionSuffix)_d\(bound)", global: [lk, b], local: [64, 1], serial: lq,
                bytes: 4 * Double(keyTraffic), flops: flops,
                [
                    .buffer(q), .buffer(k), .buffer(v), .buffer(saved), .buffer(gradOut), .memory(delta), .buffer(gradK),
                    .buffer(gradV),
                ] + strides)
        }
        // dV = P^T dO
        try product(
            memory(saved), rsA: 1, csA: lk, strideA: lq * lk, memory(gradOut), rsB: qs.token, csB: qs.channel,
            strideB: lq * d, into: memory(gradV), m: lk, n: d, k: lq, batch: b, transposed: g.channelMajor)
        // dP = dO V^T, then dS = softmax'(dP) in place
        let dScores = try scratch(ScratchSlot.attention, count: b * lq * lk)
        try enqueueGemm(
            memory(gradOut), memory(v), dScores,
            .batched(
                m: lq, n: lk, k: d, rsA: qs.token, csA: qs.channel, rsB: ks.channel, csB: ks.token, batch: b,
                strideA: lq * d, strideB: lk * d, strideC: lq * lk))
        try launch1D(
            "softmax_backward_rows", count: b * lq, serial: 2 * lk, bytes: 12.0 * Double(b * lq * lk),
            flops: 4.0 * Double(b * lq * lk),
            [
                .buffer(saved), .memory(dScores),
                .memory(dScores), .int(b * lq), .int(lk),
            ])
        // dQ = scale dS K; dK = scale dS^T Q
        try product(
            dScores, rsA: lk, csA: 1, strideA: lq * lk, memory(k), rsB: ks.token, csB: ks.channel,
            strideB: lk * d, into: memory(gradQ), m: lq, n: d, k: lk, batch: b, transposed: g.channelMajor,
            alpha: g.scale)
        try product(
            dScores, rsA: 1, csA: lk, strideA: lq * lk, memory(q), rsB: qs.token, csB: qs.channel,
            strideB: lq * d, into: memory(gradK), m: lk, n: d, k: lq, batch: b, transposed: g.channelMajor,
            alpha: g.scale)
    }

    /// C = alpha A B per batch entry, with C [m, n] row-major, or stored transposed ([n, m]) as
    /// C^T = B^T A^T when `transposed` (a channel-major attention output).
    func product(
        _ a: cl_mem, rsA: Int, csA: Int, strideA: Int, _ b: cl_mem, rsB: Int, csB: Int, strideB: Int,
        into c: cl_mem, m: Int, n: Int, k: Int, batch: Int, transposed: Bool, alpha: Float = 1
    ) throws {
        if transposed {
            return try enqueueGemm(
                b, a, c,
                .batched(
                    m: n, n: m, k: k, rsA: csB, csA: rsB, rsB: csA, csB: rsA, batch: batch,
                    strideA: strideB, strideB: strideA, strideC: m * n, alpha: alpha))
        }
        try enqueueGemm(
            a, b, c,
            .batched(
                m: m, n: n, k: k, rsA: rsA, csA: csA, rsB: rsB, csB: csB, batch: batch,
                strideA: strideA, strideB: strideB, strideC: m * n, alpha: alpha))
    }

    public func maxPool2d(_ x: DeviceBuffer, out: DeviceBuffer, _ g: PoolGeometry) throws {
        let total = g.planes * g.outHeight
        try launch1D(
            "max_pool", count: total, serial: g.outWidth * g.kernel * g.kernel,
            [
                .buffer(x), .buffer(out), .int(g.height), .int(g.width), .int(g.kernel),
                .int(g.stride), .int(g.outHeight), .int(g.outWidth), .int(total),
            ])
    }

    public func maxPool2dBackward(
        _ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer,
        _ g: PoolGeometry
    ) throws {
        if g.stride == g.kernel && g.height % g.kernel == 0 && g.width % g.kernel == 0 {
            let rows = g.planes * g.outHeight
            return try launch1D(
                "max_pool_backward_windows", count: rows, serial: 2 * g.outWidth * g.kernel * g.kernel,
                [
                    .buffer(x), .buffer(gradOut), .buffer(gradIn), .int(g.height), .int(g.width), .int(g.kernel),
                    .int(g.outHeight), .int(g.outWidth), .int(rows),
                ])
        }
        let total = g.planes * g.height * g.width
        try launch1D(
            "max_pool_backward", count: total, serial: g.kernel * g.kernel * g.kernel * g.kernel,
            [
                .buffer(x), .buffer(gradOut), .buffer(gradIn), .int(g.height), .int(g.width), .int(g.kernel), .int(g.stride),
                .int(g.outHeight), .int(g.outWidth), .int(total),
            ])
    }

    public func upsampleNearest(_ x: DeviceBuffer, out: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.factor
        try launch1D(
            "upsample_nearest", count: total, serial: g.width * g.factor,
            [
                .buffer(x), .buffer(out), .int(g.height), .int(g.width),
                .int(g.factor), .int(total),
            ])
    }

    public func upsampleNearestBackward(gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let total = g.planes * g.height * g.width
        try launch1D(
            "upsample_nearest_backward", count: total, serial: g.factor * g.factor,
            [
                .buffer(gradOut), .buffer(gradIn), .int(g.height),
                .int(g.width), .int(g.factor), .int(total),
            ])
    }
}
