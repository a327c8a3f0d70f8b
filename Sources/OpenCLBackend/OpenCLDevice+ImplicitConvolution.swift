// Implicit-GEMM convolutions (Kernels/conv_tiled.cl) wherever gemm_tiled is the GEMM: a convolution,
// its input gradient and its weight gradient are each one launch on gemm_tiled's tiles, gathering
// the im2col matrix tile by tile into local memory instead of writing it out. Where a launch would
// be narrow and long (issue 9, item 1) its K is split into slices summed by one reduction, which
// also adds the bias. Replaces im2col + GEMM, GEMM + col2im and im2col + per-image GEMMs.
import COpenCL
import Tensor

/// What conv_tiled computes (its `mode` argument; the kernel's header gives the equations).
enum ImplicitConvolution: Int {
    case forward = 0, weightGradient = 1, inputGradient = 2
}

extension OpenCLDevice {
    /// Whether this device runs a GPU's kernels (conv_tiled, deferred weight-gradient sums): on a
    /// GPU, or wherever gemm_tiled is forced, when its work-group fits.
    var runsGPUKernels: Bool {
        guard tiledGemmFits else { return false }
        switch gemmKernel {
        case .tiled: return true
        case .vector: return false
        case .automatic, .clblast: return info.isGPU
        }
    }

    /// Whether `g`'s convolutions run on conv_tiled: every layer that would otherwise need im2col
    /// (a 1x1 layer's input already is its matrix).
    func usesImplicitConvolution(_ g: Conv2dGeometry) -> Bool { !g.isPointwise && runsGPUKernels }

    /// Work-groups of conv_tiled along N and M for an m x n product, in work-items.
    private func tiledGrid(m: Int, n: Int) -> (columns: Int, rows: Int) {
        let shape = tiledGemm
        return (
            (n + shape.blockColumns - 1) / shape.blockColumns * shape.groupColumns,
            (m + shape.blockRows - 1) / shape.blockRows * shape.groupRows
        )
    }

    /// K slices for a product of `gridBatch` entries: one unless the launch would be narrow and long.
    /// The weight gradient's K runs over the whole batch, so it is always cut into slices of at most
    /// `LaunchLedger.longLoop`.
    private func slices(_ mode: ImplicitConvolution, m: Int, n: Int, k: Int, gridBatch: Int) -> Int {
        let long = (k + LaunchLedger.longLoop - 1) / LaunchLedger.longLoop
        if mode == .weightGradient { return max(long, 1) }
        let grid = tiledGrid(m: m, n: n)
        let narrow = grid.columns * grid.rows * gridBatch < LaunchLedger.narrowWorkItems
        return narrow && long > 1 ? long : 1
    }

    /// One conv_tiled launch writing `slices * gridBatch` products of m x n at `out`.
    private func enqueueImplicit(
        _ mode: ImplicitConvolution, a: cl_mem, b: cl_mem, out: cl_mem, bias: cl_mem?, hasBias: Int, accumulate: Bool = false,
        activated: cl_mem? = nil, m: Int, n: Int, k: Int, gridBatch: Int, slices: Int, sourceFloats: Int,
        _ g: Conv2dGeometry
    ) throws {
        let depth = tiledGemm.depth
        // Whole K tiles per slice, so that only the last slice ends inside a tile.
        let per = ((k + slices - 1) / slices + depth - 1) / depth * depth
        let grid = tiledGrid(m: m, n: n)
        let outputs = slices * gridBatch * m * n
        try launch(
            "conv_tiled", global: [grid.columns, grid.rows, slices * gridBatch],
            local: [tiledGemm.groupColumns, tiledGemm.groupRows, 1], serial: per,
            bytes: 4.0 * Double(sourceFloats + outputs * (activated == nil ? 1 : 2)),
            flops: 2.0 * Double(gridBatch) * Double(m) * Double(n) * Double(k),
            [
                .memory(a), .memory(b), .memory(out), .memory(bias ?? a), .memory(activated ?? out), .int(mode.rawValue),
                .int(m), .int(n), .int(k), .int(per), .int(gridBatch), .int(hasBias), .int(accumulate ? 1 : 0),
                .int(activated == nil ? 0 : 1), .int(g.outChannels),
            ] + geometryArguments(g)
                + [
                    g.kernelHeight * g.kernelWidth, g.kernelWidth, g.outWidth, g.outHeight * g.outWidth, g.width,
                    g.strideHeight, g.strideWidth,
                ].map { .divisor($0) })
    }

    /// Forward (mode 0) or input gradient (mode 2): one product per image, the bias added by the
    /// kernel, or by the reduction when K is split; `accumulate` adds the result to what `out` holds.
    /// With `activated` (forward only), silu of the result goes there: in the kernel's epilogue, or
    /// after the reduction when K is split.
    func implicitConvolution(
        _ mode: ImplicitConvolution, a: cl_mem, b: cl_mem, out: cl_mem, bias: cl_mem?, accumulate: Bool,
        activated: cl_mem? = nil, _ g: Conv2dGeometry
    ) throws {
        let forward = mode == .forward
        let m = forward ? g.outChannels : g.inChannels
        let n = forward ? g.outHeight * g.outWidth : g.height * g.width
        let k = forward ? g.patchSize : g.outChannels * g.kernelHeight * g.kernelWidth
        let sourceFloats =
            g.outChannels * g.patchSize + g.batch
            * (forward ? g.inChannels * g.height * g.width : g.outChannels * g.outHeight * g.outWidth)
        let count = slices(mode, m: m, n: n, k: k, gridBatch: g.batch)
        if count == 1 {
            return try enqueueImplicit(
                mode, a: a, b: b, out: out, bias: bias, hasBias: bias == nil ? 0 : 1, accumulate: accumulate,
                activated: activated, m: m, n: n, k: k, gridBatch: g.batch, slices: 1, sourceFloats: sourceFloats, g)
        }
        let size = g.batch * m * n
        let partials = try scratch(ScratchSlot.splitK, count: count * size)
        try enqueueImplicit(
            mode, a: a, b: b, out: partials, bias: nil, hasBias: 0, m: m, n: n, k: k, gridBatch: g.batch,
            slices: count, sourceFloats: sourceFloats, g)
        try sumBatch(
            partials, into: out, size: size, batch: count, offset: 0, beta: accumulate ? 1 : 0,
            bias: (bias, bias == nil ? 0 : 1), columns: n, rows: m)
        if let activated { try silu(out, into: activated, count: size) }
    }

    /// Weight (and bias) gradient (mode 1): K runs over every pixel of every image in slices; with a
    /// bias the product has a column of ones, and a deferred reduction adds up the slices into both.
    func implicitWeightGradient(
        x: DeviceBuffer, gradOut: DeviceBuffer, gradWeight: DeviceBuffer, gradBias: DeviceBuffer?, _ g: Conv2dGeometry
    ) throws {
        let m = g.outChannels
        let n = g.patchSize + (gradBias == nil ? 0 : 1)
        let k = g.batch * g.outHeight * g.outWidth
        let sourceFloats = g.batch * (g.outChannels * g.outHeight * g.outWidth + g.inChannels * g.height * g.width)
        let count = slices(.weightGradient, m: m, n: n, k: k, gridBatch: 1)
        let size = m * n
        if gradBias == nil && count == 1 {
            return try enqueueImplicit(
                .weightGradient, a: memory(gradOut), b: memory(x), out: memory(gradWeight), bias: nil, hasBias: 0, m: m,
                n: n, k: k, gridBatch: 1, slices: 1, sourceFloats: sourceFloats, g)
        }
        // The slices go to a pooled buffer of their own, summed later by a deferred reduction.
        let partials = try allocate(count: count * size)
        try enqueueImplicit(
            .weightGradient, a: memory(gradOut), b: memory(x), out: memory(partials), bias: nil,
            hasBias: gradBias == nil ? 0 : 3, m: m, n: n, k: k, gridBatch: 1, slices: count, sourceFloats: sourceFloats, g)
        try enqueueReduction(
            DeferredReduction(
                partials: partials, destination: gradWeight, second: gradBias, size: size, slices: count,
                mode: gradBias == nil ? .plain : .split, columns: n))
    }
}
