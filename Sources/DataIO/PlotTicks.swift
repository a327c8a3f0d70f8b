// Choosing "nice" axis ranges and tick labels (1, 2, 2.5, 5 x 10^k steps; decades on log axes).
import Foundation

/// An axis in plotted coordinates (log10 of the data on a log axis) and the ticks to draw on it.
struct PlotAxis {
    var low: Double
    var high: Double
    var ticks: [(position: Double, label: String)]
}

enum PlotTicks {
    /// Values beyond this are clamped so that spans and step counts stay finite.
    static let limit = 1e300

    /// Ticks for a linear axis covering [lo, hi], extended outwards to whole steps so the curve never
    /// touches the frame. Aims for 4 to 6 ticks.
    static func linear(_ lo: Double, _ hi: Double) -> PlotAxis {
        var lo = min(max(lo, -limit), limit), hi = min(max(hi, -limit), limit)
        if !(lo.isFinite && hi.isFinite) || lo > hi { lo = 0; hi = 1 }
        // A flat or nearly flat range (for example a constant loss) gets padding so there is something to divide.
        let magnitude = max(abs(lo), abs(hi))
        if hi - lo <= magnitude * 1e-9 {
            let pad = magnitude == 0 ? 1 : magnitude * 0.1
            lo -= pad
            hi += pad
        }
        let span = hi - lo
        let base = pow(10, (log10(span / 5)).rounded(.down))
        var best: (step: Double, first: Double, count: Double)?
        for mult in [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100] {
            let step = base * mult
            let first = (lo / step).rounded(.down), last = (hi / step).rounded(.up)
            let count = last - first + 1
            guard step > 0, count.isFinite else { continue }
            if (4...6).contains(count) { best = (step, first, count); break }
            if abs(count - 5) < abs((best?.count ?? .infinity) - 5) { best = (step, first, count) }
        }
        guard let pick = best, pick.count <= 100 else {
            return PlotAxis(low: lo, high: hi, ticks: [(lo, label(lo, decimals: 3)), (hi, label(hi, decimals: 3))])
        }
        // Adding 0.0 turns -0.0 into 0.0 so no tick reads "-0".
        let values = (0..<Int(pick.count)).map { (pick.first + Double($0)) * pick.step + 0.0 }
        let labels = distinctLabels(values)
        return PlotAxis(
            low: values.first ?? lo, high: values.last ?? hi,
            ticks: zip(values, labels).map { (position: $0, label: $1) })
    }

    /// Ticks for a log axis over positive data [lo, hi]. Positions are log10 of the value. Spans under a
    /// decade get linear-valued ticks (placed logarithmically) because decade ticks would be too sparse.
    static func logarithmic(_ lo: Double, _ hi: Double) -> PlotAxis {
        var a = log10(min(max(lo, 1e-300), limit)), b = log10(min(max(hi, 1e-300), limit))
        if !(a.isFinite && b.isFinite) || a > b { a = 0; b = 1 }
        if b - a < 1e-9 { a -= 0.3; b += 0.3 }  // constant data: a factor of 2 either side
        if b - a < 1 {
            let linearTicks = linear(pow(10, a), pow(10, b)).ticks.filter { $0.position > 0 }
            let ticks = linearTicks.map { (position: log10($0.position), label: $0.label) }
            let low = min(a, ticks.first?.position ?? a), high = max(b, ticks.last?.position ?? b)
            return PlotAxis(low: low, high: high, ticks: ticks)
        }
        let kLo = a.rounded(.down), kHi = b.rounded(.up)
        let decades = kHi - kLo + 1
        var values: [Double] = []
        if decades <= 3 {
            // 1-2 decades: 1, 2, 5 per decade; 3 decades: 1, 3 per decade (4 to 7 ticks either way).
            let mantissas: [Double] = decades <= 2 ? [1, 2, 5] : [1, 3]
            var k = kLo
            while k <= kHi {
                for m in mantissas {
                    let p = log10(m) + k
                    if p <= kHi + 1e-12 { values.append(p) }
                }
                k += 1
            }
            let labels = distinctLabels(values.map { pow(10, $0) })
            return PlotAxis(low: kLo, high: kHi, ticks: zip(values, labels).map { (position: $0, label: $1) })
        }
        // Every decade while that gives at most 6 ticks, else every `step` decades on multiples of `step`.
        let step = max(1, ((decades - 1) / 5).rounded(.up))
        let first = (kLo / step).rounded(.down) * step, last = (kHi / step).rounded(.up) * step
        var k = first
        while k <= last + 1e-9 && values.count < 100 {
            values.append(k)
            k += step
        }
        // Plain numbers while every tick is short that way, else exponents for all so the axis reads uniformly.
        let exponents = values.map { Int($0) }
        let plain = exponents.allSatisfy { (-3...4).contains($0) }
        let labels = exponents.map { plain ? plainPowerOfTen($0) : ($0 == 0 ? "1" : "1e\($0)") }
        return PlotAxis(low: first, high: last, ticks: zip(values, labels).map { (position: $0, label: $1) })
    }

    /// The fewest decimals (or significant digits in scientific form) that still tell every tick apart.
    static func distinctLabels(_ values: [Double]) -> [String] {
        let magnitude = values.map { abs($0) }.max() ?? 0
        let scientific = magnitude >= 1e6 || (magnitude > 0 && magnitude < 1e-3)
        for digits in 0...8 {
            let labels = values.map { scientific ? sci($0, digits: digits) : label($0, decimals: digits) }
            if Set(labels).count == labels.count { return labels }
        }
        return values.map { scientific ? sci($0, digits: 8) : label($0, decimals: 8) }
    }

    static func label(_ v: Double, decimals: Int) -> String {
        String(format: "%.\(decimals)f", v)
    }

    /// Compact scientific notation: "2.5e-5", "1e6" rather than printf's "2.50e-05".
    static func sci(_ v: Double, digits: Int) -> String {
        if v == 0 { return "0" }
        let text = String(format: "%.\(digits)e", v)
        guard let e = text.firstIndex(of: "e") else { return text }
        var mantissa = String(text[..<e])
        if mantissa.contains(".") {
            while mantissa.hasSuffix("0") { mantissa.removeLast() }
            if mantissa.hasSuffix(".") { mantissa.removeLast() }
        }
        let exponent = Int(text[text.index(after: e)...]) ?? 0
        return "\(mantissa)e\(exponent)"
    }

    /// 10^k written out: "1000", "0.01". Only called for small |k|.
    static func plainPowerOfTen(_ k: Int) -> String {
        k >= 0 ? "1" + String(repeating: "0", count: k) : "0." + String(repeating: "0", count: -k - 1) + "1"
    }
}
