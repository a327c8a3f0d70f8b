// Gradient clipping in a few launches (Kernels/optimizer.cl): sum_squares32 per 32 tensors into
// partial sums, clip_factor for the norm and the factor, scale32 per 32 distinct buffers. A
// UNet2DModel's 318 gradients take 10 + 1 + 10 launches instead of about four per tensor (1 + 1 + 1
// from a parameter arena, one tensor).
import DiffuseCore
import Tensor

extension OpenCLDevice: FusedGradientClipping {
    static let clipSlots = 32
    static let clipChunk = 4096

    public func clipGradientNorm(_ gradients: [(buffer: DeviceBuffer, count: Int)], maxNorm: Float, result: DeviceBuffer) throws {
        let sums = multiTensorLaunches(gradients, slots: Self.clipSlots, count: \.count, buffers: { [$0.buffer] })
        let partialCounts = sums.map { ($0.total + Self.clipChunk - 1) / Self.clipChunk }
        let partials = try Tensor.empty([max(partialCounts.reduce(0, +), 1)], on: self)
        var offset = 0
        for ((arguments, total), count) in zip(sums, partialCounts) where count > 0 {
            if prefersVectorItems {
                try launch1D(
                    "sum_squares32_rows", count: count, serial: Self.clipChunk / 16, bytes: 4 * Double(total),
                    flops: 2 * Double(total), arguments + [.buffer(partials.buffer), .int(offset), .int(count)])
            } else {
                try launch(
                    "sum_squares32", global: [count * 64], local: [64], serial: Self.clipChunk / 64,
                    bytes: 4 * Double(total), flops: 2 * Double(total),
                    arguments + [.buffer(partials.buffer), .int(offset)])
            }
            offset += count
        }
        try launch(
            "clip_factor", global: [64], local: [64], serial: (offset + 63) / 64, bytes: 4 * Double(offset),
            [.buffer(partials.buffer), .int(offset), .float(maxNorm), .buffer(result)])
        // Each buffer once: a gradient shared by two parameters is scaled a single time.
        var seen = Set<ObjectIdentifier>()
        let distinct = gradients.filter { seen.insert(ObjectIdentifier($0.buffer)).inserted }
        for (arguments, total) in multiTensorLaunches(distinct, slots: Self.clipSlots, count: \.count, buffers: { [$0.buffer] }) {
            try launchMultiTensor(
                "scale32", total: total, bytes: 8 * Double(total), flops: Double(total), arguments + [.buffer(result)])
        }
    }
}
