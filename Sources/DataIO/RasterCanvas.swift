// A clipped RGB drawing surface (rectangles, thick lines, bitmap text) used to render plots.

struct RGB: Equatable {
    var r: UInt8, g: UInt8, b: UInt8
    static let white = RGB(r: 255, g: 255, b: 255)
    static let black = RGB(r: 0, g: 0, b: 0)
}

/// Every drawing call clips to the canvas, so callers may pass any coordinates, however far off-canvas.
struct RasterCanvas {
    let width: Int
    let height: Int
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: RGB) {
        self.width = max(0, width)
        self.height = max(0, height)
        var row = [UInt8]()
        row.reserveCapacity(self.width * 3)
        for _ in 0..<self.width { row += [background.r, background.g, background.b] }
        var all = [UInt8]()
        all.reserveCapacity(self.width * self.height * 3)
        for _ in 0..<self.height { all += row }
        pixels = all
    }

    var image: Image8 { Image8(width: width, height: height, channels: 3, pixels: pixels) }

    @inline(__always)
    mutating func set(_ x: Int, _ y: Int, _ color: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    /// Fills the half-open rectangle [x0, x1) x [y0, y1).
    mutating func fill(x0: Int, y0: Int, x1: Int, y1: Int, _ color: RGB) {
        let xa = max(0, x0), xb = min(width, x1), ya = max(0, y0), yb = min(height, y1)
        guard xa < xb, ya < yb else { return }
        let w = width
        pixels.withUnsafeMutableBufferPointer { p in
            for y in ya..<yb {
                var i = (y * w + xa) * 3
                for _ in xa..<xb {
                    p[i] = color.r; p[i + 1] = color.g; p[i + 2] = color.b
                    i += 3
                }
            }
        }
    }

    /// A line `thickness` pixels wide, drawn by stamping a square along a Bresenham path. The segment is first
    /// clipped in floating point so that far-away or non-finite endpoints cannot overflow the integer walk.
    mutating func line(_ ax: Double, _ ay: Double, _ bx: Double, _ by: Double, thickness: Int, _ color: RGB) {
        let t = max(1, thickness)
        let margin = Double(t + 1)
        guard
            let (x0, y0, x1, y1) = clip(
                ax, ay, bx, by, minX: -margin, minY: -margin,
                maxX: Double(width) + margin, maxY: Double(height) + margin)
        else { return }
        var x = Int(x0.rounded()), y = Int(y0.rounded())
        let ex = Int(x1.rounded()), ey = Int(y1.rounded())
        let dx = abs(ex - x), dy = -abs(ey - y)
        let sx = x < ex ? 1 : -1, sy = y < ey ? 1 : -1
        var err = dx + dy
        let lo = -(t - 1) / 2, hi = t / 2  // a 2-pixel pen covers the centre pixel and the one after it
        while true {
            fill(x0: x + lo, y0: y + lo, x1: x + hi + 1, y1: y + hi + 1, color)
            if x == ex && y == ey { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Liang-Barsky clipping of a segment to a rectangle; nil when nothing of it is inside or it is not finite.
    private func clip(
        _ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double,
        minX: Double, minY: Double, maxX: Double, maxY: Double
    ) -> (Double, Double, Double, Double)? {
        guard x0.isFinite, y0.isFinite, x1.isFinite, y1.isFinite else { return nil }
        let dx = x1 - x0, dy = y1 - y0
        guard dx.isFinite, dy.isFinite else { return nil }
        var t0 = 0.0, t1 = 1.0
        for (p, q) in [(-dx, x0 - minX), (dx, maxX - x0), (-dy, y0 - minY), (dy, maxY - y0)] {
            if p == 0 {
                if q < 0 { return nil }
            } else {
                let r = q / p
                if p < 0 {
                    if r > t1 { return nil }; if r > t0 { t0 = r }
                } else {
                    if r < t0 { return nil }; if r < t1 { t1 = r }
                }
            }
        }
        return (x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy)
    }

    /// Draws `text` with its top-left corner at (x, y). When `vertical`, the text reads bottom to top
    /// (rotated 90 degrees counter-clockwise, as y-axis labels are) and (x, y) is its bottom-left corner.
    mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, vertical: Bool = false, _ color: RGB) {
        let s = max(1, scale)
        for (n, code) in BitmapFont.codes(text).enumerated() {
            let origin = n * BitmapFont.advance * s
            // Skip glyphs wholly off the canvas so very long strings cost nothing.
            if !vertical && x + origin > width { break }
            if vertical && y - origin < 0 { break }
            for gx in 0..<BitmapFont.glyphWidth {
                for gy in 0..<BitmapFont.glyphHeight where BitmapFont.ink(code, x: gx, y: gy) {
                    if vertical {
                        let px = x + gy * s, py = y - origin - (gx + 1) * s + 1
                        fill(x0: px, y0: py, x1: px + s, y1: py + s, color)
                    } else {
                        let px = x + origin + gx * s, py = y + gy * s
                        fill(x0: px, y0: py, x1: px + s, y1: py + s, color)
                    }
                }
            }
        }
    }
}
