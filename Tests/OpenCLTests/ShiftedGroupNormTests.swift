// Group norm with a per-(image, channel) shift added in the same op (ResnetBlock2D's time-embedding
// add before norm2, issue 9 item 3): equal to the norm of the separate broadcast sum on each
// backend, forward and every gradient, over odd shapes; the OpenCL kernels (row kernels, the
// work-group kernels GPUs run, and statistics + apply for one large group) equal the CPU's.
import CPUBackend
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class ShiftedGroupNormTests: XCTestCase {
    /// (input shape, groups, affine, silu): spatial 28, 7, 1 and 99 (tails of a float16), one and
    /// three channels per group, batch 1.
    let cases: [(shape: [Int], groups: Int, affine: Bool, silu: Bool)] = [
        ([2, 6, 4, 7], 3, true, true), ([1, 33, 7, 1], 1, true, true), ([3, 7, 1, 1], 1, true, false),
        ([1, 9, 3, 33], 3, false, true),
    ]

    func inputs(
        _ c: (shape: [Int], groups: Int, affine: Bool, silu: Bool), seed: UInt64
    ) throws -> [(
        values: [Float], shape: [Int]
    )] {
        let (n, channels) = (c.shape[0], c.shape[1])
        return [
            (try testValues(Shape.count(c.shape), seed: seed, low: -2, high: 3), c.shape),
            (try testValues(n * channels, seed: seed + 1, low: -2, high: 2), [n, channels]),
        ]
            + (c.affine
                ? [
                    (try testValues(channels, seed: seed + 2), [channels]),
                    (try testValues(channels, seed: seed + 3), [channels]),
                ]
                : [])
    }

    func shifted(_ c: (shape: [Int], groups: Int, affine: Bool, silu: Bool), _ t: [Tensor]) throws -> Tensor {
        try t[0].groupNorm(
            groups: c.groups, gamma: c.affine ? t[2] : nil, beta: c.affine ? t[3] : nil, epsilon: 1e-5, silu: c.silu,
            shift: t[1])
    }

    func testTheShiftedNormEqualsTheNormOfTheSumOnEachBackend() throws {
        try DevicesUnderTest.each { device in
            for (k, c) in cases.enumerated() {
                let values = try inputs(c, seed: 200 + 10 * UInt64(k))
                let fused = try outputAndGradients(values, on: device) { try shifted(c, $0) }
                let separate = try outputAndGradients(values, on: device) { t in
                    let (n, channels) = (c.shape[0], c.shape[1])
                    let sum = try t[0] + t[1].reshaped([n, channels] + [Int](repeating: 1, count: c.shape.count - 2))
                    return try sum.groupNorm(
                        groups: c.groups, gamma: c.affine ? t[2] : nil, beta: c.affine ? t[3] : nil, epsilon: 1e-5,
                        silu: c.silu)
                }
                for (i, (a, b)) in zip(fused, separate).enumerated() {
                    XCTAssertLessThan(relativeError(a, b, floor: 1e-6), 1e-5, "\(device.name) \(c): output/gradient \(i)")
                }
            }
        }
    }

    func testTheOpenCLKernelsMatchTheCPU() throws {
        let device = try DevicesUnderTest.opencl()
        func compareAll() throws {
            for (k, c) in cases.enumerated() {
                try compareBackends("shifted group norm \(c)", try inputs(c, seed: 300 + 10 * UInt64(k)), tolerance: 1e-4) {
                    try shifted(c, $0)
                }
            }
        }
        device.ledger.reset()
        try compareAll()
        let forward = device.runsGPUKernels ? "group_norm_forward" : "group_norm_forward_rows"
        XCTAssertEqual(device.ledger.rows[forward]?.launches, cases.count)
        // The forward is one launch: the shift is added inside the norm's kernel.
        let c = cases[0]
        let tensors = try inputs(c, seed: 1).map { try Tensor($0.values, shape: $0.shape, on: device) }
        device.ledger.reset()
        _ = try GradMode.withoutGradients { try shifted(c, tensors) }
        XCTAssertEqual(device.ledger.totalLaunches, 1)
        try withGPUKernels { device in
            device.ledger.reset()
            try compareAll()
            XCTAssertEqual(device.ledger.rows["group_norm_forward"]?.launches, cases.count)
        }
        // One large group: statistics (which add the shift) and apply (which reads the sum).
        device.ledger.reset()
        let large = (shape: [1, 2, 120, 100], groups: 1, affine: true, silu: true)
        try withGPUKernels { _ in
            try compareBackends("shifted group norm, one large group", try inputs(large, seed: 400), tolerance: 1e-4) {
                try shifted(large, $0)
            }
        }
        XCTAssertEqual(device.ledger.rows["group_norm_stats"]?.launches, 1)
        XCTAssertEqual(device.ledger.rows["group_norm_apply"]?.launches, 1)
    }
}
