// report.html (issue 13 item 3): a run writes one self-contained page; rendered by headless
// Chromium (Debian's `chromium`, which Tools/setup.sh installs), its screenshot shows the loss
// curve and the sample grids pixel for pixel.
import DataIO
import Foundation
import XCTest

final class RunReportCLITests: XCTestCase {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    func testTheReportRendersTheCurveAndTheGrids() throws {
        let work = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        try CLI.writeTinyDataset(to: work.appendingPathComponent("data"), count: 24)
        let run = work.appendingPathComponent("run").path
        let trained = try CLI.run([
            "train", "--model", "basic-unet", "--dataset", work.appendingPathComponent("data").path, "--batch-size", "4",
            "--epochs", "2", "--save-images-epochs", "1", "--log-every", "1", "--device", "cpu", "--quiet",
            "--output", run,
        ])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let html = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        // Self-contained: every image is inline and nothing is fetched.
        XCTAssertFalse(html.contains("src=\"http") || html.contains("src=\"file") || html.contains("<script"))
        XCTAssertTrue(html.contains("step 12 of 12"), "the status line")
        guard let chromium = Self.chromium else {
            throw XCTSkip("no chromium: `sudo apt-get install chromium` (Tools/setup.sh installs it) to render the report")
        }
        let shot = work.appendingPathComponent("shot.png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1400",
            "--user-data-dir=" + work.appendingPathComponent("profile").path, "--screenshot=" + shot.path,
            "file://" + run + "/report.html",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let screen = try PNG.read(shot)
        XCTAssertEqual(screen.channels, 3)
        // The smoothed loss curve's blue (#08519c), give or take anti-aliasing.
        var blue = 0
        for p in 0..<(screen.width * screen.height) {
            let r = Int(screen.pixels[3 * p]), g = Int(screen.pixels[3 * p + 1]), b = Int(screen.pixels[3 * p + 2])
            if abs(r - 8) + abs(g - 81) + abs(b - 156) < 40 { blue += 1 }
        }
        XCTAssertGreaterThan(blue, 300, "the smoothed loss curve")
        // Each epoch's grid appears as it is (scaled by a whole factor).
        for epoch in ["epoch-001.png", "epoch-002.png"] {
            let grid = try PNG.read(URL(fileURLWithPath: run + "/samples/" + epoch))
            XCTAssertTrue(Self.contains(screen, grid), "\(epoch) is not on the screenshot")
        }
        // And the search finds nothing that is not there.
        let noise = Image8(width: 60, height: 8, channels: 3, pixels: (0..<1440).map { UInt8(($0 * 97 + 13) % 251) })
        XCTAssertFalse(Self.contains(screen, noise))
    }

    /// Whether a middle row of `image`'s first tile, each pixel repeated `scale` times for some
    /// scale 1-4, appears somewhere in `screen`.
    static func contains(_ screen: Image8, _ image: Image8) -> Bool {
        let row = image.height / 4
        let rgb = (0..<min(image.width, 48)).map { x -> [UInt8] in
            let p = (row * image.width + x) * image.channels
            return image.channels == 1 ? Array(repeating: image.pixels[p], count: 3) : Array(image.pixels[p..<p + 3])
        }
        for scale in 1...4 {
            let pattern = rgb.flatMap { pixel in Array(repeating: pixel, count: scale).flatMap { $0 } }
            let length = pattern.count / 3
            for y in 0..<screen.height {
                let base = y * screen.width * 3
                for x in 0...(screen.width - length) where screen.pixels[base + 3 * x] == pattern[0] {
                    if screen.pixels[(base + 3 * x)..<(base + 3 * (x + length))].elementsEqual(pattern) { return true }
                }
            }
        }
        return false
    }
}
