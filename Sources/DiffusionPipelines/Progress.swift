// The training progress line: rewritten in place on a terminal, plain lines in logs and pipes.
import DiffusionModels
import Foundation

public final class ProgressLine {
    let isTerminal = isatty(STDOUT_FILENO) == 1
    let quiet: Bool

    public init(quiet: Bool = false) { self.quiet = quiet }

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

    /// Ends an in-place line so that later output starts on its own line.
    public func finish() {
        if isTerminal && !quiet { print("") }
    }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
