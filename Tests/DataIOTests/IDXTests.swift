// Tests for IDX reading: raw and gzipped round trips and rejection of malformed headers and data.
import CZlib
import DataIO
import Foundation
import TestSupport
import XCTest

final class IDXTests: XCTestCase {
    static func idxBytes(type: UInt8 = 0x08, dims: [UInt32], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return out + data
    }

    /// Writes `bytes` gzip-compressed with zlib, the way the MNIST downloads are packaged.
    static func writeGzip(_ bytes: [UInt8], to url: URL) throws {
        guard let gz = gzopen(url.path, "wb") else { throw CocoaError(.fileWriteUnknown) }
        let written = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        XCTAssertEqual(Int(written), bytes.count)
        XCTAssertEqual(gzclose(gz), Z_OK)
    }

    func testRawAndGzipRoundTrip() throws {
        let dir = try makeScratchDirectory()
        var random = TestRandom(state: 4)
        let data = random.bytes(3 * 4 * 5)
        let bytes = Self.idxBytes(dims: [3, 4, 5], data: data)
        let raw = dir.appendingPathComponent("a-idx3-ubyte")
        try Data(bytes).write(to: raw)
        let gz = dir.appendingPathComponent("a-idx3-ubyte.gz")
        try Self.writeGzip(bytes, to: gz)
        XCTAssertNotEqual(try Data(contentsOf: gz).prefix(2), Data(bytes.prefix(2)))  // really compressed
        for url in [raw, gz] {
            let array = try IDX.read(url)
            XCTAssertEqual(array.dimensions, [3, 4, 5])
            XCTAssertEqual(array.bytes, data)
        }
        let vector = dir.appendingPathComponent("v")
        try Data(Self.idxBytes(dims: [4], data: [9, 8, 7, 6])).write(to: vector)
        XCTAssertEqual(try IDX.read(vector).dimensions, [4])
    }

    func testLargerThanOneChunk() throws {
        // Over the reader's 1 MiB chunk so the chunked loop is exercised.
        let dir = try makeScratchDirectory()
        let data = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let url = dir.appendingPathComponent("big.gz")
        try Self.writeGzip(Self.idxBytes(dims: [3, 1024, 1024], data: data), to: url)
        XCTAssertEqual(try IDX.read(url).bytes, data)
    }

    func testTruncatedData() throws {
        let dir = try makeScratchDirectory()
        let bytes = Self.idxBytes(dims: [3, 4], data: [UInt8](repeating: 1, count: 12))
        let raw = dir.appendingPathComponent("short")
        try Data(bytes.dropLast(5)).write(to: raw)
        assertInputError(["promises 3 items", "12 bytes", "holds 7 bytes, 1 whole items", raw.path]) { _ = try IDX.read(raw) }

        // A gzip stream cut off mid-way: zlib reports end of file, we report the shortfall.
        var random = TestRandom(state: 5)
        let big = Self.idxBytes(dims: [100, 100], data: random.bytes(10_000))
        let full = dir.appendingPathComponent("full.gz")
        try Self.writeGzip(big, to: full)
        let cut = dir.appendingPathComponent("cut.gz")
        try Data(contentsOf: full).prefix(5000).write(to: cut)
        assertInputError([cut.path]) { _ = try IDX.read(cut) }

        let header = dir.appendingPathComponent("header")
        try Data([0, 0, 8, 3, 0, 0]).write(to: header)
        assertInputError(["truncated"]) { _ = try IDX.read(header) }
        let empty = dir.appendingPathComponent("empty")
        try Data().write(to: empty)
        assertInputError(["too short"]) { _ = try IDX.read(empty) }
    }

    func testMalformedHeaders() throws {
        let dir = try makeScratchDirectory()
        func check(_ bytes: [UInt8], _ fragments: [String], line: UInt = #line) throws {
            let url = dir.appendingPathComponent("case-\(line)")
            try Data(bytes).write(to: url)
            assertInputError(fragments, line: line) { _ = try IDX.read(url) }
        }
        try check([0x12, 0x34, 8, 1, 0, 0, 0, 1, 0], ["magic", "0x12 0x34"])
        try check(Self.idxBytes(type: 0x0D, dims: [1], data: [0, 0, 0, 0]), ["float32", "0x0D"])
        try check([0, 0, 8, 0], ["0 dimensions"])
        try check(Self.idxBytes(dims: [1, 1, 1, 1, 1], data: [0]), ["5 dimensions"])
        try check(Self.idxBytes(dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: []), ["more than"])
        try check(Self.idxBytes(dims: [65536, 65536], data: [1, 2, 3]), ["more than"])
        assertInputError(["no such IDX file"]) { _ = try IDX.read(dir.appendingPathComponent("missing")) }
        assertInputError(["is a directory"]) { _ = try IDX.read(dir) }
    }

    func testRandomCorruptionNeverCrashes() throws {
        let dir = try makeScratchDirectory()
        let url = dir.appendingPathComponent("fuzz")
        var random = TestRandom(state: 6)
        let good = Self.idxBytes(dims: [2, 3, 3], data: random.bytes(18))
        var failures = 0
        for _ in 0..<300 {
            var bytes = good
            for _ in 0..<(1 + random.below(3)) { bytes[random.below(bytes.count)] = UInt8(random.below(256)) }
            bytes = Array(bytes.prefix(random.below(bytes.count + 1)))
            try Data(bytes).write(to: url)
            do { _ = try IDX.read(url) } catch { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 0)
    }
}
