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
    /// The summed gradients, one tensor per parameter, kept from step to step so a steady-state
    /// step allocates nothing.
    private var summed: [Tensor?]

    init(group: ProcessGroup, parameters: [Tensor]) {
        self.group = group
        self.parameters = parameters
        var offsets: [Int] = []
        var total = 0
        for p in parameters {
            offsets.append(total)
            total += p.count
        }
        self.offsets = offsets
        fused = [Float](repeating: 0, count: total + 1)
        summed = [Tensor?](repeating: nil, count: parameters.count)
    }

    /// Sums the gradients over the group in place of each parameter's (a parameter this process
    /// left without one, having no images in the batch, adds zeros); returns whether any process
    /// asked to stop.
    func callAsFunction(stopRequested: Bool) throws -> Bool {
        let flagIndex = fused.count - 1
        try fused.withUnsafeMutableBufferPointer { all in
            for (p, offset) in zip(parameters, offsets) {
                let part = UnsafeMutableBufferPointer(rebasing: all[offset..<offset + p.count])
                if let grad = p.grad {
                    try grad.device.download(grad.buffer, to: part)
                } else {
                    part.update(repeating: 0)
                }
            }
            all[flagIndex] = stopRequested ? 1 : 0
            try group.allReduceSum(all)
            for (i, (p, offset)) in zip(parameters, offsets).enumerated() {
                let gradient = try summed[i] ?? Tensor.empty(p.shape, on: p.device)
                summed[i] = gradient
                try p.device.upload(UnsafeBufferPointer(rebasing: all[offset..<offset + p.count]), to: gradient.buffer)
                p.grad = gradient
            }
        }
        return fused[flagIndex] > 0
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
