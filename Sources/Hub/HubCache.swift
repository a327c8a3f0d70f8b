// The Hugging Face Hub cache as huggingface_hub (file_download.py, constants.py) lays it out, so a
// model fetched by Python is found here and one fetched here is found by Python:
//
//   $HF_HUB_CACHE | $HUGGINGFACE_HUB_CACHE | $HF_HOME/hub | $XDG_CACHE_HOME/huggingface/hub | ~/.cache/huggingface/hub
//     models--owner--name/
//       refs/<revision>                 the commit hash the revision pointed at, no newline
//       blobs/<etag>                    file contents, named by SHA-256 (LFS) or git blob SHA-1
//       snapshots/<commit>/<path>       relative symlink to ../../blobs/<etag> (one more ../ per folder)
import DiffuseCore
import Foundation

public struct HubCache: Sendable {
    public var root: URL

    public init(root: URL) { self.root = root }

    /// The cache huggingface_hub would use with this environment (constants.HF_HUB_CACHE).
    public static func directory(environment: [String: String]) -> URL {
        func path(_ text: String) -> URL { URL(fileURLWithPath: (text as NSString).expandingTildeInPath) }
        if let hub = environment["HF_HUB_CACHE"], !hub.isEmpty { return path(hub) }
        if let legacy = environment["HUGGINGFACE_HUB_CACHE"], !legacy.isEmpty { return path(legacy) }
        if let home = environment["HF_HOME"], !home.isEmpty { return path(home).appendingPathComponent("hub") }
        let cacheHome = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "~/.cache"
        return path(cacheHome).appendingPathComponent("huggingface").appendingPathComponent("hub")
    }

    public func repoFolder(_ repo: HubRepoID) -> URL { root.appendingPathComponent(repo.cacheFolderName) }

    public func blobsFolder(_ repo: HubRepoID) -> URL { repoFolder(repo).appendingPathComponent("blobs") }

    public func snapshotFolder(_ repo: HubRepoID, commit: String) -> URL {
        repoFolder(repo).appendingPathComponent("snapshots").appendingPathComponent(commit)
    }

    /// The commit the cache last saw for the repository's revision: the revision itself when it is a
    /// commit hash, else the content of refs/<revision>.
    public func cachedCommit(_ repo: HubRepoID) -> String? {
        if repo.revisionIsCommit { return repo.revision }
        let ref = repoFolder(repo).appendingPathComponent("refs").appendingPathComponent(repo.revision)
        guard let data = FileManager.default.contents(atPath: ref.path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return HubRepoID.isCommitHash(text) ? text : nil
    }

    /// The cached file at `path` in the snapshot of `commit`, if it is there and its blob is intact
    /// (a symlink into a deleted blob does not count).
    /// A link that leads outside the repository's cache folder does not count either: it is linked
    /// again, properly, when the file is fetched.
    public func cachedFile(_ repo: HubRepoID, commit: String, path: String) -> URL? {
        guard SafePath.isRelativePath(path), HubRepoID.isCommitHash(commit) else { return nil }
        let url = snapshotFolder(repo, commit: commit).appendingPathComponent(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
            SafePath.isInside(url, root: repoFolder(repo))
        else {
            return nil
        }
        return url
    }

    /// Throws unless `url` lies inside the repository's cache folder once symlinks are resolved.
    func requireInside(_ url: URL, _ repo: HubRepoID) throws {
        guard SafePath.isSegment(repo.cacheFolderName) else {
            throw DiffuseError.input("'\(repo.id)' cannot name a folder of the Hub cache")
        }
        try SafePath.requireInside(repoFolder(repo), root: root, what: "the Hub cache")
        try SafePath.requireInside(url, root: repoFolder(repo), what: "the Hub cache folder of \(repo.id)")
    }

    /// True when huggingface_hub recorded that `path` does not exist at `commit` (.no_exist/<commit>/<path>).
    public func knownMissing(_ repo: HubRepoID, commit: String, path: String) -> Bool {
        guard SafePath.isRelativePath(path), HubRepoID.isCommitHash(commit) else { return false }
        let marker = repoFolder(repo).appendingPathComponent(".no_exist").appendingPathComponent(commit)
            .appendingPathComponent(path)
        return FileManager.default.fileExists(atPath: marker.path)
    }

    /// An etag as the Hub sends it (git SHA-1 or LFS SHA-256, hex) once quotes are stripped; the
    /// letters, digits, '-' and '_' of other servers are taken too. It names a blob file.
    static func isEtag(_ etag: String) -> Bool {
        !etag.isEmpty && etag.utf8.count <= 128
            && etag.unicodeScalars.allSatisfy {
                $0.isASCII && ($0 == "-" || $0 == "_" || CharacterSet.alphanumerics.contains($0))
            }
    }

    /// Links snapshots/<commit>/<path> to blobs/<etag> with a relative symlink, as huggingface_hub's
    /// `_create_symlink` does, replacing whatever was at the link's place.
    /// The link's folder must resolve inside the snapshot: a planted symlink is never written through.
    func link(_ repo: HubRepoID, commit: String, path: String, etag: String) throws {
        guard SafePath.isRelativePath(path), HubRepoID.isCommitHash(commit), HubCache.isEtag(etag) else {
            throw DiffuseError.input(
                "refusing to link '\(path.prefix(200))' of \(repo) in the Hub cache: not a safe relative path, commit and etag")
        }
        let snapshot = snapshotFolder(repo, commit: commit)
        let link = snapshot.appendingPathComponent(path)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        try requireInside(snapshot, repo)
        try SafePath.requireInside(link.deletingLastPathComponent(), root: snapshot, what: "the snapshot folder")
        do {
            try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            // Created folders may have raced with a planted link: check again before writing in them.
            try SafePath.requireInside(link.deletingLastPathComponent(), root: snapshot, what: "the snapshot folder")
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) != nil
                || FileManager.default.fileExists(atPath: link.path)
            {
                try FileManager.default.removeItem(at: link)
            }
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target)
        } catch let error as DiffuseError {
            throw error
        } catch {
            throw DiffuseError.output(
                "cannot write \(link.path) in the Hub cache: \(error.localizedDescription); check that \(root.path) is writable")
        }
    }

    /// Records which commit `revision` points at (refs/<revision>), atomically, without a newline as
    /// huggingface_hub writes it.
    func writeRef(_ repo: HubRepoID, commit: String) throws {
        guard !repo.revisionIsCommit else { return }
        let ref = repoFolder(repo).appendingPathComponent("refs").appendingPathComponent(repo.revision)
        if cachedCommit(repo) == commit { return }
        try requireInside(ref, repo)
        try AtomicFile.write(Data(commit.utf8), to: ref)
    }
}
