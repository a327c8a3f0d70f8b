// `diffuse sample owner/name` against a loopback Hub (HubFileServer) with HF_ENDPOINT pointing at it:
// download then sample, the cache alone once the server is gone, offline mode, an interrupted
// transfer, pickled weights, and a cache written by Python's huggingface_hub
// (Tests/Fixtures/hub-cache, Tools/reference/hub_cache.py).
import DataIO
import Foundation
import Hub
import HubTestServer
import XCTest

final class HubCLITests: XCTestCase {
    let fixtures = CLI.fixtures
    var work: URL!
    var server: HubFileServer!

    override func setUpWithError() throws {
        work = try CLI.temporaryDirectory()
        server = try HubFileServer(repos: ["diffuse-test/tiny-ddpm": fixtures.appendingPathComponent("tiny-ddpm")])
        try server.start()
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(at: work)
    }

    var cache: URL { work.appendingPathComponent("hub-cache") }

    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": cache.path, "HF_TOKEN": ""].merging(extra) { $1 }
    }

    /// Samples 2 images in 3 DDIM steps on the CPU and returns the result and the saved tensor.
    func sample(_ model: String, name: String, environment: [String: String]) throws -> (CommandResult, [Float]?) {
        let tensor = work.appendingPathComponent("\(name).safetensors")
        let result = try CLI.run(
            [
                "sample", model, "--scheduler", "ddim", "--steps", "3", "--batch-size", "2",
                "--device", "cpu", "--save-tensor", tensor.path,
                "--output", work.appendingPathComponent("\(name).png").path,
            ],
            in: work, environment: environment)
        return (result, try? Safetensors.read(tensor).tensors["sample"]?.values)
    }

    func gets() -> Int { server.requests.filter { $0.method == "GET" }.count }

    func testDownloadsOnceThenSamplesFromTheCacheWithTheServerStopped() throws {
        let (local, expected) = try sample(
            fixtures.appendingPathComponent("tiny-ddpm").path, name: "local",
            environment: environment())
        XCTAssertEqual(local.status, 0, local.stderr)
        XCTAssertEqual(server.requests.count, 0, "a local folder must not touch the network")

        let (first, fetched) = try sample("diffuse-test/tiny-ddpm", name: "first", environment: environment())
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(fetched, expected)
        XCTAssertEqual(gets(), 4, "model_index.json, two configs and the weights")
        XCTAssertTrue(first.stdout.contains("fetched diffuse-test/tiny-ddpm"), first.stdout)

        server.stop()
        let (second, cached) = try sample("diffuse-test/tiny-ddpm", name: "second", environment: environment())
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(cached, expected)
        XCTAssertTrue(second.stdout.contains("unreachable; using the cached"), second.stdout)
        let (offline, _) = try sample(
            "diffuse-test/tiny-ddpm", name: "offline", environment: environment(["HF_HUB_OFFLINE": "1"]))
        XCTAssertEqual(offline.status, 0, offline.stderr)
    }

    func testOfflineWithEmptyCacheFailsCleanly() throws {
        let (result, _) = try sample("diffuse-test/tiny-ddpm", name: "x", environment: environment(["HF_HUB_OFFLINE": "1"]))
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("HF_HUB_OFFLINE") && result.stderr.contains("not in the Hub cache"), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertEqual(server.requests.count, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.path))
    }

    func testInterruptedTransferLeavesNoFileInTheCache() throws {
        server.interruptedPaths = ["unet/diffusion_pytorch_model.safetensors"]
        let (result, _) = try sample("diffuse-test/tiny-ddpm", name: "x", environment: environment())
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("interrupted"), result.stderr)
        let files = FileManager.default.enumerator(atPath: cache.path)?.allObjects as? [String] ?? []
        let written = files.filter {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: cache.appendingPathComponent($0).path, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }
        XCTAssertEqual(written, [], "nothing may be left in the cache")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("x.png").path))
    }

    func testUnknownRepositoryAndRevisionAreOneLineErrors() throws {
        for (model, expected) in [
            ("nobody/nothing", "was not found"), ("diffuse-test/tiny-ddpm@v2", "no revision 'v2'"),
            ("bad--name/x", "neither an existing folder"), ("no-such-folder", "does not exist"),
        ] {
            let (result, _) = try sample(model, name: "x", environment: environment())
            XCTAssertEqual(result.status, 2, model)
            XCTAssertTrue(result.stderr.contains(expected), "\(model): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        }
    }

    /// A revision with only diffusion_pytorch_model.bin (the tutorial's era) is fetched and sampled
    /// through the restricted unpickler, as its safetensors twin samples; safetensors wins where both
    /// exist; a pickle that calls a global is refused in one line, having run nothing.
    func testPickleOnlyRepositoriesSampleAsTheirSafetensorsTwins() throws {
        let pickled = fixtures.appendingPathComponent("pickle/tiny-ddpm-bin")
        let hostile = work.appendingPathComponent("hostile")
        try FileManager.default.copyItem(at: pickled, to: hostile)
        try FileManager.default.removeItem(at: hostile.appendingPathComponent("unet/diffusion_pytorch_model.bin"))
        try FileManager.default.copyItem(
            at: fixtures.appendingPathComponent("pickle/evil_os_system.pt"),
            to: hostile.appendingPathComponent("unet/diffusion_pytorch_model.bin"))
        server.stop()
        server = try HubFileServer(repos: [
            "old/pickled": pickled, "old/hostile": hostile,
            "diffuse-test/tiny-ddpm":
                fixtures
                .appendingPathComponent("tiny-ddpm"),
        ])
        try server.start()
        let (twin, expected) = try sample("diffuse-test/tiny-ddpm", name: "twin", environment: environment())
        XCTAssertEqual(twin.status, 0, twin.stderr)
        let (result, values) = try sample("old/pickled", name: "x", environment: environment())
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(server.requests.contains { $0.path.hasSuffix("unet/diffusion_pytorch_model.bin") })
        XCTAssertEqual(try XCTUnwrap(values), try XCTUnwrap(expected), "the .bin samples exactly as the safetensors file")
        let (refused, _) = try sample("old/hostile", name: "y", environment: environment())
        XCTAssertEqual(refused.status, 2, refused.stderr)
        let errors = refused.stderr.split(separator: "\n").filter { $0.hasPrefix("error:") }
        XCTAssertEqual(errors.count, 1, refused.stderr)
        XCTAssertTrue(errors.first?.contains("the global os.system is not allowed") == true, refused.stderr)
    }

    func testAnExistingPathWinsOverARepositoryOfTheSameName() throws {
        let nested = work.appendingPathComponent("diffuse-test")
        try FileManager.default.createDirectory(at: nested, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: fixtures.appendingPathComponent("tiny-ddpm"), to: nested.appendingPathComponent("tiny-ddpm"))
        let (result, _) = try sample("diffuse-test/tiny-ddpm", name: "x", environment: environment())
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(server.requests.count, 0)
    }

    func testReadsACacheWrittenByPythonsHuggingfaceHub() throws {
        // Copy the committed tree (symlinks stay symlinks) so the test cannot change it.
        let copy = Process()
        copy.executableURL = URL(fileURLWithPath: "/bin/cp")
        copy.arguments = ["-a", fixtures.appendingPathComponent("hub-cache").path, cache.path]
        try copy.run()
        copy.waitUntilExit()
        XCTAssertEqual(copy.terminationStatus, 0)
        let link = cache.appendingPathComponent("models--diffuse-test--tiny-ddpm/snapshots")
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: link.path), [server.commit(of: "diffuse-test/tiny-ddpm")!],
            "the fixture cache was written for the same commit the server serves")
        let (expectedRun, expected) = try sample(
            fixtures.appendingPathComponent("tiny-ddpm").path, name: "local",
            environment: environment())
        XCTAssertEqual(expectedRun.status, 0, expectedRun.stderr)
        let (result, fetched) = try sample("diffuse-test/tiny-ddpm", name: "python-cache", environment: environment())
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(fetched, expected)
        XCTAssertEqual(gets(), 0, "everything was in Python's cache; nothing may be downloaded")
        XCTAssertGreaterThan(server.requests.count, 0, "online, the revision is still checked with HEAD")
    }
}
