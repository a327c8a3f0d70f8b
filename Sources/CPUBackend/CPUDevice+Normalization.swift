// CPU group norm, softmax, attention, max pooling and nearest upsampling with their gradients.
import CKernels
import Foundation
import Tensor

extension CPUDevice {
    /// With a shift, each group is first written as x + shift[n, c] into `sum` (a float add, as
    /// the separate broadcast add rounds it), and normalised from there.
    public func groupNorm(
        _ x: DeviceBuffer, shift: DeviceBuffer?, sum: DeviceBuffer?, gamma: DeviceBuffer?, beta: DeviceBuffer?,
        out: DeviceBuffer, mean: DeviceBuffer, rstd: DeviceBuffer, _ g: GroupNormGeometry
    ) throws {
        let shifted = shift.flatMap { shift in sum.map { (shift: shift, sum: $0) } }
        let px = pointer(shifted?.sum ?? x)
        let pin = pointer(x)
        let pshift = shifted.map { pointer($0.shift) }
        let po = pointer(out)
        let pg = gamma.map { pointer($0) }
        let pb = beta.map { pointer($0) }
        let pm = pointer(mean)
        let pr = pointer(rstd)
        let cpg = g.channelsPerGroup
        let groupSize = cpg * g.spatial
        Parallel.forEach(g.batch * g.groups, workers: g.batch * g.groups * groupSize < 65_536 ? 1 : workers) { ng, _ in
            let base = px + ng * groupSize
            if let pshift {
                let firstShift = (ng / g.groups) * g.channels + (ng % g.groups) * cpg
                for cc in 0..<cpg {
                    let t = pshift[firstShift + cc]
                    let src = pin + ng * groupSize + cc * g.spatial
                    let dst = base + cc * g.spatial
                    for i in 0..<g.spatial { dst[i] = src[i] + t }
                }
            }
            var sum: Double = 0
            var sumSquares: Double = 0
            if !CPUDevice.avx2Kernels || diffuse_sum_squares(base, groupSize, &sum, &sumSquares) == 0 {
                for i in 0..<groupSize {
                    let v = Double(base[i])
                    sum += v
                    sumSquares += v * v
                }
            }
            let mu = sum / Double(groupSize)
            let variance = max(sumSquares / Double(groupSize) - mu * mu, 0)
            let r = 1 / (variance + Double(g.epsilon)).squareRoot()
            pm[ng] = Float(mu)
            pr[ng] = Float(r)
            let group = ng % g.groups
            for cc in 0..<cpg {
                let c = group * cpg + cc
                let scale = Float(r) * (pg?[c] ?? 1)
                let shift = (pb?[c] ?? 0) - Float(mu) * scale
                let src = base + cc * g.spatial
                let dst = po + ng * groupSize + cc * g.spatial
                for i in 0..<g.spatial { dst[i] = src[i] * scale + shift }
            }
            if g.silu { CPUDevice.siluInPlace(po + ng * groupSize, groupSize) }
        }
    }

    /// y = silu(y), with the same kernels as `unary(.silu)`.
    static func siluInPlace(_ y: UnsafeMutablePointer<Float>, _ n: Int) { silu(y, into: y, n) }

    /// y = silu(x); y may be x.
    static func silu(_ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        if CPUDevice.avx2Kernels && diffuse_silu(x, y, n) != 0 { return }
        for i in 0..<n { y[i] = x[i] / (1 + Foundation.exp(-x[i])) }
    }

    /// y = dy * silu'(y): the gradient at the norm's output from the gradient at silu's.
    static func siluGradientInPlace(_ y: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ n: Int) {
        if CPUDevice.avx2Kernels && diffuse_silu_backward(y, dy, y, n) != 0 { return }
        for i in 0..<n {
            let s = 1 / (1 + Foundation.exp(-y[i]))
            y[i] = dy[i] * s * (1 + y[i] * (1 - s))
        }
    }

    public func groupNormBackward(
        _ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, mean: DeviceBuffer,
        rstd: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool, gradGamma: DeviceBuffer?,
        gradBeta: DeviceBuffer?, _ g: GroupNormGeometry
    ) throws {
        if accumulate {
            let fresh = try allocate(count: g.batch * g.channels * g.spatial)
            try groupNormBackward(
                x, gamma: gamma, beta: beta, mean: mean, rstd: rstd, gradOut: gradOut, gradIn: fresh,
                accumulate: false, gradGamma: gradGamma, gradBeta: gradBeta, g)
            return try addInPlace(gradIn, fresh, count: fresh.count)
        }
        let px = pointer(x)
        let pg = gamma.map { pointer($0) }
        let pb = beta.map { pointer($0) }
        let pm = pointer(mean)
        let pr = pointer(rstd)
        let dyOut = pointer(gradOut)
        let dx = pointer(gradIn)
        let cpg = g.channelsPerGroup
        let groupSize = cpg * g.spatial
        // Per (sample, channel): sum(dy * xhat) and sum(dy), reduced over samples afterwards.
        let partial = partialSums.buffer(worker: 0, count: 2 * g.batch * g.channels)
        Parallel.forEach(g.batch * g.groups, workers: g.batch * g.groups * groupSize < 65_536 ? 1 : workers) { ng, worker in
            let n = ng / g.groups
            let group = ng % g.groups
            let mu = pm[ng]
            let r = pr[ng]
            // With SiLU fused, dy is the gradient at the norm's output: the forward's affine output
            // recomputed as it was written, then times silu'.
            var groupGrad = UnsafePointer(dyOut + ng * groupSize)
            if g.silu {
                let local = scratchA.buffer(worker: worker, count: groupSize)
                for cc in 0..<cpg {
                    let c = group * cpg + cc
                    let scale = r * (pg?[c] ?? 1)
                    let shift = (pb?[c] ?? 0) - mu * scale
                    let src = px + ng * groupSize + cc * g.spatial
                    let dst = local + cc * g.spatial
                    for i in 0..<g.spatial { dst[i] = src[i] * scale + shift }
                }
                CPUDevice.siluGradientInPlace(local, groupGrad, groupSize)
                groupGrad = UnsafePointer(local)
            }
            var meanDxhat: Double = 0
            var meanDxhatXhat: Double = 0
            for cc in 0..<cpg {
                let c = group * cpg + cc
                let gammaC = pg?[c] ?? 1
                let src = px + ng * groupSize + cc * g.spatial
                let grad = groupGrad + cc * g.spatial
                // Eight partial sums each: one running Float sum waited on every add.
                let (muLanes, rLanes) = (SIMD8<Float>(repeating: mu), SIMD8<Float>(repeating: r))
                var dyXhatLanes = SIMD8<Float>(repeating: 0)
                var dyLanes = SIMD8<Float>(repeating: 0)
                var i = 0
                while i + 8 <= g.spatial {
                    let dyv = simdLoad(grad + i)
                    dyXhatLanes += dyv * ((simdLoad(src + i) - muLanes) * rLanes)
                    dyLanes += dyv
                    i += 8
                }
                var sumDyXhat = dyXhatLanes.sum()
                var sumDy = dyLanes.sum()
                while i < g.spatial {
                    sumDyXhat += grad[i] * ((src[i] - mu) * r)
                    sumDy += grad[i]
                    i += 1
                }
                partial[n * g.channels + c] = sumDyXhat
                partial[g.batch * g.channels + n * g.channels + c] = sumDy
                meanDxhat += Double(sumDy * gammaC)
                meanDxhatXhat += Double(sumDyXhat * gammaC)
            }
            let a = Float(meanDxhat / Double(groupSize))
            let b = Float(meanDxhatXhat / Double(groupSize))
            for cc in 0..<cpg {
                let c = group * cpg + cc
                let gammaC = pg?[c] ?? 1
                let src = px + ng * groupSize + cc * g.spatial
                let grad = groupGrad + cc * g.spatial
                let out = dx + ng * groupSize + cc * g.spatial
                for i in 0..<g.spatial {
                    let xhat = (src[i] - mu) * r
                    out[i] = r * (grad[i] * gammaC - a - xhat * b)
                }
            }
        }
        if let gradGamma {
            let d = pointer(gradGamma)
            for c in 0..<g.channels { d[c] = (0..<g.batch).reduce(0) { $0 + partial[$1 * g.channels + c] } }
        }
        if let gradBeta {
            let d = pointer(gradBeta)
            let sums = partial + g.batch * g.channels
            for c in 0..<g.channels { d[c] = (0..<g.batch).reduce(0) { $0 + sums[$1 * g.channels + c] } }
        }
    }

    /// With the polynomial exponential (libm again for a row with arguments below -87): attention's
    /// softmax over 196 keys per query was the largest cost of a UNet2DModel sampling step on libm expf.
    @inline(__always)
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        if CPUDevice.avx2Kernels && diffuse_softmax_row(x, y, n) != 0 { return }
        let peak = vectorMax(x, n)
        var outside: UInt32 = 0
        for i in 0..<n { y[i] = polynomialExp(expArgument(x[i] - peak, &outside)) }
        if outside != 0 {
            for i in 0..<n { y[i] = Foundation.exp(x[i] - peak) }
        }
        let inverse = 1 / vectorSum(y, n)
        for i in 0..<n { y[i] *= inverse }
    }

    @inline(__always)
    static func softmaxBackwardRow(
        _ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        _ dx: UnsafeMutablePointer<Float>, _ n: Int
    ) {
        let dot = dotProduct(y, dy, n)
        for i in 0..<n { dx[i] = y[i] * (dy[i] - dot) }
    }

    public func softmax(_ x: DeviceBuffer, out: DeviceBuffer, rows: Int, columns: Int) throws {
        let s = pointer(x)
        let d = pointer(out)
        Parallel.forChunks(rows, minimumChunk: max(1, 16_384 / max(columns, 1))) { r in
            for row in r { CPUDevice.softmaxRow(s + row * columns, d + row * columns, columns) }
        }
    }

    public func softmaxBackward(
        y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int,
        columns: Int
    ) throws {
        let py = pointer(y)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        Parallel.forChunks(rows, minimumChunk: max(1, 16_384 / max(columns, 1))) { r in
            for row in r {
                CPUDevice.softmaxBackwardRow(py + row * columns, dy + row * columns, dx + row * columns, columns)
            }
        }
    }

    public func attention(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
        saved: DeviceBuffer, _ g: AttentionGeometry
    ) throws {
        let pq = pointer(q)
        let pk = pointer(k)
        let pv = pointer(v)
        let po = pointer(out)
        let pp = pointer(saved)
        let (lq, lk, d, cm) = (g.queryLength, g.keyLength, g.headDim, g.channelMajor)
        // Channel-major q is stored as Q^T [d, lq] (leading dimension lq), so each product flips its
        // transpose flag; out is written as O^T = V^T P^T.
        let (ldq, ldk) = cm ? (lq, lk) : (d, d)
        Parallel.forEach(g.batch) { b, _ in
            let scores = pp + b * lq * lk
            let (qb, kb, vb, ob) = (pq + b * lq * d, pk + b * lk * d, pv + b * lk * d, po + b * lq * d)
            CPUDevice.sgemm(cm, !cm, lq, lk, d, g.scale, qb, ldq, kb, ldk, 0, scores, lk)
            for row in 0..<lq { CPUDevice.softmaxRow(scores + row * lk, scores + row * lk, lk) }
            if cm {
                CPUDevice.sgemm(false, true, d, lq, lk, 1, vb, lk, scores, lk, 0, ob, lq)
            } else {
                CPUDevice.sgemm(false, false, lq, d, lk, 1, scores, lk, vb, d, 0, ob, d)
            }
        }
    }

    public func attentionBackward(
        q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer, saved: DeviceBuffer,
        gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
        _ g: AttentionGeometry
    ) throws {
        let pq = pointer(q)
        let pk = pointer(k)
        let pv = pointer(v)
        let pp = pointer(saved)
        let dO = pointer(gradOut)
        let dQ = pointer(gradQ)
        let dK = pointer(gradK)
        let dV = pointer(gradV)
        let (lq, lk, d, cm) = (g.queryLength, g.keyLength, g.headDim, g.channelMajor)
        Parallel.forEach(g.batch) { b, worker in
            let probs = pp + b * lq * lk
            let (qb, kb, vb) = (pq + b * lq * d, pk + b * lk * d, pv + b * lk * d)
            let (dOb, dQb, dKb, dVb) = (dO + b * lq * d, dQ + b * lq * d, dK + b * lk * d, dV + b * lk * d)
            let dScores = scratchA.buffer(worker: worker, count: lq * lk)
            // dV = P^T dO; dP = dO V^T; dS = softmax'(dP); dQ = scale dS K; dK = scale dS^T Q
            // (channel-major: the transposes of each, dV^T = dO^T P and so on).
            if cm {
                CPUDevice.sgemm(false, false, d, lk, lq, 1, dOb, lq, probs, lk, 0, dVb, lk)
                CPUDevice.sgemm(true, false, lq, lk, d, 1, dOb, lq, vb, lk, 0, dScores, lk)
            } else {
                CPUDevice.sgemm(true, false, lk, d, lq, 1, probs, lk, dOb, d, 0, dVb, d)
                CPUDevice.sgemm(false, true, lq, lk, d, 1, dOb, d, vb, d, 0, dScores, lk)
            }
            for row in 0..<lq {
                CPUDevice.softmaxBackwardRow(probs + row * lk, dScores + row * lk, dScores + row * lk, lk)
            }
            if cm {
                CPUDevice.sgemm(false, true, d, lq, lk, g.scale, kb, lk, dScores, lk, 0, dQb, lq)
                CPUDevice.sgemm(false, false, d, lk, lq, g.scale, qb, lq, dScores, lk, 0, dKb, lk)
            } else {
                CPUDevice.sgemm(false, false, lq, d, lk, g.scale, dScores, lk, kb, d, 0, dQb, d)
                CPUDevice.sgemm(true, false, lk, d, lq, g.scale, dScores, lk, qb, d, 0, dKb, d)
            }
        }
    }

    public func maxPool2d(_ x: DeviceBuffer, out: DeviceBuffer, _ g: PoolGeometry) throws {
        let s = pointer(x)
        let d = pointer(out)
        let (oh, ow) = (g.outHeight, g.outWidth)
        Parallel.forChunks(g.planes, minimumChunk: max(1, 16_384 / max(g.height * g.width, 1))) { r in
            for p in r {
                let src = s + p * g.height * g.width
                let dst = d + p * oh * ow
                if g.kernel == 2 && g.stride == 2 && CPUDevice.avx2Kernels
                    && diffuse_max_pool2(src, dst, g.height, g.width) != 0
                {
                    continue
                }
                for y in 0..<oh {
                    for x in 0..<ow {
                        var best = -Float.infinity
                        for i in 0..<g.kernel {
                            let line = src + (y * g.stride + i) * g.width + x * g.stride
                            for j in 0..<g.kernel where line[j] > best || line[j].isNaN { best = line[j] }
                        }
                        dst[y * ow + x] = best
                    }
                }
            }
        }
    }

    public func maxPool2dBackward(
        _ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer,
        _ g: PoolGeometry
    ) throws {
        let s = pointer(x)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        let (oh, ow) = (g.outHeight, g.outWidth)
        Parallel.forChunks(g.planes, minimumChunk: max(1, 16_384 / max(g.height * g.width, 1))) { r in
            for p in r {
                let src = s + p * g.height * g.width
                let grad = dx + p * g.height * g.width
                if g.kernel == 2 && g.stride == 2 && CPUDevice.avx2Kernels
                    && diffuse_max_pool2_backward(src, dy + p * oh * ow, grad, g.height, g.width) != 0
                {
                    continue
                }
                grad.update(repeating: 0, count: g.height * g.width)
                for y in 0..<oh {
                    for x in 0..<ow {
                        var best = -Float.infinity
                        var where_ = (y * g.stride) * g.width + x * g.stride
                        for i in 0..<g.kernel {
                            let rowStart = (y * g.stride + i) * g.width + x * g.stride
                            for j in 0..<g.kernel where src[rowStart + j] > best || src[rowStart + j].isNaN {
                                best = src[rowStart + j]
                                where_ = rowStart + j
                            }
                        }
                        grad[where_] += dy[p * oh * ow + y * ow + x]
                    }
                }
            }
        }
    }

    public func upsampleNearest(_ x: DeviceBuffer, out: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let s = pointer(x)
        let d = pointer(out)
        let (h, w, f) = (g.height, g.width, g.factor)
        Parallel.forChunks(g.planes, minimumChunk: max(1, 16_384 / max(h * w * f * f, 1))) { r in
            for p in r {
                let src = s + p * h * w
                let dst = d + p * h * w * f * f
                // Each input row widened once, then copied to the other f - 1 output rows
                // (no division per output element).
                for y in 0..<h {
                    let line = src + y * w
                    let out = dst + y * f * w * f
                    for x in 0..<w {
                        let v = line[x]
                        for j in 0..<f { out[x * f + j] = v }
                    }
                    for i in 1..<max(f, 1) { (out + i * w * f).update(from: out, count: w * f) }
                }
            }
        }
    }

    public func upsampleNearestBackward(gradOut: DeviceBuffer, gradIn: DeviceBuffer, _ g: UpsampleGeometry) throws {
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        let (h, w, f) = (g.height, g.width, g.factor)
        Parallel.forChunks(g.planes, minimumChunk: max(1, 16_384 / max(h * w * f * f, 1))) { r in
            for p in r {
                let src = dy + p * h * w * f * f
                let dst = dx + p * h * w
                // Each input pixel sums its f x f window, row by row from 0: the order of the
                // scatter-add this replaces, without a division per element.
                for y in 0..<h {
                    for x in 0..<w {
                        var total: Float = 0
                        for i in 0..<f {
                            let row = src + (y * f + i) * w * f + x * f
                            for j in 0..<f { total += row[j] }
                        }
                        dst[y * w + x] = total
                    }
                }
            }
        }
    }
}
