// The fused attention kernels (attention_fused.cl) against the CPU's GEMM + softmax twin, forward
// and backward, in both layouts, over head dims that hit every kernel bound (1..64) and the GEMM
// route above it, and lengths around the 64-row tiles.
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class FusedAttentionTests: XCTestCase {
    /// Both kernel families run here, whichever the device would pick.
    func testFusedKernelsMatchTheCPUOverOddShapes() throws {
        let gpu = try DevicesUnderTest.opencl()
        let chosen = gpu.attentionKernels
        defer { gpu.attentionKernels = chosen }
        for style in [OpenCLDevice.AttentionKernels.localTiles, .lanes] {
            gpu.attentionKernels = style
            try compareOddShapes("\(style)")
        }
    }

    func compareOddShapes(_ style: String) throws {
        let cases: [(batch: Int, lq: Int, lk: Int, d: Int)] = [
            (1, 1, 1, 1), (3, 7, 33, 8), (2, 33, 7, 3), (1, 65, 130, 16), (2, 130, 65, 33), (1, 64, 64, 64),
            (3, 1, 7, 12), (2, 7, 3, 65),
        ]
        for (n, c) in cases.enumerated() {
            for channelMajor in [false, true] {
                let qShape = channelMajor ? [c.batch, c.d, c.lq] : [c.batch, c.lq, c.d]
                let kShape = channelMajor ? [c.batch, c.d, c.lk] : [c.batch, c.lk, c.d]
                try compareBackends(
                    "\(style) attention \(n) \(c) channelMajor \(channelMajor)",
                    [
                        (try testValues(Shape.count(qShape), seed: 30 + UInt64(n), low: -2, high: 2), qShape),
                        (try testValues(Shape.count(kShape), seed: 40 + UInt64(n), low: -2, high: 2), kShape),
                        (try testValues(Shape.count(kShape), seed: 50 + UInt64(n)), kShape),
                    ], tolerance: 1e-4
                ) {
                    try Tensor.attention(
                        query: $0[0], key: $0[1], value: $0[2], scale: 1 / Float(c.d).squareRoot(),
                        channelMajor: channelMajor)
                }
            }
        }
    }

    /// Large logits: the online softmax must rescale, never overflow (scores up to ~400).
    func testLargeScoresStayFinite() throws {
        let gpu = try DevicesUnderTest.opencl()
        let chosen = gpu.attentionKernels
        defer { gpu.attentionKernels = chosen }
        for style in [OpenCLDevice.AttentionKernels.localTiles, .lanes] {
            gpu.attentionKernels = style
            try compareLargeScores()
        }
    }

    func compareLargeScores() throws {
        let q = try testValues(2 * 8 * 70, seed: 60, low: -7, high: 7)
        let k = try testValues(2 * 8 * 70, seed: 61, low: -7, high: 7)
        try compareBackends(
            "large scores", [(q, [2, 8, 70]), (k, [2, 8, 70]), (try testValues(2 * 8 * 70, seed: 62), [2, 8, 70])],
            tolerance: 1e-4
        ) {
            try Tensor.attention(query: $0[0], key: $0[1], value: $0[2], scale: 1, channelMajor: true)
        }
    }

    /// Structural: head dims up to 64 keep one float per query row (no probabilities) and take 1
    /// launch forward, 2 backward; larger heads keep the probabilities.
    func testFusedRouteSavesOneValuePerQueryAndLaunchesOnceForward() throws {
        let gpu = try DevicesUnderTest.opencl()
        let g = AttentionGeometry(batch: 4, queryLength: 49, keyLength: 49, headDim: 8, scale: 0.3, channelMajor: true)
        XCTAssertEqual(gpu.attentionSavedCount(g), 4 * 49)
        var big = g
        big.headDim = 65
        XCTAssertEqual(gpu.attentionSavedCount(big), 4 * 49 * 49)
        let q = try Tensor(testValues(4 * 8 * 49, seed: 63), shape: [4, 8, 49], on: gpu)
        q.requiresGrad = true
        gpu.ledger.reset()
        let out = try Tensor.attention(query: q, key: q, value: q, scale: 0.3, channelMajor: true)
        let suffix = gpu.attentionSuffix
        XCTAssertEqual(gpu.ledger.rows["attention_forward\(suffix)_d8"]?.launches, 1)
        XCTAssertEqual(gpu.ledger.totalLaunches, 1)
        gpu.ledger.reset()
        try out.sum().backward()
        XCTAssertEqual(gpu.ledger.rows["attention_backward_query\(suffix)_d8"]?.launches, 1)
        XCTAssertEqual(gpu.ledger.rows["attention_backward_key\(suffix)_d8"]?.launches, 1)
        XCTAssertNil(gpu.ledger.rows["transpose"])
    }
}
