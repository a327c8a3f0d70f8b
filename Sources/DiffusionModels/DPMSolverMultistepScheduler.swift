// DPMSolverMultistepScheduler following diffusers' scheduling_dpmsolver_multistep.py (0.42), built
// from a DDPM/DDIM config as from_config does. DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095)
// integrates the data-prediction ODE in lambda = log(alpha / sigma), with alpha_t = 1 / sqrt(s^2 + 1),
// sigma_t = s alpha_t for the scheduler's s = sqrt((1 - abar) / abar), h = lambda_next - lambda_now:
//   order 1:  x' = (sigma'/sigma) x - alpha' (e^-h - 1) D0                              (DDIM)
//   order 2:  midpoint  - 0.5 alpha' (e^-h - 1) D1;  heun  + alpha' ((e^-h - 1) / h + 1) D1
//   order 3:  + alpha' ((e^-h - 1) / h + 1) D1 - alpha' ((e^-h - 1 + h) / h^2 - 0.5) D2
// with D0 the newest x0 prediction and D1, D2 divided differences of the last ones (eq. 14-16 and
// appendix B there); SDE-DPM-Solver++ (sde-dpmsolver++) scales x by e^-h, uses 1 - e^-2h for the
// data terms and adds sigma' sqrt(1 - e^-2h) noise. The coefficients are float32, as diffusers'
// tensors are.
import DiffuseCore
import Foundation
import Tensor

/// DPMSolverMultistepScheduler's own config keys (from_config keeps their defaults for a DDPM config;
/// the `diffuse sample --scheduler` aliases set a few).
public struct DPMSolverOptions: Sendable, Equatable {
    public enum Algorithm: String, Sendable { case dpmsolverPlusPlus = "dpmsolver++", sdeDPMSolverPlusPlus = "sde-dpmsolver++" }
    public enum SolverType: String, Sendable { case midpoint, heun }
    public enum FinalSigmas: String, Sendable { case zero, sigmaMin = "sigma_min" }

    public var algorithm = Algorithm.dpmsolverPlusPlus
    public var solverOrder = 2
    public var solverType = SolverType.midpoint
    public var lowerOrderFinal = true
    public var eulerAtFinal = false
    public var useKarrasSigmas = false
    public var finalSigmas = FinalSigmas.zero
    public var lambdaMinClipped = -Double.infinity

    public init() {}
}

public struct DPMSolverMultistepScheduler: Sendable {
    public let config: SchedulerConfig
    public let options: DPMSolverOptions
    /// Descending training timesteps, one per step.
    public let timesteps: [Int]
    /// The scheduler's sigma at each step, then the final one (0, or the smallest with sigma_min).
    public let sigmas: [Float]

    /// The x0 predictions of the last steps (newest last) and how many lower-order steps ran: the
    /// multistep history of one sampling run (one per chunk of a batch).
    public struct State {
        var outputs: [Tensor] = []
        var lowerOrderSteps = 0

        public init() {}
    }

    public init(config: SchedulerConfig, options: DPMSolverOptions = DPMSolverOptions(), steps: Int) throws {
        self.config = config
        self.options = options
        guard (1...3).contains(options.solverOrder) else {
            throw DiffuseError.usage("DPMSolverMultistepScheduler solver_order must be 1, 2 or 3, got \(options.solverOrder)")
        }
        guard config.varianceType != .learned && config.varianceType != .learnedRange else {
            throw DiffuseError.input(
                "DPMSolverMultistepScheduler with variance_type \(config.varianceType.rawValue) reads the first 3 channels "
                    + "of the model's output; this version samples such models with ddpm or ddim only")
        }
        let total = config.numTrainTimesteps
        guard steps > 0, steps <= total else {
            throw DiffuseError.usage("\(Setting.steps) must be between 1 and num_train_timesteps (\(total)), got \(steps)")
        }
        var abar = try DDPMScheduler(config: config).schedule.alphasCumprod
        // As diffusers: a zero terminal SNR would make the first sigma infinite.
        if config.rescaleBetasZeroSNR { abar[abar.count - 1] = 0x1p-24 }
        let tableSigmas = abar.map { ((1 - $0) / $0).squareRoot() }
        // lambda_min_clipped: the steps start below the last timestep whose lambda is under it.
        let lambdas = abar.map { log($0.squareRoot()) - log((1 - $0).squareRoot()) }
        let clipped = Array(lambdas.reversed()).firstIndex { Double($0) >= options.lambdaMinClipped } ?? total
        let last = total - clipped
        var steps64: [Double]
        switch config.timestepSpacing {
        case .linspace:
            steps64 = NumPy.linspace(0, Double(last - 1), steps + 1).map { $0.rounded(.toNearestOrEven) }
            steps64 = Array(steps64.reversed().dropLast())
        case .leading:
            let ratio = last / (steps + 1)
            steps64 = (0...steps).map { Double($0 * ratio) }.reversed().dropLast().map { $0 + Double(config.stepsOffset) }
        case .trailing:
            let ratio = Double(total) / Double(steps)
            steps64 = NumPy.arange(Double(last), 0, -ratio).map { $0.rounded(.toNearestOrEven) - 1 }
        }
        var stepSigmas: [Double]
        if options.useKarrasSigmas {
            guard config.betaSchedule != .squaredCosCapV2 else {
                throw DiffuseError.input(
                    "use_karras_sigmas with beta_schedule squaredcos_cap_v2 places steps between training timesteps, "
                        + "which this version does not sample; use dpm++2m without Karras sigmas")
            }
            // Karras et al. 2022, eq. 5 with rho = 7 between the table's extremes; the timesteps are
            // the table positions of those sigmas in log space (diffusers' _sigma_to_t), rounded.
            let sigmaMin = Double(tableSigmas[0]), sigmaMax = Double(tableSigmas[total - 1])
            let rho = 7.0
            let (minInv, maxInv) = (pow(sigmaMin, 1 / rho), pow(sigmaMax, 1 / rho))
            stepSigmas = NumPy.linspace(0, 1, steps).map { ramp in pow(maxInv + ramp * (minInv - maxInv), rho) }
            let logSigmas = tableSigmas.map { Double(log($0)) }
            steps64 = stepSigmas.map {
                DPMSolverMultistepScheduler.timestep(ofSigma: $0, logSigmas: logSigmas).rounded(.toNearestOrEven)
            }
        } else {
            stepSigmas = steps64.map { Double(tableSigmas[Int($0)]) }
        }
        guard steps64.allSatisfy({ $0 >= 0 && $0 < Double(total) }) else {
            throw DiffuseError.input("steps_offset \(config.stepsOffset) puts DPM-Solver's timesteps outside 0..<\(total)")
        }
        timesteps = steps64.map { Int($0) }
        let final: Float = options.finalSigmas == .zero ? 0 : ((1 - abar[0]) / abar[0]).squareRoot()
        sigmas = stepSigmas.map { Float($0) } + [final]
    }

    /// diffusers' _sigma_to_t: the fractional table index whose log sigma is `sigma`'s, interpolated
    /// between the two neighbours (clamped to the table).
    static func timestep(ofSigma sigma: Double, logSigmas: [Double]) -> Double {
        let logSigma = log(max(sigma, 1e-10))
        let low = min(max(logSigmas.lastIndex { logSigma - $0 >= 0 } ?? 0, 0), logSigmas.count - 2)
        let (lo, hi) = (logSigmas[low], logSigmas[low + 1])
        let w = min(max((lo - logSigma) / (lo - hi), 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }

    /// convert_model_output for data-prediction solvers: x0 from the model's output at scheduler
    /// sigma `sigma` (x0 = (x - sigma_t eps) / alpha_t, or alpha_t x - sigma_t v), thresholded when
    /// the config asks. UniPC shares it.
    func dataPrediction(_ modelOutput: Tensor, sample: Tensor, sigma: Float) throws -> Tensor {
        let now = coefficients(sigma)
        var x0: Tensor
        switch config.predictionType {
        case .epsilon: x0 = try Tensor.linearCombination(1 / now.alpha, sample, -now.sigma / now.alpha, modelOutput)
        case .sample: x0 = modelOutput
        case .velocity: x0 = try Tensor.linearCombination(now.alpha, sample, -now.sigma, modelOutput)
        }
        return config.thresholding ? try config.thresholded(x0) : x0
    }

    /// Whether steps draw noise (the SDE variant).
    public var needsNoise: Bool { options.algorithm == .sdeDPMSolverPlusPlus }

    /// (alpha_t, sigma_t, lambda_t) of a scheduler sigma, in float32.
    func coefficients(_ s: Float) -> (alpha: Float, sigma: Float, lambda: Float) {
        let alpha = 1 / (s * s + 1).squareRoot()
        let sigma = s * alpha
        return (alpha, sigma, log(alpha) - log(sigma))
    }

    /// One step: the x0 prediction joins the history, then the update of the order the history and
    /// the position allow (lower orders first and, with lower_order_final, last).
    public func step(
        modelOutput: Tensor, step i: Int, sample: Tensor, noise: Tensor?, state: inout State
    ) throws -> (previous: Tensor, original: Tensor) {
        let x0 = try dataPrediction(modelOutput, sample: sample, sigma: sigmas[i])
        state.outputs.append(x0)
        if state.outputs.count > options.solverOrder { state.outputs.removeFirst() }
        let count = timesteps.count
        let short = options.lowerOrderFinal && count < 15
        let finalFirstOrder = i == count - 1 && (options.eulerAtFinal || short || options.finalSigmas == .zero)
        let finalSecondOrder = i == count - 2 && short
        let order: Int
        if options.solverOrder == 1 || state.lowerOrderSteps < 1 || finalFirstOrder {
            order = 1
        } else if options.solverOrder == 2 || state.lowerOrderSteps < 2 || finalSecondOrder {
            order = 2
        } else {
            order = 3
        }
        if state.lowerOrderSteps < options.solverOrder { state.lowerOrderSteps += 1 }
        guard !needsNoise || noise != nil else { throw DiffuseError.shape("sde-dpmsolver++ steps need noise") }
        return (try update(order: order, step: i, sample: sample, outputs: state.outputs, noise: noise), x0)
    }

    func update(order: Int, step i: Int, sample: Tensor, outputs: [Tensor], noise: Tensor?) throws -> Tensor {
        let next = coefficients(sigmas[i + 1])
        let s0 = coefficients(sigmas[i])
        let h = next.lambda - s0.lambda
        let sde = needsNoise
        // The data-term weight and the sample's factor: alpha' (1 - e^-h) (ODE) or alpha' (1 - e^-2h).
        let decay = sde ? exp(-2 * h) : exp(-h)
        let data = next.alpha * (1 - decay)
        let keep = sde ? next.sigma / s0.sigma * exp(-h) : next.sigma / s0.sigma
        let m0 = outputs[outputs.count - 1]
        var terms: [(Float, Tensor)] = [(keep, sample), (data, m0)]
        // The first-difference weight: midpoint's half, or heun's / order 3's (phi_2 form).
        let phi2 = sde ? next.alpha * ((1 - decay) / (-2 * h) + 1) : next.alpha * ((exp(-h) - 1) / h + 1)
        if order == 2 {
            let s1 = coefficients(sigmas[i - 1])
            let r0 = (s0.lambda - s1.lambda) / h
            let d1 = try Tensor.linearCombination(1 / r0, m0, -1 / r0, outputs[outputs.count - 2])
            terms.append((options.solverType == .midpoint ? 0.5 * data : phi2, d1))
        } else if order == 3 {
            let (s1, s2) = (coefficients(sigmas[i - 1]), coefficients(sigmas[i - 2]))
            let (r0, r1) = ((s0.lambda - s1.lambda) / h, (s1.lambda - s2.lambda) / h)
            let (m1, m2) = (outputs[outputs.count - 2], outputs[outputs.count - 3])
            let d10 = try Tensor.linearCombination(1 / r0, m0, -1 / r0, m1)
            let d11 = try Tensor.linearCombination(1 / r1, m1, -1 / r1, m2)
            let d1 = try Tensor.linearCombination(1 + r0 / (r0 + r1), d10, -r0 / (r0 + r1), d11)
            let d2 = try Tensor.linearCombination(1 / (r0 + r1), d10, -1 / (r0 + r1), d11)
            let phi3 =
                sde
                ? next.alpha * ((1 - decay - 2 * h) / ((2 * h) * (2 * h)) - 0.5)
                : -next.alpha * ((exp(-h) - 1 + h) / (h * h) - 0.5)
            terms += [(phi2, d1), (phi3, d2)]
        }
        if sde, let noise { terms.append((next.sigma * (1 - decay).squareRoot(), noise)) }
        var x = try Tensor.linearCombination(terms[0].0, terms[0].1, terms[1].0, terms[1].1)
        for (weight, term) in terms.dropFirst(2) { x = try Tensor.linearCombination(1, x, weight, term) }
        return x
    }
}
