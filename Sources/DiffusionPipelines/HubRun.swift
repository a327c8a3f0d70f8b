// A training run published on the Hub (`diffuse train --resume owner/name`): its record and its
// newest checkpoint, copied out of the read-only Hub cache into a run folder that can continue.
import DiffuseCore
import Foundation

public enum HubRun {
    /// The run record beside the pipeline files: what `--resume` reads besides checkpoints.
    public static let recordFiles = [Checkpoint.stateName, Checkpoint.optimizerName, TrainingOptions.fileName]
    public static let logName = "log.jsonl"

    /// Fetches the run `id` (its trainer_state.json names the newest checkpoint, fetched whole) and
    /// copies it into `folder`, which must not exist unless `overwrite`.
    public static func copy(_ id: String, to folder: URL, overwrite: Bool) throws {
        let top = try ModelSource.resolve(
            id, extraFiles: [Checkpoint.stateName, TrainingOptions.fileName],
            optionalFiles: [logName])
        let newest = "\(Checkpoint.foldersName)/step-\(try Checkpoint.readState(top).globalStep)/"
        var pipeline = ["model_index.json"]
        for component in try PipelineFolder.readIndex(top).components.keys {
            pipeline += [
                "\(component)/config.json", "\(component)/scheduler_config.json", "\(component)/\(PipelineFolder.weightsName)",
            ]
        }
        let snapshot = try ModelSource.resolve(
            id, extraFiles: (recordFiles + ["model_index.json"]).map { newest + $0 },
            optionalFiles: (pipeline + [logName]).map { newest + $0 })
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        let files = recordFiles + pipeline + [logName]
        try ModelSource.copyFiles(files + files.map { newest + $0 }, fromSnapshot: snapshot, to: folder)
    }
}
