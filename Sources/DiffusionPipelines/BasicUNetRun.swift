// A whole BasicUNet training run: figures before and after, the training loop, the saved model.
import DataIO
import DataParallel
import DiffuseCore
import DiffusionModels
import Foundation
import NN
import Tensor

public final class BasicUNetRun {
    public let trainer: BasicUNetTrainer
    public let folder: URL
    public let start: RunStart
    public let checkpoint: CheckpointPlan

    /// `config`: a pretrained model's (with `.initFrom`) or the resumed run's.
    public init(
        options: TrainingOptions, dataset: any TrainingImages, device: Device, folder: URL,
        config: BasicUNetConfig? = nil, start: RunStart = .fresh, checkpoint: CheckpointPlan
    ) throws {
        trainer = try BasicUNetTrainer(options: options, dataset: dataset, device: device, config: config)
        self.folder = folder
        self.start = start
        self.checkpoint = checkpoint
    }

    func file(_ name: String) -> URL { folder.appendingPathComponent(name) }

    /// In a group of processes only rank 0 writes the run folder; the others train alongside it.
    public func execute(progress: ProgressLine, group: ProcessGroup = .single) throws {
        guard group.isRoot else {
            let resume = try start.prepare(trainer, folder: folder)
            return try trainer.train(logURL: nil, progress: progress, checkpoint: checkpoint, resume: resume, group: group)
        }
        let device = trainer.device
        // Figures use their own stream so they do not shift the training noise.
        let figureNoise = RandomGenerator(seed: trainer.options.seed &+ 0x5EED)
        let examples = try trainer.batcher.batch(Array(0..<min(8, trainer.batcher.count))[...], on: device)
        try PNG.write(try Figures.corruption(clean: examples, generator: figureNoise), to: file("corruption.png"))
        try trainer.options.write(into: folder)

        let resume = try start.prepare(trainer, folder: folder)
        let events = try RunEvents(folder: folder, trainer: trainer)
        try trainer.train(
            logURL: file("log.jsonl"), progress: progress, checkpoint: checkpoint, resume: resume,
            epochSamples: { try events.epochSamples(self.sampleGrid(), epoch: $0, step: $1) }, onLog: events.logged,
            onCheckpoint: events.report, group: group)

        // The last checkpoint (at the final step) already wrote the model folder.
        try PNG.write(Figures.lossCurve(trainer.log), to: file("loss.png"))
        // The figures show the model the run saved: the moving average when it keeps one.
        try trainer.withAveragedWeights {
            try PNG.write(
                try Figures.predictions(model: trainer.model, clean: examples, generator: figureNoise),
                to: file("predictions.png"))
        }
        try PNG.write(sampleGrid(), to: file("samples.png"))
        try events.report()
    }

    /// 64 samples from the run's fixed figure seed with the model the run saves: samples.png, and
    /// samples/epoch-NNN.png as it goes.
    func sampleGrid() throws -> Image8 {
        let sampler = X0MixingSamplerConfig(numInferenceSteps: trainer.options.sampleSteps)
        let generator = RandomGenerator(seed: trainer.options.seed &+ 0x5EED, offset: 1 << 40)
        let size = trainer.model.config.sampleSize
        let noise = try Tensor.uniform(
            [64, trainer.model.config.inChannels, size, size], generator: generator, on: trainer.device)
        return try trainer.withAveragedWeights {
            let result = try X0MixingSampler(steps: sampler.numInferenceSteps)
                .sample(model: { try self.trainer.model($0) }, initialNoise: noise)
            return try Figures.grid(result.sample, columns: 8)
        }
    }
}
