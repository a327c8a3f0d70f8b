// No config value kills the process (issue 10, item 5): zero group counts, negative layer counts,
// sizes that cannot fit, schedules that cannot exist are one-line exit-2 errors naming the file and
// the key, found before anything is allocated. Each case died by SIGFPE, SIGABRT or ran without
// bound before.
import Foundation
import XCTest

final class HostileConfigCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws { work = try CLI.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    /// tiny-ddpm with `changes` merged into FILE, sampled on the CPU.
    func sample(_ file: String, _ changes: [String: Any], name: String) throws -> CommandResult {
        let folder = work.appendingPathComponent(name)
        try FileManager.default.copyItem(at: CLI.fixtures.appendingPathComponent("tiny-ddpm"), to: folder)
        let url = folder.appendingPathComponent(file)
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        object.merge(changes) { $1 }
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        return try CLI.run([
            "sample", folder.path, "--steps", "2", "--batch-size", "1", "--device", "cpu",
            "--output", work.appendingPathComponent("\(name).png").path,
        ])
    }

    /// A training batch whose activations could never fit the device is refused before the first
    /// step, naming the batch size that would (it used to allocate until the process died).
    func testATrainingBatchBeyondTheDeviceIsRefused() throws {
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"))
        for model in ["basic-unet", "unet2d"] {
            let result = try CLI.run([
                "train", "--model", model, "--batch-size", "65536", "--max-steps", "1", "--device", "cpu",
                "--dataset", work.appendingPathComponent("data").path, "--output", work.appendingPathComponent(model).path,
            ])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertTrue(result.stderr.contains("a training batch of 65536 images needs about"), result.stderr)
            XCTAssertTrue(result.stderr.contains("use a --batch-size of at most"), result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent(model).path), "no folder left")
        }
    }

    func testHostileUNetConfigsAreOneLineErrors() throws {
        let cases: [(String, [String: Any], String)] = [
            ("zero-groups", ["norm_num_groups": 0], "norm_num_groups"),
            ("negative-layers", ["layers_per_block": -3], "layers_per_block"),
            ("zero-channels", ["block_out_channels": [0, 0]], "block_out_channels"),
            (
                "huge",
                [
                    "block_out_channels": [8192, 8192, 8192, 8192, 8192, 8192, 8192, 8192], "layers_per_block": 64,
                    "norm_num_groups": 32,
                    "down_block_types": Array(repeating: "DownBlock2D", count: 8),
                    "up_block_types": Array(repeating: "UpBlock2D", count: 8),
                ],
                "parameters"
            ),
            ("zero-in", ["in_channels": 0], "in_channels"),
            ("zero-head", ["attention_head_dim": 0], "attention_head_dim"),
            ("bad-eps", ["norm_eps": -1], "norm_eps"),
            ("big-sample", ["sample_size": 1_000_000], "sample_size"),
        ]
        for (name, changes, key) in cases {
            let result = try sample("unet/config.json", changes, name: name)
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(key) && result.stderr.contains("config.json"), "\(name): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(name): \(result.stderr)")
        }
    }

    func testHostileSchedulerConfigsAreOneLineErrors() throws {
        let cases: [(String, [String: Any], String)] = [
            ("negative-timesteps", ["num_train_timesteps": -5], "num_train_timesteps"),
            ("huge-timesteps", ["num_train_timesteps": 2_000_000_000], "num_train_timesteps"),
            ("bad-betas", ["beta_start": 0.5, "beta_end": 0.1], "beta_start"),
            ("bad-offset", ["steps_offset": -7], "steps_offset"),
        ]
        for (name, changes, key) in cases {
            let result = try sample("scheduler/scheduler_config.json", changes, name: name)
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(key), "\(name): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(name): \(result.stderr)")
        }
    }
}
