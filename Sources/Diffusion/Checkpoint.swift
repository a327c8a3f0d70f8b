// Checkpoints of a training run, written into the run folder as training goes so an interrupted
// run loses little and `diffuse train --resume` continues it bit-exactly: the model folder itself
// (loadable at any time), optimizer.safetensors (Adam's exp_avg / exp_avg_sq per parameter, as
// PyTorch's optimizer state holds them) and trainer_state.json (where the loop and the random
// stream were). The random stream is (seed, offset), so the resumed run draws the very numbers the
// uninterrupted one would have.
import DataIO
import Foundation
import NN
import Tensor

/// trainer_state.json.
public struct TrainerState: Codable, Equatable, Sendable {
    /// "basic-unet" or "unet2d".
    public var model: String
    public var dataset: String
    public var globalStep: Int
    /// The epoch in progress (1-based) and how many of its batches are done.
    public var epoch: Int
    public var stepInEpoch: Int
    /// The random stream's offset before the epoch's shuffle, and at the checkpoint.
    public var epochStartOffset: UInt64
    public var randomOffset: UInt64
    public var optimizerStep: Int

    enum CodingKeys: String, CodingKey {
        case model, dataset, epoch
        case globalStep = "global_step"
        case stepInEpoch = "step_in_epoch"
        case epochStartOffset = "epoch_start_random_offset"
        case randomOffset = "random_offset"
        case optimizerStep = "optimizer_step"
    }
}

/// Where and how often a training loop checkpoints.
public struct CheckpointPlan {
    public var folder: URL
    /// Steps between checkpoints; one is also written at the end of every epoch and of training.
    public var every: Int
    public var model: String
    public var dataset: String

    public init(folder: URL, every: Int, model: String, dataset: String) {
        self.folder = folder
        self.every = every
        self.model = model
        self.dataset = dataset
    }
}

public enum Checkpoint {
    public static let stateName = "trainer_state.json"
    public static let optimizerName = "optimizer.safetensors"
    /// Each file records the step it belongs to, so a checkpoint torn by a crash between two
    /// files is refused instead of resumed from mismatched parts.
    static let stepKey = "diffuse_global_step"

    static func names(_ trainer: Trainer) -> [String] { trainer.module.namedParameters().map(\.name) }

    public static func save(_ trainer: Trainer, state: TrainerState, to folder: URL) throws {
        let metadata = ["format": "pt", stepKey: String(state.globalStep)]
        try trainer.saveModel(to: folder, metadata: metadata)
        let moments = try trainer.optimizer.state(names: names(trainer)).map {
            (name: $0.name, tensor: SafetensorsTensor(shape: $0.shape, values: $0.values))
        }
        try Safetensors.write(moments, metadata: metadata.merging(["step": String(state.optimizerStep)]) { $1 },
                              to: folder.appendingPathComponent(optimizerName))
        // Last, so it only ever names files that are complete.
        try PipelineFolder.writeJSON(state, to: folder.appendingPathComponent(stateName))
    }

    public static func readState(_ folder: URL) throws -> TrainerState {
        let url = folder.appendingPathComponent(stateName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DiffuseError.input("\(folder.path) has no \(stateName): --resume takes a run folder written by `diffuse train` (this version checkpoints while training)")
        }
        return try PipelineFolder.readJSON(TrainerState.self, from: url)
    }

    /// Loads the checkpoint's weights and optimizer state into a freshly built trainer.
    public static func restore(_ trainer: Trainer, state: TrainerState, from folder: URL) throws {
        let weightsURL = folder.appendingPathComponent("unet/" + PipelineFolder.weightsName)
        let weights = try Safetensors.read(weightsURL)
        let optimizerURL = folder.appendingPathComponent(optimizerName)
        guard FileManager.default.fileExists(atPath: optimizerURL.path) else {
            throw DiffuseError.input("\(optimizerURL.path) is missing: the run folder's checkpoint is incomplete")
        }
        let optimizer = try Safetensors.read(optimizerURL)
        for (url, metadata) in [(weightsURL, weights.metadata), (optimizerURL, optimizer.metadata)]
        where metadata[stepKey] != String(state.globalStep) {
            throw DiffuseError.input("\(url.path) belongs to step \(metadata[stepKey] ?? "?"), \(stateName) to step \(state.globalStep): the checkpoint was torn by a crash; train again from the start or from --init-from \(folder.path)")
        }
        try trainer.module.load(state: weights.tensors.mapValues { ($0.shape, $0.values) }, source: weightsURL.path)
        try trainer.optimizer.load(state: optimizer.tensors.mapValues { ($0.shape, $0.values) },
                                   step: state.optimizerStep, names: names(trainer), source: optimizerURL.path)
    }

    /// The log lines up to the checkpoint (later ones belong to the lost part of the run).
    public static func readLog(_ folder: URL, upTo step: Int) throws -> [TrainingLogEntry] {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("log.jsonl").path) else {
            return []
        }
        var entries: [TrainingLogEntry] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.isEmpty {
            guard let entry = try? JSONDecoder().decode(TrainingLogEntry.self, from: Data(line.utf8)) else {
                throw DiffuseError.input("\(folder.path)/log.jsonl has a line that is not a log entry: \(line.prefix(80))")
            }
            if entry.step <= step { entries.append(entry) }
        }
        return entries
    }
}
