// train_unconditional.py's options through `diffuse train` (issue 13 item 2): the logged lr is
// get_scheduler's, --use-ema saves the average as the model and both in checkpoints, and a run
// with both resumes exactly.
import DataIO
import Foundation
import XCTest

final class TrainRecipeOptionsCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 24)
        let config =
            #"{"in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": [8, 16], "down_block_types": "#
            + #"["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 4, "#
            + #""attention_head_dim": 4}"#
        try Data(config.utf8).write(to: work.appendingPathComponent("unet.json"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    func train(_ arguments: [String]) throws -> CommandResult {
        try CLI.run(
            [
                "train", "--model", "unet2d", "--config", path("unet.json"), "--dataset", path("data"), "--batch-size", "8",
                "--device", "cpu", "--quiet", "--log-every", "1", "--checkpoint-every", "2",
            ] + arguments)
    }

    func weights(_ file: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(URL(fileURLWithPath: path(file))).tensors
    }

    func loggedRates(_ run: String) throws -> [Double] {
        try String(contentsOfFile: path(run) + "/log.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap((JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["lr"] as? Double)
        }
    }

    static let recipe = [
        "--use-ema", "--ema-max-decay", "0.9", "--lr", "1e-3", "--lr-scheduler", "cosine", "--lr-warmup-steps", "2",
        "--adam-beta1", "0.95", "--adam-weight-decay", "1e-6", "--epochs", "2",
    ]

    func testTheScheduleIsLoggedAndTheAverageIsTheModel() throws {
        let result = try train(Self.recipe + ["--output", path("run")])
        XCTAssertEqual(result.status, 0, result.stderr)
        // Six steps, warmup 2, cosine over the rest; each line logs the lr after its step, as
        // train_unconditional.py logs lr_scheduler.get_last_lr().
        let expected = (1...6).map { step -> Double in
            step < 2 ? 1e-3 * Double(step) / 2 : 1e-3 * 0.5 * (1 + cos(Double.pi * Double(step - 2) / 4))
        }
        let logged = try loggedRates("run")
        XCTAssertEqual(logged.count, 6)
        for (got, want) in zip(logged, expected) { XCTAssertEqual(got, want, accuracy: 1e-12) }
        // The run folder holds the average; the checkpoint holds both.
        let model = try weights("run/unet/diffusion_pytorch_model.safetensors")
        XCTAssertTrue(model == (try weights("run/checkpoints/step-6/unet_ema/diffusion_pytorch_model.safetensors")))
        XCTAssertFalse(model == (try weights("run/checkpoints/step-6/unet/diffusion_pytorch_model.safetensors")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("run/checkpoints/step-6/unet_ema/config.json")))
        // unet2d clips at 1.0 unless told, as train_unconditional.py does, and records it for --resume.
        let options = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: path("run/training_config.json"))))
        XCTAssertEqual((options as? [String: Any])?["max_grad_norm"] as? Double, 1)
    }

    func testARunWithAnAverageAndAScheduleResumesExactly() throws {
        var result = try train(Self.recipe + ["--output", path("whole")])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try train(Self.recipe + ["--max-steps", "4", "--output", path("broken")])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try CLI.run(["train", "--resume", path("broken"), "--max-steps", "6", "--device", "cpu", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        for file in ["unet/", "checkpoints/step-6/unet/", "checkpoints/step-6/unet_ema/"] {
            XCTAssertTrue(
                try weights("whole/" + file + "diffusion_pytorch_model.safetensors")
                    == weights("broken/" + file + "diffusion_pytorch_model.safetensors"), "\(file) differs after the resume")
        }
        XCTAssertEqual(try loggedRates("whole"), try loggedRates("broken"))
    }

    /// 24 images in batches of 8 with two batches per optimizer step: two steps an epoch (the
    /// second takes the epoch's last batch alone). Clipped at 0.5, stopped mid-epoch and resumed, it
    /// ends where the uninterrupted run ends, and both options change what is trained.
    func testAccumulationAndClippingStepAndResumeExactly() throws {
        let recipe = ["--gradient-accumulation-steps", "2", "--max-grad-norm", "0.5", "--epochs", "2"]
        var result = try train(recipe + ["--output", path("whole")])
        XCTAssertEqual(result.status, 0, result.stderr)
        let steps = try String(contentsOfFile: path("whole/log.jsonl"), encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(steps, 4)
        result = try train(recipe + ["--max-steps", "3", "--output", path("broken")])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try CLI.run(["train", "--resume", path("broken"), "--max-steps", "4", "--device", "cpu", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let file = "/unet/diffusion_pytorch_model.safetensors"
        XCTAssertTrue(try weights("whole" + file) == weights("broken" + file), "weights differ after the resume")
        for (name, arguments) in [
            ("unclipped", ["--gradient-accumulation-steps", "2", "--max-grad-norm", "0", "--max-steps", "4"]),
            ("unaccumulated", ["--max-grad-norm", "0.5", "--max-steps", "4"]),
        ] {
            result = try train(arguments + ["--epochs", "2", "--output", path(name)])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertFalse(try weights("whole" + file) == weights(name + file), name)
        }
    }

    func testOptionsOutsideTheirRangesAreRefused() throws {
        for (arguments, flag) in [
            (["--ema-power", "0.5"], "--use-ema"), (["--use-ema", "--ema-max-decay", "1.5"], "--ema-max-decay"),
            (["--adam-beta1", "1"], "--adam-beta1"), (["--lr-warmup-steps", "-1"], "--lr-warmup-steps"),
            (["--lr-scheduler", "sometimes"], "--lr-scheduler"),
            (["--gradient-accumulation-steps", "0"], "--gradient-accumulation-steps"),
            (["--max-grad-norm", "-1"], "--max-grad-norm"),
        ] {
            let result = try train(arguments + ["--output", path("x")])
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(flag), "\(arguments): \(result.stderr)")
        }
    }
}

extension TrainRecipeOptionsCLITests {
    /// Samples after every second epoch, from one seed; checkpoints only at every third epoch's end.
    func testEpochSamplesAndModelsAreWrittenAtTheirCadence() throws {
        let result = try train([
            "--epochs", "4", "--save-images-epochs", "2", "--save-model-epochs", "3", "--checkpoint-every", "100",
            "--logger", "tensorboard", "--log-every", "2", "--output", path("run"),
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let samples = try FileManager.default.contentsOfDirectory(atPath: path("run/samples")).sorted()
        XCTAssertEqual(samples, ["epoch-002.png", "epoch-004.png"])
        let grid = try PNG.read(URL(fileURLWithPath: path("run/samples/epoch-002.png")))
        XCTAssertEqual([grid.width, grid.height], [8 * 28 + 9 * 2, 2 * 28 + 3 * 2])
        XCTAssertNotEqual(grid, try PNG.read(URL(fileURLWithPath: path("run/samples/epoch-004.png"))), "the model moved")
        // 3 steps an epoch: the end of epoch 3 (step 9) and of training (step 12).
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: path("run/checkpoints")).sorted()
        XCTAssertEqual(checkpoints, ["step-12", "step-9"])
        // TensorBoard: every logged line's loss, lr and images/s, and each epoch grid, as its events.
        let logs = try FileManager.default.contentsOfDirectory(atPath: path("run/logs"))
        XCTAssertEqual(logs.count, 1)
        let events = try TensorBoardWriter.read(URL(fileURLWithPath: path("run/logs/" + logs[0])))
        var losses: [Int: Float] = [:], images: [Int: Data] = [:], tags = Set<String>()
        for event in events {
            for (tag, value) in event.values {
                tags.insert(tag)
                if tag == "loss", case .scalar(let loss) = value { losses[event.step] = loss }
                if case .image(let png, _, _, _) = value { images[event.step] = png }
            }
        }
        XCTAssertEqual(tags, ["loss", "lr", "images_per_second", "samples"])
        let logged = try String(contentsOfFile: path("run/log.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(losses.count, logged.count)
        for line in logged {
            let step = try XCTUnwrap(line["step"] as? Int)
            XCTAssertEqual(losses[step], Float(try XCTUnwrap(line["loss"] as? Double)), "step \(step)")
        }
        XCTAssertEqual(images.keys.sorted(), [6, 12])
        XCTAssertEqual(try PNG.decode(try XCTUnwrap(images[6])), grid)
    }
}
