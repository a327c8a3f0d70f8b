// `mpirun -np 2 diffuse train` trains the model one process trains on the same global batch, its
// checkpoints resume on one process, `mpirun -np 2 diffuse sample` draws the images one process
// draws, and a failing process ends the job instead of leaving the other waiting.
// Needs a build with the MPI trait and Open MPI's mpirun (Tools/test.sh builds so where
// libopenmpi-dev is installed; DIFFUSE_REQUIRE_MPI=1, set by .ci/run, makes their absence a failure).
import DataIO
import DataParallel
import DiffuseCore
import Foundation
import XCTest

final class DataParallelCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let devices = try CLI.run(["devices"])
        let linked = devices.stdout.contains("mpi: Open MPI")
        if mpirun == nil || !linked {
            let why = mpirun == nil ? "no mpirun (Debian: openmpi-bin)" : "diffuse was built without --traits MPI"
            if ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_MPI"] == "1" {
                XCTFail("DIFFUSE_REQUIRE_MPI=1 but \(why)")
            }
            throw XCTSkip(why)
        }
        work = try CLI.temporaryDirectory()
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 40)
    }

    override func tearDownWithError() throws { if let work { try? FileManager.default.removeItem(at: work) } }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    /// `diffuse ARGS` as `processes` processes under mpirun (one: started alone).
    func diffuse(_ arguments: [String], processes: Int) throws -> CommandResult {
        guard processes > 1 else { return try CLI.run(arguments) }
        return try CLI.run(
            ["--allow-run-as-root", "--oversubscribe", "-np", "\(processes)", "--bind-to", "none", CLI.binary.path] + arguments,
            executable: URL(fileURLWithPath: "/usr/bin/mpirun"), timeout: 300)
    }

    func train(_ arguments: [String], processes: Int, output: String) throws {
        let result = try diffuse(
            ["train", "--dataset", path("data"), "--device", "cpu", "--quiet", "--log-every", "5", "--output", path(output)]
                + arguments, processes: processes)
        XCTAssertEqual(result.status, 0, "\(processes) processes: \(result.stderr)")
    }

    func weights(_ run: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(URL(fileURLWithPath: path(run) + "/unet/diffusion_pytorch_model.safetensors")).tensors
    }

    /// The runs' weights as one vector: |a - b| / |a| within `tolerance`. (Summing a batch's
    /// gradients in two halves rounds differently, and Adam scales a gradient that is nearly zero
    /// up to a full step, so single elements, such as attention's key bias, whose gradient is zero
    /// but for rounding, can differ more than the model does; the worst tensor is named on failure.)
    func assertSameWeights(_ a: String, _ b: String, within tolerance: Double, _ what: String) throws {
        let wa = try weights(a), wb = try weights(b)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys))
        XCTAssertGreaterThan(wa.count, 0)
        var difference = 0.0, norm = 0.0
        var worst = (name: "", relative: 0.0)
        for (name, ta) in wa {
            let tb = try XCTUnwrap(wb[name])
            XCTAssertEqual(ta.shape, tb.shape, name)
            let d = zip(ta.values, tb.values).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let n = ta.values.reduce(0.0) { $0 + Double($1) * Double($1) }
            difference += d
            norm += n
            if (d / max(n, 1e-30)).squareRoot() > worst.relative { worst = (name, (d / max(n, 1e-30)).squareRoot()) }
        }
        let relative = (difference / norm).squareRoot()
        XCTAssertLessThanOrEqual(
            relative, tolerance, "\(what): weights differ by \(relative) relative (most: \(worst.name), \(worst.relative))")
    }

    static let tinyUNet =
        #"{"_class_name": "UNet2DModel", "in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": "#
        + #"[8, 16], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "#
        + #""UpBlock2D"], "norm_num_groups": 4, "attention_head_dim": 4, "dropout": DROPOUT}"#

    /// 2 processes x 16 images and 1 x 32 from one seed: the same weights after 10 steps (40 images:
    /// batches of 32 and 8, so the short last batch is split too), for each model.
    func testTwoProcessesTrainTheWeightsOfOne() throws {
        for dropout in ["0.0", "0.1"] {
            try Data(Self.tinyUNet.replacingOccurrences(of: "DROPOUT", with: dropout).utf8)
                .write(to: work.appendingPathComponent("unet-\(dropout).json"))
        }
        let models: [(String, [String])] = [
            ("basic", ["--epochs", "5"]),
            ("unet2d", ["--model", "unet2d", "--config", path("unet-0.0.json"), "--epochs", "5"]),
            ("unet2d-dropout", ["--model", "unet2d", "--config", path("unet-0.1.json"), "--epochs", "5"]),
            // One step an epoch of two batches (the second split 4 and 4), clipped, with a moving average.
            (
                "basic-accumulated",
                ["--epochs", "10", "--gradient-accumulation-steps", "2", "--max-grad-norm", "0.05", "--use-ema"]
            ),
        ]
        for (name, model) in models {
            let common = model + ["--batch-size", "32", "--max-steps", "10", "--seed", "3"]
            try train(common, processes: 1, output: "\(name)-1")
            try train(common, processes: 2, output: "\(name)-2")
            try assertSameWeights("\(name)-1", "\(name)-2", within: 1e-5, name)
            // Rank 0 wrote the run; its log counts the whole batch and the time in collectives.
            let lines = try String(contentsOfFile: path("\(name)-2/log.jsonl"), encoding: .utf8).split(separator: "\n")
            let last = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
            XCTAssertEqual(last["step"] as? Int, 10)
            XCTAssertNotNil(last["communication_seconds"] as? Double, "\(name): \(last)")
            let single = try String(contentsOfFile: path("\(name)-1/log.jsonl"), encoding: .utf8)
            XCTAssertFalse(single.contains("communication_seconds"))
        }
    }

    /// The same on the OpenCL device (PoCL here: both processes share it), where the gradients
    /// are packed on the device and read in one wait.
    func testTwoProcessesOnOpenCLTrainTheWeightsOfOne() throws {
        let devices = try CLI.run(["devices"])
        guard devices.stdout.contains("opencl:0") else {
            if ProcessInfo.processInfo.environment["DIFFUSE_REQUIRE_OPENCL"] == "1" { XCTFail("no OpenCL device") }
            throw XCTSkip("no OpenCL device")
        }
        let common = ["--batch-size", "32", "--epochs", "5", "--max-steps", "10", "--seed", "4", "--device", "opencl"]
        for processes in [1, 2] {
            let result = try diffuse(
                ["train", "--dataset", path("data"), "--quiet", "--log-every", "5", "--output", path("opencl-\(processes)")]
                    + common, processes: processes)
            XCTAssertEqual(result.status, 0, "\(processes) processes: \(result.stderr)")
        }
        try assertSameWeights("opencl-1", "opencl-2", within: 1e-5, "BasicUNet on OpenCL")
    }

    /// A 2-process run stopped at step 5 and resumed on one process ends where one process's
    /// 10 steps end.
    func testTwoProcessCheckpointResumesOnOne() throws {
        try Data(Self.tinyUNet.replacingOccurrences(of: "DROPOUT", with: "0.1").utf8).write(
            to: work.appendingPathComponent("unet.json"))
        let common = ["--model", "unet2d", "--config", path("unet.json"), "--batch-size", "16", "--epochs", "4"]
        try train(common + ["--max-steps", "10"], processes: 1, output: "whole")
        try train(common + ["--max-steps", "5"], processes: 2, output: "split")
        let resumed = try CLI.run(["train", "--resume", path("split"), "--max-steps", "10", "--device", "cpu", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("at step 5"), resumed.stdout)
        try assertSameWeights("whole", "split", within: 1e-5, "resumed on one process")
    }

    /// The batch is the global one: it must split evenly over the processes.
    func testABatchThatDoesNotSplitIsRefused() throws {
        let result = try diffuse(
            ["train", "--dataset", path("data"), "--device", "cpu", "--batch-size", "15", "--output", path("odd")], processes: 2)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("does not split over 2 processes"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("odd")))
    }

    /// Rank 0 refuses an output folder that is taken while rank 1 goes on to train: the job must
    /// end with rank 0's message, not leave rank 1 waiting for it.
    func testAFailingProcessEndsTheJob() throws {
        try FileManager.default.createDirectory(atPath: path("taken"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: path("taken/notes.txt")))
        let started = Date()
        let result = try diffuse(
            ["train", "--dataset", path("data"), "--device", "cpu", "--batch-size", "8", "--output", path("taken")],
            processes: 2)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("error: rank 0:"), result.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "the job should end at once")
    }

    /// SIGTERM to one process of a job (here each one in turn): all stop at the same step, rank 0
    /// checkpoints it, and one process resumes from there. (Ctrl-C on mpirun makes it send each
    /// process SIGTERM and, a second later, SIGKILL: a stop that may not reach its checkpoint.)
    func testASignalToOneProcessStopsTheJobTogetherAtACheckpoint() throws {
        for signalled in 0..<2 {
            let run = path("stopped-\(signalled)")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/mpirun")
            process.arguments = [
                "--allow-run-as-root", "--oversubscribe", "-np", "2", "--bind-to", "none", CLI.binary.path, "train",
                "--dataset", path("data"), "--batch-size", "8", "--epochs", "500", "--device", "cpu", "--quiet", "--log-every",
                "1",
                "--checkpoint-every", "100000", "--output", run,
            ]
            let err = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = err
            try process.run()
            CLI.watch(process, seconds: 300)
            for _ in 0..<3000 where !FileManager.default.fileExists(atPath: run + "/log.jsonl") { usleep(10_000) }
            XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/log.jsonl"), "the job never logged")
            // mpirun's children, the job's processes, in the order it started them.
            let children = try String(
                contentsOfFile: "/proc/\(process.processIdentifier)/task/\(process.processIdentifier)/children", encoding: .utf8
            ).split(separator: " ").compactMap { Int32($0) }.sorted()
            XCTAssertEqual(children.count, 2)
            kill(children[signalled], SIGTERM)
            let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertNotEqual(process.terminationStatus, 0)
            let stopped = stderr.split(separator: "\n").filter { $0.hasPrefix("stopped by SIGTERM") }
            XCTAssertEqual(stopped.count, 1, "rank 0 alone says where the job stopped: \(stderr)")
            let state = try XCTUnwrap(
                JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/trainer_state.json")))
                    as? [String: Any])
            let step = try XCTUnwrap(state["global_step"] as? Int)
            XCTAssertTrue(stopped.first?.contains("at step \(step);") == true, "\(stopped)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/checkpoints/step-\(step)"))
            let resumed = try CLI.run(["train", "--resume", run, "--max-steps", "\(step + 1)", "--device", "cpu", "--quiet"])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stdout.contains("at step \(step)"), resumed.stdout)
        }
    }

    /// `mpirun -np 2 diffuse sample` draws the images one process draws from the same seed.
    func testTwoProcessesSampleTheImagesOfOne() throws {
        try Data(Self.tinyUNet.replacingOccurrences(of: "DROPOUT", with: "0.0").utf8).write(
            to: work.appendingPathComponent("unet.json"))
        try train(
            ["--model", "unet2d", "--config", path("unet.json"), "--batch-size", "8", "--max-steps", "2"], processes: 1,
            output: "model")
        for (processes, folder) in [(1, "one"), (2, "two")] {
            // 5 images: 3 and 2, and DDPM adds noise at every step.
            let result = try diffuse(
                [
                    "sample", path("model"), "--device", "cpu", "--batch-size", "5", "--steps", "4", "--scheduler", "ddpm",
                    "--seed", "9", "--quiet", "--save-images", path(folder), "--output", path("\(folder).png"),
                    "--save-tensor", path("\(folder).safetensors"),
                ], processes: processes)
            XCTAssertEqual(result.status, 0, "\(processes) processes: \(result.stderr)")
        }
        let one = try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: path("one.safetensors"))).tensors["sample"])
        let two = try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: path("two.safetensors"))).tensors["sample"])
        XCTAssertEqual(one.shape, [5, 1, 28, 28])
        XCTAssertEqual(two.shape, one.shape)
        let difference = zip(one.values, two.values).map { abs($0 - $1) }.max() ?? 1
        XCTAssertLessThan(difference, 1e-5)
        // The PNGs hold the same pixels, but for a value within that difference of a rounding
        // boundary, which lands one level apart (the batches of 5 and of 3 + 2 sum the GEMMs'
        // edge tiles in different orders): at most one level, in a handful of pixels.
        var differing = 0
        for index in 0..<5 {
            let name = String(format: "%04d.png", index)
            let a = try PNG.read(URL(fileURLWithPath: path("one/\(name)")))
            let b = try PNG.read(URL(fileURLWithPath: path("two/\(name)")))
            XCTAssertEqual([a.width, a.height, a.channels], [b.width, b.height, b.channels], name)
            for (u, v) in zip(a.pixels, b.pixels) where u != v {
                XCTAssertEqual(abs(Int(u) - Int(v)), 1, name)
                differing += 1
            }
        }
        XCTAssertLessThanOrEqual(differing, 5, "pixels one level apart")
    }
}

/// What a process learns from its launcher, and a build without MPI refusing to be one of many.
final class ProcessGroupLaunchTests: XCTestCase {
    func testTheLauncherEnvironmentNamesTheProcess() {
        XCTAssertNil(ProcessGroup.launch(environment: [:]))
        XCTAssertEqual(
            ProcessGroup.launch(environment: [
                "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            ]), ProcessGroup.Launch(rank: 3, size: 4, localRank: 1))
        XCTAssertEqual(
            ProcessGroup.launch(environment: ["PMI_SIZE": "2", "PMI_RANK": "1"]),
            ProcessGroup.Launch(rank: 1, size: 2, localRank: 1))
    }

    func testABuildWithoutMPIUnderMpirunSaysSo() throws {
        let environment = ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"]
        XCTAssertThrowsError(try ProcessGroup.start(command: "diffuse train", environment: environment, mpi: false)) { error in
            guard case DiffuseError.usage(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("built without MPI") && message.contains("--traits MPI"), message)
            XCTAssertFalse(message.contains("\n"))
        }
        // Alone, or a job of one, it is one process whatever the build.
        XCTAssertEqual(try ProcessGroup.start(command: "diffuse train", environment: [:], mpi: false).size, 1)
        let one = ["OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"]
        XCTAssertEqual(try ProcessGroup.start(command: "diffuse train", environment: one, mpi: false).size, 1)
    }
}
