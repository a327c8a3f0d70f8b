// SIGINT and SIGTERM end commands cleanly (issue 10, item 3): training finishes its step, writes a
// checkpoint, says where and how to resume, and exits 130 or 143; a second signal exits at once;
// sampling stops without writing outputs.
import DataIO
import Foundation
import XCTest

final class SignalCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 48)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    /// Starts `diffuse ARGUMENTS`, waits until `ready` exists (or half a second, when nil: long
    /// enough for the handlers to be installed), sends the signals, and returns the result.
    func signalled(_ arguments: [String], ready: String?, signals: [Int32]) throws -> CommandResult {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let ready {
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: ready) { usleep(10_000) }
            XCTAssertTrue(FileManager.default.fileExists(atPath: ready), "\(ready) never appeared")
        } else {
            usleep(500_000)
        }
        for s in signals {
            kill(process.processIdentifier, s)
            usleep(5_000)
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    func train(_ run: String) -> [String] {
        [
            "train", "--dataset", path("data"), "--batch-size", "8", "--epochs", "200", "--device", "cpu", "--quiet",
            "--log-every", "1", "--checkpoint-every", "100000", "--output", run,
        ]
    }

    func testSIGINTAndSIGTERMCheckpointAndSayHowToResume() throws {
        for (signal, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let run = path("run-\(signal)")
            let result = try signalled(train(run), ready: run + "/log.jsonl", signals: [signal])
            XCTAssertEqual(result.status, code, result.stderr)
            let message = try XCTUnwrap(result.stderr.split(separator: "\n").last.map(String.init))
            XCTAssertTrue(message.contains("diffuse train --resume \(run)") && message.contains("checkpoints/step-"), message)
            let step = try XCTUnwrap(Checkpoint.steps(in: run).last)
            XCTAssertTrue(message.contains("at step \(step)"), message)
            let resumed = try CLI.run(["train", "--resume", run, "--max-steps", "\(step + 2)", "--device", "cpu", "--quiet"])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stdout.contains("at step \(step)"), resumed.stdout)
        }
    }

    func testASecondSignalStopsAtOnce() throws {
        let run = path("run")
        let result = try signalled(train(run), ready: run + "/log.jsonl", signals: [SIGINT, SIGINT])
        XCTAssertEqual(result.status, 130, result.stderr)
        XCTAssertTrue(result.stderr.contains("SIGINT: stopped"), result.stderr)
    }

    func testSamplingStopsWithoutWritingItsOutputs() throws {
        let model = CLI.fixtures.appendingPathComponent("tiny-ddpm").path
        let output = path("samples.png"), tensor = path("samples.safetensors")
        // DDPM's 1000 steps at batch 64 take seconds: long enough to interrupt.
        let result = try signalled(
            [
                "sample", model, "--scheduler", "ddpm", "--batch-size", "64", "--device", "cpu",
                "--output", output, "--save-tensor", tensor,
            ], ready: nil, signals: [SIGINT])
        XCTAssertEqual(result.status, 130, result.stderr)
        XCTAssertTrue(result.stderr.contains("nothing was written"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tensor))
    }
}

enum Checkpoint {
    /// The published checkpoint steps of a run, ascending.
    static func steps(in run: String) -> [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints")) ?? [])
            .compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }
}
