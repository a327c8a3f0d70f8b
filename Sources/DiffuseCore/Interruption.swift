// SIGINT and SIGTERM end a command cleanly (issue 10, item 3). The first signal is only noted: a
// training run finishes its step, writes a checkpoint and stops; a sampler stops before writing
// anything. Work that cannot wait for a step boundary (a download) registers a cleanup, which the
// first signal runs before exiting. A second signal exits at once, after those cleanups. The
// handlers run on a dispatch queue, not in signal context, so they may take locks and unlink files.
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var received: Int32 = 0
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    nonisolated(unsafe) private static var cleanups: [Int: () -> Void] = [:]
    nonisolated(unsafe) private static var nextCleanup = 0

    /// Routes SIGINT and SIGTERM through `Interruption` for the rest of the process.
    public static func install() {
        lock.lock()
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            // `data` counts the signals since the handler last ran: two quick ones arrive as one
            // event with a count of 2, and must still stop at once.
            source.setEventHandler { arrived(signalNumber, count: Int(source.data)) }  // sources live as long as the process
            source.resume()
            sources.append(source)
        }
    }

    static func arrived(_ signalNumber: Int32, count: Int = 1) {
        lock.lock()
        let first = received == 0 && count < 2
        if first { received = signalNumber }
        let immediate = !cleanups.isEmpty
        let pending = Array(cleanups.values)
        lock.unlock()
        if first && !immediate {
            FileHandle.standardError.write(
                Data("\n\(name(signalNumber)): stopping after the current step (again to stop at once)\n".utf8))
            return
        }
        for cleanup in pending { cleanup() }
        FileHandle.standardError.write(Data("\n\(name(signalNumber)): stopped\n".utf8))
        _exit(128 + signalNumber)  // not exit(): atexit handlers would race the threads still running
    }

    /// The signal received so far, if any.
    public static var pending: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return received == 0 ? nil : received
    }

    public static func name(_ signalNumber: Int32) -> String { signalNumber == SIGTERM ? "SIGTERM" : "SIGINT" }

    /// Throws `.interrupted` if a signal arrived; `what` says what was (not) left behind.
    public static func check(_ what: @autoclosure () -> String) throws {
        if let signal = pending { throw DiffuseError.interrupted("stopped by \(name(signal)): \(what())", signal: signal) }
    }

    /// Runs `cleanup` if a signal ends the process while `body` runs (the first signal then exits).
    public static func whileRunning<T>(cleanup: @escaping () -> Void, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        let id = nextCleanup
        nextCleanup += 1
        cleanups[id] = cleanup
        lock.unlock()
        defer {
            lock.lock()
            cleanups[id] = nil
            lock.unlock()
        }
        return try body()
    }
}
