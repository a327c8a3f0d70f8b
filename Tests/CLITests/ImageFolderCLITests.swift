// `diffuse train --dataset DIR` on a folder of images built here: PNG and JPEG, odd sizes, grey
// and RGB, a corrupt file and class sub-folders; sizes from --resolution or the config, crops
// and flips that resume bit-exactly, and the refusals.
import DataIO
import Foundation
import XCTest

final class ImageFolderCLITests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        try Self.writeImageFolder(to: work.appendingPathComponent("pictures"))
        let config =
            #"{"in_channels": 3, "out_channels": 3, "layers_per_block": 1, "block_out_channels": [8, 16], "down_block_types": "#
            + #"["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"], "norm_num_groups": 4, "#
            + #""attention_head_dim": 4"#
        try Data((config + "}").utf8).write(to: work.appendingPathComponent("rgb.json"))
        try Data((config + #", "sample_size": 12}"#).utf8).write(to: work.appendingPathComponent("rgb12.json"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    func path(_ name: String) -> String { work.appendingPathComponent(name).path }

    /// 22 readable images in two classes (sizes 13-47 pixels a side, RGB and grey PNGs, two JPEGs
    /// from the fixtures), one PNG cut short and one text file.
    static func writeImageFolder(to folder: URL) throws {
        for (index, name) in ["cats", "dogs"].enumerated() {
            let classFolder = folder.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            for i in 0..<10 {
                let width = 13 + (i * 7 + index * 5) % 35, height = 15 + (i * 11) % 33
                let channels = i % 3 == 0 ? 1 : 3
                var pixels = [UInt8](repeating: 0, count: width * height * channels)
                for p in pixels.indices { pixels[p] = UInt8((p * (7 + i) + index * 91) % 256) }
                try PNG.write(
                    Image8(width: width, height: height, channels: channels, pixels: pixels),
                    to: classFolder.appendingPathComponent("image-\(i).png"))
            }
        }
        let jpegs = CLI.fixtures.appendingPathComponent("image-folder")
        try FileManager.default.copyItem(
            at: jpegs.appendingPathComponent("boots/b.JPG"), to: folder.appendingPathComponent("cats/photo.JPG"))
        try FileManager.default.copyItem(
            at: jpegs.appendingPathComponent("coats/more/f.jpeg"), to: folder.appendingPathComponent("dogs/grey.jpeg"))
        let whole = try Data(contentsOf: folder.appendingPathComponent("cats/image-1.png"))
        try whole.prefix(whole.count / 2).write(to: folder.appendingPathComponent("dogs/cut.png"))
        try Data("a note".utf8).write(to: folder.appendingPathComponent("dogs/README.txt"))
    }

    func train(_ arguments: [String]) throws -> CommandResult {
        try CLI.run(
            ["train", "--model", "unet2d", "--dataset", path("pictures"), "--batch-size", "8", "--device", "cpu", "--quiet"]
                + arguments)
    }

    func weights(_ run: String) throws -> [String: SafetensorsTensor] {
        try Safetensors.read(URL(fileURLWithPath: run + "/unet/diffusion_pytorch_model.safetensors")).tensors
    }

    func testAFolderOfImagesTrainsAClassConditionalRGBModelAndSamples() throws {
        let run = path("run")
        let result = try train([
            "--config", path("rgb.json"), "--resolution", "16", "--class-conditional", "--max-steps", "4", "--output", run,
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("on 23 images"), result.stdout)
        // What the run decided on its own is said: grey images converted, the cut file skipped.
        XCTAssertTrue(result.stderr.contains("converted 9 grey image(s) to RGB"), result.stderr)  // 8 PNGs, 1 JPEG
        XCTAssertTrue(result.stderr.contains("skipped") && result.stderr.contains("cut.png"), result.stderr)
        let config = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/unet/config.json")))
                as? [String: Any])
        XCTAssertEqual(config["sample_size"] as? Int, 16)
        XCTAssertEqual(config["num_class_embeds"] as? Int, 3, "two classes and the null class")
        let sampled = try CLI.run([
            "sample", run, "--scheduler", "ddim", "--steps", "2", "--batch-size", "2", "--class-labels", "0,1",
            "--guidance-scale", "2", "--device", "cpu", "--quiet", "--output", path("s.png"),
        ])
        XCTAssertEqual(sampled.status, 0, sampled.stderr)
        let image = try PNG.read(URL(fileURLWithPath: path("s.png")))
        XCTAssertEqual([image.width, image.height, image.channels], [2 * 16 + 3 * 2, 16 + 2 * 2, 3])
        // `visualize` takes the folder too, fitted to the model (16 pixels, RGB).
        let figure = try CLI.run([
            "visualize", run, "--dataset", path("pictures"), "--count", "4", "--device", "cpu", "--output", path("v.png"),
        ])
        XCTAssertEqual(figure.status, 0, figure.stderr)
        // Three rows of 16-pixel tiles with their borders, 17 pixels of title above and 13 of labels below.
        XCTAssertEqual(try PNG.read(URL(fileURLWithPath: path("v.png"))).height, 17 + 3 * 18 + 2 + 13)
    }

    func testTheConfigsSizeIsHonouredOrTheResolutionRefused() throws {
        let run = path("sized")
        let result = try train(["--config", path("rgb12.json"), "--max-steps", "1", "--output", run])
        XCTAssertEqual(result.status, 0, result.stderr)
        let config = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/unet/config.json")))
                as? [String: Any])
        XCTAssertEqual(config["sample_size"] as? Int, 12)
        let clash = try train(["--config", path("rgb12.json"), "--resolution", "16", "--max-steps", "1", "--output", path("x")])
        XCTAssertEqual(clash.status, 2, clash.stderr)
        XCTAssertTrue(clash.stderr.contains("--resolution 16") && clash.stderr.contains("sample_size 12"), clash.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("x")))
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: true)
        let empty = try CLI.run(["train", "--dataset", path("empty"), "--max-steps", "1", "--output", path("y")])
        XCTAssertEqual(empty.status, 2, empty.stderr)
        XCTAssertTrue(empty.stderr.contains("no readable PNG or JPEG"), empty.stderr)
    }

    /// Random crops and flips come from the run's stream, so a stopped and resumed run ends with
    /// the weights of the one that never stopped.
    func testCropsAndFlipsResumeExactly() throws {
        let common = [
            "--config", path("rgb.json"), "--resolution", "12", "--random-crop", "--random-flip", "--epochs", "2",
            "--checkpoint-every", "2",
        ]
        var result = try train(common + ["--output", path("whole")])
        XCTAssertEqual(result.status, 0, result.stderr)
        result = try train(common + ["--max-steps", "4", "--output", path("broken")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(try weights(path("whole")) == weights(path("broken")))
        result = try CLI.run(["train", "--resume", path("broken"), "--max-steps", "6", "--device", "cpu", "--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(try weights(path("whole")) == weights(path("broken")), "weights differ after the resume")
        // And the placements matter: the same run without them trains to other weights.
        result = try train(["--config", path("rgb.json"), "--resolution", "12", "--epochs", "2", "--output", path("plain")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(try weights(path("whole")) == weights(path("plain")))
    }
}
