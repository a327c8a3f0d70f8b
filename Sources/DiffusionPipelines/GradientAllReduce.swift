// Data-parallel training's one collective per step: every parameter's gradient, and a flag that
// says whether any process was asked to stop, summed over the processes in one fused buffer
// (MPI_Allreduce). Each process has already weighted its loss by its share of the batch, so the
// sum is the whole batch's gradient, as one process computes it.
import DataParallel
import DiffuseCore
import Foundation
import Tensor

final class GradientAllReduce {
    let group: ProcessGroup
    let parameters: [Tensor]
    /// One host buffer: the gradients back to back, then the stop flag.
    private var fused: [Float]
    private let offsets: [Int]
    private let total: Int
    /// The gradients packed on the device by block copies (few launches), so one read brings
    /// them to the host instead of one wait per parameter.
    private var packed: Tensor?
    /// The summed gradients, one tensor per parameter, kept from step to step so a steady-state
    /// step allocates nothing.
    private var summed: [Tensor?]
    /// Where the parameters' gradients are already one buffer: read, summed and written back
    /// whole, with no packing.
    private let arena: ParameterArena?

    init(group: ProcessGroup, parameters: [Tensor], arena: ParameterArena? = nil) {
        self.group = group
        self.parameters = parameters
        self.arena = arena.flatMap { $0.holds(parameters) ? $0 : nil }
        var offsets: [Int] = []
        var total = 0
        for p in parameters {
            offsets.append(total)
            total += p.count
        }
        // The arena path reads the arena whole, gaps included.
        if let arena = self.arena { total = arena.count }
        self.offsets = offsets
        self.total = total
        fused = [Float](repeating: 0, count: total + 1)
        summed = [Tensor?](repeating: nil, count: parameters.count)
    }

    /// Sums the gradients over the group in place of each parameter's (a parameter this process
    /// left without one, having no images in the batch, adds zeros); returns whether any process
    /// asked to stop.
    func callAsFunction(stopRequested: Bool) throws -> Bool {
        guard let device = parameters.first?.device else { return try group.allReduceFlag(stopRequested) }
        let flagIndex = total
        if let arena {
            try arena.gatherGradients()
            try fused.withUnsafeMutableBufferPointer { all in
                let gradients = UnsafeMutableBufferPointer(rebasing: all[0..<total])
                try device.download(arena.gradients.buffer, to: gradients)
                all[flagIndex] = stopRequested ? 1 : 0
                try group.allReduceSum(all)
                try device.upload(UnsafeBufferPointer(gradients), to: arena.gradients.buffer)
            }
            return fused[flagIndex] > 0
        }
        let packed = try self.packed ?? Tensor.empty([total], on: device)
        self.packed = packed
        func block(_ count: Int, at offset: Int, packing: Bool) -> BlockCopyGeometry {
            BlockCopyGeometry(
                blockCount: 1, blockLength: count, sourceOffset: packing ? 0 : offset, sourceStride: count,
                destinationOffset: packing ? offset : 0, destinationStride: count)
        }
        try device.copyBlocks(
            zip(parameters, offsets).map { p, offset in
                BlockCopy(
                    from: try (p.grad ?? Tensor.zeros(p.shape, on: device)).buffer, to: packed.buffer,
                    block(p.count, at: offset, packing: true))
            })
        try fused.withUnsafeMutableBufferPointer { all in
            let gradients = UnsafeMutableBufferPointer(rebasing: all[0..<total])
            try device.download(packed.buffer, to: gradients)
            all[flagIndex] = stopRequested ? 1 : 0
            try group.allReduceSum(all)
            try device.upload(UnsafeBufferPointer(gradients), to: packed.buffer)
        }
        var unpack: [BlockCopy] = []
        for (i, (p, offset)) in zip(parameters, offsets).enumerated() {
            let gradient = try summed[i] ?? Tensor.empty(p.shape, on: p.device)
            summed[i] = gradient
            unpack.append(BlockCopy(from: packed.buffer, to: gradient.buffer, block(p.count, at: offset, packing: false)))
            p.grad = gradient
        }
        try device.copyBlocks(unpack)
        return fused[flagIndex] > 0
    }
}

extension ProcessGroup {
    /// Whether any process passed true (a model without parameters still agrees on stopping).
    func allReduceFlag(_ flag: Bool) throws -> Bool {
        var value = [flag ? 1.0 : 0.0]
        try allReduceSum(&value)
        return value[0] > 0
    }
}

extension ProcessGroup {
    /// Refuses a batch that does not split evenly over the processes.
    public func requireDivides(batchSize: Int) throws {
        guard batchSize % size == 0 else {
            throw DiffuseError.usage(
                "\(Setting.batchSize) \(batchSize) does not split over \(size) processes; --batch-size is the global "
                    + "batch: use a multiple of \(size)")
        }
    }
}
