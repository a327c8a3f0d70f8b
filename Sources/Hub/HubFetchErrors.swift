// HTTP answers of the Hub turned into one-line errors that say what to do (huggingface_hub's
// hf_raise_for_status reads the same X-Error-Code header).
import DiffuseCore
import Foundation

enum HubFetchErrors {
    static func check(_ response: HubResponse, repo: HubRepoID, path: String, endpoint: String, token: String?) throws {
        let status = response.status
        if (200..<400).contains(status) { return }
        let code = response.header("x-error-code")
        let tokenHint =
            token == nil
            ? "if it is private or gated, set HF_TOKEN to a token that can read it"
            : "HF_TOKEN is set: check that this token can read it"
        switch (status, code) {
        case (_, "RepoNotFound"):
            throw DiffuseError.input("repository \(repo.id) was not found on \(endpoint): check the id; \(tokenHint)")
        case (_, "RevisionNotFound"):
            throw DiffuseError.input(
                "\(repo.id) has no revision '\(repo.revision)' on \(endpoint): give a branch, tag or commit that exists")
        case (_, "GatedRepo"):
            throw DiffuseError.input(
                "\(repo.id) is gated on \(endpoint): accept its conditions on its Hub page, then set HF_TOKEN")
        case (_, "EntryNotFound"), (404, _):
            throw DiffuseError.input("\(repo) has no file \(path) on \(endpoint)")
        case (401, _), (403, _):
            throw DiffuseError.input("\(endpoint) refused \(repo.id) (HTTP \(status)): \(tokenHint)")
        case (429, _):
            throw DiffuseError.input("\(endpoint) is rate-limiting requests (HTTP 429): wait a minute and run the command again")
        default:
            throw DiffuseError.input("\(endpoint) answered HTTP \(status) for \(path) of \(repo): try again later")
        }
    }
}
