// Tests for ImageGrid: size arithmetic, tile placement and shape errors.
import DataIO
import TestSupport
import XCTest

final class ImageGridTests: XCTestCase {
    private func tile(_ value: UInt8, width: Int = 2, height: Int = 3, channels: Int = 1) -> Image8 {
        Image8(
            width: width, height: height, channels: channels,
            pixels: (0..<(width * height * channels)).map { value &+ UInt8($0) })
    }

    private func pixel(_ image: Image8, _ x: Int, _ y: Int, _ c: Int = 0) -> UInt8 {
        image.pixels[(y * image.width + x) * image.channels + c]
    }

    func testSizeAndPlacement() throws {
        let grid = try ImageGrid.compose([tile(10), tile(50), tile(90)], columns: 2, border: 1, background: 255)
        XCTAssertEqual(grid.width, 2 * (2 + 1) + 1)
        XCTAssertEqual(grid.height, 2 * (3 + 1) + 1)
        XCTAssertEqual(grid.channels, 1)
        XCTAssertEqual(pixel(grid, 0, 0), 255)
        XCTAssertEqual(pixel(grid, 1, 1), 10)  // tile 0, first pixel
        XCTAssertEqual(pixel(grid, 2, 3), 15)  // tile 0, last pixel (x 1, y 2)
        XCTAssertEqual(pixel(grid, 3, 1), 255)  // border between columns
        XCTAssertEqual(pixel(grid, 4, 1), 50)  // tile 1
        XCTAssertEqual(pixel(grid, 1, 5), 90)  // tile 2 on the second row
        XCTAssertEqual(pixel(grid, 4, 5), 255)  // empty last slot
        XCTAssertEqual(grid.pixels.filter { $0 == 255 }.count, grid.pixels.count - 18)
    }

    func testFewerTilesThanColumnsAndZeroBorderRGB() throws {
        let grid = try ImageGrid.compose([tile(0, channels: 3), tile(100, channels: 3)], columns: 8, border: 0)
        XCTAssertEqual(grid.width, 4)
        XCTAssertEqual(grid.height, 3)
        XCTAssertEqual(pixel(grid, 2, 0, 0), 100)
        XCTAssertEqual(pixel(grid, 3, 2, 2), 117)  // tile 1, pixel (1, 2), channel 2: 100 + (2*2+1)*3 + 2
    }

    func testRowsFigure() throws {
        let rows = [[tile(1), tile(2), tile(3)], [tile(4), tile(5), tile(6)]]
        let grid = try ImageGrid.rows(rows, border: 2, background: 0)
        XCTAssertEqual(grid.width, 3 * (2 + 2) + 2)
        XCTAssertEqual(grid.height, 2 * (3 + 2) + 2)
        XCTAssertEqual(pixel(grid, 2 + 2 * 4, 2 + 5), 6)
        assertShapeError(["row 1"]) { _ = try ImageGrid.rows([[tile(1), tile(2)], [tile(3)]]) }
        assertShapeError { _ = try ImageGrid.rows([]) }
    }

    func testShapeErrors() {
        assertShapeError(["tile 1"]) { _ = try ImageGrid.compose([tile(0), tile(0, width: 3)], columns: 2) }
        assertShapeError(["tile 1"]) { _ = try ImageGrid.compose([tile(0), tile(0, channels: 3)], columns: 2) }
        assertShapeError(["columns"]) { _ = try ImageGrid.compose([tile(0)], columns: 0) }
        assertShapeError(["border"]) { _ = try ImageGrid.compose([tile(0)], columns: 1, border: -1) }
        assertShapeError { _ = try ImageGrid.compose([], columns: 1) }
        assertShapeError(["too large"]) { _ = try ImageGrid.compose([tile(0)], columns: 1, border: Int.max / 2) }
    }
}
