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
        // (model, columns, tile side, title): the BasicUNet run is 28x28 grey, tiny-ddpm 8x8 RGB.
        let basicTitle = "Predictions (corruption amount under each column)"
        let ddpmTitle = "Predictions (timestep under each column)"
        for (model, count, side, title) in [
            (run, 5, 28, basicTitle), (fixtures.appendingPathComponent("tiny-ddpm").path, 4, 8, ddpmTitle),
            ("diffuse-test/tiny-ddpm", 3, 8, ddpmTitle),
        ] {
            let output = work.appendingPathComponent("\(count).png")
            let result = try CLI.run(
                [
                    "visualize", model, "--dataset", data, "--count", "\(count)", "--device", "cpu",
                    "--output", output.path,
                ], environment: environment)
            XCTAssertEqual(result.status, 0, result.stderr)
            let png = try PNG.read(output)
            // The grid of three rows (clean, noised, predicted) with a 2-pixel border, the row names
            // left of it ("prediction" is 59 pixels of 6-pixel glyphs, then 8), the title above
            // (7-pixel glyphs, 10 below) and the column labels under it (7 + 6).
            let gridWidth = count * (side + 2) + 2, gridHeight = 3 * (side + 2) + 2
            XCTAssertEqual(png.width, max(67 + gridWidth, title.count * 6 - 1 + 8), model)
            XCTAssertEqual(png.height, 17 + gridHeight + 13, model)
            XCTAssertEqual(png.channels, 3)
            // Words are drawn: dark pixels in the row-name margin and in the label band.
            func dark(x: Range<Int>, y: Range<Int>) -> Int {
                y.reduce(0) { sum, row in sum + x.filter { png.pixels[(row * png.width + $0) * 3] < 100 }.count }
            }
            XCTAssertGreaterThan(dark(x: 0..<60, y: 17..<(17 + gridHeight)), 50, "row names")
            XCTAssertGreaterThan(dark(x: 67..<png.width, y: (17 + gridHeight)..<png.height), 20, "column labels")
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
