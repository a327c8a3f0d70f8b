// EulerDiscreteScheduler following diffusers' scheduling_euler_discrete.py (0.42), built from a
// DDPM/DDIM config as from_config does (its own keys at their defaults: linear interpolation, no
// Karras sigmas, final sigma zero, no churn). Karras et al. 2022 ("Elucidating the design space"),
// algorithm 1 with the probability-flow ODE dx/dsigma = (x - x0) / sigma integrated by Euler:
//   sigma_t = sqrt((1 - abar_t) / abar_t),  the model sees x / sqrt(sigma^2 + 1),
//   x0 = x - sigma eps (epsilon), x_next = x + (x - x0) / sigma * (sigma_next - sigma).
import DiffuseCore
import Foundation
import Tensor

public struct EulerDiscreteScheduler: Sendable {
    public let config: SchedulerConfig
    /// Descending training timesteps, one per step (rounded, for labels, with linspace spacing).
    public let timesteps: [Int]
    /// The timesteps the model sees: whole with leading and trailing spacing, between training steps
    /// with linspace (999, 874.875, ...), as diffusers' float timesteps.
    public let timestepValues: [Float]
    /// sigma at each timestep, then the final 0 (one more than `timesteps`).
    public let sigmas: [Float]

    public init(config: SchedulerConfig, steps: Int) throws {
        self.config = config
        let tables = try DDPMScheduler(config: config)
        let total = config.numTrainTimesteps
        guard steps > 0, steps <= total else {
            throw DiffuseError.usage("\(Setting.steps) must be between 1 and num_train_timesteps (\(total)), got \(steps)")
        }
        switch config.timestepSpacing {
        case .leading:
            let ratio = total / steps
            timesteps = (0..<steps).map { $0 * ratio + config.stepsOffset }.reversed()
        case .trailing:
            let ratio = Double(total) / Double(steps)
            timesteps = NumPy.arange(Double(total), 0, -ratio).map { Int($0.rounded(.toNearestOrEven)) - 1 }
        case .linspace:
            // np.linspace(0, T - 1, steps, dtype=float32): between training steps (999, 874.875, ...).
            let values = NumPy.linspace(0, Double(total - 1), steps).reversed().map { Float($0) }
            let abar = tables.schedule.alphasCumprod
            let table = abar.map { Double(((1 - $0) / $0).squareRoot()) }
            timestepValues = values
            timesteps = values.map { Int($0.rounded()) }
            sigmas = values.map { Float(NumPy.interp(Double($0), table)) } + [0]
            return
        }
        guard timesteps.allSatisfy({ (0..<total).contains($0) }) else {
            throw DiffuseError.input("steps_offset \(config.stepsOffset) puts Euler's timesteps outside 0..<\(total)")
        }
        timestepValues = timesteps.map(Float.init)
        // As diffusers: the table in float32, read at whole timesteps (np.interp is exact there).
        let abar = tables.schedule.alphasCumprod
        sigmas = timesteps.map { ((1 - abar[$0]) / abar[$0]).squareRoot() } + [0]
    }

    /// The standard deviation of the initial noise: sqrt(max sigma^2 + 1) for leading spacing,
    /// max sigma for trailing (diffusers' init_noise_sigma).
    public var initNoiseSigma: Float {
        let largest = sigmas.max() ?? 0
        return config.timestepSpacing == .leading ? (largest * largest + 1).squareRoot() : largest
    }

    /// scale_model_input: the factor the sample is multiplied by before the model sees it at step i.
    public func inputScale(step i: Int) -> Float { 1 / (sigmas[i] * sigmas[i] + 1).squareRoot() }

    /// One Euler step on the device: (x_next, x0).
    public func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> (previous: Tensor, original: Tensor) {
        let sigma = sigmas[i]
        let original: Tensor
        switch config.predictionType {
        case .epsilon: original = try Tensor.linearCombination(1, sample, -sigma, modelOutput)
        case .sample: original = modelOutput
        case .velocity:
            original = try Tensor.linearCombination(
                -sigma / (sigma * sigma + 1).squareRoot(), modelOutput, 1 / (sigma * sigma + 1), sample)
        }
        let derivative = try Tensor.linearCombination(1 / sigma, sample, -1 / sigma, original)
        return (try Tensor.linearCombination(1, sample, sigmas[i + 1] - sigma, derivative), original)
    }
}

/// EulerAncestralDiscreteScheduler (diffusers' scheduling_euler_ancestral_discrete.py, 0.42): Euler's
/// timesteps, sigmas and input scaling, and an ancestral step (k-diffusion's sample_euler_ancestral):
/// from sigma to sigma', sigma_up = sqrt(sigma'^2 (sigma^2 - sigma'^2) / sigma^2) of fresh noise and
/// sigma_down = sqrt(sigma'^2 - sigma_up^2), x' = x + (x - x0) / sigma (sigma_down - sigma) + sigma_up z.
public struct EulerAncestralDiscreteScheduler: Sendable {
    /// The shared schedule (the same set_timesteps as EulerDiscreteScheduler's defaults).
    public let euler: EulerDiscreteScheduler

    public init(config: SchedulerConfig, steps: Int) throws {
        guard config.predictionType != .sample else {
            throw DiffuseError.input(
                "EulerAncestralDiscreteScheduler does not take prediction_type sample (diffusers does not either); "
                    + "use euler or ddim")
        }
        euler = try EulerDiscreteScheduler(config: config, steps: steps)
    }

    public var timesteps: [Int] { euler.timesteps }
    public var sigmas: [Float] { euler.sigmas }

    /// One ancestral step on the device with `noise` ~ N(0, 1) of the sample's shape: (x', x0).
    public func step(
        modelOutput: Tensor, step i: Int, sample: Tensor, noise: Tensor
    ) throws
        -> (previous: Tensor, original: Tensor)
    {
        let (sigma, next) = (euler.sigmas[i], euler.sigmas[i + 1])
        let original =
            config.predictionType == .epsilon
            ? try Tensor.linearCombination(1, sample, -sigma, modelOutput)
            : try Tensor.linearCombination(
                -sigma / (sigma * sigma + 1).squareRoot(), modelOutput, 1 / (sigma * sigma + 1), sample)
        let up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
        let down = (next * next - up * up).squareRoot()
        let derivative = try Tensor.linearCombination(1 / sigma, sample, -1 / sigma, original)
        let moved = try Tensor.linearCombination(1, sample, down - sigma, derivative)
        return (try Tensor.linearCombination(1, moved, up, noise), original)
    }

    var config: SchedulerConfig { euler.config }
}
