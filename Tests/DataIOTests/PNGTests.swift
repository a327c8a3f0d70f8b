// Tests for PNG encoding/decoding, including hand-built 16-bit, palette and alpha files and corrupt input.
import CZlib
import DataIO
import Foundation
import TestSupport
import XCTest

final class PNGTests: XCTestCase {
    func testGreyRoundTrip() throws {
        var random = TestRandom(state: 1)
        let image = Image8(width: 7, height: 5, channels: 1, pixels: random.bytes(35))
        let data = try PNG.encode(image)
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(try PNG.decode(data), image)
    }

    func testRGBRoundTripThroughFile() throws {
        var random = TestRandom(state: 2)
        let image = Image8(width: 13, height: 4, channels: 3, pixels: random.bytes(13 * 4 * 3))
        let url = try makeScratchDirectory().appendingPathComponent("figures/rgb.png")
        try PNG.write(image, to: url)
        XCTAssertEqual(try PNG.read(url), image)
    }

    func testTruncatedAndRandomBytesThrowInput() throws {
        var random = TestRandom(state: 3)
        let image = Image8(width: 40, height: 30, channels: 3, pixels: random.bytes(3600))
        let data = try PNG.encode(image)
        assertInputError(["sample.png"]) { _ = try PNG.decode(data.prefix(data.count / 2), source: "sample.png") }
        assertInputError(["junk"]) { _ = try PNG.decode(Data(random.bytes(500)), source: "junk") }
        assertInputError(["PNG data"]) { _ = try PNG.decode(Data()) }
        // Every prefix that loses image data must fail cleanly. (Dropping only the 12-byte IEND chunk is
        // tolerated by libpng: the pixels are all there.)
        for cut in 0..<(data.count - 12) {
            XCTAssertThrowsError(try PNG.decode(data.prefix(cut)), "cut at \(cut)")
        }
        // Flipped bytes: libpng either rejects the file (CRC, zlib) or yields an image; never a crash.
        var failures = 0
        for _ in 0..<500 {
            var bytes = Array(data)
            for _ in 0..<(1 + random.below(3)) { bytes[random.below(bytes.count)] = UInt8(random.below(256)) }
            do { _ = try PNG.decode(Data(bytes)) } catch { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 400)
        assertInputError(["no such PNG file"]) { _ = try PNG.read(URL(fileURLWithPath: "/nonexistent/x.png")) }
    }

    func testSixteenBitGreyReducesToEightBits() throws {
        let rows: [[UInt8]] = [[0x00, 0x00, 0xFF, 0xFF, 0x80, 0x80], [0xAB, 0xCD, 0x01, 0x00, 0x7F, 0xFF]]
        let png = Self.handBuiltPNG(width: 3, height: 2, bitDepth: 16, colorType: 0, rows: rows)
        let image = try PNG.decode(png)
        XCTAssertEqual(image.channels, 1)
        XCTAssertEqual(image.pixels, [0, 255, 128, 171, 1, 127])  // v * 255 / 65535, rounded
    }

    func testGreyAlphaDropsAlpha() throws {
        let png = Self.handBuiltPNG(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [[50, 255, 200, 255]])
        let image = try PNG.decode(png)
        XCTAssertEqual(image.channels, 1)
        XCTAssertEqual(image.pixels, [50, 200])
    }

    func testRGBAAndPaletteDecodeToRGB() throws {
        let rgba = Self.handBuiltPNG(width: 2, height: 1, bitDepth: 8, colorType: 6, rows: [[1, 2, 3, 255, 40, 50, 60, 255]])
        let a = try PNG.decode(rgba)
        XCTAssertEqual(a.channels, 3)
        XCTAssertEqual(a.pixels, [1, 2, 3, 40, 50, 60])

        let palette: [UInt8] = [10, 20, 30, 200, 100, 0]
        let indexed = Self.handBuiltPNG(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[1, 0, 1]], palette: palette)
        let p = try PNG.decode(indexed)
        XCTAssertEqual(p.channels, 3)
        XCTAssertEqual(p.pixels, [200, 100, 0, 10, 20, 30, 200, 100, 0])
    }

    func testAbsurdDimensionsRejectedBeforeAllocation() throws {
        let png = Self.handBuiltPNG(width: 100_000, height: 2, bitDepth: 8, colorType: 0, rows: [[0], [0]])
        assertInputError(["100000x2"]) { _ = try PNG.decode(png, source: "wide.png") }
        // Within the per-side limit but far more pixels than a tiny file can hold: refused, not allocated.
        let bomb = Self.handBuiltPNG(width: 16_000, height: 16_000, bitDepth: 8, colorType: 6, rows: [[0]])
        assertInputError(["16000x16000", "more than its"]) { _ = try PNG.decode(bomb, source: "bomb.png") }
    }

    func testEncodeRejectsInconsistentImage() {
        var image = Image8(width: 2, height: 2, channels: 1, fill: 0)
        image.pixels.removeLast()
        assertShapeError(["2x2x1"]) { _ = try PNG.encode(image) }
        assertShapeError(["0x2"]) { _ = try PNG.encode(Image8(width: 0, height: 2, channels: 3, fill: 0)) }
    }

    /// A minimal PNG (IHDR, optional PLTE, one IDAT with filter type 0 rows, IEND) built with zlib directly,
    /// so decoding is tested on layouts our encoder never produces.
    static func handBuiltPNG(
        width: UInt32, height: UInt32, bitDepth: UInt8, colorType: UInt8,
        rows: [[UInt8]], palette: [UInt8]? = nil
    ) -> Data {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            let crc = typed.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            return be32(UInt32(body.count)) + typed + be32(UInt32(crc))
        }
        let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        _ = compress(&compressed, &compressedSize, raw, uLong(raw.count))
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0])
        if let palette { out += chunk("PLTE", palette) }
        out += chunk("IDAT", Array(compressed.prefix(Int(compressedSize))))
        out += chunk("IEND", [])
        return Data(out)
    }
}
