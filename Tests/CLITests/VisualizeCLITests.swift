// `diffuse visualize` on a BasicUNet run, a diffusers pipeline folder and a Hub id.
import DataIO
import Foundation
import Hub
import HubTestServer
import XCTest

final class VisualizeCLITests: XCTestCase {
    let fixtures = CLI.fixtures

    func testFiguresForEveryKindOfModel() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("data").path
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 8)
        let run = work.appendingPathComponent("run").path
        let trained = try CLI.run([
            "train", "--dataset", data, "--max-steps", "1", "--batch-size", "4", "--device", "cpu",
            "--quiet", "--output", run,
        ])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let server = try HubFileServer(repos: ["diffuse-test/tiny-ddpm": fixtures.appendingPathComponent("tiny-ddpm")])
        try server.start()
        defer { server.stop() }
        let environment = ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": work.appendingPathComponent("hub").path]
        // (model, columns, tile side, channels): the BasicUNet run is 28x28 grey, tiny-ddpm 8x8 RGB.
        for (model, count, side, channels) in [
            (run, 5, 28, 1), (fixtures.appendingPathComponent("tiny-ddpm").path, 4, 8, 3),
            ("diffuse-test/tiny-ddpm", 3, 8, 3),
        ] {
            let output = work.appendingPathComponent("\(count).png")
            let result = try CLI.run(
                [
                    "visualize", model, "--dataset", data, "--count", "\(count)", "--device", "cpu",
                    "--output", output.path,
                ], environment: environment)
            XCTAssertEqual(result.status, 0, result.stderr)
            let png = try PNG.read(output)
            XCTAssertEqual(png.width, count * (side + 2) + 2, model)
            XCTAssertEqual(png.height, 3 * (side + 2) + 2, "three rows: clean, noised, predicted")
            XCTAssertEqual(png.channels, channels)
        }
        let again = try CLI.run([
            "visualize", run, "--dataset", data, "--count", "5",
            "--output", work.appendingPathComponent("5.png").path,
        ])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
        let badCount = try CLI.run(["visualize", run, "--dataset", data, "--count", "0"])
        XCTAssertEqual(badCount.status, 2)
    }
}
