// FastDivisor: the magic numbers conv_tiled divides its gather indices by, checked against integer
// division over every divisor up to 4,096 and the dividends where an error would show: small ones,
// each side of multiples of the divisor, random ones and the top of the range (2^31 - 1).
import XCTest

@testable import OpenCLBackend

final class FastDivisorTests: XCTestCase {
    func testQuotientsEqualIntegerDivision() throws {
        var generator = SystemRandomNumberGenerator()
        for d in 1...4_096 {
            let f = try FastDivisor(d)
            var dividends = Array(0..<UInt32(300)) + [UInt32(Int32.max), UInt32(Int32.max) - 1]
            for q in [1, 2, 7, 1_000, 65_535, 1 << 20, Int(Int32.max) / d] where q * d <= Int(Int32.max) {
                dividends += [UInt32(q * d - 1), UInt32(q * d), UInt32(min(q * d + 1, Int(Int32.max)))]
            }
            dividends += (0..<64).map { _ in UInt32.random(in: 0...UInt32(Int32.max), using: &generator) }
            for n in dividends where f.quotient(n) != n / UInt32(d) {
                XCTFail("\(n) / \(d): \(f.quotient(n)), magic \(f.magic) shift \(f.shift)")
                return
            }
        }
        // Large divisors, including powers of two and 2^31 - 1.
        for d in [65_536, 65_537, 1 << 30, (1 << 30) + 1, Int(Int32.max)] {
            let f = try FastDivisor(d)
            for n in [0, 1, d - 1, d, min(d + 1, Int(Int32.max)), Int(Int32.max)].map(UInt32.init) {
                XCTAssertEqual(f.quotient(n), n / UInt32(d), "\(n) / \(d)")
            }
        }
        XCTAssertThrowsError(try FastDivisor(0))
        XCTAssertThrowsError(try FastDivisor(1 << 31))
    }
}
