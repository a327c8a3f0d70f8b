// gemm_tiled (Kernels/gemm_tiled.cl), forced on the test device, against the CPU backend: odd
// sizes around its 64 x 64 blocks and 16-deep K tiles, every transpose, batches, alpha and beta
// (beta 0 over NaN, which must never be read), strided and shared batch entries, a row bias, and
// a whole UNet2DModel. PoCL runs the kernel as a GPU would (work-groups, local memory, barriers),
// so it is checked here without one; only GPUs choose it on their own.
import CPUBackend
import DiffusionModels
import DiffusionPipelines
import NN
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

extension XCTestCase {
    /// `g` on `device` with C starting as `c`; returns all of C, gaps between batch entries included.
    func gemm(on device: Device, _ g: GemmGeometry, a: [Float], b: [Float], c: [Float]) throws -> [Float] {
        func buffer(_ values: [Float]) throws -> DeviceBuffer {
            let buffer = try device.allocate(count: values.count)
            try values.withUnsafeBufferPointer { try device.upload($0, to: buffer) }
            return buffer
        }
        let out = try buffer(c)
        try device.gemm(try buffer(a), try buffer(b), out: out, g)
        var result = [Float](repeating: 0, count: c.count)
        try result.withUnsafeMutableBufferPointer { try device.download(out, to: $0) }
        return result
    }

    /// One geometry on both backends; C starts as NaN when beta is 0, else as random values.
    func checkGemm(
        _ device: OpenCLDevice, _ g: GemmGeometry, seed: UInt64, file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let aCount = g.strideA * (g.batch - 1) + g.m * g.k
        let bCount = g.strideB * (g.batch - 1) + g.k * g.n
        let cCount = g.strideOut * (g.batch - 1) + g.m * g.n
        let a = try testValues(aCount, seed: seed)
        let b = try testValues(bCount, seed: seed + 1)
        let c = g.beta == 0 ? [Float](repeating: .nan, count: cCount) : try testValues(cCount, seed: seed + 2)
        let name =
            "\(g.batch)x[\(g.m)x\(g.k)\(g.transposeA ? "ᵀ" : "")]·[\(g.k)x\(g.n)\(g.transposeB ? "ᵀ" : "")] "
            + "strides \(g.strideA),\(g.strideB),\(g.strideOut) alpha \(g.alpha) beta \(g.beta)"
        let expected = try gemm(on: CPUDevice.shared, g, a: a, b: b, c: c)
        let actual = try gemm(on: device, g, a: a, b: b, c: c)
        assertClose(actual, expected, tolerance: 1e-4, floor: 1e-6, nanMatches: true, name, file: file, line: line)
    }
}

final class TiledGemmTests: XCTestCase {
    func testOddShapesEveryTransposeBatchAlphaBeta() throws {
        let sizes = [1, 3, 7, 33, 65, 130]
        try withGPUKernels { device in
            device.ledger.reset()
            var index = 0
            for m in sizes {
                for n in sizes {
                    for k in sizes {
                        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                            // Batch 1 or 3 and beta 0 or 1 in turn: every pair meets every shape
                            // class without the full product of 3,456 runs.
                            let batch = index % 2 == 0 ? 1 : 3
                            let beta: Float = (index / 2) % 2 == 0 ? 0 : 1
                            let g = GemmGeometry(
                                batch: batch, m: m, n: n, k: k, transposeA: ta, transposeB: tb,
                                alpha: 0.75, beta: beta)
                            try checkGemm(device, g, seed: UInt64(index % 50))
                            index += 1
                        }
                    }
                }
            }
            XCTAssertNil(device.ledger.rows["gemm"], "every product ran on gemm_tiled")
            XCTAssertEqual(device.ledger.rows["gemm_tiled"]?.launches, index)
        }
    }

    func testStridedSharedAndSummedBatches() throws {
        try withGPUKernels { device in
            for (m, n, k) in [(33, 65, 7), (130, 3, 65), (7, 130, 33), (65, 65, 130)] {
                for (ta, tb) in [(false, false), (true, true), (true, false), (false, true)] {
                    for beta: Float in [0, 1] {
                        // Gaps between entries (left untouched), a B shared by every entry, and a
                        // batch summed into one C (per-entry products, then sum_batch).
                        let gapped = GemmGeometry(
                            batch: 3, m: m, n: n, k: k, transposeA: ta, transposeB: tb,
                            strideA: m * k + 5, strideB: 0, strideOut: m * n + 3,
                            alpha: -1.5, beta: beta)
                        try checkGemm(device, gapped, seed: 60)
                        let summed = GemmGeometry(
                            batch: 3, m: m, n: n, k: k, transposeA: ta, transposeB: tb,
                            strideOut: 0, alpha: 0.5, beta: beta)
                        try checkGemm(device, summed, seed: 61)
                    }
                }
            }
        }
    }

    func testRowAndColumnBiasGeneralStridesAndLongK() throws {
        // Through StridedGemm directly: a row bias (a convolution's) or a column bias (a Linear's),
        // strides that are neither row- nor column-major (both loads take the general path), and
        // K = 1,100 (69 K tiles; split along K for the vector kernel, whose sum adds the bias), on
        // both kernels.
        let device = try DevicesUnderTest.opencl()
        let saved = device.gemmKernel
        defer { device.gemmKernel = saved }
        for kernel in [GemmKernelChoice.tiled, .vector] {
            device.gemmKernel = kernel
            for (m, n, k, rsA, csA, rsB, csB) in [
                (33, 65, 7, 2, 70, 1, 14), (70, 3, 1_100, 1_100 * 2, 2, 6, 2),
                (65, 33, 130, 1, 65, 33, 1), (1, 130, 33, 33, 1, 1, 33),
            ] {
                let aCount = (m - 1) * rsA + (k - 1) * csA + 1
                let bCount = (k - 1) * rsB + (n - 1) * csB + 1
                let a = try testValues(aCount, seed: 70), b = try testValues(bCount, seed: 71)
                let start = try testValues(m * n, seed: 73)
                for (beta, perColumn) in [(Float(0), false), (0.5, false), (0, true), (0.5, true)] {
                    let bias = try testValues(perColumn ? n : m, seed: 72)
                    var expected = [Float](repeating: 0, count: m * n)
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = 0.0
                            for p in 0..<k { sum += Double(a[i * rsA + p * csA]) * Double(b[p * rsB + j * csB]) }
                            expected[i * n + j] = Float(1.25 * sum) + bias[perColumn ? j : i] + beta * start[i * n + j]
                        }
                    }
                    let tensors = try [a, b, bias, beta == 0 ? [Float](repeating: .nan, count: m * n) : start]
                        .map { try Tensor($0, shape: [$0.count], on: device) }
                    var s = StridedGemm(m: m, n: n, k: k, rsA: rsA, csA: csA, rsB: rsB, csB: csB)
                    s.alpha = 1.25
                    s.beta = beta
                    if perColumn {
                        s.columnBias = device.memory(tensors[2].buffer)
                    } else {
                        s.rowBias = device.memory(tensors[2].buffer)
                    }
                    try device.enqueueGemm(
                        device.memory(tensors[0].buffer), device.memory(tensors[1].buffer),
                        device.memory(tensors[3].buffer), s)
                    assertClose(
                        try tensors[3].toArray(), expected, tolerance: 1e-4, floor: 1e-6, nanMatches: true,
                        "\(kernel) \(m)x\(n)x\(k) strides \(rsA),\(csA),\(rsB),\(csB) beta \(beta) column bias \(perColumn)")
                }
            }
        }
    }

    func testConvolutionsForwardAndBackward() throws {
        // Convolutions drive the kernel through every GEMM shape they use: im2col products with a
        // bias, W^T dY for the input gradient, and the batch-summed weight gradient.
        try withGPUKernels { device in
            device.ledger.reset()
            for (n, c) in [([2, 33, 7, 9], [65, 33, 3, 3]), ([3, 3, 9, 7], [33, 3, 5, 5]), ([2, 7, 5, 3], [9, 7, 1, 1])]
                .enumerated()
            {
                try compareBackends(
                    "tiled conv \(n)",
                    [
                        (testValues(Shape.count(c.0), seed: 1), c.0),
                        (testValues(Shape.count(c.1), seed: 2), c.1),
                        (testValues(c.1[0], seed: 3), [c.1[0]]),
                    ], tolerance: 1e-4
                ) {
                    try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 1, padding: c.1[2] / 2)
                }
            }
            XCTAssertNil(device.ledger.rows["gemm"])
            XCTAssertGreaterThan(device.ledger.rows["gemm_tiled"]?.launches ?? 0, 0)
        }
    }

    func testSmallUNetWithTheTiledKernelAgreesWithTheCPU() throws {
        // UNet2DOnOpenCLTests' model, every GEMM of forward and backward on gemm_tiled.
        try withGPUKernels { device in
            let config = UNet2DOnOpenCLTests.smallConfig
            device.ledger.reset()
            var results: [[Float]] = []
            for d in [CPUDevice.shared as Device, device] {
                let model = try UNet2DModel(config: config, generator: RandomGenerator(seed: 3), device: d)
                let x = try Tensor.normal([2, 2, 8, 8], generator: RandomGenerator(seed: 4), on: d)
                let out = try model(x, timesteps: [5, 901])
                try Tensor.mseLoss(out, Tensor.zeros(out.shape, on: d)).backward()
                results.append(try out.toArray() + model.parameters.flatMap { try $0.grad!.toArray() })
            }
            XCTAssertLessThan(relativeError(results[1], results[0], floor: 1e-6), 1e-4)
            XCTAssertNil(device.ledger.rows["gemm"])
            XCTAssertGreaterThan(device.ledger.rows["gemm_tiled"]?.launches ?? 0, 0)
        }
    }

    func testTheKernelChoice() throws {
        XCTAssertEqual(try GemmKernelChoice(environment: nil), .automatic)
        XCTAssertEqual(try GemmKernelChoice(environment: ""), .automatic)
        XCTAssertEqual(try GemmKernelChoice(environment: "Tiled"), .tiled)
        XCTAssertEqual(try GemmKernelChoice(environment: "vector"), .vector)
        XCTAssertThrowsError(try GemmKernelChoice(environment: "tiles"))
        let device = try DevicesUnderTest.opencl()
        let saved = device.gemmKernel
        defer { device.gemmKernel = saved }
        device.gemmKernel = .automatic
        let big = StridedGemm(m: 64, n: 64, k: 64, rsA: 64, csA: 1, rsB: 64, csB: 1)
        let thin = StridedGemm(m: 16, n: 1024, k: 64, rsA: 64, csA: 1, rsB: 1024, csB: 1)
        // Automatically only a GPU takes the tiled kernel, and only for products that fill its blocks.
        XCTAssertEqual(device.usesTiledGemm(big), device.info.isGPU)
        XCTAssertFalse(device.usesTiledGemm(thin))
        device.gemmKernel = .vector
        XCTAssertFalse(device.usesTiledGemm(big))
        device.gemmKernel = .tiled
        XCTAssertTrue(device.usesTiledGemm(thin))
    }
}
