// Checkpoints are whole or absent (issue 10, item 2): checkpoints/step-N/ is published by one rename,
// a kill at any moment leaves a run that --resume continues to the same end as a run never stopped,
// leftovers of a killed run are cleaned, --checkpoints-total-limit keeps the newest, a resumed run
// keeps its checkpoint options, --overwrite never mixes two runs and two runs never share a folder.
import DataIO
import Foundation
import XCTest

final class TrainCheckpointCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 48)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    func arguments(_ extra: [String]) -> [String] {
        ["train", "--dataset", path("data"), "--batch-size", "8", "--device", "cpu", "--quiet", "--log-every", "1"] + extra
    }

    func weights(_ run: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(URL(fileURLWithPath: run + "/unet/diffusion_pytorch_model.safetensors")).tensors
    }

    func steps(_ run: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")) ?? []).sorted()
    }

    func testAKillAtAnyMomentLeavesARunThatResumesToTheSameEnd() throws {
        // 6 steps per epoch, 2 epochs, a checkpoint after every step: most of the time goes into
        // writing checkpoints, so kills land inside them.
        let whole = path("whole")
        let reference = try CLI.run(arguments(["--epochs", "2", "--checkpoint-every", "1", "--output", whole]))
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let expected = try weights(whole)
        var resumedAfterKill = 0
        for trial in 0..<8 {
            let run = path("killed-\(trial)")
            let process = Process()
            process.executableURL = CLI.binary
            process.arguments = arguments(["--epochs", "2", "--checkpoint-every", "1", "--output", run])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Once the first checkpoint is out, kill at a different moment in each trial.
            for _ in 0..<1000 where steps(run).filter({ $0.hasPrefix("step-") }).isEmpty && process.isRunning { usleep(5_000) }
            usleep(useconds_t(7_000 * trial))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            guard process.terminationReason == .uncaughtSignal else { continue }  // finished before the kill
            guard !steps(run).filter({ $0.hasPrefix("step-") }).isEmpty else { continue }  // killed before any checkpoint
            let resumed = try CLI.run(["train", "--resume", run, "--device", "cpu", "--quiet"])
            XCTAssertEqual(resumed.status, 0, "trial \(trial): \(resumed.stderr)")
            XCTAssertTrue(try weights(run) == expected, "trial \(trial): the resumed run ended elsewhere")
            XCTAssertEqual(steps(run).filter { $0.hasPrefix(".") }, [], "trial \(trial): leftovers of the kill remain")
            resumedAfterKill += 1
        }
        XCTAssertGreaterThan(resumedAfterKill, 0, "no kill landed mid-run; the test proved nothing")
    }

    func testLeftoversOfAKilledCheckpointAreIgnoredAndRemoved() throws {
        let run = path("run")
        XCTAssertEqual(try CLI.run(arguments(["--max-steps", "4", "--checkpoint-every", "2", "--output", run])).status, 0)
        // What a kill mid-checkpoint leaves: an unpublished step folder with a torn state, and the
        // temporary file of an atomic write.
        let staging = URL(fileURLWithPath: run + "/checkpoints/.step-6.tmp-99999")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        try Data("{\"global_step\": 6, torn".utf8).write(to: staging.appendingPathComponent("trainer_state.json"))
        try Data("half".utf8).write(to: URL(fileURLWithPath: run + "/unet/.diffusion_pytorch_model.safetensors.tmp-99999-1"))
        let resumed = try CLI.run(["train", "--resume", run, "--max-steps", "6", "--device", "cpu", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("at step 4"), resumed.stdout)
        XCTAssertEqual(steps(run), ["step-2", "step-4", "step-6"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/unet/.diffusion_pytorch_model.safetensors.tmp-99999-1"))
    }

    func testTotalLimitKeepsTheNewestAndResumeKeepsTheRunsCheckpointOptions() throws {
        let run = path("run")
        let first = try CLI.run(
            arguments([
                "--max-steps", "5", "--checkpoint-every", "2", "--checkpoints-total-limit", "2",
                "--output", run,
            ]))
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(steps(run), ["step-4", "step-5"])
        // No checkpoint options given: the run's own (every 2, keep 2) carry on, not the defaults.
        let resumed = try CLI.run(["train", "--resume", run, "--max-steps", "9", "--device", "cpu", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(steps(run), ["step-8", "step-9"])
        let saved = try String(contentsOfFile: run + "/checkpoints/step-9/training_config.json", encoding: .utf8)
        XCTAssertTrue(saved.contains("\"checkpoint_every\" : 2") && saved.contains("\"checkpoints_total_limit\" : 2"), saved)
    }

    func testOverwriteStartsAfreshWithoutTheOldRunsCheckpointsOrLog() throws {
        let run = path("run")
        XCTAssertEqual(try CLI.run(arguments(["--max-steps", "6", "--checkpoint-every", "3", "--output", run])).status, 0)
        let again = try CLI.run(arguments(["--max-steps", "2", "--checkpoint-every", "2", "--output", run, "--overwrite"]))
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(steps(run), ["step-2"], "the old run's checkpoints survived --overwrite")
        let log = try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 2, "the old run's log lines survived --overwrite")
        let resumed = try CLI.run(["train", "--resume", run, "--device", "cpu", "--quiet", "--max-steps", "2"])
        XCTAssertTrue(resumed.stdout.contains("at step 2"), resumed.stdout)
    }

    func testASecondRunIntoTheSameFolderIsRefusedWhileTheFirstRuns() throws {
        let run = path("run")
        let first = Process()
        first.executableURL = CLI.binary
        first.arguments = arguments(["--epochs", "20", "--output", run])
        first.standardOutput = FileHandle.nullDevice
        first.standardError = FileHandle.nullDevice
        try first.run()
        defer { if first.isRunning { first.terminate() }; first.waitUntilExit() }
        // Wait until the first run holds the folder.
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: run + "/.diffuse.lock") { usleep(20_000) }
        let second = try CLI.run(arguments(["--max-steps", "1", "--output", run, "--overwrite"]))
        XCTAssertEqual(second.status, 2, second.stderr)
        XCTAssertTrue(second.stderr.contains("another `diffuse train` is writing"), second.stderr)
    }
}

/// Divergence is a runtime error (issue 10, item 4): exit 1, one line naming the step, the last good
/// checkpoint (kept, finite, and usable with --init-from) and what to try.
final class TrainDivergenceCLITests: XCTestCase {
    func testADivergingRunStopsWithExitOneAndKeepsTheLastGoodCheckpoint() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 48)
        let run = work.appendingPathComponent("run").path
        let result = try CLI.run([
            "train", "--dataset", work.appendingPathComponent("data").path, "--batch-size", "8",
            "--lr", "1e8", "--max-steps", "30", "--checkpoint-every", "1", "--log-every", "1",
            "--device", "cpu", "--quiet", "--output", run,
        ])
        XCTAssertEqual(result.status, 1, result.stderr)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr)
        let line = String(lines.first ?? "")
        XCTAssertTrue(
            line.contains("training diverged at step") && line.contains("--lr") && line.contains("checkpoints/step-"), line)
        XCTAssertFalse(line.contains("EncodingError") || line.contains("nan)"), line)
        let kept = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")
                .filter { $0.hasPrefix("step-") }.max { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! })
        XCTAssertTrue(line.contains(kept), line)
        let weights = try Safetensors.read(
            URL(fileURLWithPath: run + "/checkpoints/\(kept)/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertTrue(weights.tensors.values.allSatisfy { $0.values.allSatisfy(\.isFinite) }, "the kept checkpoint is not finite")
        // The log holds only finite losses, and the run folder still loads.
        let sample = try CLI.run([
            "sample", run, "--device", "cpu", "--batch-size", "1", "--output", work.appendingPathComponent("s.png").path,
        ])
        XCTAssertEqual(sample.status, 0, sample.stderr)
    }
}
