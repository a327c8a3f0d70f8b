// OpenCL data movement, elementwise and broadcast ops, reductions, loss, optimizer and random fills.
import COpenCL
import Tensor

extension OpenCLDevice {
    public func fill(_ out: DeviceBuffer, value: Float, count: Int) throws {
        try launch1D("fill", count: count, bytes: 4.0 * Double(count), [.buffer(out), .float(value), .int(count)])
    }

    /// One float per work-item on GPUs (`copy_blocks`), 16 on CPU devices (`copy_blocks_rows`).
    public func copyBlocks(from source: DeviceBuffer, to destination: DeviceBuffer, _ g: BlockCopyGeometry) throws {
        let total = g.blockCount * g.blockLength
        let items = copyItems(g)
        try launch1D(
            prefersVectorItems ? "copy_blocks_rows" : "copy_blocks", count: items, serial: total / max(items, 1),
            bytes: 8.0 * Double(total), copyArguments(source, destination, g))
    }

    /// Work-items of a copy: one per float, or on CPU devices one per 16 floats of a block.
    private func copyItems(_ g: BlockCopyGeometry) -> Int {
        prefersVectorItems ? g.blockCount * ((g.blockLength + 15) / 16) : g.blockCount * g.blockLength
    }

    private func copyArguments(
        _ source: DeviceBuffer, _ destination: DeviceBuffer, _ g: BlockCopyGeometry
    )
        -> [KernelArgument]
    {
        [
            .buffer(source), .buffer(destination), .int(max(g.blockLength, 1)), .int(g.sourceOffset),
            .int(g.sourceStride), .int(g.destinationOffset), .int(g.destinationStride), .int(g.accumulate ? 1 : 0),
            .int(copyItems(g)),
        ]
    }

    /// Two copies per launch (`copy_blocks_pair`, or `copy_blocks_pair_rows` on CPU devices): a
    /// UNet's skip concatenations and their gradients.
    public func copyBlocks(_ copies: [BlockCopy]) throws {
        var rest = copies[...]
        while let a = rest.popFirst() {
            guard let b = rest.popFirst() else { return try copyBlocks(from: a.source, to: a.destination, a.geometry) }
            let total = a.geometry.blockCount * a.geometry.blockLength + b.geometry.blockCount * b.geometry.blockLength
            let items = copyItems(a.geometry) + copyItems(b.geometry)
            try launch1D(
                prefersVectorItems ? "copy_blocks_pair_rows" : "copy_blocks_pair", count: items,
                serial: total / max(items, 1), bytes: 8.0 * Double(total),
                copyArguments(a.source, a.destination, a.geometry) + copyArguments(b.source, b.destination, b.geometry))
        }
    }

    public func transpose(_ x: DeviceBuffer, out: DeviceBuffer, _ g: TransposeGeometry) throws {
        let total = g.batch * g.rows * g.columns
        try launch1D(
            "transpose", count: total, bytes: 8.0 * Double(total),
            [.buffer(x), .buffer(out), .int(g.rows), .int(g.columns), .int(total)])
    }

    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, out: DeviceBuffer, count: Int) throws {
        if op == .silu { return try silu(memory(x), into: memory(out), count: count) }
        try launch1D(
            "unary", count: count, bytes: 8.0 * Double(count), flops: 4.0 * Double(count),
            [.int(op.rawValue), .buffer(x), .buffer(out), .int(count)])
    }

    /// out = silu(x): 16 floats per work-item on CPU devices (`silu_rows`), one on GPUs.
    func silu(_ x: cl_mem, into out: cl_mem, count: Int) throws {
        if prefersVectorItems {
            return try launch1D(
                "silu_rows", count: (count + 15) / 16, serial: 16, bytes: 8.0 * Double(count), flops: 4.0 * Double(count),
                [.memory(x), .memory(out), .int(count)])
        }
        try launch1D(
            "unary", count: count, bytes: 8.0 * Double(count), flops: 4.0 * Double(count),
            [.int(UnaryOp.silu.rawValue), .memory(x), .memory(out), .int(count)])
    }

    public func unaryBackward(
        _ op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int
    ) throws {
        if op == .silu && prefersVectorItems {
            return try launch1D(
                "silu_backward_rows", count: (count + 15) / 16, serial: 16, bytes: 12.0 * Double(count),
                flops: 6.0 * Double(count), [.buffer(x), .buffer(gradOut), .buffer(gradIn), .int(count)])
        }
        try launch1D(
            "unary_backward", count: count, bytes: 16.0 * Double(count), flops: 6.0 * Double(count),
            [
                .int(op.rawValue), .buffer(x), .buffer(y), .buffer(gradOut),
                .buffer(gradIn), .int(count),
            ])
    }

    public func affine(_ x: DeviceBuffer, out: DeviceBuffer, scale: Float, shift: Float, count: Int) throws {
        try launch1D(
            "affine", count: count, bytes: 8.0 * Double(count), flops: 2.0 * Double(count),
            [.buffer(x), .buffer(out), .float(scale), .float(shift), .int(count)])
    }

    public func linearCombination(
        _ x: DeviceBuffer, _ a: Float, _ y: DeviceBuffer, _ b: Float, out: DeviceBuffer,
        count: Int
    ) throws {
        try launch1D(
            "linear_combination", count: count, bytes: 12.0 * Double(count), flops: 3.0 * Double(count),
            [
                .buffer(x), .float(a), .buffer(y), .float(b), .buffer(out),
                .int(count),
            ])
    }

    public func clamp(_ x: DeviceBuffer, out: DeviceBuffer, low: Float, high: Float, count: Int) throws {
        try launch1D(
            "clamp_values", count: count, bytes: 8.0 * Double(count),
            [.buffer(x), .buffer(out), .float(low), .float(high), .int(count)])
    }

    public func binary(
        _ op: BinaryOp, _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer,
        _ g: BroadcastGeometry
    ) throws {
        let n = g.count
        if g.shape.count == 1 && g.stridesA == [1] && g.stridesB == [1] {
            return try launch1D(
                "binary_same", count: n, bytes: 12.0 * Double(n), flops: Double(n),
                [.int(op.rawValue), .buffer(a), .buffer(b), .buffer(out), .int(n)])
        }
        let meta = try geometryBuffer([Int32(g.shape.count)] + (g.shape + g.stridesA + g.stridesB).map { Int32($0) })
        try launch1D(
            "binary", count: n, bytes: 12.0 * Double(n), flops: Double(n),
            [.int(op.rawValue), .buffer(a), .buffer(b), .buffer(out), .memory(meta), .int(n)])
    }

    /// Full sums in two launches: groups of 64 work-items into partials, then one group.
    func sumAll(_ x: cl_mem, _ y: cl_mem, count: Int, squaredDifference: Bool, scale: Float, out: DeviceBuffer) throws {
        let groups = max(1, min(256, count / 4096))
        let partials = try scratch(ScratchSlot.partials, count: groups)
        try launch(
            "sum_partials", global: [groups * 64], local: [64], serial: (count + groups * 64 - 1) / (groups * 64),
            bytes: Double(count * (squaredDifference ? 8 : 4)), flops: Double(count * (squaredDifference ? 3 : 1)),
            [.memory(x), .memory(y), .memory(partials), .int(count), .int(squaredDifference ? 1 : 0)])
        try launch(
            "sum_final", global: [64], local: [64], serial: (groups + 63) / 64,
            [.memory(partials), .buffer(out), .int(groups), .float(scale)])
    }

    public func reduceSum(_ x: DeviceBuffer, out: DeviceBuffer, _ g: ReduceGeometry) throws {
        if g.outputCount == 1 {
            return try sumAll(memory(x), memory(x), count: g.inputCount, squaredDifference: false, scale: 1, out: out)
        }
        if g.shape.count == 2 && (g.outputStrides == [0, 1] || g.outputStrides == [1, 0]) {
            // Over the rows (a Linear's bias gradient) or along each row (a broadcast [N, C, 1, 1]
            // gradient): a deferred sum, run with others when the result is first read.
            let alongRows = g.outputStrides == [1, 0]
            return try enqueueReduction(
                DeferredReduction(
                    partials: x, destination: out, size: g.outputCount, slices: g.shape[alongRows ? 1 : 0],
                    mode: alongRows ? .runs : .plain))
        }
        let inputStrides = Shape.contiguousStrides(g.shape)
        let meta = try geometryBuffer([Int32(g.shape.count)] + (g.shape + inputStrides + g.outputStrides).map { Int32($0) })
        let reduced = g.inputCount / max(g.outputCount, 1)
        try launch(
            "reduce_sum", global: [g.outputCount * 64], local: [64], serial: (reduced + 63) / 64,
            bytes: 4.0 * Double(g.inputCount + g.outputCount), flops: Double(g.inputCount),
            [.buffer(x), .buffer(out), .memory(meta), .int(g.outputCount), .int(reduced)])
    }

    public func mseLoss(_ prediction: DeviceBuffer, _ target: DeviceBuffer, out: DeviceBuffer, count: Int) throws {
        try sumAll(
            memory(prediction), memory(target), count: count, squaredDifference: true,
            scale: 1 / Float(max(count, 1)), out: out)
    }

    public func mseLossBackward(
        _ prediction: DeviceBuffer, _ target: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int
    ) throws {
        try launch1D(
            "mse_backward", count: count, bytes: 12.0 * Double(count), flops: 2.0 * Double(count),
            [
                .buffer(prediction), .buffer(target), .buffer(gradOut),
                .buffer(gradIn), .int(count),
            ])
    }

    /// One tensor is a group of one: a single kernel serves both.
    public func adamUpdate(
        parameter: DeviceBuffer, gradient: DeviceBuffer, firstMoment: DeviceBuffer,
        secondMoment: DeviceBuffer, count: Int, _ h: AdamStep
    ) throws {
        try adamUpdate(
            [
                AdamTensor(
                    parameter: parameter, gradient: gradient, firstMoment: firstMoment,
                    secondMoment: secondMoment, count: count)
            ], h)
    }

    /// Tensors per `adam_update24` launch.
    static let adamSlots = 24

    /// 24 tensors per launch (`adam_update24`): the 318 of a UNet2DModel step take 14 launches.
    public func adamUpdate(_ tensors: [AdamTensor], _ h: AdamStep) throws {
        let launches = multiTensorLaunches(
            tensors, slots: OpenCLDevice.adamSlots, count: \.count,
            buffers: { [$0.parameter, $0.gradient, $0.firstMoment, $0.secondMoment] })
        for (group, total) in launches {
            let arguments =
                group + [
                    .float(h.oneMinusBeta1), .float(h.beta2), .float(h.oneMinusBeta2), .float(h.epsilon),
                    .float(h.gradientWeightDecay), .float(h.parameterDecayFactor), .float(h.stepSize),
                    .float(h.biasCorrection2Sqrt),
                ]
            try launchMultiTensor(
                "adam_update24", total: total, bytes: 28.0 * Double(total), flops: 16.0 * Double(total), arguments)
        }
    }

    /// Tensors per `ema_update32` launch.
    static let averageSlots = 32

    /// 32 tensors per launch (`ema_update32`): a UNet2DModel's 318 take 10.
    public func movingAverage(_ pairs: [AveragedTensor], decay: Float, oneMinusDecay: Float) throws {
        let launches = multiTensorLaunches(
            pairs, slots: OpenCLDevice.averageSlots, count: \.count, buffers: { [$0.average, $0.value] })
        for (group, total) in launches {
            let arguments = group + [.float(decay), .float(oneMinusDecay)]
            try launchMultiTensor(
                "ema_update32", total: total, bytes: 12.0 * Double(total), flops: 3.0 * Double(total), arguments)
        }
    }

    public func schedulerStep(
        sample: DeviceBuffer, modelOutput: DeviceBuffer, noise: DeviceBuffer?,
        previous: DeviceBuffer, predictedOriginal: DeviceBuffer,
        _ g: SchedulerStepGeometry
    ) throws {
        try launch1D(
            "scheduler_step", count: g.count, bytes: 20.0 * Double(g.count), flops: 10.0 * Double(g.count),
            [
                .buffer(sample), .buffer(modelOutput), .buffer(noise ?? sample), .buffer(previous), .buffer(predictedOriginal),
                .int(g.count), .int(g.prediction.rawValue), .float(g.sqrtAlphaProduct), .float(g.sqrtBetaProduct),
                .int(g.clipRange == nil ? 0 : 1), .float(g.clipRange ?? 0), .int(g.recomputeEpsilon ? 1 : 0),
                .float(g.x0Coefficient), .float(g.sampleCoefficient), .float(g.epsilonCoefficient),
                .float(g.noiseCoefficient), .int(noise == nil ? 0 : 1),
            ])
    }

    func randomArguments(_ key: RandomKey) -> [KernelArgument] {
        [
            .uint(UInt32(truncatingIfNeeded: key.seed)), .uint(UInt32(truncatingIfNeeded: key.seed >> 32)),
            .uint(UInt32(truncatingIfNeeded: key.offset)), .uint(UInt32(truncatingIfNeeded: key.offset >> 32)),
            .int(key.shift),
        ]
    }

    public func fillUniform(_ out: DeviceBuffer, count: Int, key: RandomKey, low: Float, high: Float) throws {
        try launch1D(
            "philox_uniform", count: Int(Philox.blocks(for: count + key.shift)),
            [.buffer(out), .int(count)] + randomArguments(key) + [.float(low), .float(high)])
    }

    public func fillDropoutMask(_ out: DeviceBuffer, count: Int, key: RandomKey, probability: Float) throws {
        try launch1D(
            "philox_dropout_mask", count: Int(Philox.blocks(for: count + key.shift)),
            [.buffer(out), .int(count)] + randomArguments(key) + [.float(probability)])
    }

    public func fillNormal(_ out: DeviceBuffer, count: Int, key: RandomKey, mean: Float, standardDeviation: Float) throws {
        try launch1D(
            "philox_normal", count: Int(Philox.blocks(for: count + key.shift)),
            [.buffer(out), .int(count)] + randomArguments(key) + [.float(mean), .float(standardDeviation)])
    }
}

/// Slots of the device's grow-only scratch buffers.
enum ScratchSlot {
    static let partials = 0
    static let columns = 1
    static let attention = 2
    static let gemmPartials = 3
    static let normPartials = 4
    static let splitK = 5
    static let paddedGradient = 6
}
