// The command line as a user meets it: a short training run, sampling, and every bad input
// answered with one line and exit code 2.
import DataIO
import Foundation
import XCTest

final class CLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: work)
    }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    func train(_ extra: [String] = []) throws -> CommandResult {
        try CLI.run(
            [
                "train", "--dataset", path("data"), "--max-steps", "3", "--batch-size", "16", "--log-every", "1",
                "--output", path("run"), "--quiet",
            ] + extra)
    }

    func assertUsageError(_ result: CommandResult, mentions text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 2, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), "stderr: \(result.stderr)", file: file, line: line)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "one line: \(result.stderr)", file: file, line: line)
    }

    func testTrainWritesARunFolderAndSampleReadsIt() throws {
        let trained = try train()
        XCTAssertEqual(trained.status, 0, trained.stderr)
        for file in [
            "model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
            "scheduler/scheduler_config.json", "log.jsonl", "loss.png", "samples.png", "corruption.png",
            "predictions.png",
        ] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path("run/" + file)), file)
        }
        let log = try String(contentsOfFile: path("run/log.jsonl"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(log.count, 3)
        let first = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(log[0].utf8)) as? [String: Any])
        XCTAssertEqual(Set(first.keys), ["step", "epoch", "loss", "lr", "images_per_second", "data_wait_seconds"])
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(first["data_wait_seconds"] as? Double), 0)
        XCTAssertEqual(first["lr"] as? Double, 1e-3)
        let weights = try Safetensors.read(URL(fileURLWithPath: path("run/unet/diffusion_pytorch_model.safetensors")))
        XCTAssertEqual(weights.tensors["down_layers.0.weight"]?.shape, [32, 1, 5, 5])
        XCTAssertEqual(weights.tensors.values.reduce(0) { $0 + $1.values.count }, 309_057)
        // Labelled: an RGB canvas with the title, row names and amounts around the grey tiles.
        XCTAssertEqual(try PNG.read(URL(fileURLWithPath: path("run/predictions.png"))).channels, 3)

        // Sampling from a given noise tensor is deterministic and saves the unclamped sample.
        let noise = (0..<(2 * 784)).map { Float($0 % 97) / 97 }
        try Safetensors.write(
            [(name: "sample", tensor: SafetensorsTensor(shape: [2, 1, 28, 28], values: noise))],
            to: URL(fileURLWithPath: path("noise.safetensors")))
        for name in ["a", "b"] {
            let sampled = try CLI.run([
                "sample", path("run"), "--init-noise", path("noise.safetensors"),
                "--save-tensor", path("\(name).safetensors"), "--output", path("\(name).png"),
                "--trajectory", path("\(name)-trajectory.png"),
            ])
            XCTAssertEqual(sampled.status, 0, sampled.stderr)
        }
        let a = try Safetensors.read(URL(fileURLWithPath: path("a.safetensors"))).tensors["sample"]
        let b = try Safetensors.read(URL(fileURLWithPath: path("b.safetensors"))).tensors["sample"]
        XCTAssertEqual(a?.shape, [2, 1, 28, 28])
        XCTAssertEqual(a?.values, b?.values)
        XCTAssertNotEqual(a?.values, noise)
        let trajectory = try PNG.read(URL(fileURLWithPath: path("a-trajectory.png")))
        XCTAssertGreaterThan(trajectory.height, trajectory.width / 2)  // five rows of input and prediction tiles

        // An existing output is kept unless --overwrite.
        assertUsageError(try train(), mentions: "--overwrite")
        assertUsageError(try CLI.run(["sample", path("run"), "--output", path("a.png")]), mentions: "--overwrite")
        XCTAssertEqual(try train(["--overwrite"]).status, 0)
    }

    func testBadArgumentsExitWithTwo() throws {
        assertUsageError(try train(["--model", "resnet"]), mentions: "--model")
        assertUsageError(try train(["--batch-size=-3"]), mentions: "--batch-size")
        assertUsageError(try train(["--epochs", "0"]), mentions: "--epochs")
        assertUsageError(try train(["--device", "tpu"]), mentions: "--device")
        assertUsageError(try train(["--device", "opencl:99"]), mentions: "diffuse devices")
        // No ICD registered (ocl-icd reads OCL_ICD_VENDORS): the error names the package to install.
        try FileManager.default.createDirectory(at: work.appendingPathComponent("no-icds"), withIntermediateDirectories: true)
        assertUsageError(
            try CLI.run(
                ["train", "--device", "opencl", "--dataset", path("data"), "--output", path("y")],
                environment: ["OCL_ICD_VENDORS": path("no-icds")]), mentions: "pocl-opencl-icd")
        let missing = try CLI.run(["train", "--dataset", path("nowhere"), "--output", path("x")])
        assertUsageError(missing, mentions: "dataset-fashion-mnist")
        assertUsageError(try CLI.run(["train", "--no-such-flag"]), mentions: "--no-such-flag")
        XCTAssertEqual(try CLI.run(["--help"]).status, 0)
    }

    /// Closed sets of values are enums whose --help lists them; the trainable models come from the
    /// pipeline registry; library messages reach the user worded with the flags.
    func testHelpListsEveryChoiceAndMessagesNameFlags() throws {
        let trainHelp = try CLI.run(["train", "--help"])
        XCTAssertEqual(trainHelp.status, 0, trainHelp.stderr)
        let help = trainHelp.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for listed in [
            "basic-unet or unet2d", "values: adam, adamw", "values: linear, scaled_linear, squaredcos_cap_v2, sigmoid",
            "values: epsilon, sample, v_prediction",
        ] {
            XCTAssertTrue(help.contains(listed), "train --help lacks \(listed): \(help)")
        }
        let sample = try CLI.run(["sample", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(sample.contains("values: ddpm, ddim"), sample)
        assertUsageError(try train(["--beta-schedule", "cosine"]), mentions: "--beta-schedule")
        assertUsageError(try train(["--model", "sdxl"]), mentions: "use basic-unet or unet2d")
        // TrainingOptions.validate speaks of settings; the CLI words them as flags.
        assertUsageError(try train(["--log-every", "0"]), mentions: "--log-every must be positive, got 0")
        assertUsageError(try CLI.run(["sample", "nowhere", "--steps", "0"]), mentions: "--steps must be 1 to 100000")
        assertUsageError(try CLI.run(["bench", "--torch-device", "tpu"]), mentions: "'cpu' and 'cuda'")
        assertUsageError(try CLI.run(["bench", "--workload", "sdxl"]), mentions: "unknown --workload sdxl")
    }

    func testDevicesListsOpenCLAndTheCPU() throws {
        let listed = try CLI.run(["devices"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.contains("opencl:0"), listed.stdout)  // CI installs PoCL
        XCTAssertTrue(listed.stdout.contains("cpu"), listed.stdout)
        XCTAssertEqual(listed.stdout.split(separator: "\n").filter { $0.hasPrefix("*") }.count, 1, "one auto choice")
        // CI has PoCL (an OpenCL CPU device) and no GPU: auto takes the native CPU backend, and says why.
        XCTAssertTrue(listed.stdout.contains("* cpu"), listed.stdout)
        XCTAssertTrue(listed.stdout.contains("auto: cpu, the native CPU backend: no OpenCL GPU"), listed.stdout)
        let none = try CLI.run(["devices"], environment: ["OCL_ICD_VENDORS": "/nonexistent"])
        XCTAssertTrue(none.stdout.contains("* cpu"), none.stdout)
    }

    func testBrokenModelFoldersExitWithTwo() throws {
        XCTAssertEqual(try train().status, 0)
        let weights = URL(fileURLWithPath: path("run/unet/diffusion_pytorch_model.safetensors"))
        let original = try Data(contentsOf: weights)
        try original.prefix(original.count / 2).write(to: weights)
        assertUsageError(try CLI.run(["sample", path("run"), "--output", path("t.png")]), mentions: "safetensors")
        try original.write(to: weights)

        let config = URL(fileURLWithPath: path("run/unet/config.json"))
        let good = try Data(contentsOf: config)
        try Data(String(decoding: good, as: UTF8.self).replacingOccurrences(of: "64", with: "48").utf8).write(to: config)
        assertUsageError(try CLI.run(["sample", path("run"), "--output", path("t.png")]), mentions: "shape")
        try Data("{not json".utf8).write(to: config)
        assertUsageError(try CLI.run(["sample", path("run"), "--output", path("t.png")]), mentions: "config.json")
        try good.write(to: config)

        try Data("[]".utf8).write(to: URL(fileURLWithPath: path("run/model_index.json")))
        assertUsageError(try CLI.run(["sample", path("run"), "--output", path("t.png")]), mentions: "model_index.json")
        assertUsageError(try CLI.run(["sample", path("nowhere"), "--output", path("t.png")]), mentions: "does not exist")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("t.png")))
    }
}
