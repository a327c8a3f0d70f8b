// Tests for Image8's planar float conversions.
import DataIO
import XCTest

final class Image8Tests: XCTestCase {
    func testPlanarToBytesRoundsClampsAndZeroesNaN() {
        let image = Image8(
            planar: [0, 0.5, 1, -1, 2, .nan, 0.25, .infinity, -.infinity, 1.0 / 255],
            channels: 1, height: 2, width: 5)
        XCTAssertEqual(image.pixels, [0, 128, 255, 0, 255, 0, 64, 255, 0, 1])
        XCTAssertEqual(image.width, 5)
        XCTAssertEqual(image.height, 2)
    }

    func testPlanarChannelsInterleave() {
        // CHW: plane R = [10, 11], G = [20, 21], B = [30, 31] in 0...255 units.
        let values: [Float] = [10, 11, 20, 21, 30, 31]
        let image = Image8(planar: values, channels: 3, height: 1, width: 2, low: 0, high: 255)
        XCTAssertEqual(image.pixels, [10, 20, 30, 11, 21, 31])
        XCTAssertEqual(image.planarFloats(low: 0, high: 255), values)
    }

    func testSignedRangeAndExactRoundTrip() {
        let all = Image8(width: 256, height: 1, channels: 1, pixels: (0...255).map { UInt8($0) })
        let floats = all.planarFloats(low: -1, high: 1)
        XCTAssertEqual(floats.first, -1)
        XCTAssertEqual(floats.last, 1)
        XCTAssertEqual(floats[128], -1 + 2 * 128 / 255, accuracy: 1e-6)
        XCTAssertEqual(Image8(planar: floats, channels: 1, height: 1, width: 256, low: -1, high: 1), all)
    }

    func testFillInitializer() {
        let image = Image8(width: 3, height: 2, channels: 3, fill: 7)
        XCTAssertEqual(image.pixels, [UInt8](repeating: 7, count: 18))
    }
}
