// Deferred reductions: the last step of a weight, bias, gamma or beta gradient (adding up per-image
// or per-slice partial products) is queued instead of launched, and up to 16 queued sums run as one
// `sum_deferred` launch when something first touches a result: normally the optimizer step after
// the backward pass, so a UNet2DModel step's 140 small reductions become 9 launches (issue 9, item
// 4). Nothing can read a result early: every launch, upload and download first checks its buffers
// against the queue and flushes it, and a queued job keeps its partials and results alive, so
// neither returns to the buffer pool before it has run.
import COpenCL
import DiffuseCore
import Tensor

/// One queued sum (the modes of `sum_deferred` in Kernels/reduce.cl).
struct DeferredReduction {
    enum Mode: Int {
        /// destination[i] = sum over slices (sum_batch).
        case plain = 0
        /// [rows, columns] sums split into a weight [rows, columns - 1] and a bias [rows] (sum_batch_split).
        case split = 1
        /// Interleaved pairs summed into two tensors (a group norm's gamma and beta gradients).
        case pairs = 2
        /// destination[i] = sum of the i-th run of `slices` contiguous floats (a broadcast gradient
        /// summed over the pixels of each channel).
        case runs = 3
    }

    var partials: DeviceBuffer
    var destination: DeviceBuffer
    var second: DeviceBuffer? = nil
    var size: Int
    var slices: Int
    var mode: Mode
    var columns = 1
}

extension OpenCLDevice {
    static let deferredJobsPerLaunch = 16

    /// Whether weight-gradient sums are deferred: where the tiled kernels run (GPUs), whose partials
    /// are K slices of modest size. CPU devices' per-image partials of a whole step would not fit
    /// their caches, and a CPU pays nothing much per launch.
    var defersWeightReductions: Bool { runsGPUKernels }

    /// Queues `job`, or runs it now when the queue's partials would pass 1/32 of the device's memory
    /// (the bound is in floats: bytes / 128).
    func enqueueReduction(_ job: DeferredReduction) throws {
        let floats = job.partials.count
        if deferredFloats + floats > Int(min(info.globalMemoryBytes / 128, UInt64(Int.max))) {
            try flushDeferredReductions()
            if floats > Int(min(info.globalMemoryBytes / 128, UInt64(Int.max))) { return try runReductions([job]) }
        }
        deferred.append(job)
        deferredFloats += floats
        // The partials too: they may be a tensor's buffer (a gradient summed over its rows), which
        // must not change before the sum has read it.
        for buffer in [job.partials, job.destination] + (job.second.map { [$0] } ?? []) {
            let b = unsafeDowncast(buffer, to: OpenCLBuffer.self)
            deferredMemory.insert(b.memory)
            // A view's parent too (a parameter arena's gradients): an op over the whole arena reads
            // the sum. Sibling views do not overlap, so touching one does not flush.
            if let parent = b.parent { deferredMemory.insert(parent.memory) }
        }
    }

    /// Runs every queued sum, 16 per launch, in the order they were queued.
    func flushDeferredReductions() throws {
        guard !deferred.isEmpty else { return }
        let jobs = deferred
        deferred.removeAll(keepingCapacity: true)
        deferredMemory.removeAll(keepingCapacity: true)
        deferredFloats = 0
        var start = 0
        while start < jobs.count {
            let end = min(start + OpenCLDevice.deferredJobsPerLaunch, jobs.count)
            try runReductions(Array(jobs[start..<end]))
            start = end
        }
    }

    /// Flushes the queue first when `arguments` touch a buffer a queued sum will write.
    func flushIfDeferred(_ arguments: [KernelArgument]) throws {
        guard !deferred.isEmpty else { return }
        for argument in arguments {
            switch argument {
            case .buffer(let b): if deferredMemory.contains(memory(b)) { return try flushDeferredReductions() }
            case .memory(let m): if deferredMemory.contains(m) { return try flushDeferredReductions() }
            default: continue
            }
        }
    }

    private func runReductions(_ jobs: [DeferredReduction]) throws {
        guard let first = jobs.first else { return }
        var table: [Int32] = []
        var total = 0
        var serial = 0
        var bytes = 0.0
        for job in jobs {
            table += [total, job.size, job.slices, job.mode.rawValue, job.columns].map { Int32(clamping: $0) }
            total += job.size
            serial = max(serial, job.slices)
            bytes += 4.0 * Double(job.partials.count + job.size * (job.mode == .pairs ? 2 : 1))
        }
        var arguments: [KernelArgument] = []
        for index in 0..<OpenCLDevice.deferredJobsPerLaunch {
            let job = index < jobs.count ? jobs[index] : first
            arguments += [.buffer(job.partials), .buffer(job.destination), .buffer(job.second ?? job.destination)]
        }
        arguments += [.memory(try geometryBuffer(table)), .int(jobs.count), .int(total)]
        try launch1D("sum_deferred", count: total, serial: serial, bytes: bytes, flops: bytes / 4, arguments)
    }
}
