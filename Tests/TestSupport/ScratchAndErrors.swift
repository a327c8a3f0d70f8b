// Scratch folders, assertions on the kind and wording of DiffuseError, and deterministic bytes.
import DiffuseCore
import Foundation
import XCTest

extension XCTestCase {
    /// A fresh directory under the system temp dir, removed when the test ends.
    public func makeScratchDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("DiffuseTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// Asserts that `body` throws DiffuseError.input whose message contains every string in `fragments`.
    public func assertInputError(
        _ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        assertError(kind: "input", fragments, file: file, line: line, body)
    }

    public func assertShapeError(
        _ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        assertError(kind: "shape", fragments, file: file, line: line, body)
    }

    public func assertOutputError(
        _ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
        _ body: () throws -> Void
    ) {
        assertError(kind: "output", fragments, file: file, line: line, body)
    }

    private func assertError(kind: String, _ fragments: [String], file: StaticString, line: UInt, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected DiffuseError.\(kind), nothing was thrown", file: file, line: line)
        } catch let error as DiffuseError {
            let actual: String
            switch error {
            case .input: actual = "input"
            case .shape: actual = "shape"
            case .output: actual = "output"
            case .usage: actual = "usage"
            case .device: actual = "device"
            case .runtime: actual = "runtime"
            case .interrupted: actual = "interrupted"
            }
            XCTAssertEqual(actual, kind, "wrong error kind: \(error)", file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), "message is not one line: \(error)", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", file: file, line: line)
            }
        } catch {
            XCTFail("expected DiffuseError.\(kind), got \(error)", file: file, line: line)
        }
    }
}

/// Deterministic bytes for tests (SplitMix64), so failures reproduce.
public struct TestRandom {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
