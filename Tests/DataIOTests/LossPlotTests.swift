// Tests for LossPlot rendering, nice-tick selection and the bitmap font.
import TestSupport
import XCTest

@testable import DataIO

final class LossPlotTests: XCTestCase {
    private let blue: [UInt8] = [31, 119, 180]

    private func bluePixels(_ image: Image8) -> [(x: Int, y: Int)] {
        var out: [(x: Int, y: Int)] = []
        for y in 0..<image.height {
            for x in 0..<image.width {
                let i = (y * image.width + x) * 3
                if Array(image.pixels[i..<(i + 3)]) == blue { out.append((x, y)) }
            }
        }
        return out
    }

    private func decaying(_ n: Int) -> [(x: Double, y: Double)] {
        (0..<n).map { (x: Double($0), y: 2 * exp(-Double($0) / 20) + 0.1) }
    }

    func testSizeBackgroundAndCurve() {
        let image = LossPlot.render(decaying(100), title: "Training loss", xLabel: "step", yLabel: "loss")
        XCTAssertEqual(image.width, 640)
        XCTAssertEqual(image.height, 400)
        XCTAssertEqual(image.channels, 3)
        XCTAssertEqual(image.pixels.count, 640 * 400 * 3)
        XCTAssertEqual(Array(image.pixels[0..<3]), [255, 255, 255])
        let curve = bluePixels(image)
        XCTAssertGreaterThan(curve.count, 500)
        // The curve stays inside the plot area (clear of the margins for labels).
        XCTAssertGreaterThan(curve.map(\.x).min() ?? 0, 30)
        XCTAssertLessThan(curve.map(\.x).max() ?? 640, 630)
        XCTAssertGreaterThan(curve.map(\.y).min() ?? 0, 20)
        XCTAssertLessThan(curve.map(\.y).max() ?? 400, 380)
        // Decaying loss: the leftmost curve pixels are higher on screen (smaller y) than the rightmost.
        let left = curve.filter { $0.x < (curve.map(\.x).min() ?? 0) + 5 }.map(\.y).min() ?? 0
        let right = curve.filter { $0.x > (curve.map(\.x).max() ?? 0) - 5 }.map(\.y).min() ?? 0
        XCTAssertLessThan(left, right)
        // Title text is drawn in dark pixels in the top band.
        let dark = (0..<(20 * 640)).filter { image.pixels[$0 * 3] < 60 && image.pixels[$0 * 3 + 2] < 60 }
        XCTAssertGreaterThan(dark.count, 50)
    }

    func testRequestedSizeAndLogScale() {
        let image = LossPlot.render(decaying(50), width: 300, height: 200, title: "t", xLabel: "x", yLabel: "y", logScaleY: true)
        XCTAssertEqual(image.width, 300)
        XCTAssertEqual(image.height, 200)
        XCTAssertGreaterThan(bluePixels(image).count, 100)
    }

    func testDegenerateInputsDoNotCrash() {
        let cases: [[(x: Double, y: Double)]] = [
            [],
            [(x: 3, y: 0.5)],
            (0..<10).map { (x: Double($0), y: 1.0) },
            [(x: 0, y: .nan), (x: 1, y: 2), (x: .infinity, y: 1), (x: 2, y: -.infinity), (x: 3, y: 1)],
            [(x: .nan, y: .nan)],
            [(x: 0, y: 1e300), (x: 1, y: -1e300)],
            [(x: -1e308, y: 0), (x: 1e308, y: .leastNonzeroMagnitude)],
            [(x: 0, y: 0), (x: 0, y: 0)],
            [(x: 1, y: 1 + 1e-15), (x: 2, y: 1)],
        ]
        for (i, points) in cases.enumerated() {
            for log in [false, true] {
                let image = LossPlot.render(points, title: "case \(i) (\u{3b1})", xLabel: "step", yLabel: "loss", logScaleY: log)
                XCTAssertEqual(image.pixels.count, 640 * 400 * 3, "case \(i)")
            }
        }
        XCTAssertEqual(bluePixels(LossPlot.render([(x: 3, y: 0.5)], title: "", xLabel: "", yLabel: "")).count, 25)
        XCTAssertGreaterThan(
            bluePixels(
                LossPlot.render(
                    (0..<10).map { (x: Double($0), y: 1.0) },
                    title: "", xLabel: "", yLabel: "")
            ).count, 100)
        XCTAssertEqual(bluePixels(LossPlot.render([], title: "empty", xLabel: "", yLabel: "")).count, 0)
        for (w, h) in [(1, 1), (10, 10), (0, -5), (40, 400), (2000, 30)] {
            let image = LossPlot.render(decaying(10), width: w, height: h, title: "tiny", xLabel: "x", yLabel: "y")
            XCTAssertEqual(image.width, max(w, 1))
            XCTAssertEqual(image.height, max(h, 1))
        }
    }

    func testLinearTicksAreNiceAndCoverTheData() {
        let unit = PlotTicks.linear(0, 1)
        XCTAssertEqual(unit.ticks.map(\.label), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(PlotTicks.linear(0, 1000).ticks.map(\.label), ["0", "200", "400", "600", "800", "1000"])
        var random = TestRandom(state: 9)
        for _ in 0..<500 {
            let scale = pow(10, Double(random.below(16)) - 8)
            let a = Double(random.below(10_000)) / 100 * scale - 20 * scale
            let b = a + Double(random.below(10_000) + 1) / 100 * scale
            let axis = PlotTicks.linear(a, b)
            XCTAssertTrue((3...7).contains(axis.ticks.count), "\(a)...\(b): \(axis.ticks.map(\.label))")
            XCTAssertLessThanOrEqual(axis.low, a)
            XCTAssertGreaterThanOrEqual(axis.high, b)
            XCTAssertEqual(Set(axis.ticks.map(\.label)).count, axis.ticks.count, "labels must differ: \(axis.ticks.map(\.label))")
        }
    }

    func testLogTicks() {
        let decades = PlotTicks.logarithmic(1e-4, 1)
        XCTAssertEqual(decades.ticks.map(\.label), ["1e-4", "1e-3", "1e-2", "1e-1", "1"])
        XCTAssertEqual(PlotTicks.logarithmic(0.001, 100).ticks.map(\.label), ["0.001", "0.01", "0.1", "1", "10", "100"])
        XCTAssertEqual(decades.low, -4)
        XCTAssertEqual(decades.high, 0)
        let wide = PlotTicks.logarithmic(1e-12, 1e6)
        XCTAssertLessThanOrEqual(wide.ticks.count, 7)
        XCTAssertTrue(wide.ticks.map(\.label).contains("1e-12"))
        XCTAssertEqual(PlotTicks.logarithmic(0.1, 1).ticks.map(\.label), ["0.1", "0.2", "0.5", "1.0"])
        XCTAssertGreaterThanOrEqual(PlotTicks.logarithmic(0.3, 0.9).ticks.count, 3)
    }

    func testFontCoversRequiredCharacters() {
        let required = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-+()/:,_%"
        var seen = Set<[Bool]>()
        for code in BitmapFont.codes(required) {
            let bitmap = (0..<35).map { BitmapFont.ink(code, x: $0 % 5, y: $0 / 5) }
            XCTAssertTrue(bitmap.contains(true), "glyph \(code) is blank")
            seen.insert(bitmap)
        }
        XCTAssertEqual(seen.count, required.count, "every glyph differs")  // no duplicate or fallback glyphs
        XCTAssertFalse((0..<35).contains { BitmapFont.ink(0x20, x: $0 % 5, y: $0 / 5) })
        XCTAssertEqual(BitmapFont.width("ab", scale: 2), 22)
    }
}
