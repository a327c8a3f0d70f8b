// Blocking HTTP for the Hub client on URLSession (libcurl on Linux): a HEAD that stops at the first
// redirect, as huggingface_hub's get_hf_file_metadata does, because the Hub puts a file's commit,
// etag and size on the /resolve response itself and redirects LFS files to a CDN; and a streaming
// GET into a file that follows redirects but never carries the token to another origin.
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

struct HubResponse {
    var status: Int
    /// Header names lowercased.
    var headers: [String: String]
    var url: URL

    func header(_ name: String) -> String? { headers[name.lowercased()] }
    var isRedirect: Bool { (300..<400).contains(status) && header("location") != nil }
}

/// Transport failures, kept apart from HTTP statuses: an unreachable endpoint falls back to the cache.
enum HubTransportError: Error {
    /// DNS, refused or timed-out connection: the endpoint could not be reached at all.
    case unreachable(String)
    /// The connection broke or the body ended early.
    case interrupted(String)
    case cancelled
}

final class HubHTTP: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let token: String?
    /// The token goes only to this origin (the Hub endpoint), never to a CDN it redirects to.
    let hubOrigin: String
    let timeout: TimeInterval

    init(token: String?, endpoint: String, timeout: TimeInterval = 10) {
        self.token = token
        self.hubOrigin = HubHTTP.origin(URL(string: endpoint))
        self.timeout = timeout
    }

    // State of the one request in flight; requests are issued one at a time.
    private let lock = NSLock()
    private var followRedirects = false
    private var response: HubResponse?
    private var sink: FileHandle?
    private var received: Int64 = 0
    private var progress: ((Int64) -> Void)?
    private var done = DispatchSemaphore(value: 0)
    private var failure: Error?

    func request(_ url: URL, method: String) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        request.setValue("diffuse/0.1.0", forHTTPHeaderField: "User-Agent")
        if let token, HubHTTP.origin(url) == hubOrigin {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        return request
    }

    /// HEAD without following redirects.
    func head(_ url: URL) throws -> HubResponse {
        try perform(request(url, method: "HEAD"), follow: false, into: nil, progress: nil)
    }

    /// GET into `file`, following redirects; returns the final response (the body is in the file).
    func get(_ url: URL, into file: FileHandle, progress: ((Int64) -> Void)?) throws -> (HubResponse, Int64) {
        let response = try perform(request(url, method: "GET"), follow: true, into: file, progress: progress)
        return (response, received)
    }

    private func perform(
        _ request: URLRequest, follow: Bool, into file: FileHandle?,
        progress: ((Int64) -> Void)?
    ) throws -> HubResponse {
        lock.lock()
        followRedirects = follow
        response = nil
        sink = file
        received = 0
        self.progress = progress
        failure = nil
        done = DispatchSemaphore(value: 0)
        lock.unlock()

        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        done.wait()

        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
        guard let response else { throw HubTransportError.interrupted("no response") }
        return response
    }

    static func origin(_ url: URL?) -> String {
        guard let url else { return "" }
        let scheme = url.scheme?.lowercased() ?? ""
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(url.host?.lowercased() ?? ""):\(port)"
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        lock.lock()
        let follow = followRedirects
        lock.unlock()
        guard follow, let url = request.url else {
            completionHandler(nil)
            return
        }
        // Rebuilt rather than edited, so the token is only there if the target is the Hub itself
        // (a signed CDN URL must not see it; huggingface_hub drops it too).
        completionHandler(self.request(url, method: request.httpMethod ?? "GET"))
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        guard let http = response as? HTTPURLResponse else {
            completionHandler(.cancel)
            return
        }
        var headers: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        lock.lock()
        self.response = HubResponse(status: http.statusCode, headers: headers, url: http.url ?? response.url!)
        // Only a successful GET's body goes to the file; an error page is not the file's contents.
        let keep = http.statusCode == 200 && sink != nil
        if !keep { sink = nil }
        lock.unlock()
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        lock.lock()
        let file = sink
        lock.unlock()
        guard let file else { return }
        do {
            try file.write(contentsOf: data)
        } catch {
            lock.lock()
            failure = error
            lock.unlock()
            dataTask.cancel()
            return
        }
        lock.lock()
        received += Int64(data.count)
        let total = received
        let report = progress
        lock.unlock()
        report?(total)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        if let error, failure == nil { failure = HubHTTP.classify(error) }
        lock.unlock()
        done.signal()
    }

    static func classify(_ error: Error) -> Error {
        guard let urlError = error as? URLError else { return error }
        switch urlError.code {
        case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet, .timedOut,
            .secureConnectionFailed, .serverCertificateUntrusted, .cannotLoadFromNetwork:
            return HubTransportError.unreachable(urlError.localizedDescription)
        case .cancelled:
            return HubTransportError.cancelled
        default:
            return HubTransportError.interrupted(urlError.localizedDescription)
        }
    }
}
