// OpenCLDevice: the Device protocol on one OpenCL device: context, one in-order queue, the kernel
// program (built once per process, its binary cached on disk), a buffer pool and kernel launches.
import COpenCL
import DiffuseCore
import Foundation
import Tensor

public final class OpenCLBuffer: DeviceBuffer {
    public let count: Int
    let memory: cl_mem
    /// The pool the memory returns to, or for a view (a sub-buffer) the buffer it is part of.
    private let pool: OpenCLBufferPool?
    let parent: OpenCLBuffer?

    init(count: Int, memory: cl_mem, pool: OpenCLBufferPool) {
        self.count = count
        self.memory = memory
        self.pool = pool
        self.parent = nil
    }

    init(subBuffer: cl_mem, count: Int, of parent: OpenCLBuffer) {
        self.count = count
        self.memory = subBuffer
        self.pool = nil
        self.parent = parent
    }

    deinit {
        if let pool { pool.give(memory, count: count) } else { clReleaseMemObject(memory) }
    }
}

/// Released buffers wait here by size so that a repeated training step allocates nothing.
final class OpenCLBufferPool: @unchecked Sendable {
    private var free: [Int: [cl_mem]] = [:]
    private let lock = NSLock()

    func take(_ count: Int) -> cl_mem? {
        lock.lock()
        defer { lock.unlock() }
        return free[count]?.popLast()
    }

    func give(_ memory: cl_mem, count: Int) {
        lock.lock()
        free[count, default: []].append(memory)
        lock.unlock()
    }

    /// Releases every pooled buffer (after an allocation failure, before retrying).
    func drain() {
        lock.lock()
        for list in free.values { for m in list { clReleaseMemObject(m) } }
        free = [:]
        lock.unlock()
    }
}

/// A kernel argument; ints are passed as 32-bit `int` as the kernels declare them.
enum KernelArgument {
    case buffer(DeviceBuffer)
    case memory(cl_mem)
    case int(Int)
    case uint(UInt32)
    case float(Float)
    /// A run-time divisor as the kernel's uint2 (magic, shift): see FastDivisor.
    case divisor(Int)
}

public final class OpenCLDevice: Device {
    public let kind = DeviceKind.opencl
    public let info: OpenCLDeviceInfo
    public var memoryBytes: UInt64 { info.globalMemoryBytes }
    public var name: String { "opencl:\(info.index) \(info.name.trimmingCharacters(in: .whitespaces)) (\(info.platformName))" }
    let context: cl_context
    let queue: cl_command_queue
    let program: cl_program
    var kernels: [String: cl_kernel] = [:]
    let pool = OpenCLBufferPool()
    /// Small constant buffers describing broadcast/reduce geometries, one per distinct geometry.
    var geometryBuffers: [[Int32]: cl_mem] = [:]
    var scratchBuffers: [Int: (memory: cl_mem, count: Int)] = [:]
    /// Host copies of queued uploads, freed once the queue is known to have passed them.
    var stagedUploads: [UnsafeMutableRawPointer] = []
    /// Rows and columns of C each GEMM work-item computes (the program's -D TILE_M/TILE_N).
    let gemmTile: (rows: Int, columns: Int)
    /// The fused attention kernels that run: tiles of keys in local memory shared by a work-group
    /// (attention_fused.cl, for GPUs), or eight tokens per float8 in one work-item
    /// (attention_lanes.cl, for CPU devices, which vectorise lanes rather than work-items).
    var attentionKernels: AttentionKernels
    /// CPU devices run SiLU and Adam 16 floats per work-item (`silu_rows`, `adam_update24_rows`):
    /// PoCL leaves the one-float kernels' switch or chain of tensors scalar. Tests switch it off to
    /// check the GPUs' kernels.
    var prefersVectorItems = false
    enum AttentionKernels { case localTiles, lanes }
    /// Shape of `gemm_tiled` (the program's -D GT_* options).
    let tiledGemm: TiledGemmShape
    /// Whether this device can run `gemm_tiled`: its work-group and local memory fit.
    private(set) var tiledGemmFits = false
    /// Which GEMM kernel `enqueueGemm` launches: `DIFFUSE_GEMM_KERNEL=tiled|vector|auto`, read once
    /// here; tests set it directly (the environment is read before they could change it).
    var gemmKernel = GemmKernelChoice.automatic
    /// Where the program came from: "built" or "cache".
    public let programSource: String
    /// Reductions queued until something touches their results (OpenCLDevice+DeferredReductions).
    var deferred: [DeferredReduction] = []
    /// The buffers the queued reductions write, and the floats of partials they hold.
    var deferredMemory = Set<cl_mem>()
    var deferredFloats = 0
    /// Every launch, buffer creation and host wait is counted here; kernel times too while profiling.
    public let ledger = LaunchLedger()
    /// When on, every launch carries an event whose timestamps give its kernel's time
    /// (`diffuse bench --profile`); nothing waits for it.
    public private(set) var profiling = false

    /// Switches per-kernel timing on or off and clears what was gathered.
    public func setProfiling(_ on: Bool) {
        if ledger.hasPendingEvents { clFinish(queue) }
        profiling = on
        ledger.reset()
    }

    /// Waits for the queue and reads the kernel times gathered so far into the ledger.
    public func collectProfile() throws {
        try finishQueue()
        ledger.collectTimes()
    }

    /// Opens the device with the given listing index (`--device opencl:N`).
    public convenience init(index: Int = 0) throws {
        let all = OpenCLPlatforms.devices()
        guard !all.isEmpty else { throw DiffuseError.usage(OpenCLPlatforms.installHint) }
        guard all.indices.contains(index) else {
            throw DiffuseError.usage("no OpenCL device \(index); `diffuse devices` lists \(all.count) (0...\(all.count - 1))")
        }
        try self.init(info: all[index])
    }

    public init(info: OpenCLDeviceInfo) throws {
        self.info = info
        gemmTile = ProgramBuilder.gemmTile(for: info)
        attentionKernels = info.isGPU ? .localTiles : .lanes
        prefersVectorItems = !info.isGPU
        tiledGemm = ProgramBuilder.tiledGemmShape(for: info)
        let requested = try GemmKernelChoice(environment: ProcessInfo.processInfo.environment["DIFFUSE_GEMM_KERNEL"])
        var status: cl_int = 0
        var device: cl_device_id? = info.device
        guard let context = clCreateContext(nil, 1, &device, nil, nil, &status) else {
            throw DiffuseError.device(
                "OpenCL clCreateContext failed with \(OpenCLStatus.name(status)) on \(info.name): \(OpenCLStatus.advice(status))")
        }
        self.context = context
        // Profiling on the queue costs nothing until a launch asks for an event.
        guard
            let queue = clCreateCommandQueue(
                context, info.device, cl_command_queue_properties(CL_QUEUE_PROFILING_ENABLE),
                &status)
        else {
            clReleaseContext(context)
            throw DiffuseError.device(
                "OpenCL clCreateCommandQueue failed with \(OpenCLStatus.name(status)): \(OpenCLStatus.advice(status))")
        }
        self.queue = queue
        do {
            (program, programSource) = try ProgramBuilder.build(context: context, info: info)
        } catch {
            clReleaseCommandQueue(queue)
            clReleaseContext(context)
            throw error
        }
        try createKernels()
        tiledGemmFits = tiledGemm.fits(info) && kernelWorkGroupLimit("gemm_tiled") >= tiledGemm.workGroupSize
        if requested == .tiled && !tiledGemmFits {
            throw DiffuseError.usage(
                "DIFFUSE_GEMM_KERNEL=tiled: gemm_tiled's \(tiledGemm.groupRows)x\(tiledGemm.groupColumns) work-group and "
                    + "\(tiledGemm.localBytes) bytes of local memory do not fit \(info.name)"
            )
        }
        if requested == .clblast && CLBlast.shared == nil {
            throw DiffuseError.usage(
                "DIFFUSE_GEMM_KERNEL=clblast: libclblast.so.1 was not found (Debian: apt-get install libclblast1)")
        }
        gemmKernel = requested
    }

    /// The largest work-group the built kernel `name` allows on this device (0 if unknown).
    func kernelWorkGroupLimit(_ name: String) -> Int {
        guard let kernel = kernels[name] else { return 0 }
        var size = 0
        guard
            clGetKernelWorkGroupInfo(
                kernel, info.device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS
        else { return 0 }
        return size
    }

    deinit {
        clFinish(queue)
        releaseStagedUploads()
        pool.drain()
        for m in geometryBuffers.values { clReleaseMemObject(m) }
        for s in scratchBuffers.values { clReleaseMemObject(s.memory) }
        for k in kernels.values { clReleaseKernel(k) }
        clReleaseProgram(program)
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    private func createKernels() throws {
        var count: cl_uint = 0
        try OpenCLStatus.check(clCreateKernelsInProgram(program, 0, nil, &count), "clCreateKernelsInProgram")
        var list = [cl_kernel?](repeating: nil, count: Int(count))
        try OpenCLStatus.check(clCreateKernelsInProgram(program, count, &list, nil), "clCreateKernelsInProgram")
        for case let kernel? in list {
            var size = 0
            clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), 0, nil, &size)
            var bytes = [CChar](repeating: 0, count: max(size, 1))
            clGetKernelInfo(kernel, cl_kernel_info(CL_KERNEL_FUNCTION_NAME), size, &bytes, nil)
            kernels[String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)] = kernel
        }
    }

    @inline(__always)
    func memory(_ buffer: DeviceBuffer) -> cl_mem { unsafeDowncast(buffer, to: OpenCLBuffer.self).memory }

    // MARK: Memory

    public func allocate(count: Int) throws -> DeviceBuffer {
        guard count >= 0, count < Int(Int32.max) else {
            throw DiffuseError.device("cannot allocate \(count) floats on \(name): the OpenCL backend indexes with 32-bit ints")
        }
        if let m = pool.take(count) { return OpenCLBuffer(count: count, memory: m, pool: pool) }
        var status: cl_int = 0
        ledger.buffersCreated += 1
        var m = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(count, 1) * 4, nil, &status)
        if m == nil {
            pool.drain()  // free what the pool holds and try once more
            m = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(count, 1) * 4, nil, &status)
        }
        guard let memory = m else {
            throw DiffuseError.device(
                "OpenCL clCreateBuffer (\(count * 4) bytes) failed with \(OpenCLStatus.name(status)): "
                    + "\(OpenCLStatus.advice(status))"
            )
        }
        return OpenCLBuffer(count: count, memory: memory, pool: pool)
    }

    public var viewAlignment: Int { max(16, info.baseAddressAlignBits / 32) }

    /// A sub-buffer (clCreateSubBuffer); views of one parent never overlap in this program, and a
    /// deferred sum into a view counts as touching its parent (OpenCLDevice+DeferredReductions).
    public func view(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer {
        guard offset >= 0, count > 0, offset % viewAlignment == 0, offset + count <= buffer.count else {
            throw DiffuseError.shape("a view of \(count) floats at \(offset) does not fit a buffer of \(buffer.count)")
        }
        let parent = unsafeDowncast(buffer, to: OpenCLBuffer.self)
        var region = cl_buffer_region(origin: offset * 4, size: count * 4)
        var status: cl_int = 0
        ledger.buffersCreated += 1
        let sub = clCreateSubBuffer(
            parent.memory, cl_mem_flags(CL_MEM_READ_WRITE), cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region,
            &status)
        guard let sub, status == CL_SUCCESS else {
            throw DiffuseError.device(
                "OpenCL clCreateSubBuffer (\(count * 4) bytes at \(offset * 4)) failed with \(OpenCLStatus.name(status)): "
                    + OpenCLStatus.advice(status))
        }
        return OpenCLBuffer(subBuffer: sub, count: count, of: parent)
    }

    /// Queues the copy without waiting: the data goes to a staging copy that lives until the queue
    /// has passed it, so uploading a batch does not wait for the previous training step.
    public func upload(_ host: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer) throws {
        guard let base = host.baseAddress, host.count > 0 else { return }
        if deferredMemory.contains(memory(buffer)) { try flushDeferredReductions() }
        let bytes = min(host.count, buffer.count) * 4
        let staging = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        staging.copyMemory(from: base, byteCount: bytes)
        let status = clEnqueueWriteBuffer(queue, memory(buffer), cl_bool(CL_FALSE), 0, bytes, staging, 0, nil, nil)
        guard status == CL_SUCCESS else {
            staging.deallocate()
            try OpenCLStatus.check(status, "clEnqueueWriteBuffer")
            return
        }
        stagedUploads.append(staging)
        if stagedUploads.count > 64 { try finishQueue() }
    }

    public func download(_ buffer: DeviceBuffer, to host: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = host.baseAddress, host.count > 0 else { return }
        try flushDeferredReductions()
        try OpenCLStatus.check(
            clEnqueueReadBuffer(
                queue, memory(buffer), cl_bool(CL_TRUE), 0,
                min(host.count, buffer.count) * 4, base, 0, nil, nil),
            "clEnqueueReadBuffer")
        ledger.hostWaits += 1
        releaseStagedUploads()  // a blocking read on an in-order queue means every earlier command is done
    }

    /// Waits for all queued work.
    func finishQueue() throws {
        ledger.hostWaits += 1
        try OpenCLStatus.check(clFinish(queue), "clFinish")
        releaseStagedUploads()
    }

    func releaseStagedUploads() {
        for pointer in stagedUploads { pointer.deallocate() }
        stagedUploads.removeAll(keepingCapacity: true)
    }

    /// A device buffer of at least `count` floats kept for reuse (im2col columns, partial sums).
    func scratch(_ slot: Int, count: Int) throws -> cl_mem {
        if let s = scratchBuffers[slot], s.count >= count { return s.memory }
        guard count < Int(Int32.max) else {
            throw DiffuseError.device("cannot allocate \(count) floats of scratch on \(name): kernels index with 32-bit ints")
        }
        if let old = scratchBuffers[slot] { clReleaseMemObject(old.memory) }
        ledger.buffersCreated += 1
        var status: cl_int = 0
        guard let m = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(count, 1) * 4, nil, &status) else {
            throw DiffuseError.device(
                "OpenCL scratch allocation (\(count * 4) bytes) failed with \(OpenCLStatus.name(status)): "
                    + "\(OpenCLStatus.advice(status))"
            )
        }
        scratchBuffers[slot] = (m, count)
        return m
    }

    /// A read-only buffer holding `values`, created once per distinct geometry.
    func geometryBuffer(_ values: [Int32]) throws -> cl_mem {
        if let m = geometryBuffers[values] { return m }
        ledger.buffersCreated += 1
        var status: cl_int = 0
        var copy = values
        guard
            let m = clCreateBuffer(
                context, cl_mem_flags(CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR),
                copy.count * 4, &copy, &status)
        else {
            throw DiffuseError.device("OpenCL geometry buffer failed with \(OpenCLStatus.name(status))")
        }
        geometryBuffers[values] = m
        return m
    }

    // MARK: Launching

    /// Enqueues `name` over `global` work-items, rounded up to whole work-groups of `local`.
    /// `serial` is the longest loop one work-item runs; `bytes` and `flops` estimate the launch's
    /// traffic and arithmetic. All three go to the ledger, which checks every launch's shape.
    func launch(
        _ name: String, global: [Int], local: [Int], serial: Int = 1, bytes: Double = 0, flops: Double = 0,
        _ arguments: [KernelArgument]
    ) throws {
        guard let kernel = kernels[name] else {
            throw DiffuseError.device("OpenCL kernel \(name) is missing from the program")
        }
        try flushIfDeferred(arguments)
        for (i, argument) in arguments.enumerated() {
            let status: cl_int
            switch argument {
            case .buffer(let b):
                var m: cl_mem? = memory(b)
                status = clSetKernelArg(kernel, cl_uint(i), MemoryLayout<cl_mem>.size, &m)
            case .memory(let m):
                var value: cl_mem? = m
                status = clSetKernelArg(kernel, cl_uint(i), MemoryLayout<cl_mem>.size, &value)
            case .int(let v):
                guard v >= Int(Int32.min), v <= Int(Int32.max) else {
                    throw DiffuseError.device("\(name): argument \(i) = \(v) does not fit a 32-bit int")
                }
                var value = Int32(v)
                status = clSetKernelArg(kernel, cl_uint(i), 4, &value)
            case .uint(let v):
                var value = v
                status = clSetKernelArg(kernel, cl_uint(i), 4, &value)
            case .float(let v):
                var value = v
                status = clSetKernelArg(kernel, cl_uint(i), 4, &value)
            case .divisor(let d):
                let f = try FastDivisor(d)
                var value: (UInt32, UInt32) = (f.magic, f.shift)
                status = clSetKernelArg(kernel, cl_uint(i), 8, &value)
            }
            try OpenCLStatus.check(status, "clSetKernelArg(\(name), \(i))")
        }
        guard global.allSatisfy({ $0 > 0 }) else { return }
        var globalSize = zip(global, local).map { g, l in (g + l - 1) / l * l }
        var localSize = local
        ledger.record(name, workItems: globalSize.reduce(1, *), serial: serial, bytes: bytes, flops: flops)
        if profiling {
            var event: cl_event?
            try OpenCLStatus.check(
                clEnqueueNDRangeKernel(
                    queue, kernel, cl_uint(global.count), nil, &globalSize,
                    &localSize, 0, nil, &event), "clEnqueueNDRangeKernel(\(name))")
            if let event { ledger.track(name, event) }
        } else {
            try OpenCLStatus.check(
                clEnqueueNDRangeKernel(
                    queue, kernel, cl_uint(global.count), nil, &globalSize,
                    &localSize, 0, nil, nil), "clEnqueueNDRangeKernel(\(name))")
        }
    }

    /// Kernel times gathered since profiling was switched on, longest first (waits for the queue).
    public func profileReport(steps: Int = 1) throws -> String {
        try collectProfile()
        let rows = ledger.perStep(steps)
        let total = rows.reduce(0) { $0 + $1.seconds }
        return rows.map { t in
            "  " + t.kernel.padding(toLength: 28, withPad: " ", startingAt: 0)
                + String(
                    format: "%6d launches %9.4f s %5.1f%%  min %8d items  max %6d iterations", t.launches, t.seconds,
                    100 * t.seconds / max(total, 1e-12), t.minWorkItems, t.maxSerialIterations)
        }.joined(separator: "\n")
    }

    /// A 1-D launch over `count` items in work-groups of 64.
    func launch1D(
        _ name: String, count: Int, serial: Int = 1, bytes: Double = 0, flops: Double = 0,
        _ arguments: [KernelArgument]
    ) throws {
        try launch(name, global: [count], local: [64], serial: serial, bytes: bytes, flops: flops, arguments)
    }
}
