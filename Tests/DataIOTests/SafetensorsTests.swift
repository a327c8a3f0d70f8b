// Tests for safetensors encoding (byte-exact against Python's layout), decoding, and corrupt-file rejection.
import DataIO
import Foundation
import TestSupport
import XCTest

final class SafetensorsTests: XCTestCase {
    /// Header length (little-endian UInt64), the header padded with spaces to a multiple of 8, then data.
    private func file(header: String, pad: Bool = true, data: [UInt8]) -> Data {
        var h = Array(header.utf8)
        if pad { h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8) }
        let n = UInt64(h.count)
        return Data((0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + h + data)
    }

    private func le32(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
    }

    func testKnownAnswerMatchesPythonBytes() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let expected = file(header: header, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])
        XCTAssertEqual(expected.count, 8 + 56 + 8)  // 54-byte header padded to 56
        let encoded = try Safetensors.encode([(name: "a", tensor: SafetensorsTensor(shape: [2], values: [1, 2]))])
        XCTAssertEqual(Array(encoded), Array(expected))
    }

    func testKnownAnswerWithMetadataAndSortedNames() throws {
        let header =
            #"{"__metadata__":{"format":"pt","step":"7"},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"#
            + #""b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}"#
        let expected = file(header: header, data: le32([1, 2, 3]))
        let encoded = try Safetensors.encode(
            [
                (name: "b", tensor: SafetensorsTensor(shape: [], values: [3])),
                (name: "a", tensor: SafetensorsTensor(shape: [1, 2], values: [1, 2])),
            ],
            metadata: ["step": "7", "format": "pt"])
        XCTAssertEqual(String(decoding: encoded, as: UTF8.self), String(decoding: expected, as: UTF8.self))
        XCTAssertEqual(encoded, expected)
    }

    func testRoundTripIncludingEmptyScalarAndEscapedNames() throws {
        var random = TestRandom(state: 7)
        let weights = (0..<24).map { _ in Float(Int(random.next() % 2001) - 1000) / 37 }
        let tensors: [(name: String, tensor: SafetensorsTensor)] = [
            ("down.0.weight", SafetensorsTensor(shape: [2, 3, 4], values: weights)),
            ("empty", SafetensorsTensor(shape: [0], values: [])),
            ("empty2d", SafetensorsTensor(shape: [3, 0], values: [])),
            ("scalar", SafetensorsTensor(shape: [], values: [-0.5])),
            ("odd \"name\"\n\u{e9}\u{1}", SafetensorsTensor(shape: [1], values: [.infinity])),
        ]
        let metadata = ["epoch": "3", "note": "tab\there \u{1F600}"]
        let url = try makeScratchDirectory().appendingPathComponent("ckpt/model.safetensors")
        try Safetensors.write(tensors, metadata: metadata, to: url)
        let encoded = try Data(contentsOf: url)
        XCTAssertEqual(Int(encoded[0]) % 8, 0, "header length is a multiple of 8")
        XCTAssertTrue(String(decoding: encoded, as: UTF8.self).contains(#""odd \"name\"\n\#u{e9}\u0001""#))
        let (decoded, meta) = try Safetensors.read(url)
        XCTAssertEqual(meta, metadata)
        XCTAssertEqual(decoded.count, tensors.count)
        for (name, tensor) in tensors { XCTAssertEqual(decoded[name], tensor, name) }
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path), ["model.safetensors"])
    }

    func testReadsHalfBFloatAndDouble() throws {
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0xFF, 0x7B, 0x01, 0x00, 0x00, 0x7C, 0x00, 0x80]
        let bf16: [UInt8] = [0x80, 0x3F, 0x40, 0xC0]
        let f64 = [1.5, -0.25].flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
        let header =
            #"{"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},"#
            + #""b":{"dtype":"BF16","shape":[2],"data_offsets":[14,18]},"#
            + #""d":{"dtype":"F64","shape":[2,1],"data_offsets":[18,34]}}"#
        let (tensors, metadata) = try Safetensors.decode(file(header: header, data: f16 + bf16 + f64), source: "mixed")
        XCTAssertEqual(metadata, [:])
        XCTAssertEqual(tensors["h"]?.values, [1, -2, 0.5, 65504, 0x1p-24, .infinity, -0.0])
        XCTAssertEqual(tensors["h"]?.values.last?.sign, .minus)
        XCTAssertEqual(tensors["b"]?.values, [1, -3])
        XCTAssertEqual(tensors["d"], SafetensorsTensor(shape: [2, 1], values: [1.5, -0.25]))
        // Unaligned data offsets and an unpadded header are accepted too.
        let odd = file(header: #"{"x":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}"#, pad: false, data: [9] + le32([2.5]))
        XCTAssertEqual(try Safetensors.decode(odd, source: "odd").tensors["x"]?.values, [2.5])
        let nullMeta = file(
            header: #"{"__metadata__":null,"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#, data: le32([7]))
        let decoded = try Safetensors.decode(nullMeta, source: "null")
        XCTAssertEqual(decoded.metadata, [:])
        XCTAssertEqual(decoded.tensors["x"], SafetensorsTensor(shape: [], values: [7]))
    }

    func testRejectsCorruptFiles() throws {
        func reject(_ data: Data, _ fragments: [String], line: UInt = #line) {
            assertInputError(["bad.safetensors"] + fragments, line: line) {
                _ = try Safetensors.decode(data, source: "bad.safetensors")
            }
        }
        let two = le32([1, 2])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, data: two), ["outside"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: two), ["needs 12 bytes"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,0]}}"#, data: two), ["outside"])
        reject(file(header: #"{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"#, data: two), ["\"a\"", "I8"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: two), ["shape"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: two), ["shape"])
        reject(
            file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, data: two),
            ["too many"])
        reject(
            file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}"#, data: two),
            ["data_offsets"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, data: two), ["data_offsets"])
        reject(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{}}"#, data: two), ["duplicate"])
        reject(file(header: #"{"__metadata__":{"k":1}}"#, data: []), ["__metadata__"])
        reject(file(header: #"[1,2]"#, data: []), ["object"])
        reject(file(header: #"{"a":"#, data: []), ["JSON"])
        reject(file(header: String(repeating: "[", count: 100_000), data: []), ["JSON"])
        reject(Data([1, 2, 3]), ["too short"])
        // Header length larger than the file, and absurdly large.
        var longer = file(header: #"{}"#, data: [])
        longer[0] = 200
        reject(longer, ["header length 200"])
        reject(Data([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B, 0x7D]), ["limit"])
        // A valid file cut short anywhere must be rejected.
        let good = try Safetensors.encode([(name: "w", tensor: SafetensorsTensor(shape: [4], values: [1, 2, 3, 4]))])
        for cut in 0..<good.count { XCTAssertThrowsError(try Safetensors.decode(good.prefix(cut), source: "cut")) }
        assertInputError(["no such safetensors file"]) {
            _ = try Safetensors.read(URL(fileURLWithPath: "/nonexistent.safetensors"))
        }
    }

    func testRandomCorruptionNeverCrashes() throws {
        let good = try Safetensors.encode(
            [
                (name: "w", tensor: SafetensorsTensor(shape: [2, 2], values: [1, 2, 3, 4])),
                (name: "b", tensor: SafetensorsTensor(shape: [2], values: [5, 6])),
            ], metadata: ["k": "v"])
        var random = TestRandom(state: 8)
        var failures = 0
        for _ in 0..<3000 {
            var bytes = Array(good)
            for _ in 0..<(1 + random.below(4)) { bytes[random.below(bytes.count)] = UInt8(random.below(256)) }
            do { _ = try Safetensors.decode(Data(bytes), source: "fuzz") } catch { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 100)
    }

    func testEncodeRejectsBadInput() {
        assertShapeError(["\"w\"", "[2, 2]"]) {
            _ = try Safetensors.encode([(name: "w", tensor: SafetensorsTensor(shape: [2, 2], values: [1]))])
        }
        assertShapeError(["twice"]) {
            let t = SafetensorsTensor(shape: [1], values: [1])
            _ = try Safetensors.encode([(name: "x", tensor: t), (name: "x", tensor: t)])
        }
        assertShapeError(["reserved"]) {
            _ = try Safetensors.encode([(name: "__metadata__", tensor: SafetensorsTensor(shape: [], values: [1]))])
        }
        assertShapeError { _ = try Safetensors.encode([(name: "n", tensor: SafetensorsTensor(shape: [-1], values: []))]) }
    }
}
