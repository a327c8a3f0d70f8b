// The CPU backend's own exponential (SiLU, sigmoid, exp, softmax and the SiLU gradient) against
// libm, through the AVX2 kernels and the portable Swift loops, including the arguments outside
// [-87, 88] and the NaNs that both hand back to libm.
import Foundation
import XCTest

@testable import CPUBackend
@testable import Tensor

final class ExponentialTests: XCTestCase {
    /// A ramp over [-120, 120] (odd count, so every path has a tail) with infinities, NaN and the range edges.
    let values: [Float] =
        (0..<1001).map { Float($0) * 0.24 - 120 }
        + [-87.5, -87, -86.9, 88, 88.1, 88.7, .infinity, -.infinity, .nan, 0, -0.0]

    func assertMatchesLibm(
        _ actual: [Float], _ expected: [Float], _ name: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(actual.count, expected.count, name, file: file, line: line)
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            if e.isNaN {
                XCTAssertTrue(a.isNaN, "\(name)[\(i)] is \(a), libm gives NaN", file: file, line: line)
            } else if a != e && !(abs(a - e) <= 4e-7 * abs(e) + 1e-37) {
                XCTFail("\(name)[\(i)] (x = \(values[i % values.count])) is \(a), libm gives \(e)", file: file, line: line)
                return
            }
        }
    }

    func checkBothPaths(_ body: () throws -> Void) rethrows {
        defer { CPUDevice.avx2Kernels = true }
        for avx2 in [true, false] {
            CPUDevice.avx2Kernels = avx2
            try body()
        }
    }

    func testUnaryExponentialsMatchLibm() throws {
        try checkBothPaths {
            let x = try Tensor(values, shape: [values.count], on: CPUDevice.shared)
            assertMatchesLibm(try x.exp().toArray(), values.map { Foundation.exp($0) }, "exp")
            assertMatchesLibm(try x.sigmoid().toArray(), values.map { 1 / (1 + Foundation.exp(-$0)) }, "sigmoid")
            assertMatchesLibm(try x.silu().toArray(), values.map { $0 / (1 + Foundation.exp(-$0)) }, "silu")
            let leaf = try Tensor(values, shape: [values.count], on: CPUDevice.shared)
            leaf.requiresGrad = true
            let upstream = values.indices.map { Float($0 % 7) - 3 }
            try leaf.silu().backward(gradient: Tensor(upstream, shape: [values.count], on: CPUDevice.shared))
            let expected = zip(values, upstream).map { x, dy -> Float in
                let s = 1 / (1 + Foundation.exp(-x))
                return dy * s * (1 + x * (1 - s))
            }
            assertMatchesLibm(try XCTUnwrap(leaf.grad).toArray(), expected, "silu gradient")
        }
    }

    func testSoftmaxMatchesLibm() throws {
        // Rows of 1, 7, 8, 13 and 196 values; the wide ones send arguments below -87 to libm.
        for columns in [1, 7, 8, 13, 196] {
            let rows = 4
            let x = (0..<(rows * columns)).map { i -> Float in
                let spread: Float = i / columns % 2 == 0 ? 3 : 60
                return spread * Foundation.sin(Float(i) * 0.7)
            }
            var expected = [Float]()
            for r in 0..<rows {
                let row = x[(r * columns)..<((r + 1) * columns)]
                let peak = row.max()!
                let e = row.map { Foundation.exp($0 - peak) }
                let total = e.reduce(0, +)
                expected += e.map { $0 / total }
            }
            try checkBothPaths {
                let y = try Tensor(x, shape: [rows, columns], on: CPUDevice.shared).softmax().toArray()
                for (i, (a, b)) in zip(y, expected).enumerated() where !(abs(a - b) <= 1e-6 * b + 1e-37) {
                    XCTFail("softmax \(columns) columns [\(i)]: \(a), libm gives \(b)")
                    return
                }
            }
        }
    }
}
