// The Hugging Face Hub cache as huggingface_hub (file_download.py, constants.py) lays it out, so a
// model fetched by Python is found here and one fetched here is found by Python:
//
//   $HF_HUB_CACHE | $HUGGINGFACE_HUB_CACHE | $HF_HOME/hub | $XDG_CACHE_HOME/huggingface/hub | ~/.cache/huggingface/hub
//     models--owner--name/
//       refs/<revision>                 the commit hash the revision pointed at, no newline
//       blobs/<etag>                    file contents, named by SHA-256 (LFS) or git blob SHA-1
//       snapshots/<commit>/<path>       relative symlink to ../../blobs/<etag> (one more ../ per folder)
import DataIO
import Foundation
import Tensor

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
    public func cachedFile(_ repo: HubRepoID, commit: String, path: String) -> URL? {
        let url = snapshotFolder(repo, commit: commit).appendingPathComponent(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return nil
        }
        return url
    }

    /// True when huggingface_hub recorded that `path` does not exist at `commit` (.no_exist/<commit>/<path>).
    public func knownMissing(_ repo: HubRepoID, commit: String, path: String) -> Bool {
        let marker = repoFolder(repo).appendingPathComponent(".no_exist").appendingPathComponent(commit)
            .appendingPathComponent(path)
        return FileManager.default.fileExists(atPath: marker.path)
    }

    /// Links snapshots/<commit>/<path> to blobs/<etag> with a relative symlink, as huggingface_hub's
    /// `_create_symlink` does, replacing whatever was at the link's place.
    func link(_ repo: HubRepoID, commit: String, path: String, etag: String) throws {
        let link = snapshotFolder(repo, commit: commit).appendingPathComponent(path)
        let depth = path.split(separator: "/").count - 1
        let target = String(repeating: "../", count: depth + 2) + "blobs/" + etag
        do {
            try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link.path)) != nil
                || FileManager.default.fileExists(atPath: link.path) {
                try FileManager.default.removeItem(at: link)
            }
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: target)
        } catch {
            throw DiffuseError.output("cannot write \(link.path) in the Hub cache: \(error.localizedDescription); check that \(root.path) is writable")
        }
    }

    /// Records which commit `revision` points at (refs/<revision>), atomically, without a newline as
    /// huggingface_hub writes it.
    func writeRef(_ repo: HubRepoID, commit: String) throws {
        guard !repo.revisionIsCommit else { return }
        let ref = repoFolder(repo).appendingPathComponent("refs").appendingPathComponent(repo.revision)
        if cachedCommit(repo) == commit { return }
        try AtomicFile.write(Data(commit.utf8), to: ref)
    }
}
