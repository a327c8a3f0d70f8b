// Tests for AtomicFile: contents, directory creation, and no temporary files left behind.
import DataIO
import DiffuseCore
import Foundation
import TestSupport
import XCTest

final class AtomicFileTests: XCTestCase {
    func testWritesCreatesParentsAndLeavesNoTemporaryFiles() throws {
        let dir = try makeScratchDirectory()
        let target = dir.appendingPathComponent("a/b/out.bin")
        try AtomicFile.write(Data([1, 2, 3]), to: target)
        XCTAssertEqual(try Data(contentsOf: target), Data([1, 2, 3]))
        try AtomicFile.write(Data("replaced".utf8), to: target)
        XCTAssertEqual(try Data(contentsOf: target), Data("replaced".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target.deletingLastPathComponent().path), ["out.bin"])
    }

    func testEmptyData() throws {
        let target = try makeScratchDirectory().appendingPathComponent("empty")
        try AtomicFile.write(Data(), to: target)
        XCTAssertEqual(try Data(contentsOf: target).count, 0)
    }

    func testParentIsRegularFileFailsCleanly() throws {
        let dir = try makeScratchDirectory()
        let blocker = dir.appendingPathComponent("blocker")
        try Data([9]).write(to: blocker)
        let target = blocker.appendingPathComponent("child.bin")
        assertOutputError(["cannot write", target.path]) { try AtomicFile.write(Data([1]), to: target) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["blocker"])
        XCTAssertEqual(try Data(contentsOf: blocker), Data([9]))
    }

    func testRenameOntoDirectoryRemovesTemporaryFile() throws {
        // The temporary file is created and written; only the final rename fails, which must clean it up.
        let dir = try makeScratchDirectory()
        let target = dir.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: target.appendingPathComponent("inner"), withIntermediateDirectories: true)
        assertOutputError(["cannot write", "rename"]) { try AtomicFile.write(Data(repeating: 7, count: 100_000), to: target) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["occupied"])
    }
}
