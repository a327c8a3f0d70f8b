// Reading whole input files, with errors that name the file, the problem and the fix.
import DiffuseCore
import Foundation

public enum InputFile {
    /// Reads the whole file at `url` into memory. Deliberately not memory-mapped: a mapped file that another
    /// process truncates while we parse it would kill us with SIGBUS instead of giving an error.
    /// `what` says what kind of file this is ("safetensors file", "PNG file") for the error message.
    public static func read(_ url: URL, what: String) throws -> Data {
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
