// A whole UNet2DModel DDPM run: training, the diffusers pipeline folder, the loss curve, and a
// grid of 16 samples drawn with 50 DDIM steps (1000 DDPM steps would take minutes on a CPU).
import DataIO
import DataParallel
import DiffuseCore
import DiffusionModels
import Foundation
import Tensor

public final class DDPMRun {
    public let trainer: UNet2DTrainer
    public let folder: URL
    public let start: RunStart
    public let checkpoint: CheckpointPlan

    /// `schedulerConfig`: a pretrained pipeline's, kept as it was trained (else built from `options`).
    public init(
        options: TrainingOptions, config: UNet2DConfig, schedulerConfig: SchedulerConfig? = nil,
        dataset: any TrainingImages, device: Device, folder: URL, start: RunStart = .fresh,
        checkpoint: CheckpointPlan
    ) throws {
        trainer = try UNet2DTrainer(
            options: options, config: config, dataset: dataset, device: device,
            pretrained: schedulerConfig)
        self.folder = folder
        self.start = start
        self.checkpoint = checkpoint
    }

    /// In a group of processes only rank 0 writes the run folder; the others train alongside it.
    public func execute(progress: ProgressLine, group: ProcessGroup = .single) throws {
        let resume = try start.prepare(trainer, folder: folder)
        guard group.isRoot else {
            return try trainer.train(logURL: nil, progress: progress, checkpoint: checkpoint, resume: resume, group: group)
        }
        try trainer.options.write(into: folder)
        let events = try RunEvents(folder: folder, trainer: trainer)
        try trainer.train(
            logURL: folder.appendingPathComponent("log.jsonl"), progress: progress, checkpoint: checkpoint, resume: resume,
            epochSamples: { try events.epochSamples(self.sampleGrid(), epoch: $0, step: $1) }, onLog: events.logged,
            onCheckpoint: events.report, group: group)
        // The last checkpoint (at the final step) already wrote the pipeline folder.
        try PNG.write(Figures.lossCurve(trainer.log), to: folder.appendingPathComponent("loss.png"))
        try PNG.write(sampleGrid(), to: folder.appendingPathComponent("samples.png"))
        try events.report()
    }

    /// 16 samples from the run's fixed figure seed, 50 DDIM steps, with the model the run saves
    /// (the moving average when it keeps one): samples.png, and samples/epoch-NNN.png as it goes.
    func sampleGrid() throws -> Image8 {
        let size = trainer.model.config.sampleSize ?? 28
        let generator = RandomGenerator(seed: trainer.options.seed &+ 0x5EED)
        let noise = try Tensor.normal(
            [16, trainer.model.config.inChannels, size, size], generator: generator,
            on: trainer.device)
        let sampler = UNetSampler(kind: .ddim, steps: 50, eta: 0, config: trainer.scheduler.config)
        // A class-conditional model gets labels cycling through its classes (not the null class).
        let labels =
            trainer.model.config.isClassConditional
            ? (0..<16).map {
                $0 % max(trainer.model.config.nullClassLabel ?? trainer.model.config.numClassEmbeds ?? 10, 1)
            } : nil
        // The saved model: the moving average when the run keeps one.
        let result = try trainer.withAveragedWeights {
            try sampler.sample(unet: trainer.model, initialNoise: noise, generator: generator, classLabels: labels)
        }
        return try Figures.grid(result.sample.affine(scale: 0.5, shift: 0.5).clamped(0, 1), columns: 8)
    }
}
