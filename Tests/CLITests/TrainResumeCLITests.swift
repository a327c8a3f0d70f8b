// `diffuse train --resume` continues a run bit-exactly from its last checkpoint, and
// `--init-from` fine-tunes a pretrained pipeline (a folder, or a Hub id through the loopback Hub).
import DataIO
import Foundation
import Hub
import HubTestServer
import XCTest

final class TrainResumeCLITests: XCTestCase {
    let fixtures = CLI.fixtures
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 24)
        // Dropout and class labels too, so every use of the random stream is covered.
        let config =
            #"{"_class_name": "UNet2DModel", "in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": "#
            + #"[8, 16], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "#
            + #""UpBlock2D"], "norm_num_groups": 4, "attention_head_dim": 4, "dropout": 0.1, "num_class_embeds": 10}"#
        try Data(config.utf8).write(to: work.appendingPathComponent("unet.json"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    func train(_ arguments: [String]) throws -> CommandResult {
        try CLI.run(
            [
                "train", "--dataset", path("data"), "--batch-size", "8", "--device", "cpu", "--quiet",
                "--checkpoint-every", "2", "--log-every", "2",
            ] + arguments)
    }

    func tensors(_ file: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(URL(fileURLWithPath: file)).tensors
    }

    func log(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    /// 3 steps per epoch, 2 epochs: stopped after 4 steps (mid-epoch) then resumed, it must end with the
    /// weights, optimizer state and late losses of the run that was never stopped.
    func checkResumeIsExact(_ model: [String]) throws {
        let whole = path("whole-\(model.joined())"), broken = path("broken-\(model.joined())")
        var result = try train(model + ["--epochs", "2", "--output", whole])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try train(model + ["--epochs", "2", "--max-steps", "4", "--output", broken])
        XCTAssertEqual(result.status, 0, result.stderr)
        let state = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: broken + "/trainer_state.json"))) as? [String: Any])
        XCTAssertEqual(state["global_step"] as? Int, 4)
        XCTAssertEqual(state["step_in_epoch"] as? Int, 1)
        // (Compared with == so a failure does not print every weight.)
        XCTAssertFalse(
            try tensors(whole + "/unet/diffusion_pytorch_model.safetensors")
                == tensors(broken + "/unet/diffusion_pytorch_model.safetensors"))
        result = try CLI.run([
            "train", "--resume", broken, "--max-steps", "6", "--device", "cpu", "--quiet",
            "--checkpoint-every", "2",
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("resuming") && result.stdout.contains("step 4"), result.stdout)
        XCTAssertTrue(
            try tensors(whole + "/unet/diffusion_pytorch_model.safetensors")
                == tensors(broken + "/unet/diffusion_pytorch_model.safetensors"), "\(model): weights differ")
        XCTAssertTrue(
            try tensors(whole + "/checkpoints/step-6/optimizer.safetensors")
                == tensors(broken + "/checkpoints/step-6/optimizer.safetensors"), "\(model): optimizer state differs")
        let wholeLog = try log(whole), brokenLog = try log(broken)
        XCTAssertEqual(wholeLog.map { $0["step"] as? Int }, [2, 3, 4, 6], "checkpoints at 2, 4 and each epoch's end")
        XCTAssertEqual(brokenLog.map { $0["step"] as? Int }, [2, 3, 4, 6])
        XCTAssertEqual(wholeLog.map { $0["loss"] as? Double }, brokenLog.map { $0["loss"] as? Double })
    }

    func testResumedBasicUNetRunEqualsTheUninterruptedOne() throws {
        try checkResumeIsExact(["--model", "basic-unet"])
    }

    func testResumedUNet2DRunEqualsTheUninterruptedOne() throws {
        try checkResumeIsExact(["--model", "unet2d", "--config", path("unet.json")])
    }

    /// A stopped run pushed to the Hub continues in a new folder, ending as the unstopped run.
    func testResumeARunFromTheHub() throws {
        let whole = path("whole"), broken = path("broken"), resumed = path("resumed")
        XCTAssertEqual(try train(["--epochs", "2", "--output", whole]).status, 0)
        XCTAssertEqual(try train(["--epochs", "2", "--max-steps", "4", "--output", broken]).status, 0)
        let server = try HubFileServer(repos: ["me/run": URL(fileURLWithPath: broken)])
        try server.start()
        defer { server.stop() }
        let environment = ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": path("hub-cache")]
        let noOutput = try CLI.run(["train", "--resume", "me/run", "--max-steps", "6"], environment: environment)
        XCTAssertEqual(noOutput.status, 2)
        XCTAssertTrue(noOutput.stderr.contains("needs --output"), noOutput.stderr)
        let result = try CLI.run(
            [
                "train", "--resume", "me/run", "--output", resumed, "--max-steps", "6", "--device", "cpu",
                "--quiet", "--checkpoint-every", "2", "--dataset", path("data"),
            ], environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(
            try tensors(whole + "/unet/diffusion_pytorch_model.safetensors")
                == tensors(resumed + "/unet/diffusion_pytorch_model.safetensors"), "weights differ")
        XCTAssertEqual(try log(resumed).map { $0["step"] as? Int }, [2, 3, 4, 6])
        // The cache's copy of the run is untouched (still at step 4).
        let cached = try XCTUnwrap(FileManager.default.enumerator(atPath: path("hub-cache"))?.allObjects as? [String])
            .first { $0.hasSuffix("snapshots") == false && $0.hasSuffix("/trainer_state.json") }
        let state = try String(contentsOfFile: path("hub-cache") + "/" + XCTUnwrap(cached), encoding: .utf8)
        XCTAssertTrue(state.contains("\"global_step\" : 4"), state)
    }

    func testResumeRefusesChangesAndNonRuns() throws {
        let run = path("run")
        XCTAssertEqual(try train(["--max-steps", "2", "--output", run]).status, 0)
        let changed = try CLI.run(["train", "--resume", run, "--lr", "0.1"])
        XCTAssertEqual(changed.status, 2)
        XCTAssertTrue(changed.stderr.contains("--lr cannot change a resumed run"), changed.stderr)
        let notARun = try CLI.run(["train", "--resume", fixtures.appendingPathComponent("tiny-ddpm").path])
        XCTAssertEqual(notARun.status, 2)
        XCTAssertTrue(notARun.stderr.contains("trainer_state.json"), notARun.stderr)
        // Already at its end: nothing to do, and nothing changes.
        let before = try tensors(run + "/unet/diffusion_pytorch_model.safetensors")
        let done = try CLI.run(["train", "--resume", run, "--device", "cpu", "--quiet"])
        XCTAssertEqual(done.status, 0, done.stderr)
        XCTAssertTrue(try tensors(run + "/unet/diffusion_pytorch_model.safetensors") == before)
    }

    /// Fine-tuning the diffusers-saved tiny pipeline (3 channels, 8x8) on 28x28 grey images: the
    /// config, scheduler and starting weights are the pretrained ones.
    func checkInitFrom(_ source: String, environment: [String: String] = [:]) throws -> CommandResult {
        let run = path("tuned-\(UUID().uuidString)")
        let result = try CLI.run(
            [
                "train", "--init-from", source, "--dataset", path("data"), "--batch-size", "4",
                "--max-steps", "1", "--lr", "1e-9", "--device", "cpu", "--quiet", "--output", run,
            ],
            environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        guard result.status == 0 else { return result }
        let original = fixtures.appendingPathComponent("tiny-ddpm")
        for file in ["unet/config.json", "scheduler/scheduler_config.json"] {
            let a = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(contentsOf: original.appendingPathComponent(file))) as? NSDictionary)
            let b = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/" + file))) as? NSDictionary)
            for key in ["sample_size", "in_channels", "block_out_channels", "beta_schedule", "prediction_type", "clip_sample"]
            where a[key] != nil {
                XCTAssertEqual(a[key] as? NSObject, b[key] as? NSObject, "\(file): \(key)")
            }
        }
        let start = try tensors(original.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path)
        let tuned = try tensors(run + "/unet/diffusion_pytorch_model.safetensors")
        XCTAssertEqual(Set(start.keys), Set(tuned.keys))
        var worst: Float = 0
        for (name, tensor) in start {
            worst = max(worst, zip(tensor.values, tuned[name]!.values).map { abs($0 - $1) }.max() ?? 0)
        }
        // One step at lr 1e-9 moves no weight by more than ~1e-8: the run started from the pretrained weights.
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(try log(run).count, 1)
        return result
    }

    func testInitFromAPipelineFolder() throws {
        _ = try checkInitFrom(fixtures.appendingPathComponent("tiny-ddpm").path)
        let conflicting = try CLI.run([
            "train", "--init-from", fixtures.appendingPathComponent("tiny-ddpm").path,
            "--prediction-type", "sample", "--dataset", path("data"),
        ])
        XCTAssertEqual(conflicting.status, 2)
        XCTAssertTrue(conflicting.stderr.contains("--prediction-type cannot change a pretrained model"), conflicting.stderr)
    }

    func testInitFromAHubRepository() throws {
        let server = try HubFileServer(repos: ["diffuse-test/tiny-ddpm": fixtures.appendingPathComponent("tiny-ddpm")])
        try server.start()
        defer { server.stop() }
        let result = try checkInitFrom(
            "diffuse-test/tiny-ddpm",
            environment: ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": path("hub-cache")])
        XCTAssertTrue(result.stdout.contains("fetched diffuse-test/tiny-ddpm"), result.stdout)
        XCTAssertEqual(server.requests.filter { $0.method == "GET" }.count, 4)
    }
}
