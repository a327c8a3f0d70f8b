// HTTP answers of the Hub turned into one-line errors that say what to do (huggingface_hub's
// hf_raise_for_status reads the same X-Error-Code header).
import Foundation
import Tensor

enum HubFetchErrors {
    static func check(_ response: HubResponse, repo: HubRepoID, path: String, endpoint: String, token: String?) throws {
        let status = response.status
        if (200..<400).contains(status) { return }
        let code = response.header("x-error-code")
        let tokenHint = token == nil
            ? "if it is private or gated, set HF_TOKEN to a token that can read it"
            : "HF_TOKEN is set: check that this token can read it"
        switch (status, code) {
        case (_, "RepoNotFound"):
            throw DiffuseError.input("repository \(repo.id) was not found on \(endpoint): check the id; \(tokenHint)")
        case (_, "RevisionNotFound"):
            throw DiffuseError.input("\(repo.id) has no revision '\(repo.revision)' on \(endpoint): give a branch, tag or commit that exists")
        case (_, "GatedRepo"):
            throw DiffuseError.input("\(repo.id) is gated on \(endpoint): accept its conditions on its Hub page, then set HF_TOKEN")
        case (_, "EntryNotFound"), (404, _):
            throw DiffuseError.input("\(repo) has no file \(path) on \(endpoint)")
        case (401, _), (403, _):
            throw DiffuseError.input("\(endpoint) refused \(repo.id) (HTTP \(status)): \(tokenHint)")
        case (429, _):
            throw DiffuseError.input("\(endpoint) is rate-limiting requests (HTTP 429): wait a minute and run the command again")
        default:
            throw DiffuseError.input("\(endpoint) answered HTTP \(status) for \(path) of \(repo): try again later")
        }
    }
}

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
        let text = success ? "downloaded \(name) (\(HubProgressBar.megabytes(total ?? 0)))"
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
        return String(format: "%@ [%@] %3.0f%%  %@ / %@  %@", name, bar, fraction * 100,
                      HubProgressBar.megabytes(bytes), HubProgressBar.megabytes(total), rate)
    }

    static func megabytes(_ bytes: Int64) -> String {
        bytes >= 1_000_000 ? String(format: "%.1f MB", Double(bytes) / 1e6) : String(format: "%.1f kB", Double(bytes) / 1e3)
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
