// numpy's float ranges as diffusers' set_timesteps uses them, computed the way numpy does, so that
// rounding them lands on the same integers (a Swift stride can take one more step near the end).
import Foundation

enum NumPy {
    /// np.arange(start, stop, step): ceil((stop - start) / step) values start + i * step.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let count = max(Int(((stop - start) / step).rounded(.up)), 0)
        return (0..<count).map { start + Double($0) * step }
    }

    /// np.interp(x, arange(table.count), table): the table at x, linear between whole positions,
    /// clamped to the ends, as numpy computes it (slope times the offset, plus the left value).
    static func interp(_ x: Double, _ table: [Double]) -> Double {
        guard let last = table.indices.last else { return .nan }
        if x <= 0 { return table[0] }
        if x >= Double(last) { return table[last] }
        let j = Int(x.rounded(.down))
        if x == Double(j) { return table[j] }
        return (table[j + 1] - table[j]) * (x - Double(j)) + table[j]
    }

    /// np.linspace(start, stop, count): start + i * (stop - start) / (count - 1), the last exactly stop.
    static func linspace(_ start: Double, _ stop: Double, _ count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (stop - start) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? stop : start + Double($0) * step }
    }
}
