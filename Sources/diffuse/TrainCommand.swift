// `diffuse train`: the tutorial's recipes, writing a run folder that is also a loadable model,
// checkpointed as it goes; `--init-from` fine-tunes a pretrained model (a folder or a Hub id),
// `--resume` continues an interrupted run from its last checkpoint.
import ArgumentParser
import DataIO
import DataParallel
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Hub
import NN
import Tensor

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model on a folder of images or an MNIST-format dataset and write a run folder.")

    @Option(
        help: ArgumentHelp(
            "Model to train: \(TrainCommand.modelNames) (the tutorial's first recipe and its DDPM recipe). Default: "
                + "\(BasicUNetPipeline.trainingName), or what --init-from holds."
        ))
    var model: String?
    @Option(
        help: ArgumentHelp(
            "A folder of PNG/JPEG images (searched recursively; class sub-folders give labels) or of MNIST-format IDX "
                + "files. Default: Debian's dataset-fashion-mnist (with --resume: the run's)."))
    var dataset: String?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Train at N x N: images are resized (shorter side to N, PIL's bilinear filter) and centre-cropped. Default: the "
                + "config's sample_size, else the dataset's size (64 for image folders)."))
    var resolution: Int?
    @Flag(help: "Crop at a random place instead of the centre (images larger than --resolution).")
    var randomCrop = false
    @Flag(help: "Mirror each image left to right with probability 0.5.")
    var randomFlip = false
    @Option(
        parsing: .unconditional,
        help:
            ArgumentHelp(
                "Passes over the training set. Default: 3 for basic-unet, 30 for unet2d (the tutorial's); with --resume, the "
                    + "run's (raise it to train longer).")
    )
    var epochs: Int?
    @Option(parsing: .unconditional, help: "Stop after this many optimisation steps in all.")
    var maxSteps: Int?
    @Option(parsing: .unconditional, help: "Images per step (default 128).")
    var batchSize: Int?
    @Option(parsing: .unconditional, help: "Learning rate. Default: 1e-3 for basic-unet, 4e-4 for unet2d.")
    var lr: Double?
    @Option(help: "The optimizer, with PyTorch's defaults. Default: the recipe's (adam for basic-unet, adamw for unet2d).")
    var optimizer: Adam.Variant?
    @Option(
        help:
            ArgumentHelp(
                "The model's config.json (a UNet2DModel's for unet2d, a BasicUNet's for basic-unet). Default: the tutorial's "
                    + "(unet2d: 28x28, 32/64/64, attention below the top).")
    )
    var config: String?
    @Option(help: "unet2d: DDPMScheduler beta schedule. Default: squaredcos_cap_v2.")
    var betaSchedule: BetaScheduleKind?
    @Option(help: "unet2d: what the model predicts: epsilon (default), sample or v_prediction.")
    var predictionType: PredictionType?
    @Option(
        help:
            ArgumentHelp(
                "Start from a pretrained model: a model folder or a Hub id owner/name[@revision]. Its architecture, image size, "
                    + "channels and scheduler are kept; the images are resized and repeated to fit.")
    )
    var initFrom: String?
    @Option(
        help:
            ArgumentHelp(
                "Continue the run folder RUN from its last checkpoint, with its own options. A Hub id holding a run is copied "
                    + "into --output first.")
    )
    var resume: String?
    @Option(
        parsing: .unconditional,
        help: "Steps between checkpoints (one is also written at the end of every epoch). Default 500; with --resume, the run's.")
    var checkpointEvery: Int?
    @Option(
        parsing: .unconditional,
        help: "Keep only the newest N checkpoints (checkpoints/step-N). Default: all; with --resume, the run's.")
    var checkpointsTotalLimit: Int?
    @Option(
        help: ArgumentHelp(
            "Learning-rate schedule over the optimizer steps, as diffusers' get_scheduler (default constant).",
            valueName: "schedule"))
    var lrScheduler: LearningRateSchedule.Kind?
    @Option(parsing: .unconditional, help: "Steps of linear warmup from 0 to --lr (default 0).")
    var lrWarmupSteps: Int?
    @Flag(
        name: .customLong("use-ema"),
        help: "Keep an exponential moving average of the weights (diffusers' EMAModel, warmup on) and save it as the model.")
    var useEMA = false
    @Option(parsing: .unconditional, help: "With --use-ema: the largest decay (default 0.9999).")
    var emaMaxDecay: Double?
    @Option(parsing: .unconditional, help: "With --use-ema: the warmup's inverse gamma (default 1.0).")
    var emaInvGamma: Double?
    @Option(parsing: .unconditional, help: "With --use-ema: the warmup's power (default 0.75).")
    var emaPower: Double?
    @Option(
        parsing: .unconditional,
        help: "Batches whose gradients are summed before each optimizer step (each loss divided by N; default 1).")
    var gradientAccumulationSteps: Int?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Clip the gradients' total norm to this before each optimizer step; 0: never (the tutorial's loop). Default: 1.0 "
                + "for unet2d (train_unconditional.py's), none for basic-unet."))
    var maxGradNorm: Double?
    @Option(
        parsing: .unconditional,
        help: "Draw samples/epoch-NNN.png (the same seed each time) after every N-th epoch (default: never).")
    var saveImagesEpochs: Int?
    @Option(
        parsing: .unconditional,
        help: "Checkpoint (and refresh the run folder's model) at the end of every N-th epoch (default 1).")
    var saveModelEpochs: Int?
    @Option(
        help: ArgumentHelp(
            "Also log scalars (loss, lr, images/s) and the epoch sample grids as TensorBoard events in RUN/logs "
                + "(`tensorboard --logdir runs`). Default: none."))
    var logger: TrainingLogger?
    @Option(parsing: .unconditional, help: "Adam's beta1 (default 0.9).")
    var adamBeta1: Double?
    @Option(parsing: .unconditional, help: "Adam's beta2 (default 0.999).")
    var adamBeta2: Double?
    @Option(parsing: .unconditional, help: "Adam's epsilon (default 1e-8).")
    var adamEpsilon: Double?
    @Option(parsing: .unconditional, help: "Weight decay (default: 0 for adam, 0.01 for adamw, as PyTorch's).")
    var adamWeightDecay: Double?
    @Flag(
        help: ArgumentHelp(
            "unet2d: learn the dataset's labels for classifier-free guidance (num_class_embeds = classes + 1, the last the "
                + "null class; sample with --class-labels and --guidance-scale)."))
    var classConditional = false
    @Option(
        parsing: .unconditional,
        help: "With --class-conditional: the probability each label is replaced by the null class (default 0.1).")
    var condDropProb: Double?
    @OptionGroup var seedOption: SeedOption
    @OptionGroup var deviceOption: DeviceOption
    @Option(help: "Run folder. Default: runs/<model>-<timestamp>.")
    var output: String?
    @OptionGroup var overwriteOption: OverwriteOption
    var overwrite: Bool { overwriteOption.overwrite }
    @Option(parsing: .unconditional, help: "Steps between loss reads and log lines (default 10).")
    var logEvery: Int?
    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let group = try ProcessGroup.start(command: "diffuse train")
        if let resume { return try resumeRun(try runFolder(resume, group: group), group: group) }
        var pretrained: URL?
        var pipeline: (any TrainablePipeline.Type)?
        if let model {
            guard let named = PipelineRegistry.trainable(named: model) else {
                throw DiffuseError.usage("unknown --model '\(model)': use \(Self.modelNames)")
            }
            pipeline = named
        }
        if let initFrom {
            let folder = try ModelSource.resolve(initFrom)
            let index = try PipelineFolder.readIndex(folder)
            guard let held = PipelineRegistry.trainable(forClass: index.className) else {
                let known = PipelineRegistry.trainable.flatMap { $0.classNames }.sorted().joined(separator: ", ")
                throw DiffuseError.input("--init-from \(initFrom) holds a \(index.className); expected one of \(known)")
            }
            if let model, model != held.trainingName {
                throw DiffuseError.usage("--init-from \(initFrom) holds a \(held.trainingName) model, not --model \(model)")
            }
            for (name, value) in [
                ("--config", config), ("--beta-schedule", betaSchedule?.rawValue),
                ("--prediction-type", predictionType?.rawValue),
            ]
            where value != nil {
                throw DiffuseError.usage("\(name) cannot change a pretrained model; --init-from keeps its config and scheduler")
            }
            pipeline = held
            pretrained = folder
        }
        let chosenPipeline = pipeline ?? BasicUNetPipeline.self
        if !chosenPipeline.usesNoiseSchedule {
            for (name, value) in [("--beta-schedule", betaSchedule?.rawValue), ("--prediction-type", predictionType?.rawValue)]
            where value != nil {
                throw DiffuseError.usage(
                    "\(name) applies to models trained on a noise schedule (\(Self.scheduledNames)), not "
                        + "\(chosenPipeline.trainingName)"
                )
            }
        }
        if let config, !FileManager.default.fileExists(atPath: config) {
            throw DiffuseError.usage(
                "--config \(config) does not exist; give a config.json of the \(chosenPipeline.trainingName) model")
        }
        let options = try makeOptions(chosenPipeline.trainingDefaults)
        try group.requireDivides(batchSize: options.batchSize)
        let datasetPath = dataset ?? MNISTDataset.defaultDirectory.path
        let (chosen, deviceLabel) = try deviceOption.resolve(localRank: group.localRank)
        let data = try TrainingData.open(datasetPath)
        let folder = URL(fileURLWithPath: output ?? "runs/\(chosenPipeline.trainingName)-\(Self.timestamp())")
        let spec: ModelSpec =
            pretrained.map { .pretrained($0) } ?? config.map { .configFile(URL(fileURLWithPath: $0)) } ?? .recipe
        let plan = CheckpointPlan(
            folder: folder, every: options.checkpointEvery ?? 500, totalLimit: options.checkpointsTotalLimit,
            model: chosenPipeline.trainingName, dataset: datasetPath)
        let request = TrainingRequest(
            options: options, model: spec, dataset: data, device: chosen, folder: folder,
            start: pretrained.map { RunStart.initFrom($0) } ?? .fresh, plan: plan, progress: progress(group), group: group)
        // The other processes of a data-parallel job train alongside rank 0, which alone writes.
        guard group.isRoot else {
            _ = try chosenPipeline.train(request)
            return
        }
        try OutputCheck.validateRunFolder(folder.path)
        let existed = FileManager.default.fileExists(atPath: folder.path)
        try PipelineFolder.prepareOutput(folder, overwrite: overwrite)
        do {
            try RunFolderLock.acquire(folder)
            if overwrite { try RunFolderLock.clearPreviousRun(folder) }
            let starting: String = initFrom.map { ", starting from \($0)" } ?? ""
            let processes: String = Self.processes(group, batchSize: options.batchSize)
            print(
                "training \(chosenPipeline.trainingName) on \(data.count) images from \(datasetPath) on \(deviceLabel)"
                    + "\(starting)\(processes)")
            let figures = try chosenPipeline.train(request)
            report(folder, figures: figures)
        } catch {
            // A run that failed before its first checkpoint leaves no folder to block the rerun.
            if !existed && Checkpoint.published(in: folder).isEmpty { try? FileManager.default.removeItem(at: folder) }
            throw error
        }
    }

    /// ", as 2 processes of 16 images each (mpirun)" for a data-parallel job; empty for one process.
    static func processes(_ group: ProcessGroup, batchSize: Int) -> String {
        group.isDistributed ? ", as \(group.size) processes of \(batchSize / group.size) images each (mpirun)" : ""
    }

    /// The progress line (rank 0's; the other processes of a job show none, and mark their notices).
    func progress(_ group: ProcessGroup) -> ProgressLine {
        group.isRoot ? ProgressLine(quiet: quiet) : ProgressLine(quiet: true, noticePrefix: "rank \(group.rank): ")
    }

    static var modelNames: String { PipelineRegistry.trainable.map { $0.trainingName }.joined(separator: " or ") }
    static var scheduledNames: String {
        PipelineRegistry.trainable.filter { $0.usesNoiseSchedule }.map { $0.trainingName }.joined(separator: ", ")
    }

    func makeOptions(_ defaults: TrainingDefaults) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.epochs = epochs ?? defaults.epochs
        options.maxSteps = maxSteps
        options.batchSize = batchSize ?? 128
        options.learningRate = lr ?? defaults.learningRate
        options.seed = seedOption.value
        options.logEvery = logEvery ?? 10
        options.checkpointEvery = checkpointEvery ?? 500
        options.checkpointsTotalLimit = checkpointsTotalLimit
        options.predictionType = predictionType ?? .epsilon
        options.betaSchedule = betaSchedule ?? .squaredCosCapV2
        options.optimizer = optimizer ?? defaults.optimizer
        options.gradientAccumulationSteps = gradientAccumulationSteps
        options.maxGradNorm = maxGradNorm ?? defaults.maxGradNorm
        options.logger = logger
        options.saveImagesEpochs = saveImagesEpochs
        options.saveModelEpochs = saveModelEpochs
        options.useEMA = useEMA ? true : nil
        options.emaMaxDecay = emaMaxDecay
        options.emaInvGamma = emaInvGamma
        options.emaPower = emaPower
        options.lrScheduler = lrScheduler
        options.lrWarmupSteps = lrWarmupSteps
        options.adamBeta1 = adamBeta1
        options.adamBeta2 = adamBeta2
        options.adamEpsilon = adamEpsilon
        options.adamWeightDecay = adamWeightDecay
        options.resolution = resolution
        options.randomCrop = randomCrop ? true : nil
        options.randomFlip = randomFlip ? true : nil
        options.classConditional = classConditional ? true : nil
        options.condDropProb = condDropProb ?? (classConditional ? 0.1 : nil)
        try options.validate()
        return options
    }

    /// Continues RUN with the options, configs and dataset it was started with; only the length
    /// (--epochs, --max-steps), the device and the output chatter may change.
    func resumeRun(_ folder: URL, group: ProcessGroup) throws {
        let fixed: [(String, Bool)] = [
            ("--model", model != nil), ("--config", config != nil), ("--init-from", initFrom != nil),
            ("--lr", lr != nil), ("--batch-size", batchSize != nil), ("--optimizer", optimizer != nil),
            ("--beta-schedule", betaSchedule != nil), ("--prediction-type", predictionType != nil),
            ("--seed", seedOption.seed != nil), ("--class-conditional", classConditional),
            ("--cond-drop-prob", condDropProb != nil), ("--resolution", resolution != nil), ("--random-crop", randomCrop),
            ("--random-flip", randomFlip), ("--lr-scheduler", lrScheduler != nil), ("--lr-warmup-steps", lrWarmupSteps != nil),
            ("--adam-beta1", adamBeta1 != nil), ("--adam-beta2", adamBeta2 != nil), ("--adam-epsilon", adamEpsilon != nil),
            ("--adam-weight-decay", adamWeightDecay != nil), ("--use-ema", useEMA), ("--ema-max-decay", emaMaxDecay != nil),
            ("--ema-inv-gamma", emaInvGamma != nil), ("--ema-power", emaPower != nil),
            ("--gradient-accumulation-steps", gradientAccumulationSteps != nil), ("--max-grad-norm", maxGradNorm != nil),
            ("--save-images-epochs", saveImagesEpochs != nil), ("--save-model-epochs", saveModelEpochs != nil),
            ("--logger", logger != nil),
        ]
        if let (name, _) = fixed.first(where: { $0.1 }) {
            throw DiffuseError.usage(
                "\(name) cannot change a resumed run; it continues with the options in \(folder.path)/\(TrainingOptions.fileName)"
            )
        }
        // Rank 0 holds the folder; the others read the checkpoint once it has tidied.
        if group.isRoot {
            try RunFolderLock.acquire(folder)
            Checkpoint.removeLeftovers(in: folder)
        }
        try group.barrier()
        let (state, checkpoint) = try Checkpoint.newest(in: folder)
        var options = try TrainingOptions.saved(run: folder, checkpoint: checkpoint)
        if let epochs { options.epochs = epochs }
        if let maxSteps { options.maxSteps = maxSteps }
        if let logEvery { options.logEvery = logEvery }
        if let checkpointEvery { options.checkpointEvery = checkpointEvery }
        if let checkpointsTotalLimit { options.checkpointsTotalLimit = checkpointsTotalLimit }
        try options.validate()
        try group.requireDivides(batchSize: options.batchSize)
        guard let pipeline = PipelineRegistry.trainable(named: state.model) else {
            throw DiffuseError.input("\(folder.path)/\(Checkpoint.stateName) names an unknown model '\(state.model)'")
        }
        let datasetPath = dataset ?? state.dataset
        let data = try TrainingData.open(datasetPath)
        let (chosen, deviceLabel) = try deviceOption.resolve(localRank: group.localRank)
        let plan = CheckpointPlan(
            folder: folder, every: options.checkpointEvery ?? 500, totalLimit: options.checkpointsTotalLimit,
            model: state.model, dataset: datasetPath)
        if group.isRoot {
            let processes: String = Self.processes(group, batchSize: options.batchSize)
            print(
                "resuming \(state.model) in \(folder.path) at step \(state.globalStep) (epoch \(state.epoch)) from "
                    + "\(checkpoint.path) on \(deviceLabel)\(processes)")
        }
        let figures = try pipeline.train(
            TrainingRequest(
                options: options, model: .checkpoint(checkpoint), dataset: data, device: chosen, folder: folder,
                start: .resume(state, checkpoint), plan: plan,
                progress: progress(group), group: group))
        if group.isRoot { report(folder, figures: figures) }
    }

    /// The run folder to resume: RUN itself, or a run fetched from the Hub and copied into --output
    /// (the cache's snapshot is read-only to us: training writes into its folder).
    func runFolder(_ resume: String, group: ProcessGroup) throws -> URL {
        if FileManager.default.fileExists(atPath: resume) {
            if let output, URL(fileURLWithPath: output).standardizedFileURL != URL(fileURLWithPath: resume).standardizedFileURL {
                throw DiffuseError.usage("--output cannot change a resumed run folder; it continues in \(resume)")
            }
            return URL(fileURLWithPath: resume)
        }
        guard (try HubRepoID.parse(resume)) != nil else {
            throw DiffuseError.input(
                "\(resume) does not exist: --resume takes a run folder written by `diffuse train`, or a Hub id holding one")
        }
        guard let output else {
            throw DiffuseError.usage("--resume from the Hub (\(resume)) needs --output: the folder the run continues in")
        }
        let folder = URL(fileURLWithPath: output)
        if group.isRoot {
            try HubRun.copy(resume, to: folder, overwrite: overwrite)
            print("copied the run \(resume) into \(folder.path)")
        }
        try group.barrier()
        return folder
    }

    func report(_ folder: URL, figures: [URL]) {
        print("model: \(folder.path)")
        print("figures: \(figures.map(\.path).joined(separator: " "))")
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}
