// Pillow's antialiased bilinear resize of 8-bit images (src/libImaging/Resample.c:
// precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleHorizontal/Vertical_8bpc,
// ImagingResampleInner), ported so that an image folder resized here gives the bytes
// torchvision's Resize gives on a PIL image.
//
// Each output pixel xx of a pass over a side of `inSize` pixels resized to `outSize` is
//   center = (xx + 0.5) * scale,  scale = inSize / outSize,  filterscale = max(scale, 1),
//   support = 1 * filterscale (the triangle filter's support, widened when shrinking),
//   w(x) = triangle((x + xmin - center + 0.5) / filterscale) for x in [xmin, xmax),
//   xmin = int(center - support + 0.5) clamped to 0, xmax = int(center + support + 0.5) clamped,
// normalised to sum 1, then made fixed point with 22 fraction bits (rounded away from zero).
// A pass sums pixel * weight in 32-bit integers from 2^21 (the rounding half) and keeps
// clip8(sum >> 22). The horizontal pass runs first, over only the rows the vertical pass reads.
import Foundation

public enum PILResize {
    static let precisionBits = 32 - 8 - 2

    struct Coefficients {
        /// Per output pixel: first input pixel and how many follow.
        var bounds: [(start: Int, count: Int)]
        /// Per output pixel, `size` fixed-point weights (unused ones zero).
        var weights: [Int32]
        var size: Int
    }

    /// precompute_coeffs for the box [0, inSize) and normalize_coeffs_8bpc.
    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = (Double(Float(inSize)) - Double(Float(0))) / Double(outSize)
        let filterscale = max(scale, 1)
        let support = 1.0 * filterscale
        let size = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(start: Int, count: Int)] = []
        bounds.reserveCapacity(outSize)
        var weights = [Int32](repeating: 0, count: outSize * size)
        var k = [Double](repeating: 0, count: size)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            var total = 0.0
            let inverse = 1.0 / filterscale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            for x in 0..<size { k[x] = 0 }
            for x in 0..<max(xmax, 0) {
                let w = triangle((Double(x + xmin) - center + 0.5) * inverse)
                k[x] = w
                total += w
            }
            for x in 0..<max(xmax, 0) where total != 0 { k[x] /= total }
            for x in 0..<size {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * size + x] = Int32(k[x] < 0 ? -0.5 + v : 0.5 + v)
            }
            bounds.append((xmin, max(xmax, 0)))
        }
        return Coefficients(bounds: bounds, weights: weights, size: size)
    }

    static func triangle(_ x: Double) -> Double {
        let a = abs(x)
        return a < 1 ? 1 - a : 0
    }

    /// clip8: the sum's integer part, clamped to 0...255.
    @inline(__always) static func clip8(_ sum: Int32) -> UInt8 {
        let value = sum >> Int32(precisionBits)
        return value < 0 ? 0 : value > 255 ? 255 : UInt8(value)
    }

    /// `image` resized to `width` x `height` as PIL's Image.resize(..., Image.BILINEAR) does.
    public static func bilinear(_ image: Image8, width: Int, height: Int) -> Image8 {
        let channels = image.channels
        var source = image.pixels
        var sourceWidth = image.width
        var rowOffset = 0
        let vertical = coefficients(inSize: image.height, outSize: height)
        let firstRow = vertical.bounds.first?.start ?? 0
        let lastRow = vertical.bounds.last.map { $0.start + $0.count } ?? 0
        if width != image.width {
            // Horizontal pass over the rows the vertical pass reads.
            let horizontal = coefficients(inSize: image.width, outSize: width)
            let rows = lastRow - firstRow
            var out = [UInt8](repeating: 0, count: rows * width * channels)
            source.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    horizontal.weights.withUnsafeBufferPointer { kk in
                        for y in 0..<rows {
                            let inRow = (y + firstRow) * image.width * channels
                            for xx in 0..<width {
                                let (start, count) = horizontal.bounds[xx]
                                let k = xx * horizontal.size
                                for c in 0..<channels {
                                    var sum: Int32 = 1 << Int32(precisionBits - 1)
                                    for x in 0..<count {
                                        sum &+= Int32(src[inRow + (start + x) * channels + c]) &* kk[k + x]
                                    }
                                    dst[(y * width + xx) * channels + c] = clip8(sum)
                                }
                            }
                        }
                    }
                }
            }
            source = out
            sourceWidth = width
            rowOffset = firstRow
        }
        // An unchanged height reads every row: the horizontal pass's output is the result.
        guard height != image.height else { return Image8(width: width, height: height, channels: channels, pixels: source) }
        var out = [UInt8](repeating: 0, count: width * height * channels)
        source.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                vertical.weights.withUnsafeBufferPointer { kk in
                    for yy in 0..<height {
                        let (start, count) = vertical.bounds[yy]
                        let k = yy * vertical.size
                        for i in 0..<(sourceWidth * channels) {
                            var sum: Int32 = 1 << Int32(precisionBits - 1)
                            for y in 0..<count {
                                sum &+= Int32(src[(start - rowOffset + y) * sourceWidth * channels + i]) &* kk[k + y]
                            }
                            dst[yy * width * channels + i] = clip8(sum)
                        }
                    }
                }
            }
        }
        return Image8(width: width, height: height, channels: channels, pixels: out)
    }
}
