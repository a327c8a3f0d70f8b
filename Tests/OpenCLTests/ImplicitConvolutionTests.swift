// conv_tiled (Kernels/conv_tiled.cl), the implicit-GEMM convolution GPUs run, forced on the test
// device and checked against the CPU twin: forward, input and weight gradients with and without a
// bias, odd channel counts and sides, even and odd kernels, strides 1 and 2, paddings 0 to 2, and
// the two split-K cases (a long K over few outputs; the weight gradient's K over the whole batch).
import CPUBackend
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class ImplicitConvolutionTests: XCTestCase {
    typealias Case = ConvolutionCase

    func check(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        try compareConvolution(c, file: file, line: line)
    }

    func testOddShapesStridesPaddingsAndKernels() throws {
        let cases: [Case] = [
            ([2, 3, 9, 7], [5, 3, 3, 3], 1, 1, true),
            ([2, 33, 7, 9], [65, 33, 3, 3], 1, 1, false),
            ([3, 3, 9, 7], [33, 3, 5, 5], 1, 2, true),
            ([2, 5, 11, 8], [7, 5, 3, 3], 2, 1, true),
            ([1, 4, 10, 10], [6, 4, 2, 2], 2, 0, false),
            ([2, 6, 5, 5], [3, 6, 3, 3], 1, 0, true),
            ([1, 2, 13, 6], [70, 2, 3, 3], 2, 2, true),
        ]
        try withGPUKernels { device in
            device.ledger.reset()
            for c in cases { try check(c) }
            // Every product ran as an implicit GEMM: no column matrix was written or gathered.
            XCTAssertNil(device.ledger.rows["im2col"])
            XCTAssertNil(device.ledger.rows["col2im"])
            XCTAssertGreaterThan(device.ledger.rows["conv_tiled"]?.launches ?? 0, 0)
            // Three output channels: the direct kernels, forward and input gradient.
            XCTAssertEqual(device.ledger.rows["conv_direct"]?.launches, 1)
            XCTAssertEqual(device.ledger.rows["conv_direct_backward_input"]?.launches, 1)
        }
    }

    func testSplitKForALongKAndForTheBatchSummedWeightGradient() throws {
        try withGPUKernels { device in
            // K = 130 * 9 = 1,170 over a 3x3 output: few outputs and a long K, so two slices and a sum.
            let long: Case = ([2, 130, 3, 3], [8, 130, 3, 3], 1, 1, true)
            let g = Conv2dGeometry(
                batch: 2, inChannels: 130, height: 3, width: 3, outChannels: 8, kernelHeight: 3, kernelWidth: 3,
                paddingHeight: 1, paddingWidth: 1)
            device.ledger.reset()
            let x = try Tensor.uniform([2, 130, 3, 3], generator: RandomGenerator(seed: 1), on: device)
            let w = try Tensor.uniform([8, 130, 3, 3], generator: RandomGenerator(seed: 2), on: device)
            _ = try GradMode.withoutGradients { try x.conv2d(weight: w, bias: nil, padding: 1) }.toArray()
            XCTAssertEqual(device.ledger.rows["conv_tiled"]?.launches, 1)
            XCTAssertEqual(device.ledger.rows["conv_tiled"]?.maxSerialIterations, 592)
            XCTAssertEqual(device.ledger.rows["sum_batch"]?.launches, 1)
            XCTAssertEqual(device.ledger.narrowLaunches, [])
            XCTAssertEqual(g.patchSize, 1170)
            try check(long)
            // The weight gradient sums 3 * 24 * 24 = 1,728 pixels: two slices of at most 1,024, added
            // up (weight and bias apart) by one deferred reduction.
            device.ledger.reset()
            try check(([3, 4, 24, 24], [9, 4, 3, 3], 1, 1, true))
            XCTAssertEqual(device.ledger.rows["sum_deferred"]?.launches, 1)
            XCTAssertEqual(device.ledger.rows["conv_tiled"]?.maxSerialIterations, 864)
            XCTAssertEqual(device.ledger.narrowLaunches, [])
        }
    }

    func testDeferredSumsRunBeforeAnythingReadsThem() throws {
        // One weight in two convolutions: autograd adds the second weight gradient to the first, a
        // launch that reads a result still queued. The queue must run first, or the sum reads garbage.
        try withGPUKernels { device in
            device.ledger.reset()
            try compareBackends(
                "a weight used twice",
                [
                    (testValues(2 * 3 * 9 * 9, seed: 1), [2, 3, 9, 9]), (testValues(2 * 3 * 7 * 7, seed: 2), [2, 3, 7, 7]),
                    (testValues(5 * 3 * 9, seed: 3), [5, 3, 3, 3]), (testValues(5, seed: 4), [5]),
                ], tolerance: 1e-4
            ) {
                let a = try $0[0].conv2d(weight: $0[2], bias: $0[3], padding: 1).sum()
                return try a + $0[1].conv2d(weight: $0[2], bias: $0[3], stride: 2).sum()
            }
            // Both weight gradients' sums were queued and ran together, in one launch, before the
            // addition read them (had it read them unsummed, the gradient above would not match).
            XCTAssertEqual(device.ledger.rows["sum_deferred"]?.launches, 1)
        }
    }
}
