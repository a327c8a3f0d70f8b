// What a run reports as it goes besides log.jsonl: the epoch sample grids, and with
// `--logger tensorboard` the scalars and grids as TensorBoard events in <run>/logs/ (where
// train_unconditional.py's logging_dir puts them), so `tensorboard --logdir runs` shows every run.
import DataIO
import Foundation

final class RunEvents {
    let folder: URL
    let writer: TensorBoardWriter?

    init(folder: URL, options: TrainingOptions) throws {
        self.folder = folder
        writer = options.logger == .tensorboard ? try TensorBoardWriter(folder: folder.appendingPathComponent("logs")) : nil
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
    }
}
