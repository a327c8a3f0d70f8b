// The tutorial's corruption and its few-step sampler for models that predict the clean image.
import DiffuseCore
import NN
import Tensor

public enum Corruption {
    /// x * (1 - amount) + noise * amount, with `amount` one value per image ([B]), in the
    /// tutorial's order of operations, so the replay of a PyTorch run sees the same roundings.
    public static func corrupt(_ x: Tensor, noise: Tensor, amount: Tensor) throws -> Tensor {
        let shape = [x.shape[0]] + Array(repeating: 1, count: x.rank - 1)
        let perImage = try amount.reshaped(shape)
        let keep = try amount.affine(scale: -1, shift: 1).reshaped(shape)
        return try x * keep + noise * perImage
    }
}

/// The input of every sampling step and the model's prediction of the clean image there, host
/// copies for the trajectory figure (both samplers record it).
public struct SamplingTrajectory: Equatable {
    public var inputs: [[Float]] = []
    public var predictions: [[Float]] = []

    public init() {}
}

/// The tutorial's sampler: start from uniform noise and at step i move 1/(n-i) of the way to the
/// model's prediction of the clean image.
public struct X0MixingSampler {
    public var steps: Int

    public init(steps: Int) { self.steps = steps }

    public func sample(
        model: (Tensor) throws -> Tensor, initialNoise: Tensor,
        recordTrajectory: Bool = false, recordSteps: Set<Int>? = nil, progress: ((_ done: Int) -> Void)? = nil
    ) throws -> (sample: Tensor, trajectory: SamplingTrajectory) {
        var x = initialNoise
        var trajectory = SamplingTrajectory()
        try GradMode.withoutGradients {
            for i in 0..<steps {
                try Interruption.check("sampling stopped at step \(i) of \(steps); nothing was written")
                let prediction = try model(x)
                if recordTrajectory && (recordSteps?.contains(i) ?? true) {
                    trajectory.inputs.append(try x.toArray())
                    trajectory.predictions.append(try prediction.toArray())
                }
                let mix = 1 / Float(steps - i)
                x = try Tensor.linearCombination(1 - mix, x, mix, prediction)
                if let progress {
                    try x.synchronize()
                    progress(i + 1)
                }
            }
        }
        return (x, trajectory)
    }
}
