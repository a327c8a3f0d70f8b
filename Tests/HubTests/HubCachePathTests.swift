// The Hub cache never writes outside itself, whatever the names it is handed or the links it finds.
import DiffuseCore
import Foundation
import Tensor
import XCTest

@testable import Hub

final class HubCachePathTests: XCTestCase {
    var scratch: URL!
    var cache: HubCache!
    let repo = HubRepoID(owner: "evil", name: "escape")
    let commit = String(repeating: "ab", count: 20)

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hub-path-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        cache = HubCache(root: scratch.appendingPathComponent("cache"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

    func entries(_ url: URL) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] }

    func testLinkRefusesPathsThatAreNotPlainRelativeNames() {
        for path in ["../../../../x/y/config.json", "/abs/config.json", "unet/../../../x", "unet//config.json", ""] {
            XCTAssertThrowsError(try cache.link(repo, commit: commit, path: path, etag: "abc123"), path)
        }
        XCTAssertThrowsError(try cache.link(repo, commit: "../../x", path: "unet/config.json", etag: "abc123"))
        for etag in ["../../x", ".hidden", "a/b", ""] {
            XCTAssertThrowsError(try cache.link(repo, commit: commit, path: "unet/config.json", etag: etag), etag)
        }
        XCTAssertEqual(entries(scratch), [], "nothing may be created for a refused link")
        XCTAssertNoThrow(try cache.link(repo, commit: commit, path: "unet/config.json", etag: "abc123"))
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(
                atPath: cache.snapshotFolder(repo, commit: commit).appendingPathComponent("unet/config.json").path),
            "../../../blobs/abc123")
    }

    func testLinkDoesNotWriteThroughAPlantedSymlink() throws {
        let outside = scratch.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let snapshot = cache.snapshotFolder(repo, commit: commit)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: snapshot.appendingPathComponent("unet"), withDestinationURL: outside)
        XCTAssertThrowsError(try cache.link(repo, commit: commit, path: "unet/config.json", etag: "abc123")) {
            XCTAssertEqual(($0 as? DiffuseError)?.exitCode, 2)
        }
        XCTAssertEqual(entries(outside), [])
    }

    func testACachedLinkLeadingOutsideTheRepositoryIsNotACachedFile() throws {
        let secret = scratch.appendingPathComponent("secret.txt")
        try Data("secret".utf8).write(to: secret)
        let snapshot = cache.snapshotFolder(repo, commit: commit)
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            at: snapshot.appendingPathComponent("model_index.json"), withDestinationURL: secret)
        XCTAssertNil(cache.cachedFile(repo, commit: commit, path: "model_index.json"))
        XCTAssertNil(cache.cachedFile(repo, commit: commit, path: "../../../../secret.txt"))
    }

    func testARefsFolderLinkedOutsideIsNotWrittenThrough() throws {
        let branch = HubRepoID(owner: "evil", name: "escape", revision: "main")
        let outside = scratch.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: cache.repoFolder(branch), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            at: cache.repoFolder(branch).appendingPathComponent("refs"), withDestinationURL: outside)
        XCTAssertThrowsError(try cache.writeRef(branch, commit: commit))
        XCTAssertEqual(entries(outside), [])
    }
}
