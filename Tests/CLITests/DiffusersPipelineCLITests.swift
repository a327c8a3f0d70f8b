// `diffuse sample` on a pipeline folder written by diffusers' save_pretrained (Tests/Fixtures/tiny-ddpm,
// Tools/reference/pipeline.py): DDIM from given noise equals diffusers' own loop.
import DataIO
import Foundation
import XCTest

final class DiffusersPipelineCLITests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func testDDIMFromGivenNoiseMatchesDiffusersOnEveryDevice() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let expected = try XCTUnwrap(Safetensors.read(fixtures.appendingPathComponent("tiny-ddpm-ddim10.safetensors")).tensors["sample"])
        for device in ["cpu", "opencl"] {
            let tensor = work.appendingPathComponent("\(device).safetensors").path
            let result = try CLI.run(["sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", "ddim",
                                      "--steps", "10", "--device", device,
                                      "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
                                      "--save-tensor", tensor, "--output", work.appendingPathComponent("\(device).png").path])
            XCTAssertEqual(result.status, 0, result.stderr)
            let sample = try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"])
            XCTAssertEqual(sample.shape, expected.shape)
            let scale = expected.values.map { abs($0) }.max() ?? 1
            let worst = zip(sample.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst / scale, 2e-3, "\(device): DDIM sample differs from diffusers'")
            let png = try PNG.read(work.appendingPathComponent("\(device).png"))
            XCTAssertEqual(png.channels, 3)
        }
    }

    func testDDPMSamplingIsSeededAndOptionsAreChecked() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let folder = fixtures.appendingPathComponent("tiny-ddpm").path
        var outputs: [[Float]] = []
        for name in ["a", "b"] {
            let tensor = work.appendingPathComponent("\(name).safetensors").path
            let result = try CLI.run(["sample", folder, "--steps", "20", "--batch-size", "3", "--seed", "4",
                                      "--device", "cpu", "--save-tensor", tensor,
                                      "--output", work.appendingPathComponent("\(name).png").path])
            XCTAssertEqual(result.status, 0, result.stderr)
            outputs.append(try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"]).values)
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0].count, 3 * 3 * 8 * 8)
        let bad = try CLI.run(["sample", folder, "--scheduler", "euler", "--output", work.appendingPathComponent("c.png").path])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--scheduler"), bad.stderr)
    }
}
