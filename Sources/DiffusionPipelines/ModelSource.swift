// Where a model comes from: a folder on disk, or a Hugging Face Hub repository id
// (`owner/name[@revision]`) fetched into the shared Hub cache, as DiffusionPipeline.from_pretrained
// takes either. A path that exists always wins over a repository of the same name.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import Hub
import Tensor

public enum ModelSource {
    /// The local folder for `argument`, downloading the pipeline's files from the Hub if needed,
    /// plus `extraFiles` (required) and `optionalFiles` of the repository (a training run's record).
    public static func resolve(
        _ argument: String, extraFiles: [String] = [], optionalFiles: [String] = [],
        environment: HubEnvironment = .current()
    ) throws -> URL {
        if FileManager.default.fileExists(atPath: argument) { return URL(fileURLWithPath: argument) }
        guard let repo = try HubRepoID.parse(argument) else {
            throw DiffuseError.input(
                "\(argument) does not exist: give a model folder, or a Hub repository id like "
                    + "johnowhitaker/ddpm-butterflies-32px[@revision]"
            )
        }
        let fetcher = HubSnapshotFetcher(repo: repo, environment: environment)
        do {
            let folder = try fetch(fetcher, extraFiles: extraFiles, optionalFiles: optionalFiles)
            if fetcher.downloadedBytes > 0 {
                print("fetched \(repo) into \(folder.path)")
            } else if fetcher.usingCacheOnly && !environment.offline {
                print("\(environment.endpoint) unreachable; using the cached \(repo)")
            }
            return folder
        } catch {
            fetcher.abandon()
            throw error
        }
    }

    /// Exactly the files a pipeline folder is read from: model_index.json, then each component's
    /// config and (for models) its safetensors weights, or where a revision has none its pickled
    /// .bin (read by the restricted unpickler, which runs nothing), as diffusers falls back.
    static func fetch(_ fetcher: HubSnapshotFetcher, extraFiles: [String], optionalFiles: [String]) throws -> URL {
        let indexURL = try fetcher.file("model_index.json")
        guard let data = FileManager.default.contents(atPath: indexURL.path) else {
            throw DiffuseError.input("cannot read model_index.json of \(fetcher.repo) at \(indexURL.path)")
        }
        let index = try PipelineFolder.parseIndex(data, source: "\(fetcher.repo)/model_index.json")
        for component in index.components.keys.sorted() {
            guard let pair = index.components[component], pair.count == 2 else { continue }
            if component == "scheduler" || pair[1].hasSuffix("Scheduler") || pair[1] == "X0MixingSampler" {
                _ = try fetcher.file("\(component)/scheduler_config.json")
                continue
            }
            _ = try fetcher.file("\(component)/config.json")
            let weights = "\(component)/\(PipelineFolder.weightsName)"
            if try fetcher.fileIfPresent(weights) == nil,
                try fetcher.fileIfPresent("\(component)/\(PipelineFolder.pickleWeightsName)") == nil
            {
                throw DiffuseError.input(
                    "\(fetcher.repo) has no \(weights) (nor \(component)/\(PipelineFolder.pickleWeightsName)) at revision "
                        + "\(fetcher.repo.revision)")
            }
        }
        for file in extraFiles { _ = try fetcher.file(file) }
        for file in optionalFiles { _ = try fetcher.fileIfPresent(file) }
        return try fetcher.finish()
    }

    /// Copies `files` of a Hub snapshot (models--owner--name/snapshots/<commit>) into `destination`
    /// as plain files: the snapshot holds symlinks into the cache's blobs, which must not be written
    /// through. A link leading out of the repository's cache folder is refused, not followed.
    public static func copyFiles(_ files: [String], fromSnapshot source: URL, to destination: URL) throws {
        let repoFolder = source.deletingLastPathComponent().deletingLastPathComponent()
        for file in files {
            guard SafePath.isRelativePath(file) else {
                throw DiffuseError.input("refusing to copy '\(file.prefix(200))': not a relative path of plain names")
            }
            let link = source.appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: link.path) else { continue }
            guard SafePath.isInside(link, root: repoFolder) else {
                throw DiffuseError.input(
                    "refusing to copy \(link.path): it resolves to \(SafePath.resolved(link)), outside the Hub cache folder "
                        + "\(repoFolder.path)"
                )
            }
            guard let data = FileManager.default.contents(atPath: SafePath.resolved(link)) else { continue }
            let target = destination.appendingPathComponent(file)
            try SafePath.requireInside(target.deletingLastPathComponent(), root: destination, what: "the run folder")
            try AtomicFile.write(data, to: target)
        }
    }
}
