// CPU GEMM and convolution: im2col into per-worker scratch, then OpenBLAS sgemm, with several
// small images batched into one GEMM so that low-resolution layers still run at BLAS speed.
import CBLAS
import Foundation
import Tensor

extension CPUDevice {
    @inline(__always)
    static func sgemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public func gemm(
        _ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer, _ g: GemmGeometry,
        columnBias: DeviceBuffer?
    ) throws {
        try product(a, b, out: out, g)
        guard let columnBias else { return }
        let pc = pointer(out)
        let bias = pointer(columnBias)
        for entry in 0..<(g.strideOut == 0 ? 1 : g.batch) {
            let c = pc + entry * g.strideOut
            for row in 0..<g.m {
                let r = c + row * g.n
                for j in 0..<g.n { r[j] += bias[j] }
            }
        }
    }

    func product(_ a: DeviceBuffer, _ b: DeviceBuffer, out: DeviceBuffer, _ g: GemmGeometry) throws {
        let pa = pointer(a)
        let pb = pointer(b)
        let pc = pointer(out)
        let lda = g.transposeA ? g.m : g.k
        let ldb = g.transposeB ? g.k : g.n
        let flops = 2 * g.m * g.n * g.k
        if g.strideOut == 0 && g.batch > 1 {
            // One output for the whole batch: the products are summed into it.
            for i in 0..<g.batch {
                CPUDevice.sgemm(
                    g.transposeA, g.transposeB, g.m, g.n, g.k, g.alpha, pa + i * g.strideA, lda,
                    pb + i * g.strideB, ldb, i == 0 ? g.beta : 1, pc, g.n)
            }
            return
        }
        if g.batch >= workers || flops * g.batch < 1 << 21 {
            Parallel.forEach(g.batch, workers: flops * g.batch < 1 << 21 ? 1 : workers) { i, _ in
                CPUDevice.sgemm(
                    g.transposeA, g.transposeB, g.m, g.n, g.k, g.alpha, pa + i * g.strideA, lda,
                    pb + i * g.strideB, ldb, g.beta, pc + i * g.strideOut, g.n)
            }
            return
        }
        // Few large products: split the rows of each output over the workers.
        for i in 0..<g.batch {
            let rowsPerWorker = (g.m + workers - 1) / workers
            Parallel.forEach(workers) { w, _ in
                let m0 = w * rowsPerWorker
                let rows = min(g.m, m0 + rowsPerWorker) - m0
                guard rows > 0 else { return }
                let aStart = pa + i * g.strideA + (g.transposeA ? m0 : m0 * g.k)
                CPUDevice.sgemm(
                    g.transposeA, g.transposeB, rows, g.n, g.k, g.alpha, aStart, lda,
                    pb + i * g.strideB, ldb, g.beta, pc + i * g.strideOut + m0 * g.n, g.n)
            }
        }
    }

    /// Images per GEMM: enough columns (>= 512) that sgemm runs near peak on small feature maps.
    func imagesPerGemm(_ g: Conv2dGeometry) -> Int {
        let columns = g.outHeight * g.outWidth
        let perWorker = (g.batch + workers - 1) / workers
        return max(1, min(perWorker, (512 + columns - 1) / columns))
    }

    /// Contiguous image ranges, one per worker, each cut into groups of `imagesPerGemm`.
    func forEachImageGroup(_ g: Conv2dGeometry, _ body: (_ first: Int, _ count: Int, _ worker: Int) -> Void) {
        let group = imagesPerGemm(g)
        let used = min(workers, g.batch)
        Parallel.forEach(used, workers: used) { w, _ in
            let start = w * g.batch / used
            let end = (w + 1) * g.batch / used
            var n = start
            while n < end {
                let count = min(group, end - n)
                body(n, count, w)
                n += count
            }
        }
    }

    /// Writes the patches of `count` images side by side: row (c, ki, kj), column (image, oh, ow).
    static func im2col(
        _ x: UnsafePointer<Float>, _ g: Conv2dGeometry, images count: Int,
        into columns: UnsafeMutablePointer<Float>
    ) {
        if g.isSameStrideOne { return im2colSame(x, g, images: count, into: columns) }
        let oh = g.outHeight
        let ow = g.outWidth
        let plane = oh * ow
        let rowLength = count * plane
        let imageSize = g.inChannels * g.height * g.width
        for c in 0..<g.inChannels {
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let row = columns + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * rowLength
                    // Output columns whose input column lies inside the image.
                    let owStart = g.strideWidth == 1 ? max(0, g.paddingWidth - kj) : 0
                    let owEnd = g.strideWidth == 1 ? min(ow, g.width + g.paddingWidth - kj) : ow
                    for image in 0..<count {
                        let source = x + image * imageSize + c * g.height * g.width
                        let destination = row + image * plane
                        for y in 0..<oh {
                            let iy = y * g.strideHeight - g.paddingHeight + ki
                            let out = destination + y * ow
                            if iy < 0 || iy >= g.height {
                                for xo in 0..<ow { out[xo] = 0 }
                                continue
                            }
                            let line = source + iy * g.width
                            if g.strideWidth == 1 {
                                // Plain loops: rows are 7-28 floats, too short for memcpy/memset calls to pay.
                                let lo = min(owStart, ow)
                                let hi = max(owEnd, lo)
                                let shifted = line + (kj - g.paddingWidth)
                                for xo in 0..<lo { out[xo] = 0 }
                                for xo in lo..<hi { out[xo] = shifted[xo] }
                                for xo in hi..<ow { out[xo] = 0 }
                            } else {
                                for xo in 0..<ow {
                                    let ix = xo * g.strideWidth - g.paddingWidth + kj
                                    out[xo] = ix >= 0 && ix < g.width ? line[ix] : 0
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the column gradients back onto the input gradient of `count` images.
    static func col2im(
        _ columns: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry, images count: Int,
        into gradIn: UnsafeMutablePointer<Float>
    ) {
        if g.isSameStrideOne { return col2imSame(columns, g, images: count, into: gradIn) }
        let oh = g.outHeight
        let ow = g.outWidth
        let plane = oh * ow
        let rowLength = count * plane
        let imageSize = g.inChannels * g.height * g.width
        gradIn.update(repeating: 0, count: count * imageSize)
        for c in 0..<g.inChannels {
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    let row = columns + ((c * g.kernelHeight + ki) * g.kernelWidth + kj) * rowLength
                    let owStart = g.strideWidth == 1 ? max(0, g.paddingWidth - kj) : 0
                    let owEnd = g.strideWidth == 1 ? min(ow, g.width + g.paddingWidth - kj) : ow
                    for image in 0..<count {
                        let target = gradIn + image * imageSize + c * g.height * g.width
                        let source = row + image * plane
                        for y in 0..<oh {
                            let iy = y * g.strideHeight - g.paddingHeight + ki
                            if iy < 0 || iy >= g.height { continue }
                            let line = target + iy * g.width
                            let from = source + y * ow
                            if g.strideWidth == 1 {
                                if owEnd > owStart {
                                    let shifted = line + (kj - g.paddingWidth)
                                    for xo in owStart..<owEnd { shifted[xo] += from[xo] }
                                }
                            } else {
                                for xo in 0..<ow {
                                    let ix = xo * g.strideWidth - g.paddingWidth + kj
                                    if ix >= 0 && ix < g.width { line[ix] += from[xo] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public func conv2d(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, out: DeviceBuffer,
        _ g: Conv2dGeometry
    ) throws {
        convolve(pointer(x), pointer(weight), bias.map { pointer($0) }, pointer(out), activated: nil, g)
    }

    /// SiLU in the convolution's epilogue: each group of images is activated by the worker that
    /// computed it, right after its bias is added, while it is still in cache.
    public func conv2dSiLU(
        _ x: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?, preActivation: DeviceBuffer, out: DeviceBuffer,
        _ g: Conv2dGeometry
    ) throws {
        convolve(pointer(x), pointer(weight), bias.map { pointer($0) }, pointer(preActivation), activated: pointer(out), g)
    }

    /// The convolution into `po`, and with `activated` silu of it there too.
    func convolve(
        _ px: UnsafeMutablePointer<Float>, _ pw: UnsafeMutablePointer<Float>, _ pbias: UnsafeMutablePointer<Float>?,
        _ po: UnsafeMutablePointer<Float>, activated: UnsafeMutablePointer<Float>?, _ g: Conv2dGeometry
    ) {
        let plane = g.outHeight * g.outWidth
        let imageIn = g.inChannels * g.height * g.width
        let imageOut = g.outChannels * plane
        let k = g.patchSize
        let pointwise = g.isPointwise
        if g.prefersDirect {
            directConv2d(px, pw, pbias, po, g)
            if let activated {
                let n = g.batch * imageOut
                Parallel.forChunks(n) { r in CPUDevice.silu(po + r.lowerBound, into: activated + r.lowerBound, r.count) }
            }
            return
        }
        forEachImageGroup(g) { first, count, worker in
            let columns: UnsafeMutablePointer<Float>
            if pointwise && count == 1 {
                columns = px + first * imageIn
            } else {
                columns = scratchA.buffer(worker: worker, count: k * count * plane)
                CPUDevice.im2col(px + first * imageIn, g, images: count, into: columns)
            }
            // The product lands in [Cout, images * plane]; with one image that is already NCHW.
            let product =
                count == 1
                ? po + first * imageOut
                : scratchB.buffer(worker: worker, count: g.outChannels * count * plane)
            CPUDevice.sgemm(
                false, false, g.outChannels, count * plane, k, 1, pw, k, columns, count * plane,
                0, product, count * plane)
            for image in 0..<count {
                for c in 0..<g.outChannels {
                    let to = po + (first + image) * imageOut + c * plane
                    let from = product + c * count * plane + image * plane
                    let b = pbias?[c] ?? 0
                    if count == 1 {
                        if b != 0 { for i in 0..<plane { to[i] += b } }
                    } else {
                        for i in 0..<plane { to[i] = from[i] + b }
                    }
                }
            }
            if let activated {
                let at = first * imageOut
                CPUDevice.silu(po + at, into: activated + at, count * imageOut)
            }
        }
    }

    /// dY of `count` images gathered as [Cout, images * plane], or the tensor itself for one image.
    func gatherGradOut(
        _ dy: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry, first: Int, count: Int,
        worker: Int
    ) -> UnsafeMutablePointer<Float> {
        let plane = g.outHeight * g.outWidth
        let imageOut = g.outChannels * plane
        if count == 1 { return dy + first * imageOut }
        let gathered = scratchB.buffer(worker: worker, count: g.outChannels * count * plane)
        for image in 0..<count {
            for c in 0..<g.outChannels {
                (gathered + c * count * plane + image * plane)
                    .update(from: dy + (first + image) * imageOut + c * plane, count: plane)
            }
        }
        return gathered
    }

    public func conv2dBackwardInput(
        gradOut: DeviceBuffer, weight: DeviceBuffer, gradIn: DeviceBuffer, accumulate: Bool,
        _ g: Conv2dGeometry
    ) throws {
        if accumulate {
            // Computed apart and added, as autograd's separate sum did: the CPU has no launches to save.
            let fresh = try allocate(count: g.batch * g.inChannels * g.height * g.width)
            try conv2dBackwardInput(gradOut: gradOut, weight: weight, gradIn: fresh, accumulate: false, g)
            return try addInPlace(gradIn, fresh, count: fresh.count)
        }
        let dy = pointer(gradOut)
        let pw = pointer(weight)
        let dx = pointer(gradIn)
        let plane = g.outHeight * g.outWidth
        let imageIn = g.inChannels * g.height * g.width
        let k = g.patchSize
        let pointwise = g.isPointwise
        if g.prefersDirect { return directConv2dBackwardInput(dy, pw, dx, g) }
        forEachImageGroup(g) { first, count, worker in
            let gathered = gatherGradOut(dy, g, first: first, count: count, worker: worker)
            if pointwise && count == 1 {
                CPUDevice.sgemm(
                    true, false, k, plane, g.outChannels, 1, pw, k, gathered, plane, 0,
                    dx + first * imageIn, plane)
                return
            }
            let columns = scratchA.buffer(worker: worker, count: k * count * plane)
            CPUDevice.sgemm(
                true, false, k, count * plane, g.outChannels, 1, pw, k, gathered, count * plane,
                0, columns, count * plane)
            CPUDevice.col2im(columns, g, images: count, into: dx + first * imageIn)
        }
    }

    public func conv2dBackwardWeight(
        _ x: DeviceBuffer, gradOut: DeviceBuffer, gradWeight: DeviceBuffer,
        gradBias: DeviceBuffer?, _ g: Conv2dGeometry
    ) throws {
        let px = pointer(x)
        let dy = pointer(gradOut)
        let plane = g.outHeight * g.outWidth
        let imageIn = g.inChannels * g.height * g.width
        let k = g.patchSize
        let weightCount = g.outChannels * k
        let pointwise = g.isPointwise
        if g.prefersDirect {
            return directConv2dBackwardWeight(px, dy, pointer(gradWeight), gradBias.map { pointer($0) }, g)
        }
        let used = min(workers, g.batch)
        // Each worker accumulates its own weight and bias gradient; they are summed at the end.
        let partials = partialSums.buffer(worker: 0, count: used * (weightCount + g.outChannels))
        partials.update(repeating: 0, count: used * (weightCount + g.outChannels))
        forEachImageGroup(g) { first, count, worker in
            let dW = partials + worker * (weightCount + g.outChannels)
            let dB = dW + weightCount
            let gathered = gatherGradOut(dy, g, first: first, count: count, worker: worker)
            let columns: UnsafeMutablePointer<Float>
            if pointwise && count == 1 {
                columns = px + first * imageIn
            } else {
                columns = scratchA.buffer(worker: worker, count: k * count * plane)
                CPUDevice.im2col(px + first * imageIn, g, images: count, into: columns)
            }
            CPUDevice.sgemm(
                false, true, g.outChannels, k, count * plane, 1, gathered, count * plane,
                columns, count * plane, 1, dW, k)
            // Eight partial sums: a single running Float sum waits on every add.
            for c in 0..<g.outChannels { dB[c] += vectorSum(gathered + c * count * plane, count * plane) }
        }
        let dW = pointer(gradWeight)
        dW.update(from: partials, count: weightCount)
        let dB = gradBias.map { pointer($0) }
        dB?.update(from: partials + weightCount, count: g.outChannels)
        for w in 1..<max(used, 1) {
            let part = partials + w * (weightCount + g.outChannels)
            for i in 0..<weightCount { dW[i] += part[i] }
            if let dB { for c in 0..<g.outChannels { dB[c] += part[weightCount + c] } }
        }
    }
}
