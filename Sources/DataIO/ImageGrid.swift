// Tiling equally sized images into one figure with borders, like torchvision's make_grid.
import DiffuseCore
import Foundation

public enum ImageGrid {
    /// Lays `tiles` out left to right, top to bottom in rows of `columns` (fewer if there are fewer tiles),
    /// with `border` pixels of `background` around and between them. The last row may be partly empty.
    public static func compose(_ tiles: [Image8], columns: Int, border: Int = 2, background: UInt8 = 255) throws -> Image8 {
        guard let first = tiles.first else {
            throw DiffuseError.shape("image grid: no tiles to lay out; pass at least one image")
        }
        guard columns >= 1 else {
            throw DiffuseError.shape("image grid: columns is \(columns); it must be at least 1")
        }
        guard border >= 0 else {
            throw DiffuseError.shape("image grid: border is \(border); it must be 0 or more")
        }
        for (i, tile) in tiles.enumerated() {
            try tile.validate("image grid tile \(i)")
            guard tile.width == first.width, tile.height == first.height, tile.channels == first.channels else {
                throw DiffuseError.shape(
                    "image grid: tile \(i) is \(tile.width)x\(tile.height)x\(tile.channels) but tile 0 is "
                        + "\(first.width)x\(first.height)x\(first.channels); all tiles must match"
                )
            }
        }
        let across = min(columns, tiles.count)
        let down = (tiles.count + across - 1) / across
        let tileW = first.width, tileH = first.height, channels = first.channels
        // width = across * (tileW + border) + border, and likewise for height, checked for overflow.
        guard let stepX = CheckedSize.add(tileW, border), let stepY = CheckedSize.add(tileH, border),
            let spanX = CheckedSize.multiply(across, stepX), let width = CheckedSize.add(spanX, border),
            let spanY = CheckedSize.multiply(down, stepY), let height = CheckedSize.add(spanY, border),
            let count = CheckedSize.product([width, height, channels]), count <= 1 << 32
        else {
            throw DiffuseError.shape(
                "image grid: \(tiles.count) tiles of \(tileW)x\(tileH) with border \(border) make an image too large to hold")
        }

        var pixels = [UInt8](repeating: background, count: count)
        let tileRow = tileW * channels
        let gridRow = width * channels
        pixels.withUnsafeMutableBufferPointer { dst in
            for (i, tile) in tiles.enumerated() {
                let x0 = border + (i % across) * stepX
                let y0 = border + (i / across) * stepY
                tile.pixels.withUnsafeBufferPointer { src in
                    guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress else { return }
                    for y in 0..<tileH {
                        (dstBase + (y0 + y) * gridRow + x0 * channels)
                            .update(from: srcBase + y * tileRow, count: tileRow)
                    }
                }
            }
        }
        return Image8(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// One figure row per inner array (for example inputs / corrupted / predictions); every row must hold the
    /// same number of tiles so the columns line up.
    public static func rows(_ rows: [[Image8]], border: Int = 2, background: UInt8 = 255) throws -> Image8 {
        guard let firstRow = rows.first, !firstRow.isEmpty else {
            throw DiffuseError.shape("image grid rows: no tiles to lay out; pass at least one non-empty row")
        }
        for (r, row) in rows.enumerated() where row.count != firstRow.count {
            throw DiffuseError.shape(
                "image grid rows: row \(r) has \(row.count) tiles but row 0 has \(firstRow.count); all rows must have the same "
                    + "length"
            )
        }
        return try compose(rows.flatMap { $0 }, columns: firstRow.count, border: border, background: background)
    }
}
