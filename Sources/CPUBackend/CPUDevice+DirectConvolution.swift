// Direct stride-1 convolution for layers with very few output channels (BasicUNet's last layer:
// 32 -> 1, 5x5). There im2col would write K = Cin*kh*kw floats per pixel to feed a GEMM with one
// row, so each (in-channel, tap) pair becomes a shifted multiply-add over a plane held in cache.
import CKernels
import Tensor

extension CPUDevice {
    /// Calls body(ki, kj, y0, y1, x0, x1): the output rectangle whose input pixel (y+ki-p, x+kj-p) exists.
    @inline(__always)
    static func forEachTap(_ g: Conv2dGeometry, _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        for ki in 0..<g.kernelHeight {
            let y0 = max(0, g.paddingHeight - ki)
            let y1 = min(oh, g.height + g.paddingHeight - ki)
            guard y1 > y0 else { continue }
            for kj in 0..<g.kernelWidth {
                let x0 = max(0, g.paddingWidth - kj)
                let x1 = min(ow, g.width + g.paddingWidth - kj)
                guard x1 > x0 else { continue }
                body(ki, kj, y0, y1, x0, x1)
            }
        }
    }

    func directConv2d(
        _ px: UnsafeMutablePointer<Float>, _ pw: UnsafeMutablePointer<Float>,
        _ pbias: UnsafeMutablePointer<Float>?, _ po: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let (h, w) = (g.height, g.width)
        if CPUDevice.avx2Kernels && diffuse_cpu_has_avx2_fma() != 0 {
            // One image per task, all its output channels, through the padded-row AVX2 kernel.
            let scratch = diffuse_direct_conv_scratch(
                g.inChannels, h, w, g.kernelHeight, g.kernelWidth,
                g.paddingHeight, g.paddingWidth)
            Parallel.forEach(g.batch) { n, worker in
                _ = diffuse_direct_conv_image(
                    px + n * g.inChannels * h * w, pw, pbias, po + n * g.outChannels * oh * ow,
                    g.inChannels, g.outChannels, h, w, g.kernelHeight, g.kernelWidth,
                    g.paddingHeight, g.paddingWidth, scratchA.buffer(worker: worker, count: scratch))
            }
            return
        }
        let taps = g.kernelHeight * g.kernelWidth
        Parallel.forEach(g.batch * g.outChannels) { index, _ in
            let n = index / g.outChannels
            let co = index % g.outChannels
            let out = po + index * oh * ow
            let b = pbias?[co] ?? 0
            for i in 0..<(oh * ow) { out[i] = b }
            for ci in 0..<g.inChannels {
                let plane = px + (n * g.inChannels + ci) * h * w
                let weights = pw + (co * g.inChannels + ci) * taps
                CPUDevice.forEachTap(g) { ki, kj, y0, y1, x0, x1 in
                    let wv = weights[ki * g.kernelWidth + kj]
                    for y in y0..<y1 {
                        let src = plane + (y + ki - g.paddingHeight) * w + (kj - g.paddingWidth)
                        multiplyAdd(wv, src + x0, out + y * ow + x0, x1 - x0)
                    }
                }
            }
        }
    }

    func directConv2dBackwardInput(
        _ dy: UnsafeMutablePointer<Float>, _ pw: UnsafeMutablePointer<Float>,
        _ dx: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let (h, w) = (g.height, g.width)
        let taps = g.kernelHeight * g.kernelWidth
        let (kh, kw) = (g.kernelHeight, g.kernelWidth)
        if CPUDevice.avx2Kernels && diffuse_cpu_has_avx2_fma() != 0 && g.paddingHeight < kh && g.paddingWidth < kw {
            // The input gradient is a stride-1 convolution of dY (Cout channels in, Cin out) with
            // the kernel flipped and transposed, padded by k - 1 - p: the forward AVX2 kernel.
            var flipped = [Float](repeating: 0, count: g.inChannels * g.outChannels * taps)
            for co in 0..<g.outChannels {
                for ci in 0..<g.inChannels {
                    for t in 0..<taps {
                        flipped[(ci * g.outChannels + co) * taps + taps - 1 - t] = pw[(co * g.inChannels + ci) * taps + t]
                    }
                }
            }
            let (padH, padW) = (kh - 1 - g.paddingHeight, kw - 1 - g.paddingWidth)
            let scratch = diffuse_direct_conv_scratch(g.outChannels, oh, ow, kh, kw, padH, padW)
            flipped.withUnsafeBufferPointer { weights in
                Parallel.forEach(g.batch) { n, worker in
                    _ = diffuse_direct_conv_image(
                        dy + n * g.outChannels * oh * ow, weights.baseAddress!, nil,
                        dx + n * g.inChannels * h * w, g.outChannels, g.inChannels, oh, ow,
                        kh, kw, padH, padW, scratchA.buffer(worker: worker, count: scratch))
                }
            }
            return
        }
        Parallel.forEach(g.batch * g.inChannels) { index, _ in
            let n = index / g.inChannels
            let ci = index % g.inChannels
            let grad = dx + index * h * w
            for i in 0..<(h * w) { grad[i] = 0 }
            for co in 0..<g.outChannels {
                let upstream = dy + (n * g.outChannels + co) * oh * ow
                let weights = pw + (co * g.inChannels + ci) * taps
                CPUDevice.forEachTap(g) { ki, kj, y0, y1, x0, x1 in
                    let wv = weights[ki * g.kernelWidth + kj]
                    for y in y0..<y1 {
                        let dst = grad + (y + ki - g.paddingHeight) * w + (kj - g.paddingWidth)
                        multiplyAdd(wv, upstream + y * ow + x0, dst + x0, x1 - x0)
                    }
                }
            }
        }
    }

    func directConv2dBackwardWeight(
        _ px: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
        _ dw: UnsafeMutablePointer<Float>, _ db: UnsafeMutablePointer<Float>?,
        _ g: Conv2dGeometry
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let (h, w) = (g.height, g.width)
        let taps = g.kernelHeight * g.kernelWidth
        let weightCount = g.outChannels * g.inChannels * taps
        if CPUDevice.avx2Kernels && diffuse_cpu_has_avx2_fma() != 0 {
            // One image per task through the AVX2 kernel, into per-worker sums added in worker order.
            let scratch = diffuse_direct_conv_weight_scratch(
                g.inChannels, g.outChannels, h, w, g.kernelHeight,
                g.kernelWidth, g.paddingHeight, g.paddingWidth)
            let partials = partialSums.buffer(worker: 0, count: workers * weightCount)
            partials.update(repeating: 0, count: workers * weightCount)
            Parallel.forEach(g.batch) { n, worker in
                _ = diffuse_direct_conv_weight_grad_image(
                    px + n * g.inChannels * h * w, dy + n * g.outChannels * oh * ow, partials + worker * weightCount,
                    g.inChannels, g.outChannels, h, w, g.kernelHeight, g.kernelWidth, g.paddingHeight,
                    g.paddingWidth, scratchA.buffer(worker: worker, count: scratch))
            }
            dw.update(from: partials, count: weightCount)
            for worker in 1..<max(workers, 1) {
                let part = partials + worker * weightCount
                for i in 0..<weightCount { dw[i] += part[i] }
            }
        } else {
            directConv2dBackwardWeightLoops(px, dy, dw, g)
        }
        if let db {
            for co in 0..<g.outChannels {
                var acc: Float = 0
                for n in 0..<g.batch {
                    let upstream = dy + (n * g.outChannels + co) * oh * ow
                    acc += vectorSum(upstream, oh * ow)
                }
                db[co] = acc
            }
        }
    }

    /// The portable weight gradient.
    func directConv2dBackwardWeightLoops(
        _ px: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>,
        _ dw: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry
    ) {
        let (oh, ow) = (g.outHeight, g.outWidth)
        let (h, w) = (g.height, g.width)
        let taps = g.kernelHeight * g.kernelWidth
        // One task per (out, in) channel pair, each summing over the batch: no shared writes.
        Parallel.forEach(g.outChannels * g.inChannels) { index, _ in
            let co = index / g.inChannels
            let ci = index % g.inChannels
            let weights = dw + index * taps
            for t in 0..<taps { weights[t] = 0 }
            for n in 0..<g.batch {
                let plane = px + (n * g.inChannels + ci) * h * w
                let upstream = dy + (n * g.outChannels + co) * oh * ow
                CPUDevice.forEachTap(g) { ki, kj, y0, y1, x0, x1 in
                    var acc: Float = 0
                    for y in y0..<y1 {
                        let src = plane + (y + ki - g.paddingHeight) * w + (kj - g.paddingWidth)
                        acc += dotProduct(upstream + y * ow + x0, src + x0, x1 - x0)
                    }
                    weights[ki * g.kernelWidth + kj] += acc
                }
            }
        }
    }
}
