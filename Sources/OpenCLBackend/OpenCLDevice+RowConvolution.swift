// Stride-1 convolutions on CPU devices (PoCL) without a column matrix (Kernels/conv_rows.cl): the
// input's planes are copied once with their zero border into a padded scratch, and conv_rows
// multiplies the weights by shifted rows of it, a TILE_M x TILE_N block of outputs per work-item.
// The forward pass and the input gradient (the same convolution with the kernel flipped and the
// channels swapped) each take two launches, as im2col + GEMM and GEMM + col2im did, without
// writing and rereading K = C*kh*kw copies of the image. Weight gradients keep im2col + GEMM.
import COpenCL
import DiffuseCore
import Tensor

/// How conv_rows tiles an output plane: `span` columns per tile row, `tileRows` rows per tile
/// (two rows of 8 in a 16-lane tile for planes 8 or fewer columns wide: a 7x7 plane would
/// otherwise leave 9 of 16 lanes idle).
struct RowTiles {
    var span: Int, tileRows: Int, tilesX: Int, tilesY: Int

    init(tile: (rows: Int, columns: Int), outHeight: Int, outWidth: Int) {
        span = tile.columns == 16 && outWidth <= 8 ? 8 : tile.columns
        tileRows = tile.columns / span
        tilesX = (outWidth + span - 1) / span
        tilesY = (outHeight + tileRows - 1) / tileRows
    }

    /// The whole tiles' height and width.
    var covered: (height: Int, width: Int) { (tilesY * tileRows, tilesX * span) }

    /// The padded source's plane: every tile's shifted loads for a kh x kw kernel stay inside it.
    func padded(kh: Int, kw: Int) -> (height: Int, width: Int) { (covered.height + kh - 1, covered.width + kw - 1) }
}

/// What `rowConvolution` computes.
enum RowConvolution {
    /// out = w * x + bias.
    case forward
    /// dX (+)= the transposed convolution of dY.
    case inputGradient
}

extension OpenCLDevice {
    /// Whether `g`'s forward pass and input gradient run on conv_rows: a CPU device's stride-1
    /// layers with a kernel wider than a point and padding below the kernel's size (a transposed
    /// convolution's padding kh - 1 - ph is then not negative). Few-output-channel layers too: with
    /// 7 of 8 rows idle it still beats the direct kernels (BasicUNet's 32 -> 1 layer: 23 -> ~12 ms).
    func usesRowConvolution(_ g: Conv2dGeometry) -> Bool {
        !runsGPUKernels && g.strideHeight == 1 && g.strideWidth == 1 && !g.isPointwise
            && g.paddingHeight < g.kernelHeight && g.paddingWidth < g.kernelWidth
    }

    /// Pads `planes` planes of `height` x `width` from plane `first` of `source` into `padded` as
    /// `size` planes with a border of (top, left) zeros (and zeros past the plane at the end).
    func padPlanes(
        _ source: DeviceBuffer, into padded: cl_mem, planes: Int, first: Int, height: Int, width: Int,
        top: Int, left: Int, size: (height: Int, width: Int)
    ) throws {
        // Borders are never negative: usesRowConvolution takes only paddings below the kernel's size.
        guard top >= 0, left >= 0 else {
            throw DiffuseError.device("pad_planes: a negative border (\(top), \(left)) is not supported")
        }
        try launch(
            "pad_planes", global: [size.height, planes], local: [8, 1], serial: (size.width + 15) / 16,
            bytes: 4.0 * Double(planes * (size.height * size.width + height * width)),
            [
                .buffer(source), .memory(padded), .int(height), .int(width), .int(top), .int(left),
                .int(size.height), .int(size.width), .int(first), .int(planes),
            ])
    }

    /// With `activated` (forward only), silu of the output goes there too: in conv_rows's store, or
    /// after the sum of channel slices.
    func rowConvolution(
        _ mode: RowConvolution, source: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
        out: DeviceBuffer, accumulate: Bool, activated: DeviceBuffer? = nil, _ g: Conv2dGeometry
    ) throws {
        let kh = g.kernelHeight, kw = g.kernelWidth, taps = kh * kw
        let forward = mode == .forward
        // The source's planes, the output's planes, and the border the source needs.
        let (inner, rows, height, width) =
            forward
            ? (g.inChannels, g.outChannels, g.height, g.width)
            : (g.outChannels, g.inChannels, g.outHeight, g.outWidth)
        let (outHeight, outWidth) = forward ? (g.outHeight, g.outWidth) : (g.height, g.width)
        let (padTop, padLeft) =
            forward ? (g.paddingHeight, g.paddingWidth) : (kh - 1 - g.paddingHeight, kw - 1 - g.paddingWidth)
        // Weight strides per output row, source channel, kernel row and column (see conv_rows.cl).
        let strides =
            forward
            ? (row: g.inChannels * taps, channel: taps, ki: kw, kj: 1, base: 0)
            : (row: taps, channel: g.inChannels * taps, ki: -kw, kj: -1, base: taps - 1)
        let tile = gemmTile
        let tiles = RowTiles(tile: tile, outHeight: outHeight, outWidth: outWidth)
        let (span, tilesX, tilesY) = (tiles.span, tiles.tilesX, tiles.tilesY)
        let (paddedHeight, paddedWidth) = tiles.padded(kh: kh, kw: kw)
        let perImage = inner * paddedHeight * paddedWidth
        let chunk = max(1, min(g.batch, columnScratchLimit / max(perImage, 1)))
        let blockRows = (rows + tile.rows - 1) / tile.rows
        let local = [16, 1, 1]
        let plane = outHeight * outWidth
        // Channel slices when one launch would be narrow and long (issue 9, item 1): few outputs
        // (7x7 planes) over a long K (128 channels of 3x3), summed afterwards with the bias.
        let items = (tilesX * tilesY + local[0] - 1) / local[0] * local[0]
        let long = (inner * taps + LaunchLedger.longLoop - 1) / LaunchLedger.longLoop
        func slicing(_ count: Int) -> Int { items * blockRows * count < LaunchLedger.narrowWorkItems && long > 1 ? long : 1 }
        // SiLU goes in the store only when no chunk is sliced (the last chunk may be smaller); else
        // it follows the whole output, once (with `activated` the output itself, twice would be wrong).
        let sliced = slicing(chunk) > 1 || slicing(g.batch - (g.batch - 1) / chunk * chunk) > 1
        let fused = activated != nil && !sliced
        var first = 0
        while first < g.batch {
            let count = min(chunk, g.batch - first)
            let padded = try scratch(ScratchSlot.columns, count: count * perImage)
            let planes = count * inner
            try padPlanes(
                source, into: padded, planes: planes, first: first * inner, height: height, width: width,
                top: padTop, left: padLeft, size: (paddedHeight, paddedWidth))
            let slices = slicing(count)
            let perSlice = (inner + slices - 1) / slices
            let outputs = count * rows * plane
            let partials = slices > 1 ? try scratch(ScratchSlot.splitK, count: slices * outputs) : nil
            let direct = partials == nil
            try launch(
                "conv_rows", global: [tilesX * tilesY, blockRows, count * slices], local: local,
                serial: perSlice * taps,
                bytes: 4.0 * Double(planes * paddedHeight * paddedWidth + rows * inner * taps + slices * outputs),
                flops: 2.0 * Double(outputs * inner * taps),
                [
                    .memory(padded), .buffer(weight), .buffer(bias ?? weight), .memory(partials ?? memory(out)),
                    .buffer(activated ?? out), .int(rows), .int(inner), .int(kh), .int(kw), .int(paddedHeight), .int(paddedWidth),
                    .int(outHeight), .int(outWidth), .int(strides.row), .int(strides.channel), .int(strides.ki),
                    .int(strides.kj), .int(strides.base), .int(direct && bias != nil ? 1 : 0),
                    .int(direct && accumulate ? 1 : 0), .int(fused ? 1 : 0),
                    .int(direct ? first : 0), .int(span), .int(count),
                    .int(perSlice), .int(outputs),
                ])
            if let partials {
                try sumBatch(
                    partials, into: memory(out), size: outputs, batch: slices, offset: first * rows * plane,
                    beta: accumulate ? 1 : 0, bias: (bias.map { memory($0) }, bias == nil ? 0 : 1), columns: plane,
                    rows: rows)
            }
            first += count
        }
        if let activated, !fused {
            try silu(memory(out), into: memory(activated), count: g.batch * rows * plane)
        }
    }
}

extension OpenCLDevice {
    /// Whether `g`'s weight gradient runs on conv_rows_weight: a conv_rows layer whose kernel rows
    /// fit the kernel's named accumulators (kw <= 5).
    func usesRowWeightGradient(_ g: Conv2dGeometry) -> Bool { usesRowConvolution(g) && g.kernelWidth <= 5 }

    /// dW (and dBias) of a conv_rows layer: x padded as the forward pass pads it, dY padded to whole
    /// tiles, products over slices of the images from conv_rows_weight, then the slices added up.
    func rowWeightGradient(
        x: DeviceBuffer, gradOut: DeviceBuffer, gradWeight: DeviceBuffer, gradBias: DeviceBuffer?,
        _ g: Conv2dGeometry
    ) throws {
        let kh = g.kernelHeight, kw = g.kernelWidth
        let tiles = RowTiles(tile: gemmTile, outHeight: g.outHeight, outWidth: g.outWidth)
        let padded = tiles.padded(kh: kh, kw: kw)
        let covered = tiles.covered
        let columns = g.patchSize + (gradBias == nil ? 0 : 1)
        let size = g.outChannels * columns
        let perImage =
            g.inChannels * padded.height * padded.width + g.outChannels * covered.height * covered.width + size
        let chunk = max(1, min(g.batch, columnScratchLimit / max(perImage, 1)))
        var first = 0
        while first < g.batch {
            let count = min(chunk, g.batch - first)
            let xPadded = try scratch(ScratchSlot.columns, count: count * g.inChannels * padded.height * padded.width)
            let dyPadded = try scratch(
                ScratchSlot.paddedGradient, count: count * g.outChannels * covered.height * covered.width)
            // Images per work-item: about 64 tiles of work before the sums across lanes.
            let perItem = max(1, min(count, 64 / (tiles.tilesX * tiles.tilesY)))
            let slices = (count + perItem - 1) / perItem
            let partials = try scratch(ScratchSlot.gemmPartials, count: slices * size)
            try padPlanes(
                x, into: xPadded, planes: count * g.inChannels, first: first * g.inChannels, height: g.height,
                width: g.width, top: g.paddingHeight, left: g.paddingWidth, size: padded)
            try padPlanes(
                gradOut, into: dyPadded, planes: count * g.outChannels, first: first * g.outChannels,
                height: g.outHeight, width: g.outWidth, top: 0, left: 0, size: covered)
            let blocks = (g.outChannels + 3) / 4
            try launch(
                "conv_rows_weight", global: [blocks, g.inChannels * kh, slices], local: [4, 4, 1],
                serial: perItem * tiles.tilesX * tiles.tilesY,
                bytes: 4.0 * Double(count * (perImage - size) + slices * size),
                flops: 2.0 * Double(count * g.outChannels * g.patchSize * g.outHeight * g.outWidth),
                [
                    .memory(xPadded), .memory(dyPadded), .memory(partials), .int(g.outChannels), .int(g.inChannels),
                    .int(kh), .int(kw), .int(padded.height), .int(padded.width), .int(covered.height),
                    .int(covered.width), .int(g.outHeight), .int(g.outWidth), .int(tiles.span),
                    .int(gradBias == nil ? 0 : 1), .int(count), .int(perItem),
                ])
            let beta: Float = first == 0 ? 0 : 1
            if let gradBias {
                try launch1D(
                    "sum_batch_split", count: size, serial: slices, bytes: Double(4 * size * (slices + 1)),
                    flops: Double(size * slices),
                    [
                        .memory(partials), .buffer(gradWeight), .buffer(gradBias), .int(size), .int(slices),
                        .int(columns), .float(beta),
                    ])
            } else {
                try sumBatch(
                    partials, into: memory(gradWeight), size: size, batch: slices, offset: 0, beta: beta,
                    bias: (nil, 0), columns: columns, rows: g.outChannels)
            }
            first += count
        }
    }
}
