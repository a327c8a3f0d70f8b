// Fetches files of one Hub repository into the shared cache, the way huggingface_hub's
// hf_hub_download does: HEAD /{repo}/resolve/{revision}/{file} for the commit, etag and size, then
// the cached snapshot if it has the file, else a GET into blobs/<etag>.<random>.incomplete.
// Unlike huggingface_hub, nothing is installed until `finish()`: the blobs are renamed into place,
// the snapshot links made and refs/<revision> written only once every file of the model arrived, so
// a failed or interrupted fetch leaves the cache exactly as it was.
import DiffuseCore
import Foundation

public final class HubSnapshotFetcher {
    public let repo: HubRepoID
    public let environment: HubEnvironment
    let http: HubHTTP
    /// Pinned by the first answer, so every file comes from the same commit even if the branch moves.
    public private(set) var commit: String?
    /// Set when the endpoint could not be reached: the cache alone answers from then on.
    public private(set) var usingCacheOnly: Bool
    private var unreachableReason: String?
    private var staged: [(path: String, etag: String, temporary: URL?)] = []
    public private(set) var downloadedBytes: Int64 = 0

    public init(repo: HubRepoID, environment: HubEnvironment) {
        self.repo = repo
        self.environment = environment
        self.http = HubHTTP(token: environment.token, endpoint: environment.endpoint)
        self.usingCacheOnly = environment.offline
    }

    deinit { abandon() }

    /// Removes every downloaded but not installed file.
    public func abandon() {
        for entry in staged {
            if let temporary = entry.temporary { try? FileManager.default.removeItem(at: temporary) }
        }
        staged = []
    }

    /// The local path of `path` in the repository (cached, or downloaded and staged), or nil when the
    /// Hub says the repository has no such file.
    public func fileIfPresent(_ path: String) throws -> URL? {
        guard SafePath.isRelativePath(path) else {
            throw DiffuseError.input(
                "refusing to fetch '\(path.prefix(200))' from \(repo): a file of a repository is a relative path of plain names "
                    + "(letters, digits, '-', '_', '.'), never '..' or an absolute path"
            )
        }
        // A commit never changes: a file cached for it needs no request (hf_hub_download does the same).
        if repo.revisionIsCommit, let cached = environment.cache.cachedFile(repo, commit: repo.revision, path: path) {
            commit = repo.revision
            return cached
        }
        if !usingCacheOnly {
            do {
                return try fetchOnline(path)
            } catch HubTransportError.unreachable(let reason) {
                // Like huggingface_hub: no connection means "use what the cache has".
                usingCacheOnly = true
                unreachableReason = reason
            }
        }
        return try cachedOrExplain(path)
    }

    /// Whether the repository has `path`, asked without downloading it (to name files we refuse).
    public func exists(_ path: String) throws -> Bool {
        guard SafePath.isRelativePath(path) else { return false }
        if !usingCacheOnly, let head = try? http.head(resolveURL(path)) {
            return (200..<400).contains(head.status)
        }
        return environment.cache.cachedFile(repo, commit: commit ?? environment.cache.cachedCommit(repo) ?? "", path: path) != nil
    }

    /// Like `fileIfPresent`, but a missing file is an error naming it.
    public func file(_ path: String) throws -> URL {
        guard let url = try fileIfPresent(path) else {
            throw DiffuseError.input("\(repo) has no file \(path) at revision \(repo.revision) on \(environment.endpoint)")
        }
        return url
    }

    /// Installs what was downloaded and returns the snapshot folder.
    public func finish() throws -> URL {
        guard let commit else {
            throw DiffuseError.input("nothing was fetched from \(repo)")
        }
        let blobs = environment.cache.blobsFolder(repo)
        for entry in staged {
            if let temporary = entry.temporary {
                let blob = blobs.appendingPathComponent(entry.etag)
                try environment.cache.requireInside(blob, repo)
                if FileManager.default.fileExists(atPath: blob.path) {
                    try? FileManager.default.removeItem(at: temporary)
                } else if rename(temporary.path, blob.path) != 0 {
                    throw DiffuseError.output(
                        "cannot move the download into \(blob.path): \(String(cString: strerror(errno))); check that the Hub "
                            + "cache is writable"
                    )
                }
            }
            try environment.cache.link(repo, commit: commit, path: entry.path, etag: entry.etag)
        }
        staged = []
        try environment.cache.writeRef(repo, commit: commit)
        return environment.cache.snapshotFolder(repo, commit: commit)
    }

    private func resolveURL(_ path: String) -> URL {
        // A branch like refs/pr/1 travels as one path segment, percent-encoded (hf_hub_url quotes it).
        func encoded(_ segment: String) -> String {
            segment.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~")))
                ?? segment
        }
        let encodedRevision = encoded(commit ?? repo.revision)
        let encodedPath = path.split(separator: "/").map { encoded(String($0)) }.joined(separator: "/")
        return URL(string: "\(environment.endpoint)/\(repo.id)/resolve/\(encodedRevision)/\(encodedPath)")!
    }

    private func fetchOnline(_ path: String) throws -> URL? {
        let url = resolveURL(path)
        let head = try http.head(url)
        if head.status == 404, head.header("x-error-code") == "EntryNotFound" || head.header("x-error-code") == nil,
            head.header("x-repo-commit") != nil
        {
            return nil
        }
        try HubFetchErrors.check(head, repo: repo, path: path, endpoint: environment.endpoint, token: environment.token)
        guard let headCommit = head.header("x-repo-commit"), HubRepoID.isCommitHash(headCommit) else {
            throw DiffuseError.input(
                "\(environment.endpoint) answered \(url.absoluteString) without an X-Repo-Commit header: is HF_ENDPOINT a "
                    + "Hugging Face Hub?"
            )
        }
        if commit == nil { commit = headCommit }
        guard let rawEtag = head.header("x-linked-etag") ?? head.header("etag") else {
            throw DiffuseError.input(
                "\(environment.endpoint) answered \(url.absoluteString) without an ETag: is HF_ENDPOINT a Hugging Face Hub?")
        }
        let etag = HubSnapshotFetcher.normalizeEtag(rawEtag)
        guard HubCache.isEtag(etag) else {
            throw DiffuseError.input("\(environment.endpoint) gave \(path) an unusable ETag '\(rawEtag)'")
        }
        let size = Int64(head.header("x-linked-size") ?? (head.isRedirect ? "" : head.header("content-length") ?? ""))

        // Already cached at this commit: nothing to download (the snapshot link may still need making
        // if this commit is new for a blob we have, which finish() does).
        if let cached = environment.cache.cachedFile(repo, commit: headCommit, path: path) {
            return cached
        }
        let blob = environment.cache.blobsFolder(repo).appendingPathComponent(etag)
        if FileManager.default.fileExists(atPath: blob.path) {
            staged.append((path, etag, nil))
            return blob
        }
        let location = head.isRedirect ? URL(string: head.header("location")!, relativeTo: url)?.absoluteURL ?? url : url
        guard let scheme = location.scheme?.lowercased(), scheme == "https" || scheme == "http" else {
            throw DiffuseError.input(
                "\(environment.endpoint) redirected \(path) to '\(location.absoluteString.prefix(200))', which is not an http(s) "
                    + "URL; refusing to follow it"
            )
        }
        let temporary = try download(location, path: path, etag: etag, expectedSize: size)
        staged.append((path, etag, temporary))
        return temporary
    }

    static func normalizeEtag(_ etag: String) -> String {
        var text = Substring(etag)
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        return text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
    }

    private func download(_ url: URL, path: String, etag: String, expectedSize: Int64?) throws -> URL {
        let blobs = environment.cache.blobsFolder(repo)
        try environment.cache.requireInside(blobs, repo)
        do {
            try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        } catch {
            throw DiffuseError.output(
                "cannot create \(blobs.path): \(error.localizedDescription); check that the Hub cache (HF_HUB_CACHE or HF_HOME) "
                    + "is writable"
            )
        }
        try environment.cache.requireInside(blobs, repo)
        try Interruption.check("nothing was saved to the cache")
        HubSnapshotFetcher.removeStaleDownloads(in: blobs)
        // The process id in the name tells a later run whether the download's owner is gone.
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = blobs.appendingPathComponent("\(etag).\(getpid()).\(random).incomplete")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary.path)
        else {
            throw DiffuseError.output("cannot create \(temporary.path); check that the Hub cache is writable")
        }
        let bar = HubProgressBar(name: path, total: expectedSize, enabled: environment.showProgress)
        var completed = false
        defer {
            try? handle.close()
            if !completed { try? FileManager.default.removeItem(at: temporary) }
        }
        let response: HubResponse
        let received: Int64
        do {
            // A signal mid-transfer removes every unfinished file of this fetch before exiting.
            let unfinished = staged.compactMap(\.temporary) + [temporary]
            (response, received) = try Interruption.whileRunning(cleanup: {
                for file in unfinished { unlink(file.path) }
            }) {
                try http.get(url, into: handle, progress: { bar.update($0) })
            }
        } catch HubTransportError.unreachable(let reason), HubTransportError.interrupted(let reason) {
            bar.finish(success: false)
            throw DiffuseError.input(
                "download of \(path) from \(environment.endpoint) was interrupted (\(reason)); nothing was saved to the cache: "
                    + "run the command again"
            )
        }
        try HubFetchErrors.check(response, repo: repo, path: path, endpoint: environment.endpoint, token: environment.token)
        bar.finish(success: true)
        let size = expectedSize ?? Int64(response.header("content-length") ?? "")
        if let size, received != size {
            throw DiffuseError.input(
                "download of \(path) from \(environment.endpoint) was interrupted after \(received) of \(size) bytes; nothing "
                    + "was saved to the cache: run the command again"
            )
        }
        try handle.synchronize()
        // LFS blobs are named by their SHA-256: check the bytes are the ones the Hub promised.
        if etag.count == 64, etag.allSatisfy(\.isHexDigit) {
            let digest = try HubSnapshotFetcher.sha256(of: temporary)
            guard digest == etag.lowercased() else {
                throw DiffuseError.input(
                    "download of \(path) from \(environment.endpoint) is corrupt (SHA-256 \(digest), expected \(etag)); nothing "
                        + "was saved: run the command again"
                )
            }
        }
        downloadedBytes += received
        completed = true
        return temporary
    }

    /// Removes downloads a killed Diffuse left (`<etag>.<pid>.<random>.incomplete` whose process is
    /// gone). huggingface_hub's own `<etag>.incomplete` files are left for it to resume.
    static func removeStaleDownloads(in blobs: URL) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [] where name.hasSuffix(".incomplete") {
            let parts = name.split(separator: ".")
            guard parts.count == 4, let pid = Int32(parts[1]), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: blobs.appendingPathComponent(name))
            }
        }
    }

    static func sha256(of url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw DiffuseError.input("cannot read back \(url.path)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(chunk) }
        return hexString(hasher.finalize())
    }

    /// Answers from the cache alone, or says what is missing and why the network was not asked.
    private func cachedOrExplain(_ path: String) throws -> URL? {
        let why =
            environment.offline
            ? "HF_HUB_OFFLINE is set"
            : "\(environment.endpoint) could not be reached (\(unreachableReason ?? "no connection"))"
        guard let cachedCommit = commit ?? environment.cache.cachedCommit(repo) else {
            throw DiffuseError.input(
                "\(repo) is not in the Hub cache at \(environment.cache.root.path) and \(why); connect once to download it, or "
                    + "point HF_HUB_CACHE at a cache that has it"
            )
        }
        commit = cachedCommit
        if environment.cache.knownMissing(repo, commit: cachedCommit, path: path) { return nil }
        guard let url = environment.cache.cachedFile(repo, commit: cachedCommit, path: path) else {
            throw DiffuseError.input(
                "\(path) of \(repo) is not in the Hub cache at \(environment.cache.root.path) and \(why); connect once to "
                    + "download it"
            )
        }
        return url
    }
}
