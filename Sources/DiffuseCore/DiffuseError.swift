// The one error type of Diffuse: each case says what went wrong and what to do about it.

public enum DiffuseError: Error, CustomStringConvertible, Equatable {
    /// Bad command-line values or incompatible options (exit code 2).
    case usage(String)
    /// A file or folder we read is missing, unreadable or malformed (exit code 2).
    case input(String)
    /// Shapes that do not fit an op: a programming or configuration error.
    case shape(String)
    /// A device failed (allocation, kernel build, lost device).
    case device(String)
    /// Writing output failed.
    case output(String)
    /// The computation itself failed (a training run diverged): exit code 1.
    case runtime(String)
    /// A signal (SIGINT, SIGTERM) ended the command cleanly: exit code 128 + signal, as shells report it.
    case interrupted(String, signal: Int32)

    /// The message with settings named by their config keys (`batch_size`); see `worded`.
    public var description: String { worded { $0.rawValue } }

    /// The message with each setting (`Setting`) named by `name`: the CLI passes its flags.
    public func worded(_ name: (Setting) -> String) -> String {
        switch self {
        case .usage(let m), .input(let m), .shape(let m), .device(let m), .output(let m), .runtime(let m),
            .interrupted(let m, _):
            return Setting.word(m, name)
        }
    }

    /// Usage and input errors are the user's to fix and exit with 2; the rest with 1.
    public var exitCode: Int32 {
        switch self {
        case .usage, .input, .shape: return 2
        case .device, .output, .runtime: return 1
        case .interrupted(_, let signal): return 128 + signal
        }
    }
}
