// Every OpenCL kernel family against the CPU backend over odd shapes (1, 3, 7, 28, 33), batch 1,
// forward and backward. Tolerances: 1e-5 for exact-order ops, 1e-4 where sums are reordered.
import CPUBackend
import NN
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class KernelTests: XCTestCase {
    func testConvolutionIm2colDirectAndPointwise() throws {
        let cases: [(x: [Int], w: [Int], stride: Int, padding: Int)] = [
            ([1, 1, 28, 28], [7, 1, 5, 5], 1, 2),  // im2col + gemm, batch 1
            ([3, 3, 7, 7], [33, 3, 5, 5], 1, 2),  // tile remainders in M and N
            ([2, 33, 7, 3], [5, 33, 3, 3], 2, 1),  // strided, odd sizes
            ([2, 7, 9, 9], [1, 7, 5, 5], 1, 2),  // direct path (one output channel)
            ([3, 7, 5, 3], [3, 7, 3, 3], 1, 0),  // direct path without padding
            ([2, 3, 5, 7], [9, 3, 1, 1], 1, 0),  // pointwise
        ]
        for (n, c) in cases.enumerated() {
            try compareBackends(
                "conv \(n)",
                [
                    (testValues(Shape.count(c.x), seed: 1), c.x),
                    (testValues(Shape.count(c.w), seed: 2), c.w),
                    (testValues(c.w[0], seed: 3), [c.w[0]]),
                ], tolerance: 1e-4
            ) {
                try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: c.stride, padding: c.padding)
            }
        }
    }

    func testGemmAllTransposesAndBatchSums() throws {
        for (m, n, k) in [(1, 1, 1), (3, 7, 5), (33, 28, 7), (9, 17, 33)] {
            let a = try testValues(2 * m * k, seed: 4)
            let b = try testValues(2 * k * n, seed: 5)
            try compareBackends("matmul \(m)x\(n)x\(k)", [(a, [2, m, k]), (b, [2, k, n])], tolerance: 1e-4) {
                try $0[0].matmul($0[1])
            }
            try compareBackends("matmul T \(m)x\(n)x\(k)", [(a, [2, k, m]), (b, [2, n, k])], tolerance: 1e-4) {
                try $0[0].matmul($0[1], transposeSelf: true, transposeOther: true)
            }
            try compareBackends("linear \(m)x\(n)x\(k)", [(a, [2, m, k]), (Array(b[0..<(k * n)]), [n, k])], tolerance: 1e-4) {
                try $0[0].linear(weight: $0[1], bias: nil)
            }
            try compareBackends(
                "linear + bias \(m)x\(n)x\(k)",
                [
                    (a, [2, m, k]), (Array(b[0..<(k * n)]), [n, k]),
                    (try testValues(n, seed: 6), [n]),
                ], tolerance: 1e-4
            ) {
                try $0[0].linear(weight: $0[1], bias: $0[2])
            }
        }
    }

    func testElementwiseBroadcastAndReductions() throws {
        let shapes: [([Int], [Int])] = [
            ([3, 7, 5], [3, 7, 5]), ([2, 33, 3], [33, 1]), ([1, 3, 28], [1]), ([7, 1, 3], [5, 1]),
        ]
        for (a, b) in shapes {
            let av = try testValues(Shape.count(a), seed: 6)
            let bv = try testValues(Shape.count(b), seed: 7).map { $0 + ($0 >= 0 ? 1 : -1) }
            for op in BinaryOp.allCases {
                try compareBackends("\(op) \(a) \(b)", [(av, a), (bv, b)]) { try $0[0].binary(op, $0[1]) }
            }
        }
        for op in UnaryOp.allCases {
            let v = try testValues(33 * 7, seed: 8, low: op == .sqrt ? 0.1 : -3, high: 3)
            try compareBackends("\(op)", [(v, [33, 7])]) { try $0[0].unary(op) }
        }
        let v = try testValues(3 * 7 * 33, seed: 9)
        try compareBackends("sum", [(v, [3, 7, 33])], tolerance: 1e-5) { try $0[0].sum() }
        try compareBackends("sum to [7,1]", [(v, [3, 7, 33])], tolerance: 1e-5) { try $0[0].summed(toShape: [7, 1]) }
        let big = try testValues(300_001, seed: 10)
        try compareBackends("large sum", [(big, [300_001])], tolerance: 1e-5) { try $0[0].sum() }
        try compareBackends("mse", [(v, [3, 7, 33]), (try testValues(v.count, seed: 11), [3, 7, 33])]) {
            try Tensor.mseLoss($0[0], $0[1])
        }
        try compareBackends("concat, slice, transpose, affine", [(v, [3, 7, 33])]) { t in
            let joined = try Tensor.concatenate([t[0], t[0].slice(axis: 1, start: 2, length: 3)], axis: 1)
            return try joined.transposedLastTwo() * 1.5 + 0.25
        }
    }

    func testGroupNormSoftmaxAttention() throws {
        let x = try testValues(2 * 6 * 28, seed: 12, low: -2, high: 3)
        try compareBackends(
            "group norm", [(x, [2, 6, 4, 7]), (try testValues(6, seed: 13), [6]), (try testValues(6, seed: 14), [6])],
            tolerance: 1e-4
        ) { try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], epsilon: 1e-5) }
        try compareBackends("group norm no affine, batch 1", [(try testValues(33 * 7, seed: 15), [1, 33, 7])], tolerance: 1e-4) {
            try $0[0].groupNorm(groups: 1, gamma: nil, beta: nil, epsilon: 1e-6)
        }
        // SiLU fused: odd channel counts, one group, one pixel, batch 1.
        for (n, c) in [([2, 6, 4, 7], 3), ([1, 33, 7, 1], 1), ([3, 7, 1, 1], 1), ([1, 9, 3, 33], 3)].enumerated() {
            let channels = c.0[1]
            try compareBackends(
                "group norm + silu \(c.0)",
                [
                    (try testValues(Shape.count(c.0), seed: 70 + UInt64(n), low: -2, high: 3), c.0),
                    (try testValues(channels, seed: 80 + UInt64(n)), [channels]),
                    (try testValues(channels, seed: 90 + UInt64(n)), [channels]),
                ], tolerance: 1e-4
            ) {
                try $0[0].groupNorm(groups: c.1, gamma: $0[1], beta: $0[2], epsilon: 1e-5, silu: true)
            }
        }
        // One large group (24,000 values): statistics and output as two launches; small groups
        // take one (group_norm_forward).
        let gpu = try DevicesUnderTest.opencl()
        gpu.ledger.reset()
        try compareBackends(
            "group norm + silu, one large group",
            [
                (try testValues(2 * 120 * 100, seed: 98, low: -2, high: 3), [1, 2, 120, 100]),
                (try testValues(2, seed: 97), [2]), (try testValues(2, seed: 96), [2]),
            ], tolerance: 1e-4
        ) {
            try $0[0].groupNorm(groups: 1, gamma: $0[1], beta: $0[2], epsilon: 1e-5, silu: true)
        }
        XCTAssertEqual(gpu.ledger.rows["group_norm_stats"]?.launches, 1)
        XCTAssertEqual(gpu.ledger.rows["group_norm_apply"]?.launches, 1)
        XCTAssertNil(gpu.ledger.rows["group_norm_forward"])
        // Its backward passes over the group twice (2 x 188 per work-item): one launch.
        XCTAssertEqual(gpu.ledger.rows["group_norm_backward"]?.launches, 1)
        // Eight channels of 12,000 in one group: 3,008 iterations each for 64 work-items, so the
        // backward takes the per-plane sums and the per-element input gradient as two launches.
        gpu.ledger.reset()
        try compareBackends(
            "group norm + silu, one larger group",
            [
                (try testValues(8 * 120 * 100, seed: 95, low: -2, high: 3), [1, 8, 120, 100]),
                (try testValues(8, seed: 94), [8]), (try testValues(8, seed: 93), [8]),
            ], tolerance: 1e-4
        ) {
            try $0[0].groupNorm(groups: 1, gamma: $0[1], beta: $0[2], epsilon: 1e-5, silu: true)
        }
        XCTAssertEqual(gpu.ledger.rows["group_norm_backward_planes"]?.launches, 1)
        XCTAssertEqual(gpu.ledger.rows["group_norm_backward_input"]?.launches, 1)
        XCTAssertNil(gpu.ledger.rows["group_norm_backward"])
        try compareBackends(
            "group norm + silu, no affine", [(try testValues(2 * 6 * 5, seed: 99), [2, 6, 5])],
            tolerance: 1e-4
        ) {
            try $0[0].groupNorm(groups: 2, gamma: nil, beta: nil, epsilon: 1e-5, silu: true)
        }
        try compareBackends("softmax", [(try testValues(7 * 33, seed: 16, low: -4, high: 4), [7, 33])]) { try $0[0].softmax() }
        try compareBackends(
            "attention",
            [
                (try testValues(3 * 7 * 8, seed: 17), [3, 7, 8]),
                (try testValues(3 * 33 * 8, seed: 18), [3, 33, 8]),
                (try testValues(3 * 33 * 8, seed: 19), [3, 33, 8]),
            ], tolerance: 1e-4
        ) {
            try Tensor.attention(query: $0[0], key: $0[1], value: $0[2], scale: 0.35)
        }
    }

    func testPoolingAndUpsampling() throws {
        let gpu = try DevicesUnderTest.opencl()
        let order = RandomGenerator(seed: 20).permutation(3 * 28 * 28).map { Float($0) / 100 }
        gpu.ledger.reset()
        try compareBackends("max pool 2", [(order, [1, 3, 28, 28])]) { try $0[0].maxPool2d(kernel: 2) }
        // Ties (values rounded to a few levels): the gradient goes to each window's first maximum.
        try compareBackends("max pool 3 with ties, batch 1", [(Array(order[0..<99]).map { ($0 / 3).rounded() }, [1, 1, 33, 3])]) {
            try $0[0].maxPool2d(kernel: 3)
        }
        XCTAssertEqual(gpu.ledger.rows["max_pool_backward_windows"]?.launches, 2, "windows tiling the plane")
        try compareBackends("max pool 3 stride 2 (overlapping)", [(Array(order[0..<(2 * 7 * 7)]), [1, 2, 7, 7])]) {
            try $0[0].maxPool2d(kernel: 3, stride: 2)
        }
        try compareBackends("max pool 2 of an odd side", [(Array(order[0..<(3 * 7 * 5)]), [3, 1, 7, 5])]) {
            try $0[0].maxPool2d(kernel: 2)
        }
        XCTAssertEqual(gpu.ledger.rows["max_pool_backward"]?.launches, 2, "overlapping windows, odd sides")
        try compareBackends("upsample", [(try testValues(2 * 3 * 7 * 5, seed: 21), [2, 3, 7, 5])]) {
            try $0[0].upsampleNearest(factor: 2)
        }
    }

    func testRandomNumbersMatchTheCPUStream() throws {
        let gpu = try DevicesUnderTest.opencl()
        for count in [1, 3, 7, 33, 1001] {
            let cpuUniform = try Tensor.uniform([count], generator: RandomGenerator(seed: 5, offset: 9), on: CPUDevice.shared)
            let gpuUniform = try Tensor.uniform([count], generator: RandomGenerator(seed: 5, offset: 9), on: gpu)
            XCTAssertEqual(try gpuUniform.toArray(), try cpuUniform.toArray(), "uniform \(count)")
            let cpuMask = try Tensor.ones([count], on: CPUDevice.shared).dropout(
                probability: 0.4, generator: RandomGenerator(seed: 7))
            let gpuMask = try Tensor.ones([count], on: gpu).dropout(probability: 0.4, generator: RandomGenerator(seed: 7))
            XCTAssertEqual(try gpuMask.toArray(), try cpuMask.toArray(), "dropout mask \(count)")
            let cpuNormal = try Tensor.normal([count], generator: RandomGenerator(seed: 6), on: CPUDevice.shared)
            let gpuNormal = try Tensor.normal([count], generator: RandomGenerator(seed: 6), on: gpu)
            XCTAssertLessThan(
                relativeError(try gpuNormal.toArray(), try cpuNormal.toArray(), floor: 1e-6), 1e-5, "normal \(count)")
            // A draw that starts inside a block (one rank's slice of a batch's draw).
            for shift in 1...3 {
                let key = RandomKey(seed: 5, offset: 9, shift: shift)
                let cpuShifted = try Tensor.normal([count], key: key, on: CPUDevice.shared).toArray()
                let gpuShifted = try Tensor.normal([count], key: key, on: gpu).toArray()
                XCTAssertLessThan(relativeError(gpuShifted, cpuShifted, floor: 1e-6), 1e-5, "normal \(count) shift \(shift)")
                let shard = ImageShard(first: shift, count: count, total: count + 4)
                let cpuMaskShard = try RandomGenerator(seed: 7).sharded(shard) {
                    try Tensor.ones([count], on: CPUDevice.shared).dropout(probability: 0.4, generator: $0)
                }
                let gpuMaskShard = try RandomGenerator(seed: 7).sharded(shard) {
                    try Tensor.ones([count], on: gpu).dropout(probability: 0.4, generator: $0)
                }
                XCTAssertEqual(try gpuMaskShard.toArray(), try cpuMaskShard.toArray(), "dropout mask \(count) shard \(shift)")
                let cpuUniformShard = try RandomGenerator(seed: 5).sharded(shard) {
                    try Tensor.uniform([count], generator: $0, on: CPUDevice.shared)
                }
                let gpuUniformShard = try RandomGenerator(seed: 5).sharded(shard) {
                    try Tensor.uniform([count], generator: $0, on: gpu)
                }
                XCTAssertEqual(try gpuUniformShard.toArray(), try cpuUniformShard.toArray(), "uniform \(count) shard \(shift)")
            }
        }
    }

    func testSchedulerStepMatchesTheCPU() throws {
        let gpu = try DevicesUnderTest.opencl()
        let geometries = [
            SchedulerStepGeometry(
                count: 0, prediction: .epsilon, sqrtAlphaProduct: 0.3, sqrtBetaProduct: 0.95,
                clipRange: 1, recomputeEpsilon: false, x0Coefficient: 0.2, sampleCoefficient: 0.9,
                epsilonCoefficient: 0, noiseCoefficient: 0.1),
            SchedulerStepGeometry(
                count: 0, prediction: .sample, sqrtAlphaProduct: 0.7, sqrtBetaProduct: 0.71,
                clipRange: nil, recomputeEpsilon: true, x0Coefficient: 0.8, sampleCoefficient: 0,
                epsilonCoefficient: 0.5, noiseCoefficient: 0),
            SchedulerStepGeometry(
                count: 0, prediction: .velocity, sqrtAlphaProduct: 0.5, sqrtBetaProduct: 0.86,
                clipRange: 0.5, recomputeEpsilon: true, x0Coefficient: 0.6, sampleCoefficient: 0,
                epsilonCoefficient: 0.7, noiseCoefficient: 0.2),
        ]
        for (n, g) in geometries.enumerated() {
            var results: [[Float]] = []
            for device in [CPUDevice.shared as Device, gpu] {
                let sample = try Tensor(try testValues(3 * 33, seed: 30, low: -2, high: 2), shape: [3, 33], on: device)
                let output = try Tensor(try testValues(3 * 33, seed: 31), shape: [3, 33], on: device)
                let noise = try Tensor(try testValues(3 * 33, seed: 32), shape: [3, 33], on: device)
                let step = try Tensor.schedulerStep(
                    sample: sample, modelOutput: output,
                    noise: g.noiseCoefficient == 0 ? nil : noise, g)
                results.append(try step.previous.toArray() + step.original.toArray())
            }
            XCTAssertLessThan(relativeError(results[1], results[0], floor: 1e-6), 1e-6, "scheduler step \(n)")
        }
    }

    func testAdamUpdateMatchesTheCPU() throws {
        let gpu = try DevicesUnderTest.opencl()
        var finals: [[Float]] = []
        for device in [CPUDevice.shared as Device, gpu] {
            let p = try Tensor(try testValues(33, seed: 22), shape: [33], on: device)
            p.requiresGrad = true
            let optimizer = try NNAdam.make([p])
            for step in 0..<3 {
                p.grad = try Tensor(try testValues(33, seed: 23 + UInt64(step)), shape: [33], on: device)
                try optimizer.update()
            }
            finals.append(try p.toArray())
        }
        XCTAssertLessThan(relativeError(finals[1], finals[0], floor: 1e-6), 1e-6)
    }

    func testAdamOverManyTensorsInMultiTensorLaunchesMatchesTheCPU() throws {
        // 27 tensors of odd sizes (one without a gradient): two launches, the second with unused
        // slots, must move every tensor as the CPU does and leave the gradless one alone; on both
        // kernels: adam_update24 (a float per work-item, GPUs) and adam_update24_rows (16 floats per
        // work-item, CPU devices; the chunks inside one tensor of 130 or 1,000 floats take its vector
        // pass, those across tensors its element loop).
        let gpu = try DevicesUnderTest.opencl()
        let saved = gpu.prefersVectorItems
        defer { gpu.prefersVectorItems = saved }
        let sizes = [1, 3, 7, 33, 1, 64, 5, 9, 2, 17, 3, 8, 1, 130, 4, 6, 11, 2, 3, 65, 1, 7, 9, 33, 2, 1000, 3]
        for (vector, kernel) in [(false, "adam_update24"), (true, "adam_update24_rows")] {
            gpu.prefersVectorItems = vector
            var finals: [[[Float]]] = []
            for device in [CPUDevice.shared as Device, gpu] {
                let parameters = try sizes.enumerated().map { i, n -> Tensor in
                    let p = try Tensor(try testValues(n, seed: 40 + UInt64(i)), shape: [n], on: device)
                    p.requiresGrad = true
                    return p
                }
                let optimizer = try NNAdam.make(parameters)
                for step in 0..<3 {
                    for (i, p) in parameters.enumerated() where i != 4 {
                        p.grad = try Tensor(
                            try testValues(p.count, seed: 90 + UInt64(10 * step + i)), shape: p.shape, on: device)
                    }
                    gpu.ledger.reset()
                    try optimizer.update()
                    if device === gpu as AnyObject {
                        XCTAssertEqual(gpu.ledger.rows[kernel]?.launches, 2, kernel)
                        XCTAssertEqual(gpu.ledger.totalLaunches, 2, kernel)
                    }
                }
                finals.append(try parameters.map { try $0.toArray() })
            }
            for (i, (cpu, opencl)) in zip(finals[0], finals[1]).enumerated() {
                XCTAssertLessThan(relativeError(opencl, cpu, floor: 1e-6), 1e-6, "\(kernel): tensor \(i) of \(sizes[i])")
            }
            XCTAssertEqual(finals[1][4], try testValues(1, seed: 44), "\(kernel): a tensor without a gradient moved")
        }
    }

    func testMovingAverageOverManyTensorsInMultiTensorLaunchesMatchesTheCPU() throws {
        // 40 tensors of odd sizes: two launches, the second with unused slots, on both kernels
        // (ema_update32, a float per work-item; ema_update32_rows, 16, for CPU devices).
        let gpu = try DevicesUnderTest.opencl()
        let saved = gpu.prefersVectorItems
        defer { gpu.prefersVectorItems = saved }
        let sizes = (0..<40).map { [1, 3, 7, 33, 64, 5, 130, 2][$0 % 8] + $0 }
        for (vector, kernel) in [(false, "ema_update32"), (true, "ema_update32_rows")] {
            gpu.prefersVectorItems = vector
            var finals: [[[Float]]] = []
            for device in [CPUDevice.shared as Device, gpu] {
                let parameters = try sizes.enumerated().map { i, n in
                    try Tensor(try testValues(n, seed: 300 + UInt64(i)), shape: [n], on: device)
                }
                let ema = try ExponentialMovingAverage(parameters: parameters, maxDecay: 0.9)
                for step in 0..<4 {
                    for (i, p) in parameters.enumerated() {
                        try p.assign(try testValues(p.count, seed: 500 + UInt64(50 * step + i)))
                    }
                    gpu.ledger.reset()
                    try ema.step(parameters)
                    if device === gpu as AnyObject {
                        XCTAssertEqual(gpu.ledger.rows[kernel]?.launches, 2, kernel)
                        XCTAssertEqual(gpu.ledger.totalLaunches, 2, "\(kernel): nothing else launched")
                    }
                }
                finals.append(try ema.shadow.map { try $0.toArray() })
            }
            for (i, (cpu, opencl)) in zip(finals[0], finals[1]).enumerated() {
                XCTAssertLessThan(relativeError(opencl, cpu, floor: 1e-6), 1e-6, "\(kernel): tensor \(i) of \(sizes[i])")
            }
        }
    }

    func testGradientClippingInFewLaunchesMatchesTheCPU() throws {
        // 40 gradients, some longer than a 4,096-element chunk, the last two sharing one buffer (as
        // an addition hands one gradient to both its inputs): it must count twice in the norm and
        // be scaled once. On both kernel sets (a float per work-item; 16 for CPU devices).
        let gpu = try DevicesUnderTest.opencl()
        let saved = gpu.prefersVectorItems
        defer { gpu.prefersVectorItems = saved }
        let sizes = (0..<40).map { [1, 3, 7, 33, 5000, 5, 130, 9000][$0 % 8] + $0 }
        for (vector, suffix) in [(false, ""), (true, "_rows")] {
            gpu.prefersVectorItems = vector
            var results: [(grads: [[Float]], total: Float)] = []
            for device in [CPUDevice.shared as Device, gpu] {
                let parameters = try sizes.map { try Tensor.zeros([$0], on: device) }
                for (i, p) in parameters.enumerated() {
                    p.grad = try Tensor(
                        try testValues(p.count, seed: 700 + UInt64(i), low: -0.2, high: 0.2), shape: p.shape, on: device)
                }
                let shared = try Tensor.zeros([sizes[38]], on: device)
                shared.grad = parameters[38].grad
                gpu.ledger.reset()
                let total = try XCTUnwrap(GradientClipping.clipNorm(parameters + [shared], maxNorm: 1))
                if device === gpu as AnyObject {
                    XCTAssertEqual(gpu.ledger.rows["sum_squares32" + suffix]?.launches, 2, suffix)
                    XCTAssertEqual(gpu.ledger.rows["clip_factor"]?.launches, 1, suffix)
                    XCTAssertEqual(gpu.ledger.rows["scale32" + suffix]?.launches, 2, suffix)
                }
                results.append((try parameters.map { try $0.grad!.toArray() }, try total.item()))
            }
            XCTAssertGreaterThan(results[0].total, 1, "the gradients are clipped")
            XCTAssertEqual(results[1].total, results[0].total, accuracy: 1e-5 * results[0].total, suffix)
            for (i, (cpu, opencl)) in zip(results[0].grads, results[1].grads).enumerated() {
                XCTAssertLessThan(relativeError(opencl, cpu, floor: 1e-6), 1e-5, "\(suffix) gradient \(i) of \(sizes[i])")
            }
        }
    }
}

extension RandomGenerator {
    /// `body` on this generator with its draws sharded.
    func sharded<T>(_ shard: ImageShard, _ body: (RandomGenerator) throws -> T) rethrows -> T {
        try withShard(shard) { try body(self) }
    }
}
