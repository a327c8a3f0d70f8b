// UNet2DModel against diffusers: the seed config's size, and a small random model (every supported
// block type) whose output and all gradients come from Tools/reference/unet2d.py.
import CPUBackend
import DataIO
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import NN
import Tensor
import TestSupport
import XCTest

final class UNet2DModelTests: XCTestCase {
    func seedConfig() -> UNet2DConfig { .tutorial }

    func testSeedConfigHasTheTutorialsParameterCount() throws {
        let model = try UNet2DModel(config: seedConfig(), generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
        XCTAssertEqual(model.parameterCount, 1_707_009)
    }

    /// Builds the fixture's model from its config JSON, loads its weights by name, and compares the
    /// output (1e-4) and every gradient (1e-3) with diffusers'.
    func checkAgainstDiffusers(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> UNet2DConfig {
        let f = try Fixtures.load(name + ".safetensors")
        let json = try Data(contentsOf: Fixtures.directory.appendingPathComponent(name + ".json"))
        let config = try JSONDecoder().decode(UNet2DConfig.self, from: json)
        try DevicesUnderTest.each { device in
            let on = "\(name) on \(device.name)"
            let model = try UNet2DModel(config: config, generator: RandomGenerator(seed: 0), device: device)
            let state = f.filter { $0.key.hasPrefix("param.") }
                .reduce(into: [String: (shape: [Int], values: [Float])]()) {
                    $0[String($1.key.dropFirst(6))] = ($1.value.shape, $1.value.values)
                }
            XCTAssertEqual(Set(state.keys), Set(model.namedParameters().map(\.name)), on, file: file, line: line)
            try model.load(state: state, source: name)
            let input = try f.tensor("input", requiresGrad: true)
            let labels = f["class_labels"].map { $0.values.map { Int($0) } }
            let out = try model(input, timesteps: try f.values("timesteps").map { Int($0) }, classLabels: labels)
            XCTAssertLessThan(
                relativeError(try out.toArray(), try f.values("out")), 1e-4, "\(on) forward", file: file, line: line)
            try (out * f.tensor("w")).sum().backward()
            XCTAssertLessThan(
                relativeError(try XCTUnwrap(input.grad).toArray(), try f.values("grad.input")), 1e-3,
                "\(on) input", file: file, line: line)
            for (key, parameter) in model.namedParameters() {
                guard let theirs = f["grad." + key]?.values else {
                    // Frozen in diffusers (requires_grad=False), so untouched by training here too.
                    XCTAssertNil(parameter.grad, "\(on) \(key) should be frozen", file: file, line: line)
                    continue
                }
                let ours = try XCTUnwrap(parameter.grad, key).toArray()
                if key.hasSuffix("to_k.bias") {
                    // Zero in exact arithmetic (softmax ignores a shift shared by every key).
                    XCTAssertLessThan((ours + theirs).map { abs($0) }.max() ?? 0, 1e-4, "\(on) \(key)", file: file, line: line)
                    continue
                }
                XCTAssertLessThan(relativeError(ours, theirs), 1e-3, "\(on) \(key)", file: file, line: line)
            }
        }
        return config
    }

    func testLegacyConfigModelMatchesDiffusers() throws {
        let config = try checkAgainstDiffusers("unet2d_small")
        // Keys this old-style config lacks took diffusers' defaults.
        XCTAssertEqual(config.midBlockScaleFactor, 1.25)
        XCTAssertEqual(config.downsampleType, .conv)
        XCTAssertEqual(config.resnetTimeScaleShift, .default)
        XCTAssertTrue(config.addAttention)
    }

    func testResnetResamplingBlocksMatchDiffusers() throws {
        let config = try checkAgainstDiffusers("unet2d_resnet")
        XCTAssertEqual(config.downBlockTypes.first, .resnetDownsampleBlock2D)
        XCTAssertTrue(config.centerInputSample)
    }

    func testClassConditioningMatchesDiffusers() throws {
        XCTAssertEqual(try checkAgainstDiffusers("unet2d_class").numClassEmbeds, 5)
        XCTAssertEqual(try checkAgainstDiffusers("unet2d_class_timestep").classEmbedType, .timestep)
        var config = UNet2DConfig.tutorial
        config.numClassEmbeds = 3
        let model = try UNet2DModel(config: config, generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
        let x = try Tensor.zeros([1, 1, 28, 28], on: CPUDevice.shared)
        XCTAssertThrowsError(try model(x, timesteps: [1])) { XCTAssertTrue("\($0)".contains("class_labels")) }
        XCTAssertThrowsError(try model(x, timesteps: [1], classLabels: [3])) { XCTAssertTrue("\($0)".contains("outside")) }
    }

    func testAsymmetricDownsamplePaddingMatchesDiffusers() throws {
        XCTAssertEqual(try checkAgainstDiffusers("unet2d_pad0").downsamplePadding, 0)
    }

    func testFourierTimeEmbeddingMatchesDiffusers() throws {
        XCTAssertEqual(try checkAgainstDiffusers("unet2d_fourier").timeEmbeddingType, .fourier)
    }

    /// Kinds this version cannot build are refused when config.json is read, naming the key, the
    /// value and what is read instead.
    func testUnsupportedConfigurationsNameTheKey() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for (key, value, expected) in [
            ("down_block_types", "[\"DownBlock2D\", \"CrossAttnDownBlock2D\"]", "AttnDownBlock2D"),
            ("time_embedding_type", "\"learned\"", "positional, fourier"),
            ("act_fn", "\"gelu\"", "silu, swish"),
            ("resnet_time_scale_shift", "\"ada_group\"", "default, scale_shift"),
        ] {
            let url = folder.appendingPathComponent("\(key).json")
            try Data("{\"\(key)\": \(value)}".utf8).write(to: url)
            XCTAssertThrowsError(try JSONFile.read(UNet2DConfig.self, from: url)) {
                let message = "\($0)"
                XCTAssertTrue(message.contains(key) && message.contains(expected) && !message.contains("\n"), message)
            }
        }
    }
}
