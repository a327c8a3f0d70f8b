// UNet building blocks against diffusers (Tests/Fixtures/unet_blocks.safetensors,
// Tools/reference/unet_blocks.py): timestep embeddings, TimestepEmbedding, ResnetBlock2D.
import CPUBackend
import DataIO
import DiffusionModels
import DiffusionPipelines
import NN
import Tensor
import TestSupport
import XCTest

final class UNetBlockTests: XCTestCase {
    func testSinusoidalEmbeddingMatchesDiffusers() throws {
        let f = try Fixtures.load("unet_blocks.safetensors")
        let cases: [(String, Int, Bool, Float)] = [
            ("even_flip_shift0", 10, true, 0), ("even_noflip_shift1", 10, false, 1),
            ("odd_flip_shift1", 9, true, 1),
        ]
        for (name, dimension, flip, shift) in cases {
            let ours = SinusoidalEmbedding.values(
                [0, 17, 999], dimension: dimension, flipSinToCos: flip,
                downscaleFreqShift: shift)
            let theirs = try f.values("temb.\(name)")
            XCTAssertEqual(ours.count, theirs.count, name)
            // sin/cos of angles up to ~1000 rad: float32 libm results agree to a few ulp of the angle.
            for i in ours.indices { XCTAssertEqual(ours[i], theirs[i], accuracy: 2e-4, "\(name) \(i)") }
        }
    }

    /// Loads the fixture's parameters, runs `forward`, and compares output and every gradient.
    func check<M: Module>(
        _ name: String, module build: (Device) throws -> M, inputs: [String], tolerance: Float = 1e-4,
        _ forward: (M, [Tensor]) throws -> Tensor
    ) throws {
        let f = try Fixtures.load("unet_blocks.safetensors")
        try DevicesUnderTest.each { device in
            let module = try build(device)
            let on = " on \(device.name)"
            let prefix = "\(name).param."
            let state = f.filter { $0.key.hasPrefix(prefix) }
                .reduce(into: [String: (shape: [Int], values: [Float])]()) {
                    $0[String($1.key.dropFirst(prefix.count))] = ($1.value.shape, $1.value.values)
                }
            XCTAssertEqual(Set(state.keys), Set(module.namedParameters().map(\.name)), "\(name) parameter names")
            try module.load(state: state, source: name)
            let leaves = try inputs.map { try f.tensor("\(name).in.\($0)", requiresGrad: true) }
            let out = try forward(module, leaves)
            XCTAssertLessThan(relativeError(try out.toArray(), try f.values("\(name).out")), tolerance, "\(name) output" + on)
            try (out * f.tensor("\(name).w").reshaped(out.shape)).sum().backward()
            for (input, leaf) in zip(inputs, leaves) {
                XCTAssertLessThan(
                    relativeError(try XCTUnwrap(leaf.grad).toArray(), try f.values("\(name).grad.\(input)")),
                    tolerance, "\(name) gradient of \(input)" + on)
            }
            for (parameter, tensor) in module.namedParameters() {
                let ours = try XCTUnwrap(tensor.grad, parameter).toArray()
                let theirs = try f.values("\(name).grad.\(parameter)")
                if parameter == "to_k.bias" {
                    // Adding one vector to every key shifts each row of scores by a constant, which
                    // softmax ignores: this gradient is zero in exact arithmetic, rounding noise in both.
                    XCTAssertLessThan((ours + theirs).map { abs($0) }.max() ?? 0, 1e-5, "\(name) \(parameter)" + on)
                    continue
                }
                XCTAssertLessThan(relativeError(ours, theirs), tolerance, "\(name) \(parameter)" + on)
            }
        }
    }

    func testTimestepEmbeddingMatchesDiffusers() throws {
        try check(
            "time_embedding",
            module: {
                try TimestepEmbedding(inChannels: 6, timeEmbedDim: 8, generator: RandomGenerator(seed: 0), device: $0)
            }, inputs: ["sample"]
        ) { try $0($1[0]) }
    }

    func testResnetBlock2DMatchesDiffusers() throws {
        for (name, norm) in [("resnet_default", ResnetBlock2D.TimeEmbeddingNorm.default), ("resnet_scale_shift", .scaleShift)] {
            try check(
                name,
                module: {
                    try ResnetBlock2D(
                        inChannels: 4, outChannels: 6, timeEmbeddingChannels: 8, groups: 2,
                        timeEmbeddingNorm: norm, outputScaleFactor: 1.5, generator: RandomGenerator(seed: 0), device: $0)
                }, inputs: ["x", "temb"]
            ) { try $0($1[0], timeEmbedding: $1[1]) }
        }
    }
}

extension UNetBlockTests {
    func testSpatialAttentionMatchesDiffusers() throws {
        try check(
            "attention",
            module: { (device: Device) -> SpatialAttention in
                let attention = try SpatialAttention(
                    channels: 8, headDim: 4, groups: 4, epsilon: 1e-6, rescaleOutputFactor: 2,
                    generator: RandomGenerator(seed: 0), device: device)
                XCTAssertEqual(attention.heads, 2)
                return attention
            }, inputs: ["x"]
        ) { try $0($1[0]) }
    }

    func testDownsampleAndUpsampleMatchDiffusers() throws {
        try check(
            "downsample",
            module: {
                try Downsample2D(channels: 6, outChannels: 6, generator: RandomGenerator(seed: 0), device: $0)
            }, inputs: ["x"]
        ) { try $0($1[0]) }
        try check(
            "upsample",
            module: {
                try Upsample2D(channels: 6, outChannels: 6, generator: RandomGenerator(seed: 0), device: $0)
            }, inputs: ["x"]
        ) { try $0($1[0]) }
        XCTAssertThrowsError(
            try Downsample2D(
                channels: 6, outChannels: 6, padding: 2, generator: RandomGenerator(seed: 0),
                device: CPUDevice.shared))
    }
}
