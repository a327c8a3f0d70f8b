// The AVX2 2x2 max pooling against the portable Swift loops, bit for bit: ties (the first maximum
// wins), NaNs (always taken), signed zeros, -infinity, and odd sizes with windows left over.
import XCTest

@testable import CPUBackend
@testable import Tensor

final class MaxPoolKernelTests: XCTestCase {
    func testAVX2KernelMatchesTheSwiftLoops() throws {
        let shape = [2, 3, 7, 37]
        let count = Shape.count(shape)
        let special: [Float] = [.nan, -0.0, 0.0, -.infinity, 1, 1]
        // Coarse values make ties common; every 13th value is one of the special ones.
        let values = randomValues(count, seed: 21).enumerated().map { i, v in
            i % 13 == 0 ? special[(i / 13) % special.count] : (v * 4).rounded() / 4
        }
        let upstream = randomValues(count / 4, seed: 22)
        defer { CPUDevice.avx2Kernels = true }
        var results: [[UInt32]] = []
        for avx2 in [true, false] {
            CPUDevice.avx2Kernels = avx2
            let x = try Tensor(values, shape: shape, on: cpu)
            x.requiresGrad = true
            let y = try x.maxPool2d(kernel: 2)
            try y.backward(gradient: Tensor(Array(upstream.prefix(y.count)), shape: y.shape, on: cpu))
            results.append(try (y.toArray() + XCTUnwrap(x.grad).toArray()).map(\.bitPattern))
        }
        XCTAssertEqual(results[0], results[1])
    }
}
