// The environment variables huggingface_hub reads (constants.py), read the same way here.
import Foundation

public struct HubEnvironment: Sendable {
    /// No trailing slash; `$HF_ENDPOINT`, default the public Hub.
    public var endpoint: String
    public var cache: HubCache
    /// `$HF_TOKEN`, else the token file huggingface_hub's `hf auth login` writes.
    public var token: String?
    /// `$HF_HUB_OFFLINE` (or the legacy `$TRANSFORMERS_OFFLINE`) set to 1/ON/YES/TRUE.
    public var offline: Bool
    /// Progress on standard error while downloading.
    public var showProgress: Bool

    public init(endpoint: String, cache: HubCache, token: String?, offline: Bool, showProgress: Bool = true) {
        self.endpoint = endpoint
        self.cache = cache
        self.token = token
        self.offline = offline
        self.showProgress = showProgress
    }

    public static func current(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> HubEnvironment {
        var endpoint = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        return HubEnvironment(
            endpoint: endpoint, cache: HubCache(root: HubCache.directory(environment: environment)),
            token: token(environment),
            offline: isTrue(environment["HF_HUB_OFFLINE"])
                || isTrue(environment["TRANSFORMERS_OFFLINE"]))
    }

    static func isTrue(_ value: String?) -> Bool {
        guard let value else { return false }
        return ["1", "ON", "YES", "TRUE"].contains(value.uppercased())
    }

    /// constants.HF_TOKEN_PATH: $HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token.
    static func token(_ environment: [String: String]) -> String? {
        if let token = environment["HF_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        let home =
            environment["HF_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "~/.cache") + "/huggingface")
        let path = environment["HF_TOKEN_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/token"
        guard let data = FileManager.default.contents(atPath: (path as NSString).expandingTildeInPath) else { return nil }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty ? nil : token
    }
}
