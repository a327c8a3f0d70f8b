// What a run reports as it goes besides log.jsonl: report.html at every checkpoint and grid,
// the epoch sample grids, and with
// `--logger tensorboard` the scalars and grids as TensorBoard events in <run>/logs/ (where
// train_unconditional.py's logging_dir puts them), so `tensorboard --logdir runs` shows every run.
import DataIO
import Foundation

final class RunEvents {
    let folder: URL
    unowned let trainer: Trainer
    let writer: TensorBoardWriter?

    init(folder: URL, trainer: Trainer) throws {
        self.folder = folder
        self.trainer = trainer
        writer =
            trainer.options.logger == .tensorboard
            ? try TensorBoardWriter(folder: folder.appendingPathComponent("logs")) : nil
    }

    /// Rewrites report.html from what the run folder holds now.
    func report() throws {
        try RunReport.write(run: folder, options: trainer.options, log: trainer.log, totalSteps: trainer.totalSteps)
    }

    func logged(_ entry: TrainingLogEntry) throws {
        try writer?.scalars(
            [("loss", Float(entry.loss)), ("lr", Float(entry.lr)), ("images_per_second", Float(entry.imagesPerSecond))],
            step: entry.step)
    }

    /// samples/epoch-NNN.png, and the same grid as the `samples` image at `step`.
    func epochSamples(_ grid: Image8, epoch: Int, step: Int) throws {
        try PNG.write(grid, to: EpochSamples.url(in: folder, epoch: epoch))
        try writer?.image("samples", grid, step: step)
        try report()
    }
}
