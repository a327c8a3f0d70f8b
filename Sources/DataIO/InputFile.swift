// Reading whole input files, with errors that name the file, the problem and the fix.
import Foundation
import Tensor

enum InputFile {
    /// Reads the whole file at `url` into memory. Deliberately not memory-mapped: a mapped file that another
    /// process truncates while we parse it would kill us with SIGBUS instead of giving an error.
    /// `what` says what kind of file this is ("safetensors file", "PNG file") for the error message.
    static func read(_ url: URL, what: String) throws -> Data {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DiffuseError.input("\(path): no such \(what); check the path")
        }
        guard !isDirectory.boolValue else {
            throw DiffuseError.input("\(path): is a directory, expected a \(what); give the path of the file itself")
        }
        do {
            return try Data(contentsOf: url)
        } catch {
            let reason = error.localizedDescription.split(whereSeparator: \.isNewline).joined(separator: " ")
            throw DiffuseError.input("\(path): cannot read \(what) (\(reason)); check its permissions")
        }
    }
}

/// Overflow-safe arithmetic for sizes taken from untrusted files: nil instead of a trap.
enum CheckedSize {
    static func multiply(_ a: Int, _ b: Int) -> Int? {
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : r
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : r
    }

    /// Product of non-negative dimensions, nil on overflow or a negative entry. The empty product is 1 (a scalar).
    static func product(_ dims: [Int]) -> Int? {
        var total = 1
        for d in dims {
            guard d >= 0, let t = multiply(total, d) else { return nil }
            total = t
        }
        return total
    }
}
