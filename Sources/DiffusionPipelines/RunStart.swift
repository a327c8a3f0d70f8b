// How a training run begins: from fresh weights, from a pretrained model's weights (fine-tuning,
// `--init-from`), or from the last checkpoint of an interrupted run (`--resume`).
import DiffusionModels
import Foundation
import Tensor

public enum RunStart {
    case fresh
    /// A model folder whose unet/ weights start the run (its config already chose the architecture).
    case initFrom(URL)
    /// The checkpoint's trainer_state.json and folder (checkpoints/step-N, or an older run's own folder).
    case resume(TrainerState, URL)

    /// Loads what the start needs into a freshly built trainer; returns the state to resume from.
    func prepare(_ trainer: Trainer, folder: URL) throws -> TrainerState? {
        switch self {
        case .fresh:
            return nil
        case .initFrom(let source):
            try PipelineFolder.readWeights(into: trainer.module, component: source.appendingPathComponent("unet"))
            return nil
        case .resume(let state, let checkpoint):
            try Checkpoint.restore(trainer, state: state, from: checkpoint)
            trainer.log = try Checkpoint.readLog(checkpoint, upTo: state.globalStep)
            return state
        }
    }
}
