// OpenCL GEMM and convolution. On CPU devices: stride-1 layers on conv_rows (OpenCLDevice+RowConvolution.swift),
// others through im2col over chunks of the batch into a scratch buffer, then one batched GEMM per
// chunk writing NCHW directly; direct kernels for layers with few output channels; weight gradients
// through im2col. GPUs run implicit-GEMM convolutions instead (OpenCLDevice+ImplicitConvolution.swift).
import COpenCL
import DiffuseCore
import Foundation
import Tensor

/// A GEMM through strides: A(i,k) = A[offA + b*strideA + i*rsA + k*csA], likewise B; C row-major.
struct StridedGemm {
    var m: Int, n: Int, k: Int
    var rsA: Int, csA: Int, rsB: Int, csB: Int
    var offsetA = 0, offsetB = 0, offsetC = 0
    var strideA = 0, strideB = 0, strideC = 0
    var batch = 1
    var alpha: Float = 1, beta: Float = 0
    /// Added to every element of row i (the output channel of a convolution).
    var rowBias: cl_mem?
    /// Added to every element of column j (a Linear layer's output feature); not with rowBias.
    var columnBias: cl_mem?
    /// B's last column (n - 1) reads as ones: C's last column is then A's row sums, a
    /// convolution's bias gradient riding along with its weight gradient. No bias with it.
    var onesColumn = false

    /// The kernels' bias argument and its mode (0 none, 1 per row, 2 per column, 3 ones column).
    var bias: (memory: cl_mem?, mode: Int) {
        if let rowBias { return (rowBias, 1) }
        if let columnBias { return (columnBias, 2) }
        return (nil, onesColumn ? 3 : 0)
    }

    /// A batch of independent products with the given per-entry strides.
    static func batched(
        m: Int, n: Int, k: Int, rsA: Int, csA: Int, rsB: Int, csB: Int, batch: Int,
        strideA: Int, strideB: Int, strideC: Int, alpha: Float = 1
    ) -> StridedGemm {
        var g = StridedGemm(m: m, n: n, k: k, rsA: rsA, csA: csA, rsB: rsB, csB: csB)
        g.batch = batch
        g.strideA = strideA
        g.strideB = strideB
        g.strideC = strideC
        g.alpha = alpha
        return g
    }
}

/// The GEMM kernel `enqueueGemm` launches: `gemm_tiled` (local-memory tiles, for GPUs), `gemm`
/// (per-work-item vector tiles, for CPU devices and small products), chosen per product, or
/// CLBlast (CLBlast.swift) for every product it can express, chosen per product otherwise.
enum GemmKernelChoice: String, Sendable {
    case automatic = "auto", tiled, vector, clblast

    /// The value of `DIFFUSE_GEMM_KERNEL`; unset or empty is automatic, anything unknown an error
    /// (a mistyped override would otherwise time the kernel it meant to avoid).
    init(environment value: String?) throws {
        guard let value, !value.isEmpty else { self = .automatic; return }
        guard let choice = GemmKernelChoice(rawValue: value.lowercased()) else {
            throw DiffuseError.usage("DIFFUSE_GEMM_KERNEL=\(value): expected tiled, vector, clblast or auto")
        }
        self = choice
    }
}

extension OpenCLDevice {
    /// Whether `g` runs on `gemm_tiled`. Automatically only on a GPU, and only when the product
    /// fills at least a quarter of a 64 x 64 block on each side (m, n >= 32) and a whole K tile:
    /// below that most of each work-group multiplies zero padding and waits at barriers, while
    /// `gemm` needs neither, and such products are bound by writing C anyway.
    func usesTiledGemm(_ g: StridedGemm) -> Bool {
        switch gemmKernel {
        case .tiled: return true
        case .vector: return false
        case .automatic, .clblast:
            return info.isGPU && tiledGemmFits && g.m >= 32 && g.n >= 32 && g.k >= tiledGemm.depth
        }
    }

    /// Work-group shape of the GEMM; DIFFUSE_GEMM_LOCAL=AxB overrides it for tuning.
    var gemmLocalSize: [Int] {
        if let text = ProcessInfo.processInfo.environment["DIFFUSE_GEMM_LOCAL"] {
            let parts = text.split(separator: "x").compactMap { Int($0) }
            if parts.count == 2 { return [parts[0], parts[1], 1] }
        }
        return [8, 4, 1]
    }

    /// A batch summed into one C (strideC 0, weight gradients) is computed as one product per
    /// entry into scratch, in parallel, then added up by `sum_batch`: summing the batch inside each
    /// work-item left a few hundred work-items looping over batch * K (issue 9).
    func enqueueGemm(_ a: cl_mem, _ b: cl_mem, _ c: cl_mem, _ g: StridedGemm) throws {
        if g.strideC == 0 && g.batch > 1 {
            let size = g.m * g.n
            let partials = try scratch(ScratchSlot.gemmPartials, count: g.batch * size)
            var each = g
            each.strideC = size
            each.offsetC = 0
            each.beta = 0
            each.rowBias = nil
            each.columnBias = nil
            try enqueueGemm(a, b, partials, each)
            return try sumBatch(
                partials, into: c, size: size, batch: g.batch, offset: g.offsetC, beta: g.beta,
                bias: g.bias, columns: g.n, rows: g.m)
        }
        if try enqueueCLBlastGemm(a, b, c, g) { return }
        let tiled = usesTiledGemm(g)
        if tiled && !tiledGemmFits {
            throw DiffuseError.device(
                "gemm_tiled was forced, but its \(tiledGemm.workGroupSize)-item work-group and \(tiledGemm.localBytes) bytes of "
                    + "local memory do not fit \(info.name)"
            )
        }
        let tile = gemmTile, shape = tiledGemm
        // Work-items per batch entry along N and M: for gemm_tiled whole work-groups per block of C.
        let columns =
            tiled
            ? (g.n + shape.blockColumns - 1) / shape.blockColumns * shape.groupColumns
            : (g.n + tile.columns - 1) / tile.columns
        let rows =
            tiled
            ? (g.m + shape.blockRows - 1) / shape.blockRows * shape.groupRows
            : (g.m + tile.rows - 1) / tile.rows
        let workItems = columns * rows * g.batch
        if g.k > LaunchLedger.longLoop, workItems < LaunchLedger.narrowWorkItems, g.strideC == g.m * g.n {
            // Split-K: too few outputs to fill a GPU and a long K each (the 128-channel 3x3 layers of
            // the up path at 7x7: K = 1,152): slices of K into scratch, summed with bias and beta.
            let slices = (g.k + LaunchLedger.longLoop - 1) / LaunchLedger.longLoop
            let per = (g.k + slices - 1) / slices
            let size = g.batch * g.m * g.n
            let partials = try scratch(ScratchSlot.splitK, count: slices * size)
            for slice in 0..<slices {
                var each = g
                each.k = min(per, g.k - slice * per)
                each.offsetA += slice * per * g.csA
                each.offsetB += slice * per * g.rsB
                each.offsetC = slice * size
                each.beta = 0
                each.rowBias = nil
                each.columnBias = nil
                try enqueueGemm(a, b, partials, each)
            }
            return try sumBatch(
                partials, into: c, size: size, batch: slices, offset: g.offsetC, beta: g.beta,
                bias: g.bias, columns: g.n, rows: g.m)
        }
        let flops = 2.0 * Double(g.m) * Double(g.n) * Double(g.k) * Double(g.batch)
        let bytes = 4.0 * Double(g.batch) * Double(g.m * g.k + g.k * g.n + g.m * g.n)
        // Both kernels loop over K (and over the batch when it is summed into one C) per work-item.
        try launch(
            tiled ? "gemm_tiled" : "gemm", global: [columns, rows, g.strideC == 0 ? 1 : g.batch],
            local: tiled ? [shape.groupColumns, shape.groupRows, 1] : gemmLocalSize,
            serial: g.k * (g.strideC == 0 ? g.batch : 1), bytes: bytes, flops: flops,
            [
                .memory(a), .memory(b), .memory(c), .int(g.m), .int(g.n), .int(g.k), .int(g.rsA), .int(g.csA),
                .int(g.rsB), .int(g.csB), .int(g.offsetA), .int(g.offsetB), .int(g.offsetC), .int(g.strideA),
                .int(g.strideB), .int(g.strideC), .int(g.batch), .float(g.alpha), .float(g.beta),
                .memory(g.bias.memory ?? a), .int(g.bias.mode),
            ])
    }

    /// c[offset + i] = sum over b of partials[b * size + i] + beta c[offset + i] + bias[(i / columns) % rows]
    /// (mode 1) or bias[i % columns] (mode 2).
    func sumBatch(
        _ partials: cl_mem, into c: cl_mem, size: Int, batch: Int, offset: Int, beta: Float,
        bias: (memory: cl_mem?, mode: Int), columns: Int, rows: Int
    ) throws {
        try launch1D(
            "sum_batch", count: size, serial: batch, bytes: Double(4 * size * (batch + 1)),
            flops: Double(size * batch),
            [
                .memory(partials), .memory(c), .int(size), .int(batch), .int(offset), .float(beta),
                .memory(bias.memory ?? partials), .int(bias.mode), .int(max(columns, 1)), .int(max(rows, 1)),
            ])
    }

    public func gemm(
        _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer, _ g: GemmGeometry,
        columnBias: DeviceBuffer?
    ) throws {
        var s = StridedGemm(
            m: g.m, n: g.n, k: g.k,
            rsA: g.transposeA ? 1 : g.k, csA: g.transposeA ? g.m : 1,
            rsB: g.transposeB ? 1 : g.n, csB: g.transposeB ? g.k : 1)
        s.strideA = g.strideA
        s.strideB = g.strideB
        s.strideC = g.strideOut
        s.batch = g.batch
        s.alpha = g.alpha
        s.beta = g.beta
        s.columnBias = columnBias.map { memory($0) }
        try enqueueGemm(memory(a), memory(b), memory(out), s)
    }

    func geometryArguments(_ g: Conv2dGeometry) -> [KernelArgument] {
        [
            g.inChannels, g.height, g.width, g.kernelHeight, g.kernelWidth, g.strideHeight, g.strideWidth,
            g.paddingHeight, g.paddingWidth, g.outHeight, g.outWidth,
        ].map { .int($0) }
    }

    /// Floats of column scratch a convolution may use: 1/16 of the device's memory, between 64 MiB
    /// and 256 MiB. A whole batch of the seed UNet's widest layer (173 MB at batch 64) then runs as
    /// one im2col and one GEMM; a 64 MiB cap split it into three of each.
    var columnScratchLimit: Int {
        let sixteenth = Int(min(info.globalMemoryBytes / 16, UInt64(Int.max))) / 4
        return min(max(sixteenth, 16 << 20), 64 << 20)
    }

    /// Images per chunk so that the column scratch stays within `columnScratchLimit`.
    func chunk(_ g: Conv2dGeometry) -> Int {
        max(1, min(g.batch, columnScratchLimit / max(g.patchSize * g.outHeight * g.outWidth, 1)))
    }

    func forEachChunk(_ g: Conv2dGeometry, _ body: (_ first: Int, _ count: Int) throws -> Void) rethrows {
        let size = chunk(g)
        var first = 0
        while first < g.batch {
            try body(first, min(size, g.batch - first))
            first += size
        }
    }

    public func conv2d(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, out: DeviceBuffer,
        _ g: Conv2dGeometry
    ) throws {
        let plane = g.outHeight * g.outWidth
        if g.prefersDirect && !usesRowConvolution(g) {
            let total = g.batch * g.outChannels * g.outHeight * ((g.outWidth + 7) / 8)
            return try launch1D(
                "conv_direct", count: total, serial: g.inChannels * g.kernelHeight * g.kernelWidth,
                flops: 2.0 * Double(g.batch * g.outChannels * plane * g.patchSize),
                [
                    .buffer(x), .buffer(weight), .buffer(bias ?? weight),
                    .buffer(out), .int(g.outChannels), .int(bias == nil ? 0 : 1),
                ]
                    + geometryArguments(g) + [.int(total)])
        }
        if usesImplicitConvolution(g) {
            return try implicitConvolution(
                .forward, a: memory(weight), b: memory(x), out: memory(out), bias: bias.map { memory($0) },
                accumulate: false, g)
        }
        if usesRowConvolution(g) {
            return try rowConvolution(.forward, source: x, weight: weight, bias: bias, out: out, accumulate: false, g)
        }
        let k = g.patchSize
        try forEachChunk(g) { first, count in
            var s = StridedGemm(m: g.outChannels, n: plane, k: k, rsA: k, csA: 1, rsB: plane, csB: 1)
            s.offsetC = first * g.outChannels * plane
            s.strideB = k * plane
            s.strideC = g.outChannels * plane
            s.batch = count
            s.rowBias = bias.map { memory($0) }
            if g.isPointwise {
                s.offsetB = first * g.inChannels * plane
                return try enqueueGemm(memory(weight), memory(x), memory(out), s)
            }
            let columns = try scratch(ScratchSlot.columns, count: count * k * plane)
            let rows = count * k * g.outHeight
            try launch1D(
                "im2col", count: rows, serial: g.outWidth, bytes: 8.0 * Double(count * k * plane),
                [.buffer(x), .memory(columns)] + geometryArguments(g)
                    + [.int(first), .int(rows), .int(0)])
            try enqueueGemm(memory(weight), columns, memory(out), s)
        }
    }

    /// SiLU in the epilogue of conv_tiled (GPUs) and conv_rows (CPU devices): one launch writes the
    /// convolution and its activation. conv_direct and im2col + GEMM layers take a separate SiLU.
    public func conv2dSiLU(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, preActivation: DeviceBuffer, out: DeviceBuffer,
        _ g: Conv2dGeometry
    ) throws {
        let direct = g.prefersDirect && !usesRowConvolution(g)
        if !direct && usesImplicitConvolution(g) {
            return try implicitConvolution(
                .forward, a: memory(weight), b: memory(x), out: memory(preActivation), bias: bias.map { memory($0) },
                accumulate: false, activated: memory(out), g)
        }
        if !direct && usesRowConvolution(g) {
            return try rowConvolution(
                .forward, source: x, weight: weight, bias: bias, out: preActivation, accumulate: false, activated: out, g)
        }
        try conv2d(x, weight: weight, bias: bias, out: preActivation, g)
        try silu(memory(preActivation), into: memory(out), count: g.batch * g.outChannels * g.outHeight * g.outWidth)
    }

    public func conv2dBackwardInput(
        gradOut: DeviceBuffer, weight: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool,
        _ g: Conv2dGeometry
    ) throws {
        let plane = g.outHeight * g.outWidth
        let imageIn = g.inChannels * g.height * g.width
        if g.prefersDirect && !usesRowConvolution(g) {
            let total = g.batch * g.inChannels * g.height * ((g.width + 7) / 8)
            return try launch1D(
                "conv_direct_backward_input", count: total,
                serial: g.outChannels * g.kernelHeight * g.kernelWidth,
                flops: 2.0 * Double(g.batch * g.outChannels * plane * g.patchSize),
                [
                    .buffer(gradOut), .buffer(weight), .buffer(gradIn), .int(g.outChannels),
                ] + geometryArguments(g) + [.int(total), .int(accumulate ? 1 : 0)])
        }
        if usesImplicitConvolution(g) {
            return try implicitConvolution(
                .inputGradient, a: memory(weight), b: memory(gradOut), out: memory(gradIn), bias: nil,
                accumulate: accumulate, g)
        }
        if usesRowConvolution(g) {
            return try rowConvolution(
                .inputGradient, source: gradOut, weight: weight, bias: nil, out: gradIn, accumulate: accumulate, g)
        }
        let k = g.patchSize
        try forEachChunk(g) { first, count in
            // dcol = W^T dY per image; W is [Cout, K], read transposed.
            var s = StridedGemm(m: k, n: plane, k: g.outChannels, rsA: 1, csA: k, rsB: plane, csB: 1)
            s.offsetB = first * g.outChannels * plane
            s.strideB = g.outChannels * plane
            s.strideC = k * plane
            s.batch = count
            if g.isPointwise {
                s.offsetC = first * imageIn
                s.beta = accumulate ? 1 : 0
                return try enqueueGemm(memory(weight), memory(gradOut), memory(gradIn), s)
            }
            let columns = try scratch(ScratchSlot.columns, count: count * k * plane)
            try enqueueGemm(memory(weight), memory(gradOut), columns, s)
            let total = count * imageIn
            try launch1D(
                "col2im", count: total, serial: g.kernelHeight * g.kernelWidth,
                bytes: 4.0 * Double(count * k * plane + total),
                [.memory(columns), .buffer(gradIn)] + geometryArguments(g)
                    + [.int(first), .int(total), .int(accumulate ? 1 : 0)])
        }
    }

    /// Layers the forward pass runs directly (few output channels) take the GEMM path here too:
    /// a direct weight gradient loops over the whole batch in each of a few hundred work-items.
    /// With a bias, B gets a column of ones, so each image's product [Cout, K + 1] holds its bias
    /// gradient in the last column; `sum_batch_split` adds up the images into the two tensors (a
    /// separate reduction over dY took a launch per layer and another pass over dY).
    public func conv2dBackwardWeight(
        _ x: DeviceBuffer, gradOut: DeviceBuffer, gradWeight: DeviceBuffer,
        gradBias: DeviceBuffer?, _ g: Conv2dGeometry
    ) throws {
        if usesImplicitConvolution(g) {
            return try implicitWeightGradient(x: x, gradOut: gradOut, gradWeight: gradWeight, gradBias: gradBias, g)
        }
        if usesRowWeightGradient(g) {
            return try rowWeightGradient(x: x, gradOut: gradOut, gradWeight: gradWeight, gradBias: gradBias, g)
        }
        let plane = g.outHeight * g.outWidth
        let k = g.patchSize
        let columns = gradBias == nil ? k : k + 1
        try forEachChunk(g) { first, count in
            // dW = sum over images of dY [Cout, plane] x cols^T, the columns laid out [plane][K] so the
            // GEMM reads them contiguously; strideC = 0 sums the chunk's images into one dW.
            var s = StridedGemm(m: g.outChannels, n: columns, k: plane, rsA: plane, csA: 1, rsB: k, csB: 1)
            s.offsetA = first * g.outChannels * plane
            s.strideA = g.outChannels * plane
            s.strideB = plane * k
            s.batch = count
            s.beta = first == 0 ? 0 : 1
            s.onesColumn = gradBias != nil
            let b: cl_mem
            if g.isPointwise {
                // cols^T of a 1x1 convolution is the input read transposed.
                s.rsB = 1
                s.csB = plane
                s.offsetB = first * g.inChannels * plane
                s.strideB = g.inChannels * plane
                b = memory(x)
            } else {
                b = try scratch(ScratchSlot.columns, count: count * k * plane)
                let segments = count * plane * g.inChannels
                try launch1D(
                    "im2col", count: segments,
                    [.buffer(x), .memory(b)] + geometryArguments(g)
                        + [.int(first), .int(segments), .int(1)])
            }
            guard let gradBias else { return try enqueueGemm(memory(gradOut), b, memory(gradWeight), s) }
            let size = g.outChannels * columns
            s.strideC = size
            s.beta = 0
            if count == g.batch && defersWeightReductions {
                // One chunk on a GPU: per-image products into a pooled buffer, summed later with others.
                let partials = try allocate(count: count * size)
                try enqueueGemm(memory(gradOut), b, memory(partials), s)
                return try enqueueReduction(
                    DeferredReduction(
                        partials: partials, destination: gradWeight, second: gradBias, size: size, slices: count,
                        mode: .split, columns: columns))
            }
            let partials = try scratch(ScratchSlot.gemmPartials, count: count * size)
            try enqueueGemm(memory(gradOut), b, partials, s)
            try launch1D(
                "sum_batch_split", count: size, serial: count, bytes: Double(4 * size * (count + 1)),
                flops: Double(size * count),
                [
                    .memory(partials), .buffer(gradWeight), .buffer(gradBias),
                    .int(size), .int(count), .int(columns), .float(first == 0 ? 0 : 1),
                ])
        }
    }
}
