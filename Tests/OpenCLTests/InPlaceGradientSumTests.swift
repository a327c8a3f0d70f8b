// Autograd's in-place sums (GradNode's `into`): an input used by several layers gets its gradients
// added by the layers' own kernels (GEMM beta 1, accumulate flags, block copies that add) instead
// of by a separate addition per extra use. The same graph is differentiated both ways on each
// backend: the gradients must agree (an accumulate flag ignored or misapplied shows here), and the
// in-place way must make fewer additions. The graph mixes gradients autograd must not add into
// (one passed on unchanged by an addition to both its inputs; reshaped views sharing a buffer)
// with those it may (convolutions, group norm, linear layers and a concatenation reusing one input).
import CPUBackend
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend
@testable import Tensor

final class InPlaceGradientSumTests: XCTestCase {
    /// Gradients of every leaf after one backward pass of the mixed graph, with or without in-place sums.
    func gradients(on device: Device, inPlace: Bool) throws -> [[Float]] {
        let saved = GradMode.sumsInPlace
        GradMode.sumsInPlace = inPlace
        defer { GradMode.sumsInPlace = saved }
        func leaf(_ shape: [Int], _ seed: UInt64) throws -> Tensor {
            let t = try Tensor(testValues(Shape.count(shape), seed: seed), shape: shape, on: device)
            t.requiresGrad = true
            return t
        }
        let x = try leaf([2, 4, 6, 6], 1)
        let (w1, b1) = (try leaf([4, 4, 3, 3], 2), try leaf([4], 3))
        let (gamma, beta) = (try leaf([4], 4), try leaf([4], 5))
        let w2 = try leaf([3, 8, 1, 1], 6)
        let (w3, b3) = (try leaf([5, 144], 7), try leaf([5], 8))
        let t = try leaf([2, 16], 9)
        let (w4, b4, w5, b5) = (try leaf([6, 16], 10), try leaf([6], 11), try leaf([6, 16], 12), try leaf([6], 13))
        let a = try x.conv2d(weight: w1, bias: b1, padding: 1)
        let normed = try x.groupNorm(groups: 2, gamma: gamma, beta: beta, epsilon: 1e-5, silu: true)
        let residual = try x + a  // passes its gradient to x and a unchanged: x's must not be added into
        let skip = try Tensor.concatenate([residual, x], axis: 1)
        let projected = try skip.conv2d(weight: w2, bias: nil)
        let flat = try x.reshaped([2, 144]).linear(weight: w3, bias: b3)  // x through a reshaped view
        let shared = try t.linear(weight: w4, bias: b4) + t.linear(weight: w5, bias: b5)  // t used twice
        var loss = try (normed * normed).sum() + (projected * projected).sum()
        loss = try loss + (flat * flat).sum() + (shared * shared).sum() + (residual * normed).sum()
        // u + conv(z) hands one gradient tensor to u and to conv(z), and u has a convolution of its own.
        let (u, z) = (try leaf([2, 4, 5, 5], 14), try leaf([2, 4, 5, 5], 15))
        let (wu, wz) = (try leaf([4, 4, 3, 3], 16), try leaf([4, 4, 3, 3], 17))
        let sum = try u + z.conv2d(weight: wz, bias: nil, padding: 1)
        let ofU = try u.conv2d(weight: wu, bias: nil, padding: 1)
        loss = try loss + (sum * sum).sum() + (ofU * ofU).sum()
        try loss.backward()
        return try [x, w1, b1, gamma, beta, w2, w3, b3, t, w4, b4, w5, b5, u, z, wu, wz].map {
            try XCTUnwrap($0.grad).toArray()
        }
    }

    func testInPlaceSumsGiveTheSameGradientsWithFewerAdditions() throws {
        let opencl = try DevicesUnderTest.opencl()
        let saved = opencl.gemmKernel
        defer { opencl.gemmKernel = saved }
        // The OpenCL device twice: with its own kernels, then with a GPU's (conv_tiled, gemm_tiled).
        for (device, kernel) in [(CPUDevice.shared as Device, saved), (opencl, saved), (opencl, .tiled)] {
            opencl.gemmKernel = kernel
            opencl.ledger.reset()
            let separate = try gradients(on: device, inPlace: false)
            let separateAdds = opencl.ledger.rows["binary_same"]?.launches ?? 0
            opencl.ledger.reset()
            let inPlace = try gradients(on: device, inPlace: true)
            let inPlaceAdds = opencl.ledger.rows["binary_same"]?.launches ?? 0
            for (index, (p, s)) in zip(inPlace, separate).enumerated() {
                XCTAssertLessThan(relativeError(p, s, floor: 1e-6), 1e-6, "\(device.name) \(kernel): leaf \(index)")
            }
            if device === opencl {
                // Four of the extra uses add into the sum themselves (which four follows the graph
                // walk: the first gradient of each input is written, not added).
                XCTAssertEqual(separateAdds - inPlaceAdds, 4, "additions saved")
            }
        }
    }
}
