// A hostile Hub repository must not write outside the cache: names read from model_index.json,
// server answers and symlinks in the cache are validated before they become paths (issue 10, item 1).
import DataIO
import Foundation
import Hub
import HubTestServer
import XCTest

final class HubPathEscapeTests: XCTestCase {
    let fixtures = CLI.fixtures
    var work: URL!
    var server: HubFileServer!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
    }

    override func tearDownWithError() throws {
        server?.stop()
        try? FileManager.default.removeItem(at: work)
    }

    var cache: URL { work.appendingPathComponent("hub-cache") }

    /// tiny-ddpm with `extra` merged into its model_index.json, served as evil/escape.
    func serveHostile(index extra: [String: Any]) throws {
        let folder = work.appendingPathComponent("served")
        try FileManager.default.copyItem(at: fixtures.appendingPathComponent("tiny-ddpm"), to: folder)
        let indexURL = folder.appendingPathComponent("model_index.json")
        var index = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as! [String: Any]
        index.merge(extra) { $1 }
        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        server = try HubFileServer(repos: ["evil/escape": folder])
        // Whatever the client asks for under the hostile name, the server has it.
        let config = try [UInt8](Data(contentsOf: folder.appendingPathComponent("unet/config.json")))
        let weights = try [UInt8](Data(contentsOf: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")))
        server.lyingAnswers = ["x/y/config.json": config, "x/y/diffusion_pytorch_model.safetensors": weights]
        try server.start()
    }

    func sample() throws -> CommandResult {
        try CLI.run(
            [
                "sample", "evil/escape", "--scheduler", "ddim", "--steps", "2", "--batch-size", "1",
                "--device", "cpu", "--output", work.appendingPathComponent("out.png").path,
            ],
            in: work, environment: ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": cache.path, "HF_TOKEN": ""])
    }

    func testAComponentNamedWithDotDotWritesNothingOutsideTheCache() throws {
        // A file the escape would replace (cache/models--evil--escape/snapshots/<commit>/../../../../x/y/config.json).
        let victim = work.appendingPathComponent("x/y/config.json")
        try FileManager.default.createDirectory(at: victim.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim)
        try serveHostile(index: ["../../../../x/y": ["diffusers", "UNet2DModel"]])

        let result = try sample()
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("../../../../x/y") && result.stderr.contains("model_index.json"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("evil/escape/model_index.json"), result.stderr)
        XCTAssertEqual(try? String(contentsOf: victim, encoding: .utf8), "precious", "the file outside the cache was replaced")
        XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(atPath: victim.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("out.png").path))
        XCTAssertFalse(
            server.requests.contains { $0.path.hasSuffix("config.json") && $0.path.contains("x/y") },
            "the hostile name must be refused before any request is made for it")
    }

    func testComponentNamesWithSeparatorsOrOddCharactersAreRefused() throws {
        for name in ["unet/../../x", "a b", "/abs", "..", "unet\\x", "ü"] {
            try? FileManager.default.removeItem(at: work.appendingPathComponent("served"))
            server?.stop()
            try serveHostile(index: [name: ["diffusers", "UNet2DModel"]])
            let result = try sample()
            XCTAssertEqual(result.status, 2, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("component"), "\(name): \(result.stderr)")
            let outside = try FileManager.default.contentsOfDirectory(atPath: work.path).sorted()
            XCTAssertEqual(
                outside,
                ["hub-cache", "served"].filter { FileManager.default.fileExists(atPath: work.appendingPathComponent($0).path) },
                "\(name): something was written beside the cache")
        }
    }

    func testASymlinkedComponentFolderInTheCacheIsNotWrittenThrough() throws {
        // A cache already holding a snapshot whose unet/ points outside the cache (planted by an
        // earlier escape, or by hand) must not be written through when the file is linked again.
        try serveHostile(index: [:])
        let commit = server.commit(of: "evil/escape")!
        let snapshot = cache.appendingPathComponent("models--evil--escape/snapshots/\(commit)")
        let outside = work.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: snapshot.appendingPathComponent("unet"), withDestinationURL: outside)

        let result = try sample()
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(result.stderr.contains("outside"), result.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside.path), [], "written through the symlink")
    }
}
