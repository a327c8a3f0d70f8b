// A small Hugging Face Hub look-alike on loopback: serves model folders under the Hub's URL layout
// so the Hub client can be tested (and a machine without internet can mirror models) with
// HF_ENDPOINT=http://127.0.0.1:PORT. It answers what huggingface_hub and Diffuse ask:
//   GET  /api/models/{repo}[/revision/{rev}]       {"id", "sha", "siblings"}
//   GET  /api/models/{repo}/tree/{rev}[?recursive]   the file listing with git and LFS ids
//   HEAD|GET /{repo}/resolve/{rev}/{path}           X-Repo-Commit, ETag; LFS files (*.safetensors,
//        *.bin) redirect to a second "CDN" port, with X-Linked-Etag (SHA-256) and X-Linked-Size,
//        the way the Hub sends them to its CDN, so clients must handle cross-origin redirects.
// Errors carry the Hub's X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound).
// It only ever binds 127.0.0.1.
import DiffuseCore
import Foundation
import Hub

#if canImport(Glibc)
import Glibc
#endif

public final class HubFileServer: @unchecked Sendable {
    struct Repo {
        var files: [String: [UInt8]]
        var commit: String
        var blobIDs: [String: String]
        var sha256: [String: String]
    }

    public struct Request: Equatable, Sendable {
        public var method: String
        public var path: String
        public var authorization: String?
    }

    private var repos: [String: Repo] = [:]
    private let lock = NSLock()
    private var log: [Request] = []
    private var listeners: [Int32] = []
    private var loopsDone: [DispatchSemaphore] = []
    private var threads: [Thread] = []
    public private(set) var port: UInt16 = 0
    public private(set) var cdnPort: UInt16 = 0
    /// Paths (in any repo) whose transfer stops halfway: the connection closes after half the body.
    public var interruptedPaths: Set<String> {
        get { lock.lock(); defer { lock.unlock() }; return _interrupted }
        set { lock.lock(); _interrupted = newValue; lock.unlock() }
    }
    private var _interrupted: Set<String> = []
    /// When set, every Hub request must carry `Authorization: Bearer <token>` (a private repository).
    public var requiredToken: String?
    /// A Hub that lies, for tests of what a hostile server can do: a request whose path (as the client
    /// sent it, after its own normalisation) ends with one of these keys is answered 200 with those
    /// bytes, as a file of the first repository's commit.
    public var lyingAnswers: [String: [UInt8]] {
        get { lock.lock(); defer { lock.unlock() }; return _lying }
        set { lock.lock(); _lying = newValue; lock.unlock() }
    }
    private var _lying: [String: [UInt8]] = [:]

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// `repos`: repository id ("owner/name") to the folder served as its main branch.
    public init(repos: [String: URL]) throws {
        for (id, folder) in repos {
            self.repos[id] = try HubFileServer.load(folder)
        }
    }

    /// Every request seen so far, in order.
    public var requests: [Request] {
        lock.lock(); defer { lock.unlock() }
        return log
    }

    public func commit(of repo: String) -> String? { repos[repo]?.commit }

    static func load(_ folder: URL) throws -> Repo {
        guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw DiffuseError.input("cannot list \(folder.path) to serve it")
        }
        var files: [String: [UInt8]] = [:]
        let base = folder.standardizedFileURL.path
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true,
                !url.lastPathComponent.hasPrefix(".")
            else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(base.count + 1))
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw DiffuseError.input("cannot read \(url.path) to serve it")
            }
            files[relative] = [UInt8](data)
        }
        var blobIDs: [String: String] = [:]
        var sha256: [String: String] = [:]
        var tree = SHA1()
        for path in files.keys.sorted() {
            blobIDs[path] = SHA1.gitBlobID(files[path]!)
            if isLFS(path) { sha256[path] = SHA256.hex(files[path]!) }
            tree.update(Array("\(path)\u{0}\(blobIDs[path]!)\n".utf8))
        }
        // Not git's commit id, but like it: 40 hex digits that change whenever any file does.
        return Repo(files: files, commit: hexString(tree.finalize()), blobIDs: blobIDs, sha256: sha256)
    }

    static func isLFS(_ path: String) -> Bool { path.hasSuffix(".safetensors") || path.hasSuffix(".bin") }

    /// Binds two ephemeral loopback ports (Hub and CDN) and serves them on background threads.
    public func start(port requested: UInt16 = 0) throws {
        let hub = try HubFileServer.listen(port: requested)
        let cdn = try HubFileServer.listen(port: 0)
        listeners = [hub.fd, cdn.fd]
        port = hub.port
        cdnPort = cdn.port
        for (fd, isCDN) in [(hub.fd, false), (cdn.fd, true)] {
            let done = DispatchSemaphore(value: 0)
            loopsDone.append(done)
            let thread = Thread { [self] in
                acceptLoop(fd, cdn: isCDN)
                done.signal()
            }
            thread.start()
            threads.append(thread)
        }
    }

    /// Stops accepting. Each listener is shut down, its accept loop seen to leave, and only then
    /// closed: closing first let a loop still blocked in accept() pick up a descriptor number the
    /// next server reused, and answer that server's clients with this server's repositories.
    public func stop() {
        for fd in listeners { _ = shutdown(fd, Int32(SHUT_RDWR)) }
        for done in loopsDone { _ = done.wait(timeout: .now() + 5) }
        for fd in listeners { _ = close(fd) }
        listeners = []
        loopsDone = []
    }

    static func listen(port: UInt16) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw DiffuseError.device("socket() failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw DiffuseError.usage("cannot listen on 127.0.0.1:\(port): \(reason)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    private func acceptLoop(_ listener: Int32, cdn: Bool) {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            // One thread per connection, so a client holding one connection open cannot stall another.
            Thread { [self] in
                serve(client, cdn: cdn)
                close(client)
            }.start()
        }
    }

    private func serve(_ client: Int32, cdn: Bool) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !buffer.containsHeaderEnd {
            let n = recv(client, &chunk, chunk.count, 0)
            if n <= 0 || buffer.count > 65536 { return }
            buffer.append(contentsOf: chunk[0..<n])
        }
        let head = String(decoding: buffer, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let request = Request(method: String(parts[0]), path: String(parts[1]), authorization: headers["authorization"])
        lock.lock()
        log.append(request)
        lock.unlock()
        let reply = cdn ? cdnReply(request) : hubReply(request)
        send(client, reply, headOnly: request.method == "HEAD")
    }

    struct Reply {
        var status: Int
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// Bytes of the body actually sent before the connection is closed (an interrupted transfer).
        var truncateAt: Int?
    }

    private func send(_ client: Int32, _ reply: Reply, headOnly: Bool) {
        let reasons = [200: "OK", 302: "Found", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"]
        var text = "HTTP/1.1 \(reply.status) \(reasons[reply.status] ?? "Status")\r\n"
        for (name, value) in reply.headers { text += "\(name): \(value)\r\n" }
        if !reply.headers.contains(where: { $0.0 == "Content-Length" }) { text += "Content-Length: \(reply.body.count)\r\n" }
        text += "Connection: close\r\n\r\n"
        var bytes = Array(text.utf8)
        if !headOnly { bytes += reply.body.prefix(reply.truncateAt ?? reply.body.count) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    private func error(_ status: Int, code: String?, message: String, commit: String? = nil) -> Reply {
        var headers = [("Content-Type", "application/json")]
        if let code { headers.append(("X-Error-Code", code)) }
        if let commit { headers.append(("X-Repo-Commit", commit)) }
        let body = Array((try? JSONSerialization.data(withJSONObject: ["error": message])) ?? Data())
        return Reply(status: status, headers: headers, body: body)
    }

    private func json(_ object: Any) -> Reply {
        let body = Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
        return Reply(status: 200, headers: [("Content-Type", "application/json")], body: body)
    }

    private func hubReply(_ request: Request) -> Reply {
        guard request.method == "GET" || request.method == "HEAD" else {
            return error(405, code: nil, message: "only GET and HEAD")
        }
        if let requiredToken, request.authorization != "Bearer \(requiredToken)" {
            return error(401, code: "RepoNotFound", message: "Repository not found or invalid credentials")
        }
        let pathOnly = request.path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.path
        if let lie = lyingAnswers.first(where: { pathOnly.hasSuffix($0.key) }), let commit = repos.values.first?.commit {
            return Reply(
                status: 200,
                headers: [
                    ("X-Repo-Commit", commit), ("ETag", "\"\(SHA1.gitBlobID(lie.value))\""),
                    ("Content-Type", "application/octet-stream"),
                ], body: lie.value)
        }
        let segments = pathOnly.split(separator: "/").map { $0.removingPercentEncoding ?? String($0) }
        if segments.count >= 4, segments[0] == "api", segments[1] == "models" {
            return apiReply(segments: Array(segments.dropFirst(2)))
        }
        guard segments.count >= 5, segments[2] == "resolve" else {
            return error(404, code: nil, message: "no such route")
        }
        let id = "\(segments[0])/\(segments[1])"
        guard let repo = repos[id] else { return error(404, code: "RepoNotFound", message: "Repository not found") }
        guard segments[3] == "main" || segments[3] == repo.commit else {
            return error(404, code: "RevisionNotFound", message: "Invalid rev id: \(segments[3])")
        }
        let path = segments[4...].joined(separator: "/")
        guard let bytes = repo.files[path] else {
            return error(404, code: "EntryNotFound", message: "Entry not found", commit: repo.commit)
        }
        if let sha = repo.sha256[path] {
            return Reply(
                status: 302,
                headers: [
                    ("Location", "http://127.0.0.1:\(cdnPort)/lfs/\(sha)"), ("X-Repo-Commit", repo.commit),
                    ("X-Linked-Etag", "\"\(sha)\""), ("X-Linked-Size", "\(bytes.count)"),
                    ("ETag", "\"\(repo.blobIDs[path]!)\""),
                ])
        }
        return Reply(
            status: 200,
            headers: [
                ("X-Repo-Commit", repo.commit), ("ETag", "\"\(repo.blobIDs[path]!)\""),
                ("Content-Type", "application/octet-stream"),
            ], body: bytes)
    }

    /// /api/models/{owner}/{name}[/revision/{rev} | /tree/{rev}[/...]]
    private func apiReply(segments: [String]) -> Reply {
        let id = "\(segments[0])/\(segments[1])"
        guard let repo = repos[id] else { return error(404, code: "RepoNotFound", message: "Repository not found") }
        let rest = Array(segments.dropFirst(2))
        if rest.count >= 2, rest[0] == "revision" || rest[0] == "tree",
            rest[1] != "main", rest[1] != repo.commit
        {
            return error(404, code: "RevisionNotFound", message: "Invalid rev id: \(rest[1])")
        }
        if rest.first == "tree" {
            var entries: [[String: Any]] = []
            let folders = Set(
                repo.files.keys.flatMap { path -> [String] in
                    let parts = path.split(separator: "/")
                    return (1..<max(parts.count, 1)).map { parts[0..<$0].joined(separator: "/") }
                })
            for folder in folders.sorted() {
                entries.append(["type": "directory", "oid": SHA1.hex(Array(folder.utf8)), "size": 0, "path": folder])
            }
            for path in repo.files.keys.sorted() {
                var entry: [String: Any] = [
                    "type": "file", "oid": repo.blobIDs[path]!, "size": repo.files[path]!.count,
                    "path": path,
                ]
                if let sha = repo.sha256[path] {
                    entry["lfs"] = ["oid": sha, "size": repo.files[path]!.count, "pointerSize": 134]
                }
                entries.append(entry)
            }
            return json(entries)
        }
        let siblings = repo.files.keys.sorted().map { ["rfilename": $0] }
        return json([
            "id": id, "modelId": id, "sha": repo.commit, "private": requiredToken != nil,
            "siblings": siblings, "tags": [String](),
        ])
    }

    private func cdnReply(_ request: Request) -> Reply {
        let segments = request.path.split(separator: "/").map(String.init)
        guard segments.count == 2, segments[0] == "lfs" else { return error(404, code: nil, message: "no such blob") }
        for repo in repos.values {
            if let path = repo.sha256.first(where: { $0.value == segments[1] })?.key {
                let bytes = repo.files[path]!
                var reply = Reply(status: 200, headers: [("Content-Type", "application/octet-stream")], body: bytes)
                if interruptedPaths.contains(path) {
                    reply.headers.append(("Content-Length", "\(bytes.count)"))
                    reply.truncateAt = bytes.count / 2
                }
                return reply
            }
        }
        return error(404, code: nil, message: "no such blob")
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 {
            return true
        }
        return false
    }
}
