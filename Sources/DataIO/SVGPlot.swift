// Line plots as SVG text for the run report: the same nice ticks as the PNG loss plot
// (PlotTicks), several series, a legend; a self-contained element an HTML page embeds as is.
import Foundation

public enum SVGPlot {
    public struct Series {
        public var name: String
        /// A CSS colour.
        public var color: String
        public var points: [(x: Double, y: Double)]
        public var strokeWidth: Double

        public init(name: String, color: String, points: [(x: Double, y: Double)], strokeWidth: Double = 1.5) {
            self.name = name
            self.color = color
            self.points = points
            self.strokeWidth = strokeWidth
        }
    }

    /// Non-finite points (and y <= 0 on a log axis) are left out; an empty plot still has axes.
    public static func render(
        _ series: [Series], width: Int = 720, height: Int = 320, title: String, xLabel: String, yLabel: String,
        logScaleY: Bool = false
    ) -> String {
        let kept = series.map { s in s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logScaleY || $0.y > 0) } }
        let xs = kept.flatMap { $0.map(\.x) }, ys = kept.flatMap { $0.map(\.y) }
        let xAxis = PlotTicks.linear(xs.min() ?? 0, xs.max() ?? 1)
        let yAxis =
            logScaleY ? PlotTicks.logarithmic(ys.min() ?? 0.1, ys.max() ?? 1) : PlotTicks.linear(ys.min() ?? 0, ys.max() ?? 1)
        let (left, right, top, bottom) = (70.0, 20.0, 34.0, 46.0)
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        func px(_ x: Double) -> Double { left + (x - xAxis.low) / max(xAxis.high - xAxis.low, 1e-300) * plotW }
        func py(_ y: Double) -> Double {
            let v = logScaleY ? log10(y) : y
            return top + plotH - (v - yAxis.low) / max(yAxis.high - yAxis.low, 1e-300) * plotH
        }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" "
        svg += "viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"12\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>"
        for tick in xAxis.ticks {
            let x = px(tick.position)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#e1e1e1\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(escape(tick.label))</text>"
        }
        for tick in yAxis.ticks {
            let y = top + plotH - (tick.position - yAxis.low) / max(yAxis.high - yAxis.low, 1e-300) * plotH
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#e1e1e1\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escape(tick.label))</text>"
        }
        svg +=
            "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        svg +=
            "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>"
        for (s, points) in zip(series, kept) where !points.isEmpty {
            let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-name=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(s.color)\" "
            svg += "stroke-width=\"\(s.strokeWidth)\" points=\"\(path)\"/>"
        }
        for (i, s) in series.enumerated() {
            let y = top + 14 + Double(i) * 16
            svg += "<line x1=\"\(f(left + plotW - 120))\" y1=\"\(f(y - 4))\" x2=\"\(f(left + plotW - 100))\" y2=\"\(f(y - 4))\" "
            svg += "stroke=\"\(s.color)\" stroke-width=\"3\"/>"
            svg += "<text x=\"\(f(left + plotW - 94))\" y=\"\(f(y))\">\(escape(s.name))</text>"
        }
        return svg + "</svg>"
    }

    /// Text made safe inside HTML or SVG.
    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
