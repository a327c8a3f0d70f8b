// The training progress line: rewritten in place on a terminal, plain lines in logs and pipes.
import DiffusionModels
import Foundation

public final class ProgressLine {
    let isTerminal = isatty(STDOUT_FILENO) == 1
    let quiet: Bool
    var samplingStart: Date?

    /// Put before each notice: which process of a data-parallel job speaks ("rank 1: ").
    let noticePrefix: String

    public init(quiet: Bool = false, noticePrefix: String = "") {
        self.quiet = quiet
        self.noticePrefix = noticePrefix
    }

    public func update(
        epoch: Int, epochs: Int, step: Int, totalSteps: Int, loss: Double,
        imagesPerSecond: Double, secondsLeft: Double
    ) {
        guard !quiet else { return }
        let line = String(
            format: "epoch %d/%d  step %d/%d  loss %.5f  %.0f img/s  ETA %@",
            epoch, epochs, step, totalSteps, loss, imagesPerSecond, ProgressLine.duration(secondsLeft))
        if isTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            print(line)
        }
    }

    /// A line about a decision the run made on its own (a conversion, a skipped file), on stderr
    /// so it is seen even when the progress line is quiet.
    public func notice(_ text: String) {
        if isTerminal && !quiet { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data(("notice: " + noticePrefix + text + "\n").utf8))
    }

    /// Ends an in-place line so that later output starts on its own line.
    public func finish() {
        if isTerminal && !quiet { print("") }
    }

    /// The sampling line: step, steps per second, ETA. On a terminal every step rewrites it; in a
    /// log or pipe about twenty plain lines are printed, and the last step always.
    public func sampling(done: Int, total: Int) {
        guard !quiet else { return }
        let now = Date()
        if done == 1 || samplingStart == nil { samplingStart = now }
        let elapsed = now.timeIntervalSince(samplingStart ?? now)
        let rate = done > 1 && elapsed > 0 ? Double(done - 1) / elapsed : 0
        let line = String(
            format: "step %d/%d  %.1f steps/s  ETA %@", done, total, rate,
            ProgressLine.duration(rate > 0 ? Double(total - done) / rate : .nan))
        if isTerminal {
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line + (done == total ? "\n" : "")).utf8))
        } else if done == total || done % max(1, total / 20) == 0 {
            print(line)
        }
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
