// Kernels that take many tensors per launch (adam_update24, ema_update32, sum_squares32, scale32):
// each launch's arguments are its group's buffers slot by slot, unused slots repeating the last
// tensor, then the running ends of the tensors in the flattened index space (the kernels find an
// item's tensor as the first whose end exceeds it, so repeated slots are never chosen).
import Tensor

extension OpenCLDevice {
    /// One (arguments, items) per launch of up to `slots` of `items`.
    func multiTensorLaunches<T>(
        _ items: [T], slots: Int, count: (T) -> Int, buffers: (T) -> [DeviceBuffer]
    ) -> [(arguments: [KernelArgument], total: Int)] {
        stride(from: 0, to: items.count, by: slots).map { first in
            let group = Array(items[first..<min(first + slots, items.count)])
            var ends: [Int] = []
            var total = 0
            for item in group {
                total += count(item)
                ends.append(total)
            }
            let pointers = (0..<slots).flatMap { buffers(group[min($0, group.count - 1)]).map(KernelArgument.buffer) }
            return (pointers + (0..<slots).map { .int(ends[min($0, ends.count - 1)]) }, total)
        }
    }

    /// An elementwise kernel over `total` floats of a launch's tensors: `name`, a float per
    /// work-item, or on CPU devices `name`_rows, 16 per work-item with the same arguments.
    func launchMultiTensor(
        _ name: String, total: Int, bytes: Double, flops: Double, _ arguments: [KernelArgument]
    ) throws {
        if prefersVectorItems {
            try launch1D(name + "_rows", count: (total + 15) / 16, serial: 16, bytes: bytes, flops: flops, arguments)
        } else {
            try launch1D(name, count: total, bytes: bytes, flops: flops, arguments)
        }
    }
}
