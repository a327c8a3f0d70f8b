// CLBlast as the GEMM (DIFFUSE_GEMM_KERNEL=clblast, OpenCLBackend/CLBlast.swift) against the CPU
// backend: every transpose over odd sizes, batches with gaps and a shared B, alpha and beta (beta 0
// over NaN), and the products it cannot express (a bias) left to our kernels. CI installs
// libclblast1 (Tools/setup.sh); where it is missing with DIFFUSE_REQUIRE_OPENCL=1 that is a failure.
import Foundation
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class CLBlastTests: XCTestCase {
    func withCLBlast(_ body: (OpenCLDevice) throws -> Void) throws {
        let device = try DevicesUnderTest.opencl()
        if CLBlast.shared == nil {
            if ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_OPENCL"] == "1" {
                XCTFail("libclblast.so.1 is missing (apt-get install libclblast1)")
            }
            throw XCTSkip("libclblast.so.1 is not installed")
        }
        let saved = device.gemmKernel
        device.gemmKernel = .clblast
        defer { device.gemmKernel = saved }
        try body(device)
    }

    func testEveryTransposeOddSizesBatchesAlphaBeta() throws {
        try withCLBlast { device in
            device.ledger.reset()
            var products = 0
            for (m, n, k) in [(1, 1, 1), (7, 33, 3), (33, 7, 130), (130, 65, 33)] {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    for beta: Float in [0, 1] {
                        try checkGemm(
                            device,
                            GemmGeometry(
                                batch: 1, m: m, n: n, k: k, transposeA: ta, transposeB: tb, alpha: 0.75, beta: beta),
                            seed: 70)
                        // Gaps between entries and one B shared by all three.
                        try checkGemm(
                            device,
                            GemmGeometry(
                                batch: 3, m: m, n: n, k: k, transposeA: ta, transposeB: tb, strideA: m * k + 5,
                                strideB: 0, strideOut: m * n + 3, alpha: -1.5, beta: beta),
                            seed: 71)
                        products += 2
                    }
                }
            }
            XCTAssertEqual(device.ledger.rows["clblast_sgemm"]?.launches, products)
            XCTAssertNil(device.ledger.rows["gemm"])
        }
    }

    func testABiasIsLeftToOurKernels() throws {
        try withCLBlast { device in
            device.ledger.reset()
            try compareBackends(
                "linear + bias",
                [
                    (try testValues(2 * 7 * 33, seed: 72), [2, 7, 33]), (try testValues(5 * 33, seed: 73), [5, 33]),
                    (try testValues(5, seed: 74), [5]),
                ], tolerance: 1e-4
            ) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
            // The forward (a column bias) ran on gemm; the backward's plain products on CLBlast.
            XCTAssertNotNil(device.ledger.rows["gemm"])
            XCTAssertNotNil(device.ledger.rows["clblast_sgemm"])
        }
    }
}
