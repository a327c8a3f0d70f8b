// Gradient clipping in a few launches (Kernels/optimizer.cl): sum_squares32 per 32 tensors into
// partial sums, clip_factor for the norm and the factor, scale32 per 32 distinct buffers. A
// UNet2DModel's 318 gradients take 10 + 1 + 10 launches instead of about four per tensor.
import DiffuseCore
import Tensor

extension OpenCLDevice: FusedGradientClipping {
    static let clipSlots = 32
    static let clipChunk = 4096

    public func clipGradientNorm(_ gradients: [(buffer: DeviceBuffer, count: Int)], maxNorm: Float, result: DeviceBuffer) throws {
        let groups = stride(from: 0, to: gradients.count, by: Self.clipSlots).map {
            Array(gradients[$0..<min($0 + Self.clipSlots, gradients.count)])
        }
        let partialCounts = groups.map { group in (group.reduce(0) { $0 + $1.count } + Self.clipChunk - 1) / Self.clipChunk }
        let partials = try Tensor.empty([max(partialCounts.reduce(0, +), 1)], on: self)
        var offset = 0
        for (group, count) in zip(groups, partialCounts) where count > 0 {
            let (arguments, total) = slots(group)
            try launch(
                "sum_squares32", global: [count * 64], local: [64], serial: Self.clipChunk / 64, bytes: 4 * Double(total),
                flops: 2 * Double(total), arguments + [.buffer(partials.buffer), .int(offset)])
            offset += count
        }
        try launch(
            "clip_factor", global: [64], local: [64], serial: (offset + 63) / 64, bytes: 4 * Double(offset),
            [.buffer(partials.buffer), .int(offset), .float(maxNorm), .buffer(result)])
        // Each buffer once: a gradient shared by two parameters is scaled a single time.
        var seen = Set<ObjectIdentifier>()
        let distinct = gradients.filter { seen.insert(ObjectIdentifier($0.buffer)).inserted }
        for first in stride(from: 0, to: distinct.count, by: Self.clipSlots) {
            let (arguments, total) = slots(Array(distinct[first..<min(first + Self.clipSlots, distinct.count)]))
            try launch1D("scale32", count: total, bytes: 8 * Double(total), flops: Double(total), arguments + [.buffer(result)])
        }
    }

    /// Up to 32 buffers and their running ends (unused slots repeat the last).
    private func slots(_ group: [(buffer: DeviceBuffer, count: Int)]) -> ([KernelArgument], Int) {
        var ends: [Int] = []
        var total = 0
        for g in group {
            total += g.count
            ends.append(total)
        }
        let buffers = (0..<Self.clipSlots).map { KernelArgument.buffer(group[min($0, group.count - 1)].buffer) }
        return (buffers + (0..<Self.clipSlots).map { .int(ends[min($0, ends.count - 1)]) }, total)
    }
}
