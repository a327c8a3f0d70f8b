// The direct convolution (<= 4 output channels) and its gradients through the AVX2 kernels
// against the portable Swift loops, over widths below, at and above its 32-lane blocks, with and
// without padding.
import TestSupport
import XCTest

@testable import CPUBackend
@testable import Tensor

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
            for t in [x, w, b] { t.requiresGrad = true }
            var outputs: [[Float]] = []
            var gradients: [[[Float]]] = []
            for avx2 in [true, false] {
                CPUDevice.avx2Kernels = avx2
                for t in [x, w, b] { t.grad = nil }
                let y = try x.conv2d(weight: w, bias: b, padding: c.padding)
                outputs.append(try y.toArray())
                try y.backward(gradient: Tensor(randomValues(y.count, seed: 14), shape: y.shape, on: cpu))
                gradients.append(try [x, w, b].map { try XCTUnwrap($0.grad).toArray() })
            }
            assertElementsClose(outputs[0], outputs[1], relative: 1e-5, "direct conv case \(n)")
            for (i, name) in ["input", "weight", "bias"].enumerated() {
                // Sums over many products in another order: relative to the gradient's scale.
                let scale = gradients[1][i].map { abs($0) }.max() ?? 1
                assertElementsClose(
                    gradients[0][i], gradients[1][i], relative: 1e-5, absolute: 1e-5 * scale,
                    "direct conv \(name) gradient case \(n)")
            }
        }
    }
}
