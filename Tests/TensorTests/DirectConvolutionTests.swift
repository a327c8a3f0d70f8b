// The direct convolution (<= 4 output channels) through the AVX2 kernel against the portable
// Swift loops, over widths below, at and above its 32-lane blocks, with and without padding.
@testable import Tensor
import XCTest

final class DirectConvolutionTests: XCTestCase {
    func testAVX2KernelMatchesTheSwiftLoops() throws {
        let cases: [(x: [Int], w: [Int], padding: Int)] = [
            ([2, 3, 28, 28], [1, 3, 5, 5], 2),
            ([1, 2, 5, 37], [3, 2, 3, 3], 1),
            ([3, 4, 9, 32], [4, 4, 3, 5], 0),
            ([1, 1, 1, 1], [2, 1, 3, 3], 1),
        ]
        defer { CPUDevice.avx2Kernels = true }
        for (n, c) in cases.enumerated() {
            let x = try Tensor(randomValues(Shape.count(c.x), seed: 11), shape: c.x, on: cpu)
            let w = try Tensor(randomValues(Shape.count(c.w), seed: 12), shape: c.w, on: cpu)
            let b = try Tensor(randomValues(c.w[0], seed: 13), shape: [c.w[0]], on: cpu)
            var outputs: [[Float]] = []
            for avx2 in [true, false] {
                CPUDevice.avx2Kernels = avx2
                outputs.append(try x.conv2d(weight: w, bias: b, padding: c.padding).toArray())
            }
            assertClose(outputs[0], outputs[1], relative: 1e-5, "direct conv case \(n)")
        }
    }
}
