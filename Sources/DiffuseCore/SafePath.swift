// Names read from files, server answers and symlinks become paths only through these checks, so a
// hostile model_index.json, Hub answer or planted symlink cannot make Diffuse write outside the
// folder it means to write in (issue 10: a component named ../../../../x/y once did).
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum SafePath {
    /// A diffusers component name: a key of model_index.json, which diffusers passes as a keyword
    /// argument to the pipeline, so a Python identifier (ASCII letters, digits, '_', not starting
    /// with a digit), at most 128 characters. One path segment by construction.
    public static func isComponentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 128 else { return false }
        guard first.isASCII, first == "_" || CharacterSet.letters.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    /// One file-name segment: 1 to 255 ASCII letters, digits, '-', '_' or '.', and not '.' or '..'.
    public static func isSegment<S: StringProtocol>(_ segment: S) -> Bool {
        guard !segment.isEmpty, segment.utf8.count <= 255, segment != ".", segment != ".." else { return false }
        return segment.unicodeScalars.allSatisfy {
            $0.isASCII && ($0 == "-" || $0 == "_" || $0 == "." || CharacterSet.alphanumerics.contains($0))
        }
    }

    /// A relative path of at most 16 such segments joined by single '/': no leading or trailing
    /// slash, no empty, '.' or '..' segment, no backslash.
    public static func isRelativePath(_ path: String) -> Bool {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return segments.count <= 16 && segments.allSatisfy(isSegment)
    }

    /// The real location of `url`: its deepest existing ancestor with every symlink resolved
    /// (realpath), followed by the components that do not exist yet.
    public static func resolved(_ url: URL) -> String {
        var existing = url.standardizedFileURL.path
        var rest: [String] = []
        while true {
            if let real = realpath(existing, nil) {
                defer { free(real) }
                let base = String(cString: real)
                return rest.reversed().reduce(base) { ($0 == "/" ? "" : $0) + "/" + $1 }
            }
            let parent = (existing as NSString).deletingLastPathComponent
            if parent == existing || parent.isEmpty { return url.standardizedFileURL.path }
            rest.append((existing as NSString).lastPathComponent)
            existing = parent
        }
    }

    /// True when `url`, resolved, is `root` (resolved) or lies below it.
    public static func isInside(_ url: URL, root: URL) -> Bool {
        let path = resolved(url)
        let base = resolved(root)
        return path == base || path.hasPrefix(base == "/" ? "/" : base + "/")
    }

    /// Throws a one-line input error (exit 2) unless `url` lies inside `root` after resolution.
    public static func requireInside(_ url: URL, root: URL, what: String) throws {
        guard isInside(url, root: root) else {
            throw DiffuseError.input(
                "refusing to write \(url.path): it resolves to \(resolved(url)), outside \(what) \(resolved(root)); a symlink or "
                    + "name there points elsewhere: remove it and run again"
            )
        }
    }
}
