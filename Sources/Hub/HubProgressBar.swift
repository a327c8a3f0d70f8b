// Download progress for Hub fetches.
import Foundation

/// A byte progress bar on standard error: redrawn in place on a terminal, one line per file otherwise.
final class HubProgressBar {
    let name: String
    let total: Int64?
    let enabled: Bool
    let terminal = isatty(STDERR_FILENO) == 1
    let start = Date()
    private var lastDraw = Date.distantPast

    init(name: String, total: Int64?, enabled: Bool) {
        self.name = name
        self.total = total
        self.enabled = enabled
    }

    func update(_ bytes: Int64) {
        guard enabled, terminal, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        write("\r\u{1B}[K" + line(bytes))
    }

    func finish(success: Bool) {
        guard enabled else { return }
        let text =
            success
            ? "downloaded \(name) (\(HubProgressBar.megabytes(total ?? 0)))"
            : "download of \(name) failed"
        write((terminal ? "\r\u{1B}[K" : "") + text + "\n")
    }

    private func line(_ bytes: Int64) -> String {
        let seconds = max(Date().timeIntervalSince(start), 1e-3)
        let rate = HubProgressBar.megabytes(Int64(Double(bytes) / seconds)) + "/s"
        guard let total, total > 0 else { return "\(name)  \(HubProgressBar.megabytes(bytes))  \(rate)" }
        let fraction = min(Double(bytes) / Double(total), 1)
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        return String(
            format: "%@ [%@] %3.0f%%  %@ / %@  %@", name, bar, fraction * 100,
            HubProgressBar.megabytes(bytes), HubProgressBar.megabytes(total), rate)
    }

    static func megabytes(_ bytes: Int64) -> String {
        bytes >= 1_000_000 ? String(format: "%.1f MB", Double(bytes) / 1e6) : String(format: "%.1f kB", Double(bytes) / 1e3)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
