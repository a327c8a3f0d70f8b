// A convolution with SiLU in its epilogue (BasicUNet's conv-then-SiLU, issue 9 item 3): equal to
// the two ops on each backend, output and every gradient, over odd shapes; the OpenCL kernels
// (conv_rows on CPU devices, conv_tiled as GPUs run it, their split-K sums and the unfused
// fallbacks) equal the CPU's; and the fused layers write the activation in the convolution's launch.
import CPUBackend
import DiffusionModels
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class ConvolutionSiLUTests: XCTestCase {
    /// Row and tiled kernels (3x3 and 5x5, batch 1, 1 and 33 channels, 7-wide planes), the direct
    /// kernel (3 outputs), a 1x1 layer and a stride-2 layer (im2col + GEMM on CPU devices), no bias,
    /// and a long K over a small plane (channel slices summed before SiLU).
    let cases: [ConvolutionCase] = [
        ([1, 3, 7, 7], [5, 3, 3, 3], 1, 1, true),
        ([2, 1, 28, 28], [33, 1, 5, 5], 1, 2, true),
        ([3, 33, 7, 1], [7, 33, 3, 3], 1, 1, false),
        ([2, 7, 9, 9], [3, 7, 5, 5], 1, 2, true),
        ([2, 6, 5, 3], [9, 6, 1, 1], 1, 0, true),
        ([1, 5, 11, 8], [7, 5, 3, 3], 2, 1, true),
        ([1, 130, 7, 7], [8, 130, 3, 3], 1, 1, true),
    ]

    func inputs(_ c: ConvolutionCase, seed: UInt64) throws -> [(values: [Float], shape: [Int])] {
        [
            (try testValues(Shape.count(c.input), seed: seed, low: -2, high: 2), c.input),
            (try testValues(Shape.count(c.weight), seed: seed + 1, low: -0.5, high: 0.5), c.weight),
        ] + (c.bias ? [(try testValues(c.weight[0], seed: seed + 2), [c.weight[0]])] : [])
    }

    func fused(_ c: ConvolutionCase, _ t: [Tensor]) throws -> Tensor {
        try t[0].conv2d(weight: t[1], bias: c.bias ? t[2] : nil, stride: c.stride, padding: c.padding, silu: true)
    }

    func compareWithTheTwoOps(on device: Device) throws {
        for (k, c) in cases.enumerated() {
            let values = try inputs(c, seed: 500 + 10 * UInt64(k))
            let one = try outputAndGradients(values, on: device) { try fused(c, $0) }
            let two = try outputAndGradients(values, on: device) {
                try $0[0].conv2d(weight: $0[1], bias: c.bias ? $0[2] : nil, stride: c.stride, padding: c.padding).silu()
            }
            for (i, (a, b)) in zip(one, two).enumerated() {
                XCTAssertLessThan(relativeError(a, b, floor: 1e-6), 1e-5, "\(device.name) \(c): output/gradient \(i)")
            }
        }
    }

    func testTheFusedLayerEqualsConvolutionThenSiLUOnEachBackend() throws {
        try DevicesUnderTest.each { try compareWithTheTwoOps(on: $0) }
        try withGPUKernels { try compareWithTheTwoOps(on: $0) }
    }

    /// Without gradients the activation overwrites the convolution in one buffer: the same values.
    func testWithoutGradientsTheActivationOverwritesTheConvolution() throws {
        func check(on device: Device) throws {
            for (k, c) in cases.enumerated() {
                let values = try inputs(c, seed: 700 + 10 * UInt64(k))
                let recorded = try outputAndGradients(values, on: device) { try fused(c, $0) }[0]
                let tensors = try values.map { try Tensor($0.values, shape: $0.shape, on: device) }
                let plain = try GradMode.withoutGradients { try fused(c, tensors) }
                XCTAssertFalse(plain.requiresGrad)
                XCTAssertEqual(try plain.toArray(), recorded, "\(device.name) \(c)")
            }
        }
        try DevicesUnderTest.each { try check(on: $0) }
        try withGPUKernels { try check(on: $0) }
    }

    func testTheOpenCLKernelsMatchTheCPU() throws {
        func compareAll() throws {
            for (k, c) in cases.enumerated() {
                try compareBackends("conv + SiLU \(c)", try inputs(c, seed: 600 + 10 * UInt64(k)), tolerance: 1e-4) {
                    try fused(c, $0)
                }
            }
        }
        try compareAll()
        try withGPUKernels { _ in try compareAll() }
    }

    /// Forward launches of `c` without gradients, by kernel.
    func forwardLaunches(_ c: ConvolutionCase, on device: OpenCLDevice) throws -> [String: Int] {
        let tensors = try inputs(c, seed: 1).map { try Tensor($0.values, shape: $0.shape, on: device) }
        device.ledger.reset()
        _ = try GradMode.withoutGradients { try fused(c, tensors) }
        return device.ledger.rows.mapValues(\.launches)
    }

    func testTheActivationIsWrittenInTheConvolutionsLaunch() throws {
        let device = try DevicesUnderTest.opencl()
        let basic = cases[1]
        let separate = ["unary", "silu_rows"]
        if !device.runsGPUKernels {
            // conv_rows: the padded copy and the convolution, with no SiLU launch after it.
            XCTAssertEqual(try forwardLaunches(basic, on: device), ["pad_planes": 1, "conv_rows": 1])
            // Channel slices: their sum, then SiLU over it.
            let sliced = try forwardLaunches(cases[6], on: device)
            XCTAssertEqual(sliced["conv_rows"], 1)
            XCTAssertEqual(sliced["sum_batch"], 1)
            XCTAssertEqual(sliced["silu_rows"], 1)
        }
        try withGPUKernels { device in
            XCTAssertEqual(try forwardLaunches(basic, on: device), ["conv_tiled": 1])
            XCTAssertEqual(try forwardLaunches(cases[0], on: device), ["conv_tiled": 1])
            // The direct kernel (three outputs) has no epilogue: a SiLU launch follows it.
            let direct = try forwardLaunches(cases[3], on: device)
            XCTAssertEqual(direct["conv_direct"], 1)
            XCTAssertEqual(separate.compactMap { direct[$0] }.reduce(0, +), 1)
        }
    }

    /// BasicUNet's forward pass at batch 64: on the GPU kernels, five of its six SiLUs are in
    /// conv_tiled's epilogue (the last layer has one output channel and runs conv_direct). At a
    /// small batch its 7x7 and 14x14 layers split K, and their SiLU follows the sum.
    func testBasicUNetsForwardPassOnTheGPUKernels() throws {
        try withGPUKernels { device in
            let model = try BasicUNet(generator: RandomGenerator(seed: 2), device: device)
            let x = try Tensor.uniform([64, 1, 28, 28], generator: RandomGenerator(seed: 3), on: device)
            device.ledger.reset()
            _ = try GradMode.withoutGradients { try model(x) }
            XCTAssertEqual(device.ledger.rows["conv_tiled"]?.launches, 5)
            XCTAssertEqual(device.ledger.rows["conv_direct"]?.launches, 1)
            XCTAssertEqual(["unary", "silu_rows"].compactMap { device.ledger.rows[$0]?.launches }.reduce(0, +), 1)
        }
    }
}
