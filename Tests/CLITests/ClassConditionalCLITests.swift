// Class-conditional UNet2DModel runs from the command line: a config's own class embedding, and
// `--class-conditional` training with its null class, sampled with classifier-free guidance.
import DataIO
import Foundation
import XCTest

final class ClassConditionalCLITests: XCTestCase {
    func testClassConditionalTrainingAndSampling() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 16)
        let config =
            #"{"in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": [8, 16], "down_block_types": "#
            + #"["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 4, "#
            + #""attention_head_dim": 4, "num_class_embeds": 10}"#
        try Data(config.utf8).write(to: work.appendingPathComponent("unet.json"))
        let run = work.appendingPathComponent("run").path
        let trained = try CLI.run([
            "train", "--model", "unet2d", "--config", work.appendingPathComponent("unet.json").path,
            "--dataset", work.appendingPathComponent("data").path, "--max-steps", "2",
            "--batch-size", "8", "--device", "cpu", "--quiet", "--output", run,
        ])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let weights = try Safetensors.read(URL(fileURLWithPath: run + "/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(weights.tensors["class_embedding.weight"]?.shape, [10, 32])  // block_out_channels[0] * 4
        let png = work.appendingPathComponent("s.png").path
        let sampled = try CLI.run([
            "sample", run, "--scheduler", "ddim", "--steps", "3", "--batch-size", "2",
            "--class-labels", "3", "--device", "cpu", "--output", png,
        ])
        XCTAssertEqual(sampled.status, 0, sampled.stderr)
        let missing = try CLI.run(["sample", run, "--steps", "3", "--device", "cpu", "--output", png + ".2.png"])
        XCTAssertEqual(missing.status, 2, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("--class-labels"), missing.stderr)
        let outside = try CLI.run([
            "sample", run, "--steps", "3", "--class-labels", "12", "--device", "cpu",
            "--output", png + ".3.png",
        ])
        XCTAssertEqual(outside.status, 2, outside.stderr)
    }

    static let smallConfig =
        #"{"in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": [8, 16], "down_block_types": "#
        + #"["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 4, "#
        + #""attention_head_dim": 4"#

    func testClassConditionalTrainingLearnsANullClassAndSamplesWithGuidance() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("data").path
        try CLI.writeTinyDataset(to: URL(fileURLWithPath: data), count: 16)
        let config = work.appendingPathComponent("unet.json").path
        try Data((Self.smallConfig + "}").utf8).write(to: URL(fileURLWithPath: config))
        let run = work.appendingPathComponent("run").path
        let common = [
            "--model", "unet2d", "--dataset", data, "--max-steps", "2", "--batch-size", "8", "--device", "cpu", "--quiet",
        ]
        let trained = try CLI.run(["train", "--config", config, "--class-conditional", "--output", run] + common)
        XCTAssertEqual(trained.status, 0, trained.stderr)
        // Ten dataset labels: eleven embeddings, the last the null class, recorded for sampling.
        let unet = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/unet/config.json")))
        let keys = try XCTUnwrap(unet as? [String: Any])
        XCTAssertEqual(keys["num_class_embeds"] as? Int, 11)
        XCTAssertEqual(keys["_null_class_label"] as? Int, 10)
        let options = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: run + "/training_config.json")))
        XCTAssertEqual((options as? [String: Any])?["cond_drop_prob"] as? Double, 0.1)
        let weights = try Safetensors.read(URL(fileURLWithPath: run + "/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(weights.tensors["class_embedding.weight"]?.shape, [11, 32])

        func sample(_ extra: [String], _ name: String) throws -> [Float] {
            let tensor = work.appendingPathComponent(name + ".safetensors").path
            let result = try CLI.run(
                [
                    "sample", run, "--scheduler", "ddim", "--steps", "3", "--batch-size", "2", "--class-labels", "0,3",
                    "--device", "cpu", "--quiet", "--output", work.appendingPathComponent(name + ".png").path,
                    "--save-tensor", tensor,
                ] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            return try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"]).values
        }
        let plain = try sample([], "plain")
        XCTAssertEqual(try sample(["--guidance-scale", "1"], "one"), plain, "scale 1 is the conditional model alone")
        let guided = try sample(["--guidance-scale", "4"], "four")
        XCTAssertGreaterThan(zip(guided, plain).map { abs($0 - $1) }.max() ?? 0, 1e-4)

        // Refusals, each with exit code 2 and the flag to change.
        let png = work.appendingPathComponent("x.png").path
        let noLabels = try CLI.run(["sample", run, "--guidance-scale", "3", "--device", "cpu", "--output", png])
        XCTAssertEqual(noLabels.status, 2, noLabels.stderr)
        XCTAssertTrue(noLabels.stderr.contains("--class-labels"), noLabels.stderr)
        let withTable = work.appendingPathComponent("table.json").path
        try Data((Self.smallConfig + #", "num_class_embeds": 10}"#).utf8).write(to: URL(fileURLWithPath: withTable))
        let both = try CLI.run(["train", "--config", withTable, "--class-conditional", "--output", work.path + "/r2"] + common)
        XCTAssertEqual(both.status, 2, both.stderr)
        XCTAssertTrue(both.stderr.contains("num_class_embeds"), both.stderr)
        let noNull = work.appendingPathComponent("no-null").path
        XCTAssertEqual(try CLI.run(["train", "--config", withTable, "--output", noNull] + common).status, 0)
        let unguidable = try CLI.run([
            "sample", noNull, "--class-labels", "1", "--guidance-scale", "3", "--device", "cpu", "--output", png,
        ])
        XCTAssertEqual(unguidable.status, 2, unguidable.stderr)
        XCTAssertTrue(unguidable.stderr.contains("--class-conditional"), unguidable.stderr)
        let basic = try CLI.run([
            "train", "--model", "basic-unet", "--class-conditional", "--dataset", data, "--max-steps", "1", "--quiet",
            "--output", work.path + "/r3",
        ])
        XCTAssertEqual(basic.status, 2, basic.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.path + "/r3"), "a refused run leaves no folder")
        let probability = try CLI.run(
            ["train", "--class-conditional", "--cond-drop-prob", "1.5", "--output", work.path + "/r4"] + common)
        XCTAssertEqual(probability.status, 2, probability.stderr)
        XCTAssertTrue(probability.stderr.contains("--cond-drop-prob"), probability.stderr)
    }
}
