// Every differentiable op's gradients against central finite differences, over odd shapes.
import Tensor
import XCTest

final class GradientTests: XCTestCase {
    func testConvolutionGradients() throws {
        // 5x5 padding 2 (BasicUNet) through im2col and through the direct path (<= 4 outputs),
        // stride 2 padding 1 on odd sizes, pointwise, and a batch large enough that several small
        // images share one GEMM.
        let cases: [(x: [Int], w: [Int], stride: Int, padding: Int)] = [
            ([2, 2, 6, 5], [5, 2, 5, 5], 1, 2),
            ([2, 2, 6, 5], [3, 2, 5, 5], 1, 2),
            ([1, 3, 7, 5], [2, 3, 3, 3], 2, 1),
            ([2, 3, 3, 4], [4, 3, 1, 1], 1, 0),
            ([5, 2, 3, 3], [6, 2, 3, 3], 1, 1),
            ([3, 2, 4, 3], [1, 2, 3, 3], 1, 0),
        ]
        for (n, c) in cases.enumerated() {
            let xCount = Shape.count(c.x)
            let wCount = Shape.count(c.w)
            try checkGradients(
                [
                    (randomValues(xCount, seed: 1), c.x), (randomValues(wCount, seed: 2), c.w),
                    (randomValues(c.w[0], seed: 3), [c.w[0]]),
                ], "conv case \(n)"
            ) { t in
                try t[0].conv2d(weight: t[1], bias: t[2], stride: c.stride, padding: c.padding)
            }
        }
    }

    func testUnaryGradients() throws {
        let values = randomValues(23, seed: 4, low: -2, high: 2)
        for op in UnaryOp.allCases {
            var input = values
            if op == .sqrt { input = values.map { abs($0) + 0.5 } }
            if op == .relu { input = spacedValues(23, seed: 4) }  // stay away from the kink
            try checkGradients([(input, [23])], epsilon: 1e-2, "\(op)") { try $0[0].unary(op) }
        }
    }

    func testBroadcastingArithmeticGradients() throws {
        let shapes: [([Int], [Int])] = [
            ([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [3, 1]), ([3, 1, 2], [4, 1]),
            ([2, 3], [1]), ([5], []),
        ]
        for (a, b) in shapes {
            let av = randomValues(Shape.count(a), seed: 5)
            let bv = randomValues(Shape.count(b), seed: 6).map { $0 + ($0 >= 0 ? 1 : -1) }  // no division by ~0
            try checkGradients([(av, a), (bv, b)], "add \(a) \(b)") { try $0[0] + $0[1] }
            try checkGradients([(av, a), (bv, b)], "sub \(a) \(b)") { try $0[0] - $0[1] }
            try checkGradients([(av, a), (bv, b)], "mul \(a) \(b)") { try $0[0] * $0[1] }
            try checkGradients([(av, a), (bv, b)], epsilon: 1e-3, "div \(a) \(b)") { try $0[0] / $0[1] }
        }
        try checkGradients([(randomValues(6, seed: 7), [2, 3])], "affine") { try 3 - $0[0] * 2.5 + 1 }
        try checkGradients([(randomValues(6, seed: 7), [2, 3])], "x*x reuses one input") { try $0[0] * $0[0] }
    }

    func testReductionAndShapeGradients() throws {
        let v = randomValues(24, seed: 8)
        try checkGradients([(v, [2, 3, 4])], "sum") { try $0[0].sum() }
        try checkGradients([(v, [2, 3, 4])], "mean") { try $0[0].mean() }
        try checkGradients([(v, [2, 3, 4])], "sum to [3,1]") { try $0[0].summed(toShape: [3, 1]) }
        try checkGradients([(v, [2, 3, 4])], "reshape") { try $0[0].reshaped([4, -1]) }
        try checkGradients([(v, [2, 3, 4])], "transpose") { try $0[0].transposedLastTwo() }
        try checkGradients([(v, [2, 3, 4])], "slice") { try $0[0].slice(axis: 1, start: 1, length: 2) }
        try checkGradients([(v, [2, 3, 4])], "chunk") { t in
            let parts = try t[0].chunked(2, axis: 2)
            return try parts[0] * parts[1]
        }
        try checkGradients([(v, [2, 3, 4]), (randomValues(8, seed: 9), [2, 1, 4])], "concatenate") {
            try Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 1)
        }
    }

    func testMatmulGradients() throws {
        let a = randomValues(2 * 3 * 4, seed: 10)
        let b = randomValues(2 * 4 * 5, seed: 11)
        try checkGradients([(Array(a[0..<12]), [3, 4]), (Array(b[0..<20]), [4, 5])], "2d") { try $0[0].matmul($0[1]) }
        try checkGradients([(a, [2, 3, 4]), (b, [2, 4, 5])], "batched") { try $0[0].matmul($0[1]) }
        try checkGradients([(a, [2, 3, 4]), (Array(b[0..<20]), [5, 4])], "shared, transposed") {
            try $0[0].matmul($0[1], transposeOther: true)
        }
        try checkGradients([(a, [2, 4, 3]), (b, [2, 4, 5])], "transposed self") {
            try $0[0].matmul($0[1], transposeSelf: true)
        }
        try checkGradients([(a, [2, 4, 3]), (b, [2, 5, 4])], "both transposed") {
            try $0[0].matmul($0[1], transposeSelf: true, transposeOther: true)
        }
        try checkGradients(
            [(a, [2, 3, 4]), (randomValues(20, seed: 12), [5, 4]), (randomValues(5, seed: 13), [5])],
            "linear"
        ) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
    }

    func testNormalisationAndAttentionGradients() throws {
        let x = randomValues(2 * 6 * 3 * 5, seed: 14, low: -2, high: 3)
        try checkGradients(
            [(x, [2, 6, 3, 5]), (randomValues(6, seed: 15), [6]), (randomValues(6, seed: 16), [6])],
            epsilon: 3e-3, "group norm"
        ) {
            try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], epsilon: 1e-5)
        }
        try checkGradients([(x, [2, 6, 15])], epsilon: 3e-3, "group norm without affine") {
            try $0[0].groupNorm(groups: 2, gamma: nil, beta: nil, epsilon: 1e-5)
        }
        try checkGradients(
            [(x, [2, 6, 3, 5]), (randomValues(6, seed: 26), [6]), (randomValues(6, seed: 27), [6])],
            epsilon: 3e-3, "group norm + silu"
        ) {
            try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], epsilon: 1e-5, silu: true)
        }
        try checkGradients([(x, [2, 6, 15])], epsilon: 3e-3, "group norm + silu without affine") {
            try $0[0].groupNorm(groups: 2, gamma: nil, beta: nil, epsilon: 1e-5, silu: true)
        }
        try checkGradients([(randomValues(21, seed: 17, low: -3, high: 3), [3, 7])], "softmax") { try $0[0].softmax() }
        try checkGradients(
            [
                (randomValues(2 * 5 * 4, seed: 18), [2, 5, 4]), (randomValues(2 * 7 * 4, seed: 19), [2, 7, 4]),
                (randomValues(2 * 7 * 4, seed: 20), [2, 7, 4]),
            ], "attention"
        ) {
            try Tensor.attention(query: $0[0], key: $0[1], value: $0[2], scale: 0.5)
        }
        try checkGradients(
            [
                (randomValues(2 * 4 * 5, seed: 23), [2, 4, 5]), (randomValues(2 * 4 * 7, seed: 24), [2, 4, 7]),
                (randomValues(2 * 4 * 7, seed: 25), [2, 4, 7]),
            ], "channel-major attention"
        ) {
            try Tensor.attention(query: $0[0], key: $0[1], value: $0[2], scale: 0.5, channelMajor: true)
        }
    }

    func testPoolingUpsamplingAndLossGradients() throws {
        try checkGradients([(spacedValues(2 * 3 * 6 * 5, seed: 21), [2, 3, 6, 5])], "max pool 2") {
            try $0[0].maxPool2d(kernel: 2)
        }
        try checkGradients([(spacedValues(1 * 2 * 7 * 7, seed: 22), [1, 2, 7, 7])], "max pool 3 stride 2") {
            try $0[0].maxPool2d(kernel: 3, stride: 2)
        }
        try checkGradients([(randomValues(2 * 3 * 3 * 5, seed: 23), [2, 3, 3, 5])], "upsample") {
            try $0[0].upsampleNearest(factor: 2)
        }
        try checkGradients([(randomValues(2 * 3 * 6 * 4, seed: 26), [2, 3, 6, 4])], "average pool 2x2") {
            try $0[0].averagePool2x2()
        }
        try checkGradients([(randomValues(21, seed: 24), [3, 7]), (randomValues(21, seed: 25), [3, 7])], "mse") {
            try Tensor.mseLoss($0[0], $0[1])
        }
    }
}
