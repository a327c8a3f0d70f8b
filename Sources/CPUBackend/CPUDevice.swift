// The CPU backend: the reference implementation of every Device op, in plain Swift over raw
// pointers plus OpenBLAS for GEMM and convolution, split over both cores.
import CBLAS
import CKernels
import DiffuseCore
import Foundation
import Tensor

public final class CPUBuffer: DeviceBuffer {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// Where the memory goes back: the pool, or nowhere for a view (which holds its parent).
    private enum Owner {
        case pool(CPUBufferPool)
        case parent(CPUBuffer)
    }
    private let owner: Owner

    init(count: Int, pool: CPUBufferPool) {
        self.count = count
        self.owner = .pool(pool)
        self.pointer = pool.take(count)
    }

    /// `count` floats of `parent` from `offset`.
    init(viewOf parent: CPUBuffer, offset: Int, count: Int) {
        self.count = count
        self.owner = .parent(parent)
        self.pointer = parent.pointer + offset
    }

    deinit { if case .pool(let pool) = owner { pool.give(pointer, count: count) } }
}

/// Freed buffers wait here by size, so a training step that repeats its shapes allocates nothing.
final class CPUBufferPool: @unchecked Sendable {
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var pooledFloats = 0
    private let lock = NSLock()
    /// Above this the pool hands memory back to the system instead of keeping it.
    private let limitFloats = 1 << 30

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        if var list = free[count], let pointer = list.popLast() {
            free[count] = list
            pooledFloats -= count
            lock.unlock()
            return pointer
        }
        lock.unlock()
        return UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        lock.lock()
        if pooledFloats + count <= limitFloats {
            free[count, default: []].append(pointer)
            pooledFloats += count
            lock.unlock()
        } else {
            lock.unlock()
            pointer.deallocate()
        }
    }
}

/// Grow-only scratch memory, one slot per worker, for im2col columns and the like.
final class ScratchSpace: @unchecked Sendable {
    private var slots: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)]
    private let lock = NSLock()

    init(workers: Int) {
        slots = (0..<workers).map { _ in (UnsafeMutablePointer<Float>.allocate(capacity: 1), 1) }
    }

    func buffer(worker: Int, count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if slots[worker].capacity < count {
            slots[worker].pointer.deallocate()
            slots[worker] = (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
        }
        return slots[worker].pointer
    }
}

public final class CPUDevice: Device {
    public static let shared = CPUDevice()

    public let kind = DeviceKind.cpu
    public var name: String { "cpu (OpenBLAS, \(workers) threads)" }
    public var memoryBytes: UInt64 { ProcessInfo.processInfo.physicalMemory }
    let workers = Parallel.coreCount
    let pool = CPUBufferPool()
    /// Two regions per worker: columns and gathered gradients.
    let scratchA: ScratchSpace
    let scratchB: ScratchSpace
    /// Partial sums of the reductions that run outside the workers (weight and norm gradients); kept,
    /// because freshly mapped pages for them cost more than the sums.
    let partialSums = ScratchSpace(workers: 1)

    /// Whether to try the CKernels AVX2 loops (they decline on CPUs without AVX2); tests turn
    /// this off to run the portable Swift loops on such a CPU too.
    nonisolated(unsafe) static var avx2Kernels = true

    public init() {
        // We split work over the cores ourselves; OpenBLAS threads inside our workers would fight them.
        openblas_set_num_threads(1)
        scratchA = ScratchSpace(workers: workers)
        scratchB = ScratchSpace(workers: workers)
    }

    @inline(__always)
    func pointer(_ buffer: DeviceBuffer) -> UnsafeMutablePointer<Float> {
        unsafeDowncast(buffer, to: CPUBuffer.self).pointer
    }

    // MARK: Memory

    public func allocate(count: Int) throws -> DeviceBuffer {
        guard count >= 0 else { throw DiffuseError.shape("cannot allocate \(count) floats") }
        return CPUBuffer(count: count, pool: pool)
    }

    public var viewAlignment: Int { 16 }

    public func view(of buffer: DeviceBuffer, offset: Int, count: Int) throws -> DeviceBuffer {
        guard offset >= 0, count >= 0, offset % viewAlignment == 0, offset + count <= buffer.count else {
            throw DiffuseError.shape("a view of \(count) floats at \(offset) does not fit a buffer of \(buffer.count)")
        }
        return CPUBuffer(viewOf: unsafeDowncast(buffer, to: CPUBuffer.self), offset: offset, count: count)
    }

    public func upload(_ host: UnsafeBufferPointer<Float>, to buffer: DeviceBuffer) throws {
        guard host.count <= buffer.count, let base = host.baseAddress else { return }
        pointer(buffer).update(from: base, count: host.count)
    }

    public func download(_ buffer: DeviceBuffer, to host: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = host.baseAddress else { return }
        base.update(from: pointer(buffer), count: min(host.count, buffer.count))
    }

    // MARK: Data movement and elementwise

    public func fill(_ out: DeviceBuffer, value: Float, count: Int) throws {
        let o = pointer(out)
        Parallel.forChunks(count, minimumChunk: 1 << 18) { r in
            (o + r.lowerBound).update(repeating: value, count: r.count)
        }
    }

    public func copyBlocks(from source: DeviceBuffer, to destination: DeviceBuffer, _ g: BlockCopyGeometry) throws {
        let s = pointer(source) + g.sourceOffset
        let d = pointer(destination) + g.destinationOffset
        Parallel.forChunks(g.blockCount, minimumChunk: max(1, 65_536 / max(g.blockLength, 1))) { r in
            for block in r {
                let from = s + block * g.sourceStride
                let to = d + block * g.destinationStride
                if g.accumulate {
                    for i in 0..<g.blockLength { to[i] += from[i] }
                } else {
                    to.update(from: from, count: g.blockLength)
                }
            }
        }
    }

    public func transpose(_ x: DeviceBuffer, out: DeviceBuffer, _ g: TransposeGeometry) throws {
        let s = pointer(x)
        let d = pointer(out)
        let size = g.rows * g.columns
        Parallel.forChunks(g.batch, minimumChunk: max(1, 16_384 / max(size, 1))) { r in
            for b in r {
                let src = s + b * size
                let dst = d + b * size
                // Blocked so both sides stay in cache.
                let tile = 32
                for i0 in stride(from: 0, to: g.rows, by: tile) {
                    for j0 in stride(from: 0, to: g.columns, by: tile) {
                        for i in i0..<min(i0 + tile, g.rows) {
                            for j in j0..<min(j0 + tile, g.columns) {
                                dst[j * g.rows + i] = src[i * g.columns + j]
                            }
                        }
                    }
                }
            }
        }
    }

    public func unary(_ op: UnaryOp, _ x: DeviceBuffer, out: DeviceBuffer, count: Int) throws {
        let s = pointer(x)
        let d = pointer(out)
        Parallel.forChunks(count) { r in
            switch op {
            case .silu, .exp, .sigmoid:
                let n = r.count
                let (from, to) = (s + r.lowerBound, d + r.lowerBound)
                if CPUDevice.avx2Kernels {
                    let done: Int32
                    switch op {
                    case .silu: done = diffuse_silu(from, to, n)
                    case .sigmoid: done = diffuse_sigmoid(from, to, n)
                    default: done = diffuse_exp(from, to, n)
                    }
                    if done != 0 { return }
                }
                // Without AVX2: the polynomial exponential, then libm again for a chunk with an
                // argument outside its range.
                var outside: UInt32 = 0
                switch op {
                case .silu: for i in r { let v = s[i]; d[i] = v / (1 + polynomialExp(expArgument(-v, &outside))) }
                case .sigmoid: for i in r { d[i] = 1 / (1 + polynomialExp(expArgument(-s[i], &outside))) }
                default: for i in r { d[i] = polynomialExp(expArgument(s[i], &outside)) }
                }
                guard outside != 0 else { return }
                switch op {
                case .silu: for i in r { let v = s[i]; d[i] = v / (1 + Foundation.exp(-v)) }
                case .sigmoid: for i in r { d[i] = 1 / (1 + Foundation.exp(-s[i])) }
                default: for i in r { d[i] = Foundation.exp(s[i]) }
                }
            case .sin: for i in r { d[i] = Foundation.sin(s[i]) }
            case .cos: for i in r { d[i] = Foundation.cos(s[i]) }
            case .negate: for i in r { d[i] = -s[i] }
            case .square: for i in r { d[i] = s[i] * s[i] }
            case .sqrt: for i in r { d[i] = s[i].squareRoot() }
            case .relu: for i in r { d[i] = max(s[i], 0) }
            case .tanh: for i in r { d[i] = Foundation.tanh(s[i]) }
            }
        }
    }

    public func unaryBackward(
        _ op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int
    ) throws {
        let xs = pointer(x)
        let ys = pointer(y)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        Parallel.forChunks(count) { r in
            switch op {
            case .silu:
                if CPUDevice.avx2Kernels
                    && diffuse_silu_backward(xs + r.lowerBound, dy + r.lowerBound, dx + r.lowerBound, r.count) != 0
                {
                    return
                }
                var outside: UInt32 = 0
                for i in r {
                    let sig = 1 / (1 + polynomialExp(expArgument(-xs[i], &outside)))
                    dx[i] = dy[i] * sig * (1 + xs[i] * (1 - sig))
                }
                guard outside != 0 else { return }
                for i in r {
                    let sig = 1 / (1 + Foundation.exp(-xs[i]))
                    dx[i] = dy[i] * sig * (1 + xs[i] * (1 - sig))
                }
            case .exp: for i in r { dx[i] = dy[i] * ys[i] }
            case .sin: for i in r { dx[i] = dy[i] * Foundation.cos(xs[i]) }
            case .cos: for i in r { dx[i] = -dy[i] * Foundation.sin(xs[i]) }
            case .negate: for i in r { dx[i] = -dy[i] }
            case .square: for i in r { dx[i] = 2 * xs[i] * dy[i] }
            case .sqrt: for i in r { dx[i] = dy[i] / (2 * ys[i]) }
            case .relu: for i in r { dx[i] = xs[i] > 0 ? dy[i] : 0 }
            case .tanh: for i in r { dx[i] = dy[i] * (1 - ys[i] * ys[i]) }
            case .sigmoid: for i in r { dx[i] = dy[i] * ys[i] * (1 - ys[i]) }
            }
        }
    }

    public func affine(_ x: DeviceBuffer, out: DeviceBuffer, scale: Float, shift: Float, count: Int) throws {
        let s = pointer(x)
        let d = pointer(out)
        Parallel.forChunks(count) { r in for i in r { d[i] = s[i] * scale + shift } }
    }

    public func linearCombination(
        _ x: DeviceBuffer, _ a: Float, _ y: DeviceBuffer, _ b: Float,
        out: DeviceBuffer, count: Int
    ) throws {
        let xs = pointer(x)
        let ys = pointer(y)
        let d = pointer(out)
        Parallel.forChunks(count) { r in for i in r { d[i] = a * xs[i] + b * ys[i] } }
    }

    public func clamp(_ x: DeviceBuffer, out: DeviceBuffer, low: Float, high: Float, count: Int) throws {
        let s = pointer(x)
        let d = pointer(out)
        Parallel.forChunks(count) { r in for i in r { d[i] = min(max(s[i], low), high) } }
    }

    /// total += addend elementwise (old + new, the order autograd's separate sum used).
    func addInPlace(_ total: DeviceBuffer, _ addend: DeviceBuffer, count: Int) throws {
        try binary(.add, total, addend, out: total, BroadcastGeometry(shape: [count], stridesA: [1], stridesB: [1]))
    }

    public func binary(
        _ op: BinaryOp, _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer,
        _ g: BroadcastGeometry
    ) throws {
        let pa = pointer(a)
        let pb = pointer(b)
        let po = pointer(out)
        let rank = g.shape.count
        let inner = g.shape[rank - 1]
        let sa = g.stridesA[rank - 1]
        let sb = g.stridesB[rank - 1]
        let rows = g.count / max(inner, 1)
        Parallel.forChunks(rows, minimumChunk: max(1, 32_768 / max(inner, 1))) { r in
            for row in r {
                var offA = 0
                var offB = 0
                var rest = row
                for axis in stride(from: rank - 2, through: 0, by: -1) {
                    let index = rest % g.shape[axis]
                    rest /= g.shape[axis]
                    offA += index * g.stridesA[axis]
                    offB += index * g.stridesB[axis]
                }
                CPUDevice.binaryRow(op, pa + offA, sa, pb + offB, sb, po + row * inner, inner)
            }
        }
    }

    @inline(__always)
    static func binaryRow(
        _ op: BinaryOp, _ a: UnsafeMutablePointer<Float>, _ sa: Int,
        _ b: UnsafeMutablePointer<Float>, _ sb: Int, _ o: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        // Specialised on the common unit and zero strides so the compiler vectorises them.
        switch (op, sa, sb) {
        case (.add, 1, 1): for i in 0..<n { o[i] = a[i] + b[i] }
        case (.add, 1, 0): let v = b[0]; for i in 0..<n { o[i] = a[i] + v }
        case (.subtract, 1, 1): for i in 0..<n { o[i] = a[i] - b[i] }
        case (.subtract, 1, 0): let v = b[0]; for i in 0..<n { o[i] = a[i] - v }
        case (.multiply, 1, 1): for i in 0..<n { o[i] = a[i] * b[i] }
        case (.multiply, 1, 0): let v = b[0]; for i in 0..<n { o[i] = a[i] * v }
        case (.multiply, 0, 1): let v = a[0]; for i in 0..<n { o[i] = v * b[i] }
        case (.divide, 1, 1): for i in 0..<n { o[i] = a[i] / b[i] }
        default:
            for i in 0..<n {
                let x = a[i * sa]
                let y = b[i * sb]
                switch op {
                case .add: o[i] = x + y
                case .subtract: o[i] = x - y
                case .multiply: o[i] = x * y
                case .divide: o[i] = x / y
                }
            }
        }
    }

    public func reduceSum(_ x: DeviceBuffer, out: DeviceBuffer, _ g: ReduceGeometry) throws {
        let s = pointer(x)
        let d = pointer(out)
        let rank = g.shape.count
        let inner = g.shape[rank - 1]
        let innerStride = g.outputStrides[rank - 1]
        let rows = g.inputCount / max(inner, 1)
        if g.outputCount == 1 {
            // A full sum: per-chunk partials in Double, then combined.
            let total = g.inputCount
            let chunks = max(1, min(workers, total / 65_536))
            var partial = [Double](repeating: 0, count: chunks)
            partial.withUnsafeMutableBufferPointer { p in
                let partials = p.baseAddress!
                Parallel.forEach(chunks) { c, _ in
                    let lo = c * total / chunks
                    let hi = (c + 1) * total / chunks
                    var acc: Double = 0
                    var i = lo
                    while i < hi {
                        let end = min(hi, i + 1024)
                        var block: Float = 0
                        for j in i..<end { block += s[j] }
                        acc += Double(block)
                        i = end
                    }
                    partials[c] = acc
                }
            }
            d[0] = Float(partial.reduce(0, +))
            return
        }
        d.update(repeating: 0, count: g.outputCount)
        for row in 0..<rows {
            var offOut = 0
            var rest = row
            for axis in stride(from: rank - 2, through: 0, by: -1) {
                let index = rest % g.shape[axis]
                rest /= g.shape[axis]
                offOut += index * g.outputStrides[axis]
            }
            let src = s + row * inner
            let dst = d + offOut
            if innerStride == 0 {
                var acc: Float = 0
                for i in 0..<inner { acc += src[i] }
                dst[0] += acc
            } else {
                for i in 0..<inner { dst[i * innerStride] += src[i] }
            }
        }
    }

    // MARK: Losses and optimizers

    public func mseLoss(_ prediction: DeviceBuffer, _ target: DeviceBuffer, out: DeviceBuffer, count: Int) throws {
        let p = pointer(prediction)
        let t = pointer(target)
        let chunks = max(1, min(workers, count / 65_536))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { buffer in
            let partials = buffer.baseAddress!
            Parallel.forEach(chunks) { c, _ in
                var acc: Double = 0
                for i in (c * count / chunks)..<((c + 1) * count / chunks) {
                    let e = Double(p[i] - t[i])
                    acc += e * e
                }
                partials[c] = acc
            }
        }
        pointer(out)[0] = Float(partial.reduce(0, +) / Double(max(count, 1)))
    }

    public func mseLossBackward(
        _ prediction: DeviceBuffer, _ target: DeviceBuffer, gradOut: DeviceBuffer,
        gradIn: DeviceBuffer, count: Int
    ) throws {
        let p = pointer(prediction)
        let t = pointer(target)
        let d = pointer(gradIn)
        let scale = 2 / Float(max(count, 1)) * pointer(gradOut)[0]
        Parallel.forChunks(count) { r in for i in r { d[i] = (p[i] - t[i]) * scale } }
    }

    public func adamUpdate(
        parameter: DeviceBuffer, gradient: DeviceBuffer, firstMoment: DeviceBuffer,
        secondMoment: DeviceBuffer, count: Int, _ h: AdamStep
    ) throws {
        let p = pointer(parameter)
        let g = pointer(gradient)
        let m = pointer(firstMoment)
        let v = pointer(secondMoment)
        Parallel.forChunks(count) { r in
            for i in r {
                let grad = g[i] + h.gradientWeightDecay * p[i]
                let param = p[i] * h.parameterDecayFactor
                // exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
                let mi = m[i] + h.oneMinusBeta1 * (grad - m[i])
                let vi = v[i] * h.beta2 + h.oneMinusBeta2 * grad * grad
                m[i] = mi
                v[i] = vi
                let denominator = vi.squareRoot() / h.biasCorrection2Sqrt + h.epsilon
                p[i] = param - h.stepSize * (mi / denominator)
            }
        }
    }

    public func schedulerStep(
        sample: DeviceBuffer, modelOutput: DeviceBuffer, noise: DeviceBuffer?,
        previous: DeviceBuffer, predictedOriginal: DeviceBuffer,
        _ g: SchedulerStepGeometry
    ) throws {
        let s = pointer(sample)
        let o = pointer(modelOutput)
        let n = noise.map { pointer($0) }
        let prev = pointer(previous)
        let x0 = pointer(predictedOriginal)
        Parallel.forChunks(g.count) { r in
            for i in r {
                let result = g.apply(sample: s[i], output: o[i], noise: n?[i] ?? 0)
                prev[i] = result.previous
                x0[i] = result.original
            }
        }
    }

    // MARK: Random numbers

    /// Value i of a draw is lane (key.shift + i) % 4 of block (key.shift + i) / 4 (RandomKey);
    /// `body(block, lane, i)` runs for each value, blocks in parallel.
    @inline(__always)
    private func forEachRandomValue(
        count: Int, key: RandomKey, minimumChunk: Int,
        _ body: (_ block: (UInt32, UInt32, UInt32, UInt32), _ lane: Int, _ index: Int) -> Void
    ) {
        let shift = key.shift
        Parallel.forChunks(Int(Philox.blocks(for: count + shift)), minimumChunk: minimumChunk) { r in
            for block in r {
                let b = Philox.block(key: key, index: UInt64(block))
                for lane in 0..<4 {
                    let i = block * 4 + lane - shift
                    if i >= 0 && i < count { body(b, lane, i) }
                }
            }
        }
    }

    public func fillUniform(_ out: DeviceBuffer, count: Int, key: RandomKey, low: Float, high: Float) throws {
        let d = pointer(out)
        let span = high - low
        forEachRandomValue(count: count, key: key, minimumChunk: 8_192) { b, lane, i in
            d[i] = low + span * Philox.unitFloat(Philox.lane(b, lane))
        }
    }

    public func fillDropoutMask(_ out: DeviceBuffer, count: Int, key: RandomKey, probability: Float) throws {
        let d = pointer(out)
        let keep = 1 / (1 - probability)
        forEachRandomValue(count: count, key: key, minimumChunk: 8_192) { b, lane, i in
            d[i] = Philox.unitFloat(Philox.lane(b, lane)) >= probability ? keep : 0
        }
    }

    public func fillNormal(_ out: DeviceBuffer, count: Int, key: RandomKey, mean: Float, standardDeviation: Float) throws {
        let d = pointer(out)
        forEachRandomValue(count: count, key: key, minimumChunk: 4_096) { b, lane, i in
            let z = lane < 2 ? Philox.normal(b.0, b.1, first: lane == 0) : Philox.normal(b.2, b.3, first: lane == 2)
            d[i] = mean + standardDeviation * z
        }
    }
}
