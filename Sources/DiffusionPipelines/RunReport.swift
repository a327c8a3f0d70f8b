// report.html: one self-contained page that shows a run while it trains and after: where it is,
// the loss curve (raw and smoothed) and learning rate, the configuration, the sample grids over
// time and the tutorial's figures. Images are embedded as data: URIs and the plots are inline
// SVG, so the file opens offline and can be mailed or archived alone. Rewritten atomically at
// every checkpoint and sample grid, so a browser reloading it never sees half a page.
import DataIO
import DiffuseCore
import Foundation

public enum RunReport {
    public static let fileName = "report.html"
    /// TensorBoard's default smoothing weight, with its start-up debiasing.
    static let smoothing = 0.6
    /// The newest sample grids the page embeds (each is tens of kilobytes).
    static let maximumGrids = 40

    public static func write(run folder: URL, options: TrainingOptions, log: [TrainingLogEntry], totalSteps: Int) throws {
        try AtomicFile.write(
            Data(render(run: folder, options: options, log: log, totalSteps: totalSteps).utf8),
            to: folder.appendingPathComponent(fileName))
    }

    /// Loss smoothed as TensorBoard smooths it: an exponential average debiased at the start.
    static func smoothed(_ values: [Double]) -> [Double] {
        var last = 0.0, out: [Double] = []
        for (i, value) in values.enumerated() {
            last = last * smoothing + (1 - smoothing) * value
            out.append(last / (1 - pow(smoothing, Double(i + 1))))
        }
        return out
    }

    static func render(run folder: URL, options: TrainingOptions, log: [TrainingLogEntry], totalSteps: Int) throws -> String {
        let name = SVGPlot.escape(folder.lastPathComponent)
        var html = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(name) - Diffuse run</title>"
        html += "<style>body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}h2{margin-top:28px}"
        html += "table{border-collapse:collapse}td{border:1px solid #ddd;padding:3px 8px;font-size:13px}"
        html += "figure{display:inline-block;margin:6px;text-align:center}figcaption{font-size:13px}"
        html += "img{image-rendering:pixelated;border:1px solid #ccc}pre{background:#f6f6f6;padding:8px;font-size:12px}</style>"
        html += "</head><body><h1>\(name)</h1>"
        if let last = log.last {
            html += String(
                format: "<p id=\"status\">step %d of %d, epoch %d: loss %.5f, lr %.3g, %.1f images/s (written %@)</p>",
                last.step, totalSteps, last.epoch, last.loss, last.lr, last.imagesPerSecond,
                SVGPlot.escape(ISO8601DateFormatter().string(from: Date())))
        } else {
            html += "<p id=\"status\">no step logged yet</p>"
        }
        let steps = log.map { Double($0.step) }, losses = log.map(\.loss)
        html += "<h2>Loss</h2>"
        html += SVGPlot.render(
            [
                SVGPlot.Series(name: "raw", color: "#9ecae1", points: Array(zip(steps, losses)).map { ($0, $1) }, strokeWidth: 1),
                SVGPlot.Series(
                    name: "smoothed (0.6)", color: "#08519c", points: Array(zip(steps, smoothed(losses))).map { ($0, $1) },
                    strokeWidth: 2),
            ], title: "Training loss (MSE)", xLabel: "step", yLabel: "loss")
        if Set(log.map(\.lr)).count > 1 {
            html += SVGPlot.render(
                [SVGPlot.Series(name: "lr", color: "#d95f02", points: log.map { (Double($0.step), $0.lr) })],
                height: 220, title: "Learning rate", xLabel: "step", yLabel: "lr")
        }
        html += "<h2>Samples over time</h2>"
        let grids = try sampleGrids(folder)
        if grids.isEmpty { html += "<p>none yet (--save-images-epochs N draws one every N epochs)</p>" }
        for (caption, url) in grids.suffix(maximumGrids) { html += try figure(url, caption: caption) }
        let figures = [
            "samples.png": "final samples", "corruption.png": "corruption (inputs, amount)",
            "predictions.png": "predictions (input, corrupted, predicted)",
        ]
        let present = figures.keys.sorted().filter {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path)
        }
        if !present.isEmpty {
            html += "<h2>Figures</h2>"
            for file in present { html += try figure(folder.appendingPathComponent(file), caption: figures[file]!) }
        }
        html += "<h2>Configuration</h2><table>"
        let optionsJSON = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options)) as? [String: Any] ?? [:]
        for key in optionsJSON.keys.sorted() {
            html += "<tr><td>\(SVGPlot.escape(key))</td><td>\(SVGPlot.escape("\(optionsJSON[key]!)"))</td></tr>"
        }
        html += "</table>"
        if let config = FileManager.default.contents(atPath: folder.appendingPathComponent("unet/config.json").path) {
            html += "<h3>unet/config.json</h3><pre>\(SVGPlot.escape(String(decoding: config, as: UTF8.self)))</pre>"
        }
        return html + "</body></html>\n"
    }

    /// samples/epoch-NNN.png in epoch order, captioned.
    static func sampleGrids(_ folder: URL) throws -> [(String, URL)] {
        let samples = folder.appendingPathComponent(EpochSamples.folderName)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: samples.path)) ?? []
        return names.filter { $0.hasPrefix("epoch-") && $0.hasSuffix(".png") }.sorted().map { name in
            let epoch = Int(name.dropFirst(6).dropLast(4)) ?? 0
            return ("epoch \(epoch)", samples.appendingPathComponent(name))
        }
    }

    /// An embedded PNG; a small one (a grid of 16-pixel samples) is shown 2-4 times larger, by
    /// whole pixels so it stays sharp.
    static func figure(_ url: URL, caption: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else { return "" }
        let bytes = [UInt8](data.prefix(24))
        let width = bytes.count == 24 ? bytes[16..<20].reduce(0) { $0 << 8 | Int($1) } : 0
        let scale = width > 0 && width < 360 ? min(4, 360 / width) : 1
        let size = width > 0 ? " style=\"width:\(width * scale)px\"" : ""
        return
            "<figure><img alt=\"\(SVGPlot.escape(caption))\"\(size) src=\"data:image/png;base64,\(data.base64EncodedString())\">"
            + "<figcaption>\(SVGPlot.escape(caption))</figcaption></figure>"
    }
}
