// `diffuse sample` on a pipeline folder written by diffusers' save_pretrained (Tests/Fixtures/tiny-ddpm,
// Tools/reference/pipeline.py): DDIM from given noise equals diffusers' own loop.
import DataIO
import Foundation
import XCTest

final class DiffusersPipelineCLITests: XCTestCase {
    let fixtures = CLI.fixtures

    func testDDIMFromGivenNoiseMatchesDiffusersOnEveryDevice() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let expected = try XCTUnwrap(
            Safetensors.read(fixtures.appendingPathComponent("tiny-ddpm-ddim10.safetensors")).tensors["sample"])
        for device in ["cpu", "opencl"] {
            let tensor = work.appendingPathComponent("\(device).safetensors").path
            let result = try CLI.run([
                "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", "ddim",
                "--steps", "10", "--device", device,
                "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
                "--save-tensor", tensor, "--output", work.appendingPathComponent("\(device).png").path,
            ])
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

    /// The tutorial's era of pipelines, pickled weights only: `sample` reads the .bin and matches
    /// diffusers' loop as the safetensors folder does; `convert` writes safetensors weights and
    /// byte-identical configs that sample the same; a hostile pickle converts to nothing.
    func testPickledPipelinesSampleAndConvert() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let pickled = fixtures.appendingPathComponent("pickle/tiny-ddpm-bin")
        func sample(_ model: String, _ name: String) throws -> [Float] {
            let tensor = work.appendingPathComponent("\(name).safetensors").path
            let result = try CLI.run([
                "sample", model, "--scheduler", "ddim", "--steps", "10", "--device", "cpu",
                "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
                "--save-tensor", tensor, "--output", work.appendingPathComponent("\(name).png").path,
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            return try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"]).values
        }
        let reference = try sample(fixtures.appendingPathComponent("tiny-ddpm").path, "safetensors")
        XCTAssertEqual(try sample(pickled.path, "bin"), reference)
        let converted = work.appendingPathComponent("converted")
        let result = try CLI.run(["convert", pickled.path, "--output", converted.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath: converted.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path))
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: converted.appendingPathComponent("unet/diffusion_pytorch_model.bin").path))
        for file in ["model_index.json", "unet/config.json", "scheduler/scheduler_config.json"] {
            XCTAssertEqual(
                try Data(contentsOf: converted.appendingPathComponent(file)),
                try Data(contentsOf: pickled.appendingPathComponent(file)),
                file)
        }
        XCTAssertEqual(try sample(converted.path, "converted"), reference)
        let again = try CLI.run(["convert", pickled.path, "--output", converted.path])
        XCTAssertEqual(again.status, 2, "an existing output needs --overwrite")
        // A pickle that calls a global: refused in one line, no folder left behind.
        let hostile = work.appendingPathComponent("hostile")
        try FileManager.default.copyItem(at: pickled, to: hostile)
        let bin = hostile.appendingPathComponent("unet/diffusion_pytorch_model.bin")
        try FileManager.default.removeItem(at: bin)
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("pickle/evil_builtins_eval.pt"), to: bin)
        let refused = try CLI.run(["convert", hostile.path, "--output", work.appendingPathComponent("out").path])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("the global builtins.eval is not allowed"), refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("out").path))
    }

    /// Sampling a person can watch: progress lines reach a pipe as they are written, each image can
    /// be its own PNG, and a many-step trajectory draws the rows asked for, not one per step.
    func testSamplingShowsProgressAndWritesImagesAndATrajectoryOfChosenSteps() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let images = work.appendingPathComponent("images")
        let trajectory = work.appendingPathComponent("trajectory.png")
        let result = try CLI.run([
            "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--steps", "40", "--batch-size", "3",
            "--device", "cpu", "--save-images", images.path, "--trajectory", trajectory.path, "--trajectory-steps", "4",
            "--output", work.appendingPathComponent("grid.png").path,
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let steps = result.stdout.split(separator: "\n").filter { $0.hasPrefix("step ") }
        XCTAssertEqual(steps.count, 20, result.stdout)  // a pipe gets about twenty lines, the last step always
        XCTAssertTrue(steps.last?.hasPrefix("step 40/40") == true, result.stdout)
        XCTAssertTrue(steps.last?.contains("steps/s") == true, result.stdout)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: images.path).sorted(), ["0000.png", "0001.png", "0002.png"])
        let one = try PNG.read(images.appendingPathComponent("0001.png"))
        let grid = try PNG.read(trajectory)
        let side = one.height
        XCTAssertLessThan(grid.height, 5 * (side + 4), "4 rows, not 40")
        XCTAssertGreaterThanOrEqual(grid.height, 4 * side)
        // The same folder again holds our images: refused before the work without --overwrite.
        let again = try CLI.run([
            "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--steps", "2", "--batch-size", "3",
            "--device", "cpu", "--save-images", images.path, "--output", work.appendingPathComponent("g2.png").path,
        ])
        XCTAssertEqual(again.status, 2, again.stderr)
        XCTAssertTrue(again.stderr.contains("already holds 0000.png"), again.stderr)
        XCTAssertFalse(again.stdout.contains("sampling on"), again.stdout)
    }

    /// --scheduler takes diffusers' class name too: Euler from the DDPM folder's config, as
    /// EulerDiscreteScheduler.from_config, equals diffusers' loop from the same noise.
    func testEulerByClassNameMatchesDiffusers() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let tensor = work.appendingPathComponent("euler.safetensors").path
        let result = try CLI.run([
            "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", "EulerDiscreteScheduler",
            "--steps", "7", "--device", "cpu", "--quiet",
            "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
            "--save-tensor", tensor, "--output", work.appendingPathComponent("euler.png").path,
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertSavedSample(tensor, equals: "euler7.sample", of: "euler.safetensors")
        let eta = try CLI.run([
            "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", "euler", "--eta", "0.5",
            "--device", "cpu", "--output", work.appendingPathComponent("eta.png").path,
        ])
        XCTAssertEqual(eta.status, 2, eta.stderr)
        XCTAssertTrue(eta.stderr.contains("--eta applies to the DDIM sampler, not euler"), eta.stderr)
    }

    /// DPM-Solver++ by its common names and by class name, against diffusers' loop; Karras sigmas on
    /// the cosine schedule would need fractional timesteps, refused as an input error.
    func testDPMSolverByNameMatchesDiffusers() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        for (name, steps, key) in [("DPMSolverMultistepScheduler", 7, "2m_7"), ("dpm++3m", 20, "3m_20")] {
            let tensor = work.appendingPathComponent("\(key).safetensors").path
            let result = try CLI.run([
                "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", name, "--steps", "\(steps)",
                "--device", "cpu", "--quiet", "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
                "--save-tensor", tensor, "--output", work.appendingPathComponent("\(key).png").path,
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            try assertSavedSample(tensor, equals: "\(key).sample", of: "dpm_solver.safetensors", name)
        }
        let karras = try CLI.run([
            "sample", fixtures.appendingPathComponent("tiny-ddpm").path, "--scheduler", "dpm++2m-karras",
            "--device", "cpu", "--output", work.appendingPathComponent("karras.png").path,
        ])
        XCTAssertEqual(karras.status, 2, karras.stderr)
        XCTAssertTrue(karras.stderr.contains("use_karras_sigmas with beta_schedule squaredcos_cap_v2"), karras.stderr)
    }

    /// --scheduler-option sets keys as from_config(config, **kwargs): dpm++2m with solver_order=3 is
    /// diffusers' dpm++3m; an unknown key, a bad value and a key kept at its default are refused.
    func testSchedulerOptionsOverrideTheConfigAsFromConfigDoes() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let folder = fixtures.appendingPathComponent("tiny-ddpm").path
        let tensor = work.appendingPathComponent("o.safetensors").path
        let result = try CLI.run([
            "sample", folder, "--scheduler", "dpm++2m", "--scheduler-option", "solver_order=2",
            "--scheduler-option", "solver_order=3", "--steps", "20", "--device", "cpu", "--quiet",
            "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
            "--save-tensor", tensor, "--output", work.appendingPathComponent("o.png").path,
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        try assertSavedSample(tensor, equals: "3m_20.sample", of: "dpm_solver.safetensors")
        // A list value: UniPC with its corrector off after steps 0 and 3, by class name.
        let unipc = try CLI.run([
            "sample", folder, "--scheduler", "UniPCMultistepScheduler", "--scheduler-option", "disable_corrector=[0, 3]",
            "--steps", "10", "--device", "cpu", "--quiet",
            "--init-noise", fixtures.appendingPathComponent("tiny-ddpm-noise.safetensors").path,
            "--save-tensor", tensor, "--output", work.appendingPathComponent("o.png").path, "--overwrite",
        ])
        XCTAssertEqual(unipc.status, 0, unipc.stderr)
        try assertSavedSample(tensor, equals: "corrector_off_10.sample", of: "unipc.safetensors")
        for (options, message) in [
            (["--scheduler", "dpm++2m", "--scheduler-option", "bogus=1"], "--scheduler-option bogus: not a key"),
            (["--scheduler", "dpm++2m", "--scheduler-option", "solver_order=7"], "solver_order=7: expected 1, 2 or 3"),
            (["--scheduler", "ddim", "--scheduler-option", "timestep_spacing=sideways"], "timestep_spacing: 'sideways'"),
            (["--scheduler", "euler", "--scheduler-option", "use_karras_sigmas=true"], "at diffusers' default (false)"),
            (["--scheduler-option", "solver_order"], "--scheduler-option takes KEY=VALUE"),
        ] {
            let refused = try CLI.run(
                ["sample", folder] + options + ["--device", "cpu", "--output", work.appendingPathComponent("r.png").path])
            XCTAssertEqual(refused.status, 2, "\(options): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains(message), "\(options): \(refused.stderr)")
        }
    }

    func testDDPMSamplingIsSeededAndOptionsAreChecked() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let folder = fixtures.appendingPathComponent("tiny-ddpm").path
        var outputs: [[Float]] = []
        for name in ["a", "b"] {
            let tensor = work.appendingPathComponent("\(name).safetensors").path
            let result = try CLI.run([
                "sample", folder, "--steps", "20", "--batch-size", "3", "--seed", "4",
                "--device", "cpu", "--save-tensor", tensor,
                "--output", work.appendingPathComponent("\(name).png").path,
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            outputs.append(try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"]).values)
        }
        XCTAssertEqual(outputs[0], outputs[1])
        XCTAssertEqual(outputs[0].count, 3 * 3 * 8 * 8)
        let bad = try CLI.run(["sample", folder, "--scheduler", "lms", "--output", work.appendingPathComponent("c.png").path])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--scheduler"), bad.stderr)
    }
}

final class UNet2DTrainCLITests: XCTestCase {
    func testTrainUNet2DWritesADiffusersPipelineThatSamples() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 16)
        let config =
            #"{"_class_name": "UNet2DModel", "in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": "#
            + #"[8, 16], "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "#
            + #""UpBlock2D"], "norm_num_groups": 4, "attention_head_dim": 4}"#
        try Data(config.utf8).write(to: work.appendingPathComponent("unet.json"))
        let run = work.appendingPathComponent("run").path
        let trained = try CLI.run([
            "train", "--model", "unet2d", "--config", work.appendingPathComponent("unet.json").path,
            "--dataset", work.appendingPathComponent("data").path, "--max-steps", "3",
            "--batch-size", "8", "--log-every", "1", "--device", "cpu", "--quiet",
            "--prediction-type", "v_prediction", "--output", run,
        ])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let index = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: run + "/model_index.json"))) as? [String: Any])
        XCTAssertEqual(index["_class_name"] as? String, "DDPMPipeline")
        let scheduler = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: run + "/scheduler/scheduler_config.json"))) as? [String: Any])
        XCTAssertEqual(scheduler["beta_schedule"] as? String, "squaredcos_cap_v2")
        XCTAssertEqual(scheduler["prediction_type"] as? String, "v_prediction")
        let unet = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: run + "/unet/config.json"))) as? [String: Any])
        XCTAssertEqual(unet["sample_size"] as? Int, 28)
        XCTAssertTrue(unet["attn_norm_num_groups"] is NSNull, "unset keys are written as null, as diffusers does")
        let weights = try Safetensors.read(URL(fileURLWithPath: run + "/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertNotNil(weights.tensors["down_blocks.1.attentions.0.to_q.weight"])
        XCTAssertEqual(try String(contentsOfFile: run + "/log.jsonl", encoding: .utf8).split(separator: "\n").count, 3)
        let sampled = try CLI.run([
            "sample", run, "--scheduler", "ddim", "--steps", "5", "--batch-size", "2",
            "--device", "cpu", "--output", work.appendingPathComponent("s.png").path,
        ])
        XCTAssertEqual(sampled.status, 0, sampled.stderr)
        let bad = try CLI.run([
            "train", "--model", "unet2d", "--prediction-type", "noise",
            "--dataset", work.appendingPathComponent("data").path,
            "--output", work.appendingPathComponent("x").path,
        ])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--prediction-type"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("x").path), "nothing written")
    }
}

extension DiffusersPipelineCLITests {
    /// The `sample` tensor `--save-tensor` wrote equals `key` of a fixture file within 1e-5 of its
    /// largest magnitude (the tolerance the library-level loop tests use).
    func assertSavedSample(
        _ tensor: String, equals key: String, of fixture: String, _ message: String = "", file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let sample = try XCTUnwrap(Safetensors.read(URL(fileURLWithPath: tensor)).tensors["sample"]).values
        let reference = try XCTUnwrap(Safetensors.read(fixtures.appendingPathComponent(fixture)).tensors[key]).values
        let scale = reference.map { abs($0) }.max() ?? 1
        XCTAssertLessThan(
            (zip(sample, reference).map { abs($0 - $1) }.max() ?? .infinity) / scale, 1e-5, message, file: file, line: line)
    }
}
