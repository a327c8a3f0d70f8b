// `diffuse train`: the tutorial's recipes, writing a run folder that is also a loadable model,
// checkpointed as it goes; `--init-from` fine-tunes a pretrained model (a folder or a Hub id),
// `--resume` continues an interrupted run from its last checkpoint.
import ArgumentParser
import DataIO
import Diffusion
import Foundation
import Hub
import NN
import Tensor

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on an MNIST-format dataset and write a run folder.")

    @Option(help: "Model to train: basic-unet (the tutorial's first recipe) or unet2d (its DDPM recipe). Default: basic-unet, or what --init-from holds.")
    var model: String?
    @Option(help: "Folder of MNIST-format IDX files (.gz or raw). Default: Debian's dataset-fashion-mnist (with --resume: the run's).")
    var dataset: String?
    @Option(parsing: .unconditional, help: "Passes over the training set. Default: 3 for basic-unet, 30 for unet2d (the tutorial's); with --resume, the run's (raise it to train longer).")
    var epochs: Int?
    @Option(parsing: .unconditional, help: "Stop after this many optimisation steps in all.")
    var maxSteps: Int?
    @Option(parsing: .unconditional, help: "Images per step (default 128).")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate. Default: 1e-3 for basic-unet, 4e-4 for unet2d.")
    var lr: Double?
    @Option(help: "adam or adamw (PyTorch's defaults). Default: adam for basic-unet, adamw for unet2d.")
    var optimizer: String?
    @Option(help: "unet2d: a UNet2DModel config.json. Default: the tutorial's (28x28, 32/64/64, attention below the top).")
    var config: String?
    @Option(help: "unet2d: DDPMScheduler beta schedule (linear, scaled_linear, squaredcos_cap_v2 (default), sigmoid).")
    var betaSchedule: String?
    @Option(help: "unet2d: what the model predicts: epsilon (default), sample or v_prediction.")
    var predictionType: String?
    @Option(help: "Start from a pretrained model: a model folder or a Hub id owner/name[@revision]. Its architecture, image size, channels and scheduler are kept; the images are resized and repeated to fit.")
    var initFrom: String?
    @Option(help: "Continue the run folder RUN from its last checkpoint, with its own options. A Hub id holding a run is copied into --output first.")
    var resume: String?
    @Option(parsing: .unconditional, help: "Steps between checkpoints (one is also written at the end of every epoch). Default 500; with --resume, the run's.")
    var checkpointEvery: Int?
    @Option(parsing: .unconditional, help: "Keep only the newest N checkpoints (checkpoints/step-N). Default: all; with --resume, the run's.")
    var checkpointsTotalLimit: Int?
    @Option(parsing: .unconditional, help: "Seed of the Philox generator (weights, shuffling, noise). Default 0.")
    var seed: UInt64?
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "Run folder. Default: runs/<model>-<timestamp>.")
    var output: String?
    @Flag(help: "Write into an existing --output folder.")
    var overwrite = false
    @Option(parsing: .unconditional, help: "Steps between loss reads and log lines (default 10).")
    var logEvery: Int?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        if let resume { return try resumeRun(try runFolder(resume)) }
        var pretrained: URL?
        var kind = model
        if let initFrom {
            let folder = try ModelSource.resolve(initFrom)
            let index = try PipelineFolder.readIndex(folder)
            let held = index.className == BasicUNetFolder.pipelineClass ? "basic-unet"
                : DDPMPipelineFolder.pipelineClasses.contains(index.className) ? "unet2d" : nil
            guard let held else {
                throw DiffuseError.input("--init-from \(initFrom) holds a \(index.className); expected a BasicUNetPipeline or a DDPM/DDIM pipeline")
            }
            if let model, model != held { throw DiffuseError.usage("--init-from \(initFrom) holds a \(held) model, not --model \(model)") }
            for (name, value) in [("--config", config), ("--beta-schedule", betaSchedule), ("--prediction-type", predictionType)]
            where value != nil {
                throw DiffuseError.usage("\(name) cannot change a pretrained model; --init-from keeps its config and scheduler")
            }
            kind = held
            pretrained = folder
        }
        let modelKind = kind ?? "basic-unet"
        guard modelKind == "basic-unet" || modelKind == "unet2d" else {
            throw DiffuseError.usage("unknown --model '\(modelKind)': use basic-unet or unet2d")
        }
        let ddpm = modelKind == "unet2d"
        if !ddpm {
            for (name, value) in [("--config", config), ("--beta-schedule", betaSchedule), ("--prediction-type", predictionType)]
            where value != nil {
                throw DiffuseError.usage("\(name) applies to --model unet2d")
            }
        }
        let options = try makeOptions(ddpm: ddpm)
        let datasetPath = dataset ?? MNISTDataset.defaultDirectory.path
        let (chosen, deviceLabel) = try deviceOption.resolve()
        let data = try MNISTDataset(directory: URL(fileURLWithPath: datasetPath))
        let folder = URL(fileURLWithPath: output ?? "runs/\(modelKind)-\(Self.timestamp())")
        try OutputCheck.validateRunFolder(folder.path)
        let existed = FileManager.default.fileExists(atPath: folder.path)
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        do {
            try startRun(folder: folder, kind: modelKind, ddpm: ddpm, options: options, data: data, datasetPath: datasetPath,
                         device: (chosen, deviceLabel), pretrained: pretrained)
        } catch {
            // A run that failed before its first checkpoint leaves no folder to block the rerun.
            if !existed && Checkpoint.published(in: folder).isEmpty { try? FileManager.default.removeItem(at: folder) }
            throw error
        }
    }

    func startRun(folder: URL, kind modelKind: String, ddpm: Bool, options: TrainingOptions, data: MNISTDataset,
                  datasetPath: String, device: (chosen: Device, label: String), pretrained: URL?) throws {
        let (chosen, deviceLabel) = device
        try RunFolderLock.acquire(folder)
        if overwrite { try RunFolderLock.clearPreviousRun(folder) }
        let plan = CheckpointPlan(folder: folder, every: options.checkpointEvery ?? 500, totalLimit: options.checkpointsTotalLimit,
                                  model: modelKind, dataset: datasetPath)
        let start = pretrained.map { RunStart.initFrom($0) } ?? .fresh
        print("training \(modelKind) on \(data.count) images from \(datasetPath) on \(deviceLabel)"
              + (initFrom.map { ", starting from \($0)" } ?? ""))
        if ddpm {
            var unetConfig = UNet2DConfig.tutorial
            var schedulerConfig: SchedulerConfig?
            if let pretrained {
                unetConfig = try PipelineFolder.readJSON(UNet2DConfig.self, from: pretrained.appendingPathComponent("unet/config.json"))
                schedulerConfig = try PipelineFolder.readJSON(
                    SchedulerConfig.self, from: pretrained.appendingPathComponent("scheduler/scheduler_config.json"))
            } else if let config {
                guard FileManager.default.fileExists(atPath: config) else {
                    throw DiffuseError.usage("--config \(config) does not exist; give a UNet2DModel config.json")
                }
                unetConfig = try PipelineFolder.readJSON(UNet2DConfig.self, from: URL(fileURLWithPath: config))
            }
            try runDDPM(options: options, config: unetConfig, schedulerConfig: schedulerConfig, data: data,
                        device: chosen, folder: folder, start: start, plan: plan)
        } else {
            let basicConfig = try pretrained.map {
                try PipelineFolder.readJSON(BasicUNetConfig.self, from: $0.appendingPathComponent("unet/config.json"))
            }
            try runBasicUNet(options: options, config: basicConfig, data: data, device: chosen, folder: folder,
                             start: start, plan: plan)
        }
    }

    func makeOptions(ddpm: Bool) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.epochs = epochs ?? (ddpm ? 30 : 3)
        options.maxSteps = maxSteps
        options.batchSize = batchSize ?? 128
        options.learningRate = lr ?? (ddpm ? 4e-4 : 1e-3)
        options.seed = seed ?? 0
        options.logEvery = logEvery ?? 10
        options.checkpointEvery = checkpointEvery ?? 500
        options.checkpointsTotalLimit = checkpointsTotalLimit
        options.predictionType = predictionType ?? "epsilon"
        let schedule = betaSchedule ?? "squaredcos_cap_v2"
        guard let parsed = BetaScheduleKind(rawValue: schedule) else {
            throw DiffuseError.usage("unknown --beta-schedule '\(schedule)': use linear, scaled_linear, squaredcos_cap_v2 or sigmoid")
        }
        options.betaSchedule = parsed
        if let optimizer {
            guard let variant = Adam.Variant(rawValue: optimizer) else {
                throw DiffuseError.usage("unknown --optimizer '\(optimizer)': use adam or adamw")
            }
            options.optimizer = variant
        } else {
            options.optimizer = ddpm ? .adamw : .adam
        }
        try options.validate()
        return options
    }

    /// Continues RUN with the options, configs and dataset it was started with; only the length
    /// (--epochs, --max-steps), the device and the output chatter may change.
    func resumeRun(_ folder: URL) throws {
        let fixed: [(String, Bool)] = [("--model", model != nil), ("--config", config != nil), ("--init-from", initFrom != nil),
                                       ("--lr", lr != nil), ("--batch-size", batchSize != nil), ("--optimizer", optimizer != nil),
                                       ("--beta-schedule", betaSchedule != nil), ("--prediction-type", predictionType != nil),
                                       ("--seed", seed != nil)]
        if let (name, _) = fixed.first(where: { $0.1 }) {
            throw DiffuseError.usage("\(name) cannot change a resumed run; it continues with the options in \(folder.path)/training_config.json")
        }
        try RunFolderLock.acquire(folder)
        Checkpoint.removeLeftovers(in: folder)
        let (state, checkpoint) = try Checkpoint.newest(in: folder)
        let savedOptions = checkpoint.appendingPathComponent("training_config.json")
        var options = try PipelineFolder.readJSON(
            TrainingOptions.self,
            from: FileManager.default.fileExists(atPath: savedOptions.path) ? savedOptions : folder.appendingPathComponent("training_config.json"))
        if let epochs { options.epochs = epochs }
        if let maxSteps { options.maxSteps = maxSteps }
        if let logEvery { options.logEvery = logEvery }
        if let checkpointEvery { options.checkpointEvery = checkpointEvery }
        if let checkpointsTotalLimit { options.checkpointsTotalLimit = checkpointsTotalLimit }
        try options.validate()
        let datasetPath = dataset ?? state.dataset
        let data = try MNISTDataset(directory: URL(fileURLWithPath: datasetPath))
        let (chosen, deviceLabel) = try deviceOption.resolve()
        let plan = CheckpointPlan(folder: folder, every: options.checkpointEvery ?? 500, totalLimit: options.checkpointsTotalLimit,
                                  model: state.model, dataset: datasetPath)
        print("resuming \(state.model) in \(folder.path) at step \(state.globalStep) (epoch \(state.epoch)) from \(checkpoint.path) on \(deviceLabel)")
        switch state.model {
        case "unet2d":
            let config = try PipelineFolder.readJSON(UNet2DConfig.self, from: checkpoint.appendingPathComponent("unet/config.json"))
            let scheduler = try PipelineFolder.readJSON(SchedulerConfig.self,
                                                        from: checkpoint.appendingPathComponent("scheduler/scheduler_config.json"))
            try runDDPM(options: options, config: config, schedulerConfig: scheduler, data: data, device: chosen,
                        folder: folder, start: .resume(state, checkpoint), plan: plan)
        case "basic-unet":
            let config = try PipelineFolder.readJSON(BasicUNetConfig.self, from: checkpoint.appendingPathComponent("unet/config.json"))
            try runBasicUNet(options: options, config: config, data: data, device: chosen, folder: folder,
                             start: .resume(state, checkpoint), plan: plan)
        default:
            throw DiffuseError.input("\(folder.path)/\(Checkpoint.stateName) names an unknown model '\(state.model)'")
        }
    }

    /// The run folder to resume: RUN itself, or a run fetched from the Hub and copied into --output
    /// (the cache's snapshot is read-only to us: training writes into its folder).
    func runFolder(_ resume: String) throws -> URL {
        if FileManager.default.fileExists(atPath: resume) {
            if let output, URL(fileURLWithPath: output).standardizedFileURL != URL(fileURLWithPath: resume).standardizedFileURL {
                throw DiffuseError.usage("--output cannot change a resumed run folder; it continues in \(resume)")
            }
            return URL(fileURLWithPath: resume)
        }
        guard (try HubRepoID.parse(resume)) != nil else {
            throw DiffuseError.input("\(resume) does not exist: --resume takes a run folder written by `diffuse train`, or a Hub id holding one")
        }
        guard let output else {
            throw DiffuseError.usage("--resume from the Hub (\(resume)) needs --output: the folder the run continues in")
        }
        // The run's trainer_state.json names its newest checkpoint; fetch that one whole.
        let top = try ModelSource.resolve(resume, extraFiles: [Checkpoint.stateName, "training_config.json"],
                                          optionalFiles: ["log.jsonl"])
        let newest = "\(Checkpoint.foldersName)/step-\(try Checkpoint.readState(top).globalStep)/"
        var pipeline = ["model_index.json"]
        for component in try PipelineFolder.readIndex(top).components.keys {
            pipeline += ["\(component)/config.json", "\(component)/scheduler_config.json", "\(component)/\(PipelineFolder.weightsName)"]
        }
        let record = [Checkpoint.stateName, Checkpoint.optimizerName, "training_config.json"]
        let snapshot = try ModelSource.resolve(resume, extraFiles: (record + ["model_index.json"]).map { newest + $0 },
                                               optionalFiles: (pipeline + ["log.jsonl"]).map { newest + $0 })
        let folder = URL(fileURLWithPath: output)
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        try ModelSource.copyFiles(record + pipeline + ["log.jsonl"] + (record + pipeline + ["log.jsonl"]).map { newest + $0 },
                                  fromSnapshot: snapshot, to: folder)
        print("copied the run \(resume) into \(folder.path)")
        return folder
    }

    func runDDPM(options: TrainingOptions, config: UNet2DConfig, schedulerConfig: SchedulerConfig?, data: MNISTDataset,
                 device: Device, folder: URL, start: RunStart, plan: CheckpointPlan) throws {
        let run = try DDPMRun(options: options, config: config, schedulerConfig: schedulerConfig, dataset: data,
                              device: device, folder: folder, start: start, checkpoint: plan)
        try run.execute(progress: ProgressLine(quiet: quiet))
        report(folder, figures: ["loss.png", "samples.png"])
    }

    func runBasicUNet(options: TrainingOptions, config: BasicUNetConfig?, data: MNISTDataset, device: Device,
                      folder: URL, start: RunStart, plan: CheckpointPlan) throws {
        let run = try BasicUNetRun(options: options, dataset: data, device: device, folder: folder, config: config,
                                   start: start, checkpoint: plan)
        try run.execute(progress: ProgressLine(quiet: quiet))
        report(folder, figures: ["loss.png", "samples.png", "corruption.png", "predictions.png"])
    }

    func report(_ folder: URL, figures: [String]) {
        print("model: \(folder.path)")
        print("figures: \(figures.map { folder.appendingPathComponent($0).path }.joined(separator: " "))")
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
