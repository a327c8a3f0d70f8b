// SafePath: the checks every name from a file or a server passes before it becomes a path.
import DataIO
import DiffuseCore
import Foundation
import XCTest

final class SafePathTests: XCTestCase {
    func testComponentNamesAreIdentifiers() {
        for good in ["unet", "scheduler", "vqvae", "text_encoder", "_private", "unet2"] {
            XCTAssertTrue(SafePath.isComponentName(good), good)
        }
        for bad in [
            "", "..", ".", "../x", "a/b", "a\\b", "2unet", "a b", "ü", "unet.json", "-x",
            String(repeating: "a", count: 129), "a\u{0}b",
        ] {
            XCTAssertFalse(SafePath.isComponentName(bad), bad)
        }
    }

    func testRelativePathsAreSegmentsOfPlainNames() {
        for good in ["model_index.json", "unet/config.json", "a/b/c.d-e_f", "refs/pr/1"] {
            XCTAssertTrue(SafePath.isRelativePath(good), good)
        }
        for bad in [
            "", "/etc/passwd", "unet/", "unet//x", "../x", "unet/../../x", "./x", "a/./b", "a\\..\\b",
            "x y", "é", String(repeating: "a/", count: 16) + "b", String(repeating: "a", count: 256),
        ] {
            XCTAssertFalse(SafePath.isRelativePath(bad), bad)
        }
    }

    func testResolutionFollowsSymlinksOfTheExistingPrefix() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("safepath-\(UUID().uuidString)")
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("safepath-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root); try? FileManager.default.removeItem(at: outside) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("in"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: root.appendingPathComponent("escape"), withDestinationURL: outside)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("in/up").path, withDestinationPath: "..")

        XCTAssertTrue(SafePath.isInside(root.appendingPathComponent("in/not/yet/there.json"), root: root))
        XCTAssertTrue(SafePath.isInside(root.appendingPathComponent("in/up/in"), root: root))
        XCTAssertFalse(SafePath.isInside(root.appendingPathComponent("escape/new/file"), root: root))
        XCTAssertFalse(SafePath.isInside(root.appendingPathComponent("in/../../x"), root: root))
        XCTAssertFalse(
            SafePath.isInside(URL(fileURLWithPath: root.path + "-sibling/x"), root: root),
            "a sibling sharing the root's name as a prefix is not inside it")
        XCTAssertThrowsError(
            try SafePath.requireInside(root.appendingPathComponent("escape/f"), root: root, what: "the test root")
        ) {
            XCTAssertTrue("\($0)".contains("outside the test root"), "\($0)")
        }
    }
}
