// The CPU devices' row kernels against the CPU twin over odd shapes, forward and backward:
// conv_rows and conv_rows_weight (Kernels/conv_rows.cl: stride-1 convolutions without a column
// matrix) and groupnorm_rows.cl (a work-item per group, float16 passes). Each case also checks
// from the launch ledger that the row kernel, not its im2col or work-group twin, did the work.
import CPUBackend
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class RowKernelTests: XCTestCase {
    /// (input [N, C, H, W], weight [Cout, C, kh, kw], padding, bias) at stride 1.
    typealias Case = (input: [Int], weight: [Int], padding: Int, bias: Bool)

    func check(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        try compareConvolution((c.input, c.weight, 1, c.padding, c.bias), file: file, line: line)
    }

    func testConvolutionsOverOddShapesRunOnRowKernels() throws {
        let device = try DevicesUnderTest.opencl()
        try XCTSkipIf(device.runsGPUKernels, "a GPU runs conv_tiled instead")
        let cases: [Case] = [
            ([1, 1, 28, 28], [7, 1, 3, 3], 1, true),  // batch 1, one input channel, two 16-wide tiles
            ([2, 3, 7, 7], [33, 3, 3, 3], 1, false),  // 7 wide: two rows of 8 per tile; 33 rows of weights
            ([3, 7, 1, 33], [5, 7, 3, 3], 1, true),  // one row, 33 wide (a 1-column tail)
            ([2, 3, 9, 5], [9, 3, 5, 5], 2, true),  // 5x5, BasicUNet's kernel
            ([1, 5, 6, 11], [6, 5, 3, 3], 0, false),  // no padding
            ([2, 4, 5, 9], [5, 4, 2, 2], 1, true),  // even kernel
            ([1, 3, 3, 1], [5, 3, 3, 3], 2, true),  // padding 2 of a 3x3 on a 3x1 image
            ([2, 7, 9, 9], [1, 7, 5, 5], 2, true),  // one output channel (GPUs take the direct kernels)
        ]
        device.ledger.reset()
        for c in cases { try check(c) }
        XCTAssertNil(device.ledger.rows["im2col"], "a stride-1 layer wrote a column matrix")
        XCTAssertNil(device.ledger.rows["col2im"])
        XCTAssertEqual(device.ledger.rows["conv_rows"]?.launches, 2 * cases.count, "forward and input gradient")
        XCTAssertNil(device.ledger.rows["conv_direct"])
        XCTAssertEqual(device.ledger.rows["conv_rows_weight"]?.launches, cases.count)
    }

    func testALongKOverFewOutputsIsSlicedAndSummedWithTheBias() throws {
        let device = try DevicesUnderTest.opencl()
        try XCTSkipIf(device.runsGPUKernels, "a GPU runs conv_tiled instead")
        // 130 channels of 3x3 (K = 1,170) over a 3x3 output: two channel slices, then sum_batch adds
        // them with the bias.
        device.ledger.reset()
        try check(([2, 130, 3, 3], [8, 130, 3, 3], 1, true))
        XCTAssertEqual(device.ledger.narrowLaunches, [])
        XCTAssertEqual(device.ledger.rows["sum_batch"]?.launches, 1)
        // 130 output channels: the input gradient's K is long, and the second of the two gradients
        // of the same input is summed onto the first (sum_batch with beta 1).
        device.ledger.reset()
        try compareBackends(
            "two sliced input gradients of one input",
            [(try testValues(2 * 8 * 9, seed: 4), [2, 8, 3, 3]), (try testValues(130 * 8 * 9, seed: 5), [130, 8, 3, 3])],
            tolerance: 1e-4
        ) {
            try $0[0].conv2d(weight: $0[1], bias: nil, padding: 1) + $0[0].conv2d(weight: $0[1] * 0.5, bias: nil, padding: 1)
        }
        XCTAssertEqual(device.ledger.narrowLaunches, [])
        // Two sums of input-gradient slices, and the two weight gradients' sums over the images.
        XCTAssertEqual(device.ledger.rows["sum_batch"]?.launches, 4)
    }

    func testAccumulatedInputGradientOnRowKernels() throws {
        // The same input through two wide convolutions: the second input gradient adds in place.
        try compareBackends(
            "two convolutions of one input",
            [(try testValues(2 * 3 * 7 * 33, seed: 6), [2, 3, 7, 33]), (try testValues(9 * 27, seed: 7), [9, 3, 3, 3])],
            tolerance: 1e-4
        ) {
            try $0[0].conv2d(weight: $0[1], bias: nil, padding: 1).silu() + $0[0].conv2d(weight: $0[1], bias: nil, padding: 1)
        }
    }

    func testSiLUSixteenFloatsPerWorkItemWithTails() throws {
        let device = try DevicesUnderTest.opencl()
        try XCTSkipIf(device.info.isGPU, "GPUs run the scalar unary kernels")
        device.ledger.reset()
        for count in [1, 15, 16, 33, 7 * 28 * 28] {
            try compareBackends("silu of \(count)", [(try testValues(count, seed: 8, low: -6, high: 6), [count])]) {
                try $0[0].silu()
            }
        }
        XCTAssertEqual(device.ledger.rows["silu_rows"]?.launches, 5)
        XCTAssertEqual(device.ledger.rows["silu_backward_rows"]?.launches, 5)
        XCTAssertNil(device.ledger.rows["unary"])
    }

    /// The group norm comparisons: spatial sizes below, at and above a float16 (tails of 1 and 15),
    /// one and three channels per group, batch 1, with and without affine and SiLU, and the input
    /// used twice (the backward accumulates).
    func compareGroupNorms() throws {
        let cases: [(shape: [Int], groups: Int, affine: Bool, silu: Bool)] = [
            ([2, 6, 4, 7], 3, true, false), ([1, 33, 7, 1], 1, true, true), ([3, 7, 1, 1], 1, true, true),
            ([1, 9, 3, 33], 3, true, true), ([2, 6, 4, 4], 2, false, true), ([1, 4, 7, 7], 4, false, false),
        ]
        for (n, c) in cases.enumerated() {
            let channels = c.shape[1]
            try compareBackends(
                "group norm \(c)",
                [(try testValues(Shape.count(c.shape), seed: 40 + UInt64(n), low: -2, high: 3), c.shape)]
                    + (c.affine
                        ? [
                            (try testValues(channels, seed: 50 + UInt64(n)), [channels]),
                            (try testValues(channels, seed: 60 + UInt64(n)), [channels]),
                        ] : []),
                tolerance: 1e-4
            ) {
                let normed = try $0[0].groupNorm(
                    groups: c.groups, gamma: c.affine ? $0[1] : nil, beta: c.affine ? $0[2] : nil, epsilon: 1e-5,
                    silu: c.silu)
                return try normed + $0[0] * 0.5
            }
        }
    }

    func testGroupNormsRunOnRowKernelsOnCPUDevicesAndWorkGroupsOnGPUs() throws {
        let device = try DevicesUnderTest.opencl()
        try XCTSkipIf(device.runsGPUKernels, "a GPU runs the work-group kernels")
        device.ledger.reset()
        try compareGroupNorms()
        XCTAssertEqual(device.ledger.rows["group_norm_forward_rows"]?.launches, 6)
        XCTAssertEqual(device.ledger.rows["group_norm_backward_rows"]?.launches, 6)
        XCTAssertNil(device.ledger.rows["group_norm_forward"])
        // The same cases on the kernels a GPU runs.
        try withGPUKernels { device in
            device.ledger.reset()
            try compareGroupNorms()
            XCTAssertEqual(device.ledger.rows["group_norm_forward"]?.launches, 6)
            XCTAssertEqual(device.ledger.rows["group_norm_backward"]?.launches, 6)
            XCTAssertNil(device.ledger.rows["group_norm_forward_rows"])
        }
    }
}
