// The Hub client against the loopback Hub look-alike: layout of the cache it writes, the cache
// alone once the server is gone, offline mode, interrupted transfers and the Hub's error answers.
import DiffuseCore
import Foundation
import Hub
import HubTestServer
import Tensor
import XCTest

final class HubFetchTests: XCTestCase {
    var scratch: URL!
    var server: HubFileServer!
    let repo = HubRepoID(owner: "diffuse-test", name: "tiny")

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hub-\(UUID().uuidString)")
        let folder = scratch.appendingPathComponent("repo")
        try write("{\"_class_name\": \"DDPMPipeline\"}\n", to: folder.appendingPathComponent("model_index.json"))
        try write("{\"sample_size\": 8}\n", to: folder.appendingPathComponent("unet/config.json"))
        let weights = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try Data(weights).write(to: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        server = try HubFileServer(repos: [repo.id: folder])
        try server.start()
    }

    override func tearDownWithError() throws {
        server?.stop()
        try? FileManager.default.removeItem(at: scratch)
    }

    func write(_ text: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func environment(offline: Bool = false, token: String? = nil) -> HubEnvironment {
        HubEnvironment(
            endpoint: server.endpoint, cache: HubCache(root: scratch.appendingPathComponent("cache")),
            token: token, offline: offline, showProgress: false)
    }

    let files = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]

    func fetchAll(_ environment: HubEnvironment, repo: HubRepoID? = nil) throws -> URL {
        let fetcher = HubSnapshotFetcher(repo: repo ?? self.repo, environment: environment)
        for file in files { _ = try fetcher.file(file) }
        return try fetcher.finish()
    }

    /// Every path under the cache with what it is (file bytes' hash, or link target).
    func listing(_ root: URL) -> [String: String] {
        var result: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return result }
        for case let path as String in walker {
            let full = root.appendingPathComponent(path).path
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: full) {
                result[path] = "-> " + target
            } else if let data = FileManager.default.contents(atPath: full) {
                result[path] = SHA256.hex([UInt8](data))
            } else {
                result[path] = "dir"
            }
        }
        return result
    }

    func testDownloadWritesHuggingfaceHubLayout() throws {
        let snapshot = try fetchAll(environment())
        let commit = try XCTUnwrap(server.commit(of: repo.id))
        let repoFolder = scratch.appendingPathComponent("cache/models--diffuse-test--tiny")
        XCTAssertEqual(snapshot.standardizedFileURL.path, repoFolder.appendingPathComponent("snapshots/\(commit)").path)
        XCTAssertEqual(try String(contentsOf: repoFolder.appendingPathComponent("refs/main"), encoding: .utf8), commit)
        let weights = try Data(contentsOf: scratch.appendingPathComponent("repo/unet/diffusion_pytorch_model.safetensors"))
        let sha = SHA256.hex([UInt8](weights))
        // LFS file: blob named by SHA-256; plain file: by git blob id; links are relative.
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(
                atPath: snapshot.appendingPathComponent("unet/diffusion_pytorch_model.safetensors").path), "../../../blobs/\(sha)"
        )
        let index = try Data(contentsOf: scratch.appendingPathComponent("repo/model_index.json"))
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(
                atPath: snapshot.appendingPathComponent("model_index.json").path), "../../blobs/\(SHA1.gitBlobID([UInt8](index)))"
        )
        XCTAssertEqual(try Data(contentsOf: snapshot.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")), weights)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: repoFolder.appendingPathComponent("blobs").path)
            .filter { $0.hasSuffix(".incomplete") }
        XCTAssertEqual(leftovers, [])
        // The LFS file came from the CDN port, and the CDN never saw a token.
        XCTAssertTrue(server.requests.contains { $0.path == "/lfs/\(sha)" })
    }

    func testSecondFetchDownloadsNothingAndWorksWithServerStopped() throws {
        let first = try fetchAll(environment())
        let gets = server.requests.filter { $0.method == "GET" }.count
        XCTAssertEqual(gets, 3)
        // Online again: only HEADs.
        XCTAssertEqual(try fetchAll(environment()), first)
        XCTAssertEqual(server.requests.filter { $0.method == "GET" }.count, gets)
        server.stop()
        let offlineFetcher = HubSnapshotFetcher(repo: repo, environment: environment())
        for file in files { _ = try offlineFetcher.file(file) }
        XCTAssertTrue(offlineFetcher.usingCacheOnly)
        XCTAssertEqual(try offlineFetcher.finish(), first)
        XCTAssertEqual(try fetchAll(environment(offline: true)), first)
    }

    func testAPinnedCommitInTheCacheNeedsNoRequest() throws {
        let first = try fetchAll(environment())
        let seen = server.requests.count
        let pinned = HubRepoID(owner: repo.owner, name: repo.name, revision: try XCTUnwrap(server.commit(of: repo.id)))
        XCTAssertEqual(try fetchAll(environment(), repo: pinned), first)
        XCTAssertEqual(server.requests.count, seen)
    }

    func testOfflineWithEmptyCacheSaysWhatIsMissing() throws {
        let fetcher = HubSnapshotFetcher(repo: repo, environment: environment(offline: true))
        XCTAssertThrowsError(try fetcher.file("model_index.json")) { error in
            XCTAssertEqual((error as? DiffuseError)?.exitCode, 2)
            let text = "\(error)"
            XCTAssertTrue(text.contains("HF_HUB_OFFLINE") && text.contains("diffuse-test/tiny"), text)
        }
        XCTAssertTrue(server.requests.isEmpty, "offline mode must not touch the network")
        XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("cache").path))
    }

    func testInterruptedTransferLeavesCacheAsItWas() throws {
        // A cache that already holds another model, to see it is left untouched too.
        let cache = scratch.appendingPathComponent("cache")
        try write("x", to: cache.appendingPathComponent("models--other--model/refs/main"))
        let before = listing(cache)
        server.interruptedPaths = ["unet/diffusion_pytorch_model.safetensors"]
        XCTAssertThrowsError(try fetchAll(environment())) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("interrupted") && text.contains("diffusion_pytorch_model.safetensors"), text)
            XCTAssertEqual((error as? DiffuseError)?.exitCode, 2)
        }
        XCTAssertEqual(listing(cache).filter { !$0.key.hasSuffix("blobs") && !$0.key.hasSuffix("tiny") }, before)
        server.interruptedPaths = []
        XCTAssertNoThrow(try fetchAll(environment()))
    }

    func testHubErrorsAreOneLineInputErrors() throws {
        let cases: [(HubRepoID, String, String)] = [
            (HubRepoID(owner: "nobody", name: "nothing"), "model_index.json", "not found"),
            (HubRepoID(owner: "diffuse-test", name: "tiny", revision: "v9"), "model_index.json", "no revision 'v9'"),
            (repo, "unet/missing.json", "has no file unet/missing.json"),
        ]
        for (target, file, expected) in cases {
            let fetcher = HubSnapshotFetcher(repo: target, environment: environment())
            XCTAssertThrowsError(try fetcher.file(file)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(expected), text)
                XCTAssertFalse(text.contains("\n"))
                XCTAssertEqual((error as? DiffuseError)?.exitCode, 2)
            }
        }
        XCTAssertNil(try HubSnapshotFetcher(repo: repo, environment: environment()).fileIfPresent("nope.bin"))
    }

    func testPrivateRepositoryNeedsTokenAndTokenStaysOnTheHub() throws {
        server.requiredToken = "hf_secret"
        XCTAssertThrowsError(try fetchAll(environment())) { error in
            XCTAssertTrue("\(error)".contains("HF_TOKEN"), "\(error)")
        }
        XCTAssertNoThrow(try fetchAll(environment(token: "hf_secret")))
        let hubRequests = server.requests.filter { !$0.path.hasPrefix("/lfs/") }
        let cdnRequests = server.requests.filter { $0.path.hasPrefix("/lfs/") }
        XCTAssertFalse(cdnRequests.isEmpty)
        XCTAssertTrue(cdnRequests.allSatisfy { $0.authorization == nil }, "the token leaked to the CDN")
        XCTAssertTrue(hubRequests.contains { $0.authorization == "Bearer hf_secret" })
    }

    func testUnreachableEndpointWithEmptyCacheSaysSo() throws {
        server.stop()
        let fetcher = HubSnapshotFetcher(repo: repo, environment: environment())
        XCTAssertThrowsError(try fetcher.file("model_index.json")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("could not be reached") && text.contains("not in the Hub cache"), text)
        }
    }

    func testStaleDownloadsOfAKilledRunAreRemovedAndPythonsAreKept() throws {
        // A download left by a Diffuse process that is gone, one of a live process (this one), and
        // huggingface_hub's own resumable file.
        let blobs = environment().cache.blobsFolder(repo)
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = "0123abcd.\(dead).5f.incomplete", live = "0123abcd.\(getpid()).6f.incomplete", python = "0123abcd.incomplete"
        for name in [stale, live, python] { try Data("partial".utf8).write(to: blobs.appendingPathComponent(name)) }
        _ = try fetchAll(environment())
        let left = try FileManager.default.contentsOfDirectory(atPath: blobs.path).filter { $0.hasSuffix(".incomplete") }.sorted()
        XCTAssertEqual(left, [python, live].sorted())
    }
}
