// PNDMScheduler following diffusers' scheduling_pndm.py (0.42), built from a DDPM/DDIM config as
// from_config does. Liu et al. 2022 ("Pseudo numerical methods for diffusion models"): the update
// of eq. 9 from x_t to x_t' with a combined noise estimate e',
//   x_t' = sqrt(abar' / abar) x_t - (abar' - abar) e' / (abar sqrt(1 - abar') + sqrt(abar (1 - abar) abar')),
// where e' comes from a 4-stage Runge-Kutta over half steps for the first three steps (PRK: four
// model calls each, weights 1/6, 1/3, 1/3, 1/6) and then from the linear multistep (PLMS) formulas
// of orders 1-4 over the last noise estimates: (3 e1 - e2) / 2, (23 e1 - 16 e2 + 5 e3) / 12,
// (55 e1 - 59 e2 + 37 e3 - 9 e4) / 24. With skip_prk_steps the first steps use the lower-order
// PLMS formulas instead (the second model call repeats a timestep, as diffusers does).
import DiffuseCore
import Foundation
import Tensor

public struct PNDMScheduler: Sendable {
    public let config: SchedulerConfig
    public let skipPRKSteps: Bool
    /// num_inference_steps.
    public let steps: Int
    /// Every model call's timestep, in order: the PRK ones (12, unless skipped), then the PLMS ones.
    public let timesteps: [Int]
    let prkCount: Int
    let alphasCumprod: [Float]
    let finalAlphaCumprod: Float

    /// The noise estimates and counters of one sampling run (one per chunk of a batch).
    public struct State {
        var estimates: [Tensor] = []
        var counter = 0
        var combined: Tensor?
        var start: Tensor?

        public init() {}
    }

    public init(config: SchedulerConfig, steps: Int, skipPRKSteps: Bool = false) throws {
        guard config.predictionType != .sample else {
            throw DiffuseError.input("PNDMScheduler takes prediction_type epsilon or v_prediction, not sample; use ddim")
        }
        let total = config.numTrainTimesteps
        guard steps > 0, steps <= total, skipPRKSteps || steps >= 4 else {
            throw DiffuseError.usage(
                "\(Setting.steps) must be between \(skipPRKSteps ? 1 : 4) and num_train_timesteps (\(total)) for PNDM, "
                    + "got \(steps)"
            )
        }
        self.config = config
        self.skipPRKSteps = skipPRKSteps
        self.steps = steps
        alphasCumprod = try DDPMScheduler(config: config).schedule.alphasCumprod
        // PNDM's own default for set_alpha_to_one is False: a DDPM config without the key takes it.
        finalAlphaCumprod = config.setAlphaToOne && config.setAlphaToOneInFile ? 1 : alphasCumprod[0]
        // Ascending, as diffusers' _timesteps.
        var ascending: [Int]
        switch config.timestepSpacing {
        case .linspace:
            ascending = NumPy.linspace(0, Double(total - 1), steps).map { Int($0.rounded(.toNearestOrEven)) }
        case .leading:
            ascending = (0..<steps).map { $0 * (total / steps) + config.stepsOffset }
        case .trailing:
            ascending = NumPy.arange(Double(total), 0, -Double(total) / Double(steps)).reversed().map {
                Int($0.rounded(.toNearestOrEven)) - 1
            }
        }
        if skipPRKSteps {
            prkCount = 0
            let n = ascending.count
            timesteps = (Array(ascending[..<(n - 1)]) + (n >= 2 ? [ascending[n - 2]] : []) + [ascending[n - 1]]).reversed()
        } else {
            // The last four timesteps and their half steps, each stage's timestep twice (diffusers' prk_timesteps).
            let half = total / steps / 2
            let lastFour = ascending.suffix(4).flatMap { [$0, $0 + half] }
            let doubled = lastFour.dropLast().flatMap { [$0, $0] }
            let prk = Array(doubled.dropFirst().dropLast().reversed())
            prkCount = prk.count
            timesteps = prk + ascending.dropLast(3).reversed()
        }
        guard timesteps.allSatisfy({ (0..<total).contains($0) }) else {
            throw DiffuseError.input("steps_offset \(config.stepsOffset) puts PNDM's timesteps outside 0..<\(total)")
        }
    }

    /// The model call at index `i` of `timesteps`: (x for the next call, x0 estimated from this one).
    public func step(
        modelOutput: Tensor, step i: Int, sample: Tensor, state: inout State
    ) throws
        -> (previous: Tensor, original: Tensor)
    {
        let t = timesteps[i]
        let stride = config.numTrainTimesteps / steps
        var output = modelOutput
        var from = sample
        var (now, previous) = (t, t - stride)
        if state.counter < prkCount {
            previous = t - (state.counter % 2 == 1 ? 0 : stride / 2)
            now = timesteps[state.counter / 4 * 4]
            switch state.counter % 4 {
            case 0:
                state.combined = try modelOutput.scaled(by: Float(1.0 / 6))
                state.estimates.append(modelOutput)
                state.start = sample
            case 1, 2:
                state.combined = try Tensor.linearCombination(1, state.combined!, Float(1.0 / 3), modelOutput)
            default:
                output = try Tensor.linearCombination(1, state.combined!, Float(1.0 / 6), modelOutput)
                state.combined = nil
            }
            from = state.start ?? sample
        } else {
            let plms = state.counter - prkCount
            if plms != 1 || prkCount > 0 {
                state.estimates = Array(state.estimates.suffix(3)) + [modelOutput]
            } else {
                (now, previous) = (t + stride, t)
            }
            let e = state.estimates
            if e.count == 1 && plms == 0 && prkCount == 0 {
                state.start = sample
            } else if e.count == 1 && plms == 1 && prkCount == 0 {
                output = try Tensor.linearCombination(0.5, modelOutput, 0.5, e[0])
                from = state.start ?? sample
                state.start = nil
            } else if e.count == 2 {
                output = try Tensor.linearCombination(1.5, e[1], -0.5, e[0])
            } else if e.count == 3 {
                let partial = try Tensor.linearCombination(Float(23.0 / 12), e[2], Float(-16.0 / 12), e[1])
                output = try Tensor.linearCombination(1, partial, Float(5.0 / 12), e[0])
            } else if e.count >= 4 {
                let a = try Tensor.linearCombination(Float(55.0 / 24), e[3], Float(-59.0 / 24), e[2])
                let b = try Tensor.linearCombination(Float(37.0 / 24), e[1], Float(-9.0 / 24), e[0])
                output = try Tensor.linearCombination(1, a, 1, b)
            }
        }
        state.counter += 1
        return try update(from, output, timestep: now, previous: previous)
    }

    /// Eq. 9 of the PNDM paper (diffusers' _get_prev_sample), with the x0 the estimate implies.
    func update(
        _ sample: Tensor, _ modelOutput: Tensor, timestep t: Int, previous: Int
    ) throws
        -> (previous: Tensor, original: Tensor)
    {
        let a = alphasCumprod[t]
        let aPrev = previous >= 0 ? alphasCumprod[previous] : finalAlphaCumprod
        var epsilon = modelOutput
        if config.predictionType == .velocity {
            epsilon = try Tensor.linearCombination(a.squareRoot(), modelOutput, (1 - a).squareRoot(), sample)
        }
        let sampleCoefficient = (aPrev / a).squareRoot()
        let denominator = a * (1 - aPrev).squareRoot() + (a * (1 - a) * aPrev).squareRoot()
        let next = try Tensor.linearCombination(sampleCoefficient, sample, -(aPrev - a) / denominator, epsilon)
        let original = try Tensor.linearCombination(1 / a.squareRoot(), sample, -(1 - a).squareRoot() / a.squareRoot(), epsilon)
        return (next, original)
    }
}
