// im2col and col2im for stride-1 "same" convolutions (3x3 padding 1: nearly every UNet layer).
// There a tap's patch row is the input plane shifted by dy rows and dx columns, so it is one
// block copy plus zeros for the columns that wrapped into the neighbouring row and for the rows
// outside the image, instead of a short loop (and, for the zero runs, a memset call) per output row.
import Tensor

extension CPUDevice {
    /// Calls body(row, dy, dx) for each patch row (c, ki, kj) of the column matrix.
    @inline(__always)
    static func forEachPatchRow(_ g: Conv2dGeometry, _ body: (Int, Int, Int, Int) -> Void) {
        for c in 0..<g.inChannels {
            for ki in 0..<g.kernelHeight {
                for kj in 0..<g.kernelWidth {
                    body(c, (c * g.kernelHeight + ki) * g.kernelWidth + kj, ki - g.paddingHeight, kj - g.paddingWidth)
                }
            }
        }
    }

    /// Zeros the first `left` and last `right` columns of rows y0..<y1 (taps left or right of the
    /// image). Column by column: a loop along a row is turned into a memset call per row, which
    /// cost more than the one or two stores it makes.
    @inline(__always)
    static func zeroEdgeColumns(
        _ plane: UnsafeMutablePointer<Float>, _ w: Int, _ y0: Int, _ y1: Int,
        _ left: Int, _ right: Int
    ) {
        for i in 0..<left {
            for y in y0..<y1 { plane[y * w + i] = 0 }
        }
        for i in (w - right)..<w {
            for y in y0..<y1 { plane[y * w + i] = 0 }
        }
    }

    static func im2colSame(
        _ x: UnsafePointer<Float>, _ g: Conv2dGeometry, images count: Int,
        into columns: UnsafeMutablePointer<Float>
    ) {
        let (h, w) = (g.height, g.width)
        let plane = h * w
        let imageSize = g.inChannels * plane
        forEachPatchRow(g) { c, row, dy, dx in
            // Output rows y0..<y1 read input rows y + dy inside the image.
            let y0 = min(h, max(0, -dy))
            let y1 = max(y0, min(h, h - dy))
            let left = min(w, max(0, -dx))
            let right = min(w, max(0, dx))
            for image in 0..<count {
                let source = x + image * imageSize + c * plane
                let out = columns + row * count * plane + image * plane
                out.update(repeating: 0, count: y0 * w)
                (out + y1 * w).update(repeating: 0, count: (h - y1) * w)
                guard y1 > y0 else { continue }
                // out[y * w + i] = source[(y + dy) * w + i + dx], skipping the block's first `left`
                // and last `right` values, which would read outside the plane and are zeroed below.
                let length = (y1 - y0) * w - left - right
                if length > 0 {
                    (out + y0 * w + left).update(from: source + (y0 + dy) * w + dx + left, count: length)
                }
                zeroEdgeColumns(out, w, y0, y1, left, right)
            }
        }
    }

    /// Scatters the column gradients back; the columns of taps outside the image are zeroed in
    /// place first so that every patch row adds as one shifted block.
    static func col2imSame(
        _ columns: UnsafeMutablePointer<Float>, _ g: Conv2dGeometry, images count: Int,
        into gradIn: UnsafeMutablePointer<Float>
    ) {
        let (h, w) = (g.height, g.width)
        let plane = h * w
        let imageSize = g.inChannels * plane
        gradIn.update(repeating: 0, count: count * imageSize)
        forEachPatchRow(g) { c, row, dy, dx in
            let y0 = min(h, max(0, -dy))
            let y1 = max(y0, min(h, h - dy))
            let left = min(w, max(0, -dx))
            let right = min(w, max(0, dx))
            guard y1 > y0 else { return }
            for image in 0..<count {
                let target = gradIn + image * imageSize + c * plane
                let from = columns + row * count * plane + image * plane
                zeroEdgeColumns(from, w, y0, y1, left, right)
                let length = (y1 - y0) * w - left - right
                guard length > 0 else { continue }
                let src = from + y0 * w + left
                let dst = target + (y0 + dy) * w + dx + left
                for i in 0..<length { dst[i] += src[i] }
            }
        }
    }
}
