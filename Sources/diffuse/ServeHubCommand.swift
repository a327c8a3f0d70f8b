// `diffuse serve-hub`: model folders served on loopback under the Hugging Face Hub's URL layout, so
// `HF_ENDPOINT=http://127.0.0.1:PORT` lets Diffuse or Python's huggingface_hub fetch them as if
// from the Hub (tests, and machines that mirror a few models without internet).
import ArgumentParser
import DiffuseCore
import Foundation
import Hub
import HubTestServer
import Tensor

struct ServeHubCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-hub",
        abstract: "Serve model folders as Hub repositories on 127.0.0.1 (for HF_ENDPOINT).")

    @Option(name: .customLong("repo"), help: "owner/name=FOLDER; repeat for more repositories.")
    var repos: [String] = []
    @Option(help: "Port on 127.0.0.1 (0 picks a free one). LFS files are served from a second, free port.")
    var port: UInt16 = 0

    func run() throws {
        guard !repos.isEmpty else { throw DiffuseError.usage("give at least one --repo owner/name=FOLDER") }
        var served: [String: URL] = [:]
        for entry in repos {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let repo = try HubRepoID.parse(parts[0]), repo.revision == "main" else {
                throw DiffuseError.usage("--repo takes owner/name=FOLDER, got '\(entry)'")
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: parts[1], isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DiffuseError.input("\(parts[1]) is not a folder")
            }
            served[repo.id] = URL(fileURLWithPath: parts[1])
        }
        let server = try HubFileServer(repos: served)
        try server.start(port: port)
        for id in served.keys.sorted() { print("\(id) at commit \(server.commit(of: id)!)") }
        print("serving on \(server.endpoint) (LFS on port \(server.cdnPort)); stop with Ctrl-C")
        fflush(stdout)
        while true { sleep(3600) }
    }
}
