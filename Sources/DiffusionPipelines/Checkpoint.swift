// Checkpoints of a training run, so an interrupted run loses little and `diffuse train --resume`
// continues it bit-exactly. Each is a whole folder, checkpoints/step-N/: the pipeline (model_index,
// unet/, scheduler/), optimizer.safetensors (Adam's exp_avg / exp_avg_sq per parameter, as
// PyTorch's optimizer state holds them), trainer_state.json (where the loop and the random stream
// were), training_config.json and log.jsonl. It is written complete into a temporary folder, every
// file fsynced, then published by one rename, so a kill or a full disk leaves either the new
// checkpoint or none, and the previous one stays until the new one is published. The run folder's
// own pipeline files are then replaced file by file (each atomically), so the run stays loadable.
// The random stream is (seed, offset), so the resumed run draws the numbers the unstopped one would.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

#if canImport(Glibc)
import Glibc
#endif

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
    /// How many checkpoints to keep (the newest); nil keeps all, as diffusers' checkpoints_total_limit.
    public var totalLimit: Int?
    public var model: String
    public var dataset: String

    public init(folder: URL, every: Int, totalLimit: Int? = nil, model: String, dataset: String) {
        self.folder = folder
        self.every = every
        self.totalLimit = totalLimit
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

    public static let foldersName = "checkpoints"

    static func folderName(step: Int) -> String { "step-\(step)" }

    /// Writes checkpoints/step-N/ whole, publishes it with one rename, refreshes the run folder's
    /// pipeline files, then drops checkpoints beyond `plan.totalLimit` (never the newest).
    public static func save(_ trainer: Trainer, state: TrainerState, plan: CheckpointPlan) throws {
        // A step whose loss read finite can still have left non-finite weights: never publish those.
        for (name, _, values) in try trainer.module.state() where values.contains(where: { !$0.isFinite }) {
            throw diverged("the weights (\(name)) became non-finite", step: state.globalStep, plan: plan)
        }
        let run = plan.folder
        let root = run.appendingPathComponent(foldersName)
        let published = root.appendingPathComponent(folderName(step: state.globalStep))
        let staging = root.appendingPathComponent(".\(folderName(step: state.globalStep)).tmp-\(getpid())")
        let fm = FileManager.default
        try? fm.removeItem(at: staging)
        do {
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw DiffuseError.output("cannot create \(staging.path): \(error.localizedDescription)")
        }
        let metadata = ["format": "pt", stepKey: String(state.globalStep)]
        try trainer.saveModel(to: staging, metadata: metadata)
        if trainer.ema != nil { try saveAverage(trainer, into: staging, metadata: metadata) }
        let moments = try trainer.optimizer.state(names: names(trainer)).map {
            (name: $0.name, tensor: SafetensorsTensor(shape: $0.shape, values: $0.values))
        }
        try Safetensors.write(
            moments, metadata: metadata.merging(["step": String(state.optimizerStep)]) { $1 },
            to: staging.appendingPathComponent(optimizerName))
        try trainer.options.write(into: staging)
        if let log = fm.contents(atPath: run.appendingPathComponent("log.jsonl").path) {
            try AtomicFile.write(log, to: staging.appendingPathComponent("log.jsonl"))
        }
        try JSONFile.write(state, to: staging.appendingPathComponent(stateName))
        // Every file above was fsynced with its folder; publish the whole folder at once.
        if fm.fileExists(atPath: published.path) {
            // The same step again (a resumed run re-reaching it): the old copy goes only once the new is complete.
            let old = root.appendingPathComponent(".\(folderName(step: state.globalStep)).old-\(getpid())")
            try? fm.removeItem(at: old)
            guard rename(published.path, old.path) == 0 else {
                throw DiffuseError.output("cannot replace \(published.path): \(String(cString: strerror(errno)))")
            }
            defer { try? fm.removeItem(at: old) }
            try publish(staging, as: published, in: root)
        } else {
            try publish(staging, as: published, in: root)
        }
        // The run folder is the model a user samples: the moving average when the run keeps one.
        try trainer.withAveragedWeights { try trainer.saveModel(to: run, metadata: metadata) }
        // Names the newest checkpoint (what a Hub copy of the run is resumed from).
        try JSONFile.write(state, to: run.appendingPathComponent(stateName))
        try prune(root, keep: plan.totalLimit)
    }

    /// Where a checkpoint keeps the moving average (diffusers' checkpoints call it unet_ema too).
    public static let averageFolder = "unet_ema"

    /// unet_ema/: the averaged weights under the model's parameter names, with the model's config.
    static func saveAverage(_ trainer: Trainer, into staging: URL, metadata: [String: String]) throws {
        let folder = staging.appendingPathComponent(averageFolder)
        let tensors = try trainer.withAveragedWeights { try trainer.module.state() }.map {
            (name: $0.name, tensor: SafetensorsTensor(shape: $0.shape, values: $0.values))
        }
        try Safetensors.write(tensors, metadata: metadata, to: folder.appendingPathComponent(PipelineFolder.weightsName))
        if let config = FileManager.default.contents(atPath: staging.appendingPathComponent("unet/config.json").path) {
            try AtomicFile.write(config, to: folder.appendingPathComponent("config.json"))
        }
    }

    static func publish(_ staging: URL, as published: URL, in root: URL) throws {
        guard rename(staging.path, published.path) == 0 else {
            throw DiffuseError.output("cannot publish the checkpoint \(published.path): \(String(cString: strerror(errno)))")
        }
        let fd = open(root.path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            _ = close(fd)
        }
    }

    /// The error a diverged run stops with: what happened, the last good checkpoint (kept), what to try.
    public static func diverged(_ what: String, step: Int, plan: CheckpointPlan?) -> DiffuseError {
        let last = plan.flatMap { published(in: $0.folder).first }
        let kept =
            last.map {
                "the last good checkpoint, \($0.folder.path) (step \($0.step)), is kept: start again from it with "
                    + "\(Setting.initFrom) \($0.folder.path) and a lower \(Setting.learningRate)"
            }
            ?? "no checkpoint was written before it: start again with a lower \(Setting.learningRate)"
        return .runtime("training diverged at step \(step): \(what); \(kept)")
    }

    /// The published checkpoints of a run, newest first, as (step, folder).
    public static func published(in run: URL) -> [(step: Int, folder: URL)] {
        let root = run.appendingPathComponent(foldersName)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.compactMap { name -> (Int, URL)? in
            guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)), step >= 0, String(step) == name.dropFirst(5) else {
                return nil
            }
            return (step, root.appendingPathComponent(name))
        }.sorted { $0.0 > $1.0 }
    }

    static func prune(_ root: URL, keep limit: Int?) throws {
        guard let limit else { return }
        for (_, folder) in published(in: root.deletingLastPathComponent()).dropFirst(max(limit, 1)) {
            try? FileManager.default.removeItem(at: folder)
        }
    }

    /// Removes what a killed run left half-written: unpublished checkpoint folders and the
    /// temporary files of atomic writes (`.NAME.tmp-PID-RANDOM`) in the run's folders.
    public static func removeLeftovers(in run: URL) {
        let fm = FileManager.default
        let root = run.appendingPathComponent(foldersName)
        for name in (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        where name.hasPrefix(".step-") && (name.contains(".tmp-") || name.contains(".old-")) {
            let leftover = root.appendingPathComponent(name)
            // A complete checkpoint moved aside to be replaced, whose replacement never arrived, goes back.
            if let range = name.range(of: ".old-") {
                let published = root.appendingPathComponent(String(name[name.index(after: name.startIndex)..<range.lowerBound]))
                if !fm.fileExists(atPath: published.path), rename(leftover.path, published.path) == 0 { continue }
            }
            try? fm.removeItem(at: leftover)
        }
        for folder in [run, run.appendingPathComponent("unet"), run.appendingPathComponent("scheduler")] {
            for name in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
            where name.hasPrefix(".") && name.contains(".tmp-") {
                try? fm.removeItem(at: folder.appendingPathComponent(name))
            }
        }
    }

    /// The checkpoint `--resume` continues from: the newest published one whose record reads,
    /// else (a run written before checkpoints/ existed) the run folder itself.
    public static func newest(in run: URL) throws -> (state: TrainerState, folder: URL) {
        for (_, folder) in published(in: run) {
            if let state = try? readState(folder) { return (state, folder) }
        }
        return (try readState(run), run)
    }

    public static func readState(_ folder: URL) throws -> TrainerState {
        let url = folder.appendingPathComponent(stateName)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DiffuseError.input(
                "\(folder.path) has no checkpoint (no \(foldersName)/step-N/\(stateName)): \(Setting.resume) takes a run folder "
                    + "written by `diffuse train`"
            )
        }
        let state = try JSONFile.read(TrainerState.self, from: url)
        guard state.globalStep >= 0, state.epoch >= 1, state.stepInEpoch >= 0, state.optimizerStep >= 0,
            state.optimizerStep <= state.globalStep + 1_000_000_000
        else {
            throw DiffuseError.input(
                "\(url.path): global_step, step_in_epoch and optimizer_step must be 0 or more and epoch 1 or more, got "
                    + "\(state.globalStep), \(state.stepInEpoch), \(state.optimizerStep), \(state.epoch)"
            )
        }
        return state
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
            throw DiffuseError.input(
                "\(url.path) belongs to step \(metadata[stepKey] ?? "?"), \(stateName) to step \(state.globalStep): the "
                    + "checkpoint was torn by a crash; train again from the start or from \(Setting.initFrom) \(folder.path)"
            )
        }
        try trainer.module.load(state: weights.tensors.mapValues { ($0.shape, $0.values) }, source: weightsURL.path)
        try trainer.optimizer.load(
            state: optimizer.tensors.mapValues { ($0.shape, $0.values) },
            step: state.optimizerStep, names: names(trainer), source: optimizerURL.path)
        if let ema = trainer.ema {
            let averageURL = folder.appendingPathComponent(averageFolder + "/" + PipelineFolder.weightsName)
            guard FileManager.default.fileExists(atPath: averageURL.path) else {
                throw DiffuseError.input("\(averageURL.path) is missing: the run keeps an EMA but its checkpoint has none")
            }
            let average = try Safetensors.read(averageURL)
            guard average.metadata[stepKey] == String(state.globalStep) else {
                throw DiffuseError.input(
                    "\(averageURL.path) belongs to step \(average.metadata[stepKey] ?? "?"), \(stateName) to step "
                        + "\(state.globalStep): the checkpoint was torn by a crash")
            }
            let values = try names(trainer).map { name -> [Float] in
                guard let tensor = average.tensors[name] else {
                    throw DiffuseError.input("\(averageURL.path): \(name) is missing")
                }
                return tensor.values
            }
            try ema.load(values, optimizationStep: state.optimizerStep)
        }
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
