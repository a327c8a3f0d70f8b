// Overflow-safe size arithmetic for lengths and dimensions read from untrusted files.

/// Overflow-safe arithmetic for sizes taken from untrusted files: nil instead of a trap.
enum CheckedSize {
    static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : r
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : r
    }

    /// Product of non-negative dimensions, nil on overflow or a negative entry. The empty product is 1 (a scalar).
    static func product(_ dims: [Int]) -> Int? {
        var total = 1
        for d in dims {
            guard d >= 0, let t = multiply(total, d) else { return nil }
            total = t
        }
        return total
    }
}
