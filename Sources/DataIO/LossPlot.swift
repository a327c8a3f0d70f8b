// Rendering a training-loss curve as an RGB image: axes, nice ticks, labels and a blue polyline.
import Foundation

public enum LossPlot {
    static let curveColor = RGB(r: 31, g: 119, b: 180)  // matplotlib's default blue
    static let gridColor = RGB(r: 225, g: 225, b: 225)
    static let textColor = RGB(r: 20, g: 20, b: 20)

    /// Points with a non-finite coordinate (or y <= 0 on a log axis) are skipped and the curve joins their
    /// neighbours, so one diverged step does not hide the rest of the run. Sizes are clamped to 1...16384.
    public static func render(
        _ points: [(x: Double, y: Double)], width: Int = 640, height: Int = 400,
        title: String, xLabel: String, yLabel: String, logScaleY: Bool = false
    ) -> Image8 {
        let w = min(max(width, 1), PNG.maximumSide), h = min(max(height, 1), PNG.maximumSide)
        var canvas = RasterCanvas(width: w, height: h, background: .white)

        let kept = points.filter { $0.x.isFinite && $0.y.isFinite && (!logScaleY || $0.y > 0) }
        let xs = kept.map(\.x), ys = kept.map(\.y)
        let xAxis = PlotTicks.linear(xs.min() ?? 0, xs.max() ?? 1)
        let yAxis =
            logScaleY
            ? PlotTicks.logarithmic(ys.min() ?? 0.1, ys.max() ?? 1)
            : PlotTicks.linear(ys.min() ?? 0, ys.max() ?? 1)

        // Margins leave room for the title above, tick labels and axis labels to the left and below.
        let titleScale = BitmapFont.width(title, scale: 2) <= w - 16 ? 2 : 1
        let glyphH = BitmapFont.glyphHeight
        let top = title.isEmpty ? 12 : 8 + glyphH * titleScale + 10
        let tickLabelWidth = yAxis.ticks.map { BitmapFont.width($0.label, scale: 1) }.max() ?? 0
        let left = 8 + (yLabel.isEmpty ? 0 : glyphH + 8) + tickLabelWidth + 8
        let bottom = 8 + glyphH + (xLabel.isEmpty ? 0 : 8 + glyphH) + 8
        let right = max(16, BitmapFont.width(xAxis.ticks.last?.label ?? "", scale: 1) / 2 + 4)
        let x0 = left, x1 = max(left + 1, w - right)
        let y0 = top, y1 = max(top + 1, h - bottom)

        let xSpan = xAxis.high - xAxis.low, ySpan = yAxis.high - yAxis.low
        func px(_ x: Double) -> Double {
            Double(x0) + (x - xAxis.low) / (xSpan > 0 ? xSpan : 1) * Double(x1 - x0)
        }
        func py(_ y: Double) -> Double {
            let v = logScaleY ? log10(y) : y
            return Double(y1) - (v - yAxis.low) / (ySpan > 0 ? ySpan : 1) * Double(y1 - y0)
        }
        func pyAxis(_ position: Double) -> Double {
            Double(y1) - (position - yAxis.low) / (ySpan > 0 ? ySpan : 1) * Double(y1 - y0)
        }

        // Grid and ticks first so the curve is drawn over them.
        for tick in xAxis.ticks {
            let x = pixel(px(tick.position))
            canvas.fill(x0: x, y0: y0, x1: x + 1, y1: y1, gridColor)
            canvas.fill(x0: x, y0: y1, x1: x + 1, y1: y1 + 5, .black)
            let labelWidth = BitmapFont.width(tick.label, scale: 1)
            canvas.text(tick.label, x: x - labelWidth / 2, y: y1 + 8, textColor)
        }
        for tick in yAxis.ticks {
            let y = pixel(pyAxis(tick.position))
            canvas.fill(x0: x0, y0: y, x1: x1, y1: y + 1, gridColor)
            canvas.fill(x0: x0 - 5, y0: y, x1: x0, y1: y + 1, .black)
            let labelWidth = BitmapFont.width(tick.label, scale: 1)
            canvas.text(tick.label, x: x0 - 8 - labelWidth, y: y - glyphH / 2, textColor)
        }
        // Frame.
        canvas.fill(x0: x0, y0: y0, x1: x1 + 1, y1: y0 + 1, .black)
        canvas.fill(x0: x0, y0: y1, x1: x1 + 1, y1: y1 + 1, .black)
        canvas.fill(x0: x0, y0: y0, x1: x0 + 1, y1: y1 + 1, .black)
        canvas.fill(x0: x1, y0: y0, x1: x1 + 1, y1: y1 + 1, .black)

        // The curve: a 2-pixel polyline; a lone point gets a small square so it is visible at all.
        if kept.count == 1, let p = kept.first {
            let cx = pixel(px(p.x)), cy = pixel(py(p.y))
            canvas.fill(x0: cx - 2, y0: cy - 2, x1: cx + 3, y1: cy + 3, curveColor)
        } else if kept.count > 1 {
            var previous = (px(kept[0].x), py(kept[0].y))
            for p in kept.dropFirst() {
                let next = (px(p.x), py(p.y))
                canvas.line(previous.0, previous.1, next.0, next.1, thickness: 2, curveColor)
                previous = next
            }
        }

        // Text last so nothing overdraws it.
        if !title.isEmpty {
            let tw = BitmapFont.width(title, scale: titleScale)
            canvas.text(title, x: max(4, (w - tw) / 2), y: 8, scale: titleScale, textColor)
        }
        if !xLabel.isEmpty {
            let lw = BitmapFont.width(xLabel, scale: 1)
            canvas.text(xLabel, x: max(4, (x0 + x1 - lw) / 2), y: y1 + 8 + glyphH + 8, textColor)
        }
        if !yLabel.isEmpty {
            let lw = BitmapFont.width(yLabel, scale: 1)
            canvas.text(yLabel, x: 8, y: min(h - 4, (y0 + y1 + lw) / 2), vertical: true, textColor)
        }
        return canvas.image
    }

    /// Double to pixel index without trapping: NaN and far-off values land well outside any canvas.
    static func pixel(_ v: Double) -> Int {
        guard v.isFinite else { return -1_000_000 }
        return Int(min(max(v, -1e6), 1e6).rounded())
    }
}
