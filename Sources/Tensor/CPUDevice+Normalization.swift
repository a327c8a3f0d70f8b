// CPU group norm, softmax, attention, max pooling and nearest upsampling with their gradients.
import CKernels
import Foundation

extension CPUDevice {
    public func groupNorm(_ x: DeviceBuffer, gamma: DeviceBuffer?, beta: DeviceBuffer?, out: DeviceBuffer,
                          mean: DeviceBuffer, rstd: DeviceBuffer, _ g: GroupNormGeometry) throws {
        let px = pointer(x)
        let po = pointer(out)
        let pg = gamma.map { pointer($0) }
        let pb = beta.map { pointer($0) }
        let pm = pointer(mean)
        let pr = pointer(rstd)
        let cpg = g.channelsPerGroup
        let groupSize = cpg * g.spatial
        Parallel.forEach(g.batch * g.groups, workers: g.batch * g.groups * groupSize < 65_536 ? 1 : workers) { ng, _ in
            let base = px + ng * groupSize
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
        }
    }

    public func groupNormBackward(_ x: DeviceBuffer, gamma: DeviceBuffer?, mean: DeviceBuffer, rstd: DeviceBuffer,
                                  gradOut: DeviceBuffer, gradIn: DeviceBuffer, gradGamma: DeviceBuffer?,
                                  gradBeta: DeviceBuffer?, _ g: GroupNormGeometry) throws {
        let px = pointer(x)
        let pg = gamma.map { pointer($0) }
        let pm = pointer(mean)
        let pr = pointer(rstd)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        let cpg = g.channelsPerGroup
        let groupSize = cpg * g.spatial
        // Per (sample, channel): sum(dy * xhat) and sum(dy), reduced over samples afterwards.
        let partial = partialSums.buffer(worker: 0, count: 2 * g.batch * g.channels)
        Parallel.forEach(g.batch * g.groups, workers: g.batch * g.groups * groupSize < 65_536 ? 1 : workers) { ng, _ in
            let n = ng / g.groups
            let group = ng % g.groups
            let mu = pm[ng]
            let r = pr[ng]
            var meanDxhat: Double = 0
            var meanDxhatXhat: Double = 0
            for cc in 0..<cpg {
                let c = group * cpg + cc
                let gammaC = pg?[c] ?? 1
                let src = px + ng * groupSize + cc * g.spatial
                let grad = dy + ng * groupSize + cc * g.spatial
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
                let grad = dy + ng * groupSize + cc * g.spatial
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
    static func softmaxBackwardRow(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                                   _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
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

    public func softmaxBackward(y: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer, rows: Int,
                                columns: Int) throws {
        let py = pointer(y)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        Parallel.forChunks(rows, minimumChunk: max(1, 16_384 / max(columns, 1))) { r in
            for row in r {
                CPUDevice.softmaxBackwardRow(py + row * columns, dy + row * columns, dx + row * columns, columns)
            }
        }
    }

    public func attention(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer,
                          probabilities: DeviceBuffer, _ g: AttentionGeometry) throws {
        let pq = pointer(q)
        let pk = pointer(k)
        let pv = pointer(v)
        let po = pointer(out)
        let pp = pointer(probabilities)
        let (lq, lk, d) = (g.queryLength, g.keyLength, g.headDim)
        Parallel.forEach(g.batch) { b, _ in
            let scores = pp + b * lq * lk
            CPUDevice.sgemm(false, true, lq, lk, d, g.scale, pq + b * lq * d, d, pk + b * lk * d, d, 0, scores, lk)
            for row in 0..<lq { CPUDevice.softmaxRow(scores + row * lk, scores + row * lk, lk) }
            CPUDevice.sgemm(false, false, lq, d, lk, 1, scores, lk, pv + b * lk * d, d, 0, po + b * lq * d, d)
        }
    }

    public func attentionBackward(q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, probabilities: DeviceBuffer,
                                  gradOut: DeviceBuffer, gradQ: DeviceBuffer, gradK: DeviceBuffer, gradV: DeviceBuffer,
                                  _ g: AttentionGeometry) throws {
        let pq = pointer(q)
        let pk = pointer(k)
        let pv = pointer(v)
        let pp = pointer(probabilities)
        let dO = pointer(gradOut)
        let dQ = pointer(gradQ)
        let dK = pointer(gradK)
        let dV = pointer(gradV)
        let (lq, lk, d) = (g.queryLength, g.keyLength, g.headDim)
        Parallel.forEach(g.batch) { b, worker in
            let probs = pp + b * lq * lk
            let dOb = dO + b * lq * d
            // dV = P^T dO; dP = dO V^T; dS = softmax'(dP); dQ = scale dS K; dK = scale dS^T Q.
            CPUDevice.sgemm(true, false, lk, d, lq, 1, probs, lk, dOb, d, 0, dV + b * lk * d, d)
            let dScores = scratchA.buffer(worker: worker, count: lq * lk)
            CPUDevice.sgemm(false, true, lq, lk, d, 1, dOb, d, pv + b * lk * d, d, 0, dScores, lk)
            for row in 0..<lq {
                CPUDevice.softmaxBackwardRow(probs + row * lk, dScores + row * lk, dScores + row * lk, lk)
            }
            CPUDevice.sgemm(false, false, lq, d, lk, g.scale, dScores, lk, pk + b * lk * d, d, 0, dQ + b * lq * d, d)
            CPUDevice.sgemm(true, false, lk, d, lq, g.scale, dScores, lk, pq + b * lq * d, d, 0, dK + b * lk * d, d)
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
                    && diffuse_max_pool2(src, dst, g.height, g.width) != 0 { continue }
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

    public func maxPool2dBackward(_ x: DeviceBuffer, gradOut: DeviceBuffer, gradIn: DeviceBuffer,
                                  _ g: PoolGeometry) throws {
        let s = pointer(x)
        let dy = pointer(gradOut)
        let dx = pointer(gradIn)
        let (oh, ow) = (g.outHeight, g.outWidth)
        Parallel.forChunks(g.planes, minimumChunk: max(1, 16_384 / max(g.height * g.width, 1))) { r in
            for p in r {
                let src = s + p * g.height * g.width
                let grad = dx + p * g.height * g.width
                if g.kernel == 2 && g.stride == 2 && CPUDevice.avx2Kernels
                    && diffuse_max_pool2_backward(src, dy + p * oh * ow, grad, g.height, g.width) != 0 { continue }
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
