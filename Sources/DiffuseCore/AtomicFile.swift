// Atomic file replacement: readers see either the old file or the complete new one, never a torn write.
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum AtomicFile {
    /// Writes `data` to `url` by way of a temporary file in the same directory, so that a crash or a full disk
    /// mid-write leaves any previous file intact. The rename is atomic only within one file system, which is why
    /// the temporary file lives next to the destination rather than in /tmp.
    public static func write(_ data: Data, to url: URL) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent()
        let name = url.lastPathComponent
        guard !name.isEmpty, name != "/", name != ".", name != ".." else {
            throw DiffuseError.output("cannot write \(path): not a file name; give a path that ends in a file name")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DiffuseError.output("cannot write \(path): cannot create directory \(directory.path) (\(oneLine(error)))")
        }

        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let tempPath = directory.appendingPathComponent(".\(name).tmp-\(getpid())-\(random)").path
        // O_EXCL: never follow or clobber something another process put at our temporary name.
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw DiffuseError.output("cannot write \(path): \(errnoText()); check that the directory is writable")
        }
        var closed = false
        do {
            try writeAll(fd, data)
            guard fsync(fd) == 0 else { throw posixFailure("fsync") }
            closed = true
            guard close(fd) == 0 else { throw posixFailure("close") }
            guard rename(tempPath, path) == 0 else { throw posixFailure("rename") }
        } catch {
            if !closed { _ = close(fd) }
            _ = unlink(tempPath)
            let reason = (error as? PosixFailure)?.text ?? oneLine(error)
            throw DiffuseError.output("cannot write \(path): \(reason)")
        }
        // Persist the directory entry too; failure here is not fatal because the data itself is already safe.
        let dirFD = open(directory.path, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            _ = close(dirFD)
        }
    }

    /// A failed system call, kept separate so the message can carry the call name and errno text.
    private struct PosixFailure: Error { let text: String }

    private static func posixFailure(_ call: String) -> PosixFailure {
        PosixFailure(text: "\(call) failed: \(errnoText())")
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }

    /// write(2) may write fewer bytes than asked or be interrupted by a signal; loop until everything is out.
    private static func writeAll(_ fd: Int32, _ data: Data) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                // Cap each call at 1 GiB: some kernels reject larger single writes.
                let chunk = min(raw.count - offset, 1 << 30)
                let n = posixWrite(fd, base + offset, chunk)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw posixFailure("write")
                }
                if n == 0 { throw PosixFailure(text: "write made no progress") }
                offset += n
            }
        }
    }

    private static func oneLine(_ error: Error) -> String {
        let text = (error as? DiffuseError)?.description ?? error.localizedDescription
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// `write` the system call, named apart from `AtomicFile.write` which would otherwise shadow it.
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
