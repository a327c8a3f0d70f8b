// A figure of image rows with words on it: a title above, a name left of each row and a label
// under each column (the tutorial's figures carry these in matplotlib), drawn with the plots'
// bitmap font onto an RGB canvas.
import DiffuseCore
import Foundation

public enum LabelledFigure {
    /// `rows` of equal length; `rowNames` one per row (or none), `columnLabels` one per column
    /// (or none). Grey tiles are drawn as grey RGB.
    public static func render(
        _ rows: [[Image8]], title: String, rowNames: [String] = [], columnLabels: [String] = []
    ) throws -> Image8 {
        let grid = try ImageGrid.rows(rows)
        let tileCount = rows.first?.count ?? 1
        let glyph = BitmapFont.glyphHeight
        let titleScale = BitmapFont.width(title, scale: 2) <= max(grid.width, 240) ? 2 : 1
        let left = rowNames.isEmpty ? 0 : (rowNames.map { BitmapFont.width($0, scale: 1) }.max() ?? 0) + 8
        let top = title.isEmpty ? 0 : glyph * titleScale + 10
        let bottom = columnLabels.isEmpty ? 0 : glyph + 6
        let width = max(left + grid.width, BitmapFont.width(title, scale: titleScale) + 8)
        var canvas = RasterCanvas(width: width, height: top + grid.height + bottom, background: .white)
        let text = RGB(r: 20, g: 20, b: 20)
        if !title.isEmpty {
            canvas.text(title, x: (width - BitmapFont.width(title, scale: titleScale)) / 2, y: 5, scale: titleScale, text)
        }
        for y in 0..<grid.height {
            for x in 0..<grid.width {
                let p = (y * grid.width + x) * grid.channels
                let v = grid.pixels[p]
                canvas.set(
                    left + x, top + y,
                    grid.channels == 1 ? RGB(r: v, g: v, b: v) : RGB(r: v, g: grid.pixels[p + 1], b: grid.pixels[p + 2]))
            }
        }
        // Tiles are laid out as ImageGrid does: a 2-pixel border around and between them.
        let rowHeight = (grid.height - 2) / max(rows.count, 1)
        let columnWidth = (grid.width - 2) / max(tileCount, 1)
        for (r, name) in rowNames.prefix(rows.count).enumerated() {
            canvas.text(name, x: 2, y: top + 2 + r * rowHeight + (rowHeight - 2 - glyph) / 2, text)
        }
        for (c, label) in columnLabels.prefix(tileCount).enumerated() {
            let center = left + 2 + c * columnWidth + (columnWidth - 2) / 2
            canvas.text(label, x: center - BitmapFont.width(label, scale: 1) / 2, y: top + grid.height + 2, text)
        }
        return canvas.image
    }
}
