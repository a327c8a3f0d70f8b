// A Hub model reference as a user types it: `owner/name` or `owner/name@revision`.
// Validation follows huggingface_hub's `validate_repo_id` (letters, digits, `-`, `_`, `.`; no `--`
// or `..`; at most 96 characters) so a name Python would refuse is refused here too.
import DiffuseCore

public struct HubRepoID: Equatable, Sendable, CustomStringConvertible {
    public var owner: String
    public var name: String
    /// A branch, tag, `refs/pr/N` or a 40-hex commit; "main" when not given.
    public var revision: String

    public var id: String { "\(owner)/\(name)" }
    public var description: String { revision == "main" ? id : "\(id)@\(revision)" }

    /// The folder name huggingface_hub gives the repository in its cache: `models--owner--name`.
    public var cacheFolderName: String { "models--\(owner)--\(name)" }

    /// True when `revision` is a full commit hash, which never moves and needs no ref lookup.
    public var revisionIsCommit: Bool { HubRepoID.isCommitHash(revision) }

    public init(owner: String, name: String, revision: String = "main") {
        self.owner = owner
        self.name = name
        self.revision = revision
    }

    /// Parses `owner/name[@revision]`, or returns nil when `text` does not have that shape at all
    /// (so the caller can treat it as a path). Throws when it has the shape but breaks a rule.
    public static func parse(_ text: String) throws -> HubRepoID? {
        var reference = Substring(text)
        var revision = "main"
        if let at = text.firstIndex(of: "@") {
            reference = text[..<at]
            revision = String(text[text.index(after: at)...])
            guard isValidRevision(revision) else {
                throw DiffuseError.usage(
                    "'\(text)': the revision after @ must be a branch, tag or commit (letters, digits, '-', '_', '.', '/'), got "
                        + "'\(revision)'"
                )
            }
        }
        let parts = reference.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        for part in parts where !isValidName(part) {
            throw DiffuseError.usage(
                "'\(text)' is neither an existing folder nor a valid Hub repository id: '\(part)' may hold only letters, digits, "
                    + "'-', '_' and '.', must not start or end with '-' or '.', nor contain '--' or '..'"
            )
        }
        guard reference.count <= 96 else {
            throw DiffuseError.usage("'\(text)': a Hub repository id has at most 96 characters")
        }
        return HubRepoID(owner: String(parts[0]), name: String(parts[1]), revision: revision)
    }

    static func isValidName<S: StringProtocol>(_ part: S) -> Bool {
        guard let first = part.first, let last = part.last else { return false }
        if "-.".contains(first) || "-.".contains(last) { return false }
        if part.contains("--") || part.contains("..") { return false }
        return part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    static func isValidRevision(_ revision: String) -> Bool {
        guard !revision.isEmpty, revision.count <= 255, !revision.hasPrefix("/"), !revision.hasSuffix("/") else {
            return false
        }
        // Path components become folders under refs/ in the cache: no empty, '.' or '..' components.
        for component in revision.split(separator: "/", omittingEmptySubsequences: false)
        where component.isEmpty || component == "." || component == ".." {
            return false
        }
        return revision.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }
    }

    public static func isCommitHash(_ text: String) -> Bool {
        text.count == 40 && text.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}
