// SHA-256 and SHA-1 against known answers, and the Hub repository-id naming rules.
import DiffuseCore
import Foundation
import Hub
import XCTest

final class HashAndNameTests: XCTestCase {
    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in uneven pieces gives the one-shot digest.
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        var hasher = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 4096, 995_711] {
            hasher.update(million[offset..<offset + size])
            offset += size
        }
        XCTAssertEqual(offset, million.count)
        XCTAssertEqual(
            hasher.finalize().map { String(format: "%02x", $0) }.joined(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA1AndGitBlobID() {
        XCTAssertEqual(SHA1.hex(Array("abc".utf8)), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(SHA1.hex([UInt8]()), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        // `printf 'hello\n' | git hash-object --stdin`
        XCTAssertEqual(SHA1.gitBlobID(Array("hello\n".utf8)), "ce013625030ba8dba906f756967f9e9ca394464a")
    }

    func testRepoIDParsing() throws {
        let plain = try XCTUnwrap(HubRepoID.parse("johnowhitaker/ddpm-butterflies-32px"))
        XCTAssertEqual(plain.id, "johnowhitaker/ddpm-butterflies-32px")
        XCTAssertEqual(plain.revision, "main")
        XCTAssertEqual(plain.cacheFolderName, "models--johnowhitaker--ddpm-butterflies-32px")
        let pinned = try XCTUnwrap(HubRepoID.parse("google/ddpm-cifar10-32@refs/pr/1"))
        XCTAssertEqual(pinned.revision, "refs/pr/1")
        XCTAssertFalse(pinned.revisionIsCommit)
        let commit = String(repeating: "a1", count: 20)
        XCTAssertTrue(try XCTUnwrap(HubRepoID.parse("a/b@\(commit)")).revisionIsCommit)
        // Not shaped like owner/name: the caller treats it as a path.
        XCTAssertNil(try HubRepoID.parse("model"))
        XCTAssertNil(try HubRepoID.parse("runs/a/b"))
        XCTAssertNil(try HubRepoID.parse("/abs"))
        // Shaped like one but breaking huggingface_hub's rules: a usage error naming the part.
        for bad in ["a/b--c", "a/.b", "a/b c", "a/b@", "a/b@../x", "a/b@x//y"] {
            XCTAssertThrowsError(try HubRepoID.parse(bad), bad) { error in
                guard case DiffuseError.usage = error else { return XCTFail("\(bad): \(error)") }
            }
        }
    }

    func testCacheDirectoryFollowsHuggingfaceHub() {
        let home = NSHomeDirectory()
        XCTAssertEqual(HubCache.directory(environment: [:]).path, home + "/.cache/huggingface/hub")
        XCTAssertEqual(HubCache.directory(environment: ["XDG_CACHE_HOME": "/x"]).path, "/x/huggingface/hub")
        XCTAssertEqual(HubCache.directory(environment: ["HF_HOME": "/h", "XDG_CACHE_HOME": "/x"]).path, "/h/hub")
        XCTAssertEqual(HubCache.directory(environment: ["HUGGINGFACE_HUB_CACHE": "/l", "HF_HOME": "/h"]).path, "/l")
        XCTAssertEqual(HubCache.directory(environment: ["HF_HUB_CACHE": "/c", "HUGGINGFACE_HUB_CACHE": "/l"]).path, "/c")
    }

    func testEnvironment() {
        let environment = HubEnvironment.current([
            "HF_ENDPOINT": "http://127.0.0.1:9/", "HF_HUB_OFFLINE": "1",
            "HF_TOKEN": " hf_x\n", "HF_HUB_CACHE": "/c",
        ])
        XCTAssertEqual(environment.endpoint, "http://127.0.0.1:9")
        XCTAssertTrue(environment.offline)
        XCTAssertEqual(environment.token, "hf_x")
        XCTAssertEqual(environment.cache.root.path, "/c")
        let defaults = HubEnvironment.current(["HF_HOME": "/nonexistent-diffuse-home"])
        XCTAssertEqual(defaults.endpoint, "https://huggingface.co")
        XCTAssertFalse(defaults.offline)
        XCTAssertNil(defaults.token)
    }
}
