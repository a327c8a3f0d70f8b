// Output paths are checked before any work starts (issue 10, items 6 and 8): a name, not a folder;
// the format its extension names; a folder that exists and is writable; no two outputs on one
// file; an existing file only with --overwrite. A long run never fails at its very end for a
// reason that was visible at its start.
import DiffuseCore
import Foundation
import Tensor

#if canImport(Glibc)
import Glibc
#endif

struct OutputFile {
    var option: String
    var path: String
    /// Extensions the writer produces (lowercase, without the dot); the first is named in errors.
    var extensions: [String]
}

enum OutputCheck {
    static func validate(_ outputs: [OutputFile], overwrite: Bool) throws {
        var seen: [String: String] = [:]
        for output in outputs {
            let path = output.path
            guard !path.isEmpty else {
                throw DiffuseError.usage("\(output.option) is empty: give a file name ending in .\(output.extensions[0])")
            }
            guard !path.hasSuffix("/") else {
                throw DiffuseError.usage(
                    "\(output.option) \(path) names a folder: give a file name ending in .\(output.extensions[0])")
            }
            let url = URL(fileURLWithPath: path)
            let ext = url.pathExtension.lowercased()
            guard output.extensions.contains(ext) else {
                throw DiffuseError.usage(
                    "\(output.option) \(path): Diffuse writes \(output.extensions[0].uppercased()) here; name the file "
                        + ".\(output.extensions[0])"
                )
            }
            let resolved = url.standardizedFileURL.resolvingSymlinksInPath().path
            if let other = seen[resolved] {
                throw DiffuseError.usage("\(other) and \(output.option) both name \(path); give each output its own file")
            }
            seen[resolved] = output.option
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                if isDirectory.boolValue { throw DiffuseError.usage("\(output.option) \(path) is a folder: give a file name") }
                if !overwrite { throw DiffuseError.usage("\(path) already exists; choose another name or pass --overwrite") }
            }
            try requireWritableFolder(url.deletingLastPathComponent(), for: output.option)
        }
    }

    /// The folder a file goes into must exist and be writable.
    static func requireWritableFolder(_ folder: URL, for option: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DiffuseError.usage("\(option): the folder \(folder.path) does not exist; create it first")
        }
        guard access(folder.path, W_OK) == 0 else {
            throw DiffuseError.usage("\(option): the folder \(folder.path) is not writable")
        }
    }

    /// A run folder to create: its nearest existing ancestor must be a writable folder.
    static func validateRunFolder(_ path: String) throws {
        guard !path.isEmpty else { throw DiffuseError.usage("--output is empty: give the run folder's path") }
        var ancestor = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: ancestor.path) {
            let parent = ancestor.deletingLastPathComponent()
            if parent.path == ancestor.path { break }
            ancestor = parent
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw DiffuseError.usage("--output \(path): \(ancestor.path) is a file, not a folder")
        }
        guard access(ancestor.path, W_OK) == 0 else {
            throw DiffuseError.usage("--output \(path): \(ancestor.path) is not writable")
        }
    }
}
