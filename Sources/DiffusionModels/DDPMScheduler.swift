// DDPMScheduler's configuration, timesteps and forward process, following diffusers'
// scheduling_ddpm.py (0.42): scheduler_config.json keys and defaults, set_timesteps for the
// leading / linspace / trailing spacings, and add_noise on the device.
import DiffuseCore
import Foundation
import Tensor

/// scheduler/scheduler_config.json of a DDPM or DDIM pipeline (the keys both read, plus DDPM's
/// variance_type and DDIM's set_alpha_to_one); missing keys take diffusers' defaults.
public struct SchedulerConfig: Codable, Equatable, Sendable {
    public var className = "DDPMScheduler"
    public var numTrainTimesteps = 1000
    public var betaStart = 0.0001
    public var betaEnd = 0.02
    public var betaSchedule = BetaScheduleKind.linear
    public var trainedBetas: [Double]?
    public var varianceType = VarianceType.fixedSmall
    public var clipSample = true
    public var predictionType = PredictionType.epsilon
    public var thresholding = false
    public var dynamicThresholdingRatio = 0.995
    public var clipSampleRange = 1.0
    public var sampleMaxValue = 1.0
    public var timestepSpacing = TimestepSpacing.leading
    public var stepsOffset = 0
    public var rescaleBetasZeroSNR = false
    public var setAlphaToOne = true
    /// Whether the file gave set_alpha_to_one: PNDM's default (False) differs from DDIM's (True).
    public var setAlphaToOneInFile = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case varianceType = "variance_type"
        case clipSample = "clip_sample"
        case predictionType = "prediction_type"
        case thresholding
        case dynamicThresholdingRatio = "dynamic_thresholding_ratio"
        case clipSampleRange = "clip_sample_range"
        case sampleMaxValue = "sample_max_value"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case rescaleBetasZeroSNR = "rescale_betas_zero_snr"
        case setAlphaToOne = "set_alpha_to_one"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SchedulerConfig()
        className = try c.decodeIfPresent(String.self, forKey: .className) ?? d.className
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps) ?? d.numTrainTimesteps
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart) ?? d.betaStart
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd) ?? d.betaEnd
        betaSchedule = try c.decodeIfPresent(BetaScheduleKind.self, forKey: .betaSchedule) ?? d.betaSchedule
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        varianceType = try c.decodeIfPresent(VarianceType.self, forKey: .varianceType) ?? d.varianceType
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample) ?? d.clipSample
        predictionType = try c.decodeIfPresent(PredictionType.self, forKey: .predictionType) ?? d.predictionType
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding) ?? d.thresholding
        dynamicThresholdingRatio =
            try c.decodeIfPresent(Double.self, forKey: .dynamicThresholdingRatio)
            ?? d.dynamicThresholdingRatio
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange) ?? d.clipSampleRange
        sampleMaxValue = try c.decodeIfPresent(Double.self, forKey: .sampleMaxValue) ?? d.sampleMaxValue
        timestepSpacing = try c.decodeIfPresent(TimestepSpacing.self, forKey: .timestepSpacing) ?? d.timestepSpacing
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset) ?? d.stepsOffset
        rescaleBetasZeroSNR = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSNR) ?? d.rescaleBetasZeroSNR
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne) ?? d.setAlphaToOne
        setAlphaToOneInFile = c.contains(.setAlphaToOne)
    }

    /// Every number within what the schedule can be built from, before anything is allocated.
    public func validate(source: String) throws {
        func bad(_ key: String, _ rule: String, _ value: Any) -> DiffuseError {
            .input("\(source): \(key) must be \(rule), got \(value)")
        }
        guard (1...100_000).contains(numTrainTimesteps) else {
            throw bad("num_train_timesteps", "1 to 100000", numTrainTimesteps)
        }
        guard betaStart.isFinite, betaEnd.isFinite, betaStart >= 0, betaEnd < 1, betaStart <= betaEnd else {
            throw bad("beta_start and beta_end", "finite with 0 <= beta_start <= beta_end < 1", "\(betaStart), \(betaEnd)")
        }
        if let trainedBetas, let wrong = trainedBetas.first(where: { !($0 > 0 && $0 < 1) }) {
            throw bad("trained_betas", "values in (0, 1)", wrong)
        }
        guard (0..<numTrainTimesteps).contains(stepsOffset) else {
            throw bad("steps_offset", "0 to num_train_timesteps - 1", stepsOffset)
        }
        guard clipSampleRange > 0, clipSampleRange.isFinite else { throw bad("clip_sample_range", "positive", clipSampleRange) }
        guard sampleMaxValue > 0, sampleMaxValue.isFinite else { throw bad("sample_max_value", "positive", sampleMaxValue) }
        guard dynamicThresholdingRatio > 0, dynamicThresholdingRatio <= 1 else {
            throw bad("dynamic_thresholding_ratio", "in (0, 1]", dynamicThresholdingRatio)
        }
    }

    /// The step's prediction type and clipping, checked once.
    func stepOptions() throws -> (prediction: SchedulerStepGeometry.Prediction, clip: Float?) {
        let prediction: SchedulerStepGeometry.Prediction
        switch predictionType {
        case .epsilon: prediction = .epsilon
        case .sample: prediction = .sample
        case .velocity: prediction = .velocity
        }
        guard !thresholding || (dynamicThresholdingRatio > 0 && dynamicThresholdingRatio <= 1 && sampleMaxValue >= 1) else {
            throw DiffuseError.input(
                "thresholding needs 0 < dynamic_thresholding_ratio <= 1 and sample_max_value >= 1, got "
                    + "\(dynamicThresholdingRatio) and \(sampleMaxValue)"
            )
        }
        // As in diffusers, thresholding replaces clip_sample.
        return (prediction, clipSample && !thresholding ? Float(clipSampleRange) : nil)
    }
}

public struct DDPMScheduler: Sendable {
    public let config: SchedulerConfig
    public let schedule: NoiseSchedule

    public init(config: SchedulerConfig = SchedulerConfig()) throws {
        try config.validate(source: "scheduler_config.json")
        self.config = config
        schedule = try NoiseSchedule(
            numTrainTimesteps: config.numTrainTimesteps, betaStart: config.betaStart,
            betaEnd: config.betaEnd, kind: config.betaSchedule,
            trainedBetas: config.trainedBetas, rescaleBetasZeroSNR: config.rescaleBetasZeroSNR)
    }

    /// The inference timesteps, descending, as diffusers' set_timesteps spaces them.
    public func timesteps(steps: Int) throws -> [Int] {
        let total = config.numTrainTimesteps
        guard steps > 0, steps <= total else {
            throw DiffuseError.usage("\(Setting.steps) must be between 1 and num_train_timesteps (\(total)), got \(steps)")
        }
        switch config.timestepSpacing {
        case .linspace:
            // np.linspace(0, T-1, n).round() rounds halves to even.
            return (0..<steps).map { i -> Int in
                let value = steps == 1 ? 0 : Double(total - 1) * Double(i) / Double(steps - 1)
                return Int(value.rounded(.toNearestOrEven))
            }.reversed()
        case .leading:
            let ratio = total / steps
            return (0..<steps).map { $0 * ratio + config.stepsOffset }.reversed()
        case .trailing:
            let ratio = Double(total) / Double(steps)
            let count = Int((Double(total) / ratio).rounded(.up))
            return (0..<count).map { i in Int((Double(total) - Double(i) * ratio).rounded(.toNearestOrEven)) - 1 }
        }
    }

    /// The forward process in closed form, DDPM (Ho et al. 2020) eq. 4: q(x_t | x_0) = N(sqrt(abar_t) x_0,
    /// (1 - abar_t) I), so x_t = sqrt(abar_t) x + sqrt(1 - abar_t) noise, one timestep per image.
    public func addNoise(_ x: Tensor, noise: Tensor, timesteps: [Int]) throws -> Tensor {
        guard timesteps.count == x.shape[0], x.shape == noise.shape else {
            throw DiffuseError.shape("add_noise: \(timesteps.count) timesteps for batch \(x.shape[0]), noise \(noise.shape)")
        }
        guard timesteps.allSatisfy({ (0..<config.numTrainTimesteps).contains($0) }) else {
            throw DiffuseError.shape("add_noise: timesteps must lie in 0..<\(config.numTrainTimesteps)")
        }
        let perImage = [x.shape[0]] + Array(repeating: 1, count: x.rank - 1)
        let signal = timesteps.map { schedule.alphasCumprod[$0].squareRoot() }
        let noiseScale = timesteps.map { (1 - schedule.alphasCumprod[$0]).squareRoot() }
        return try x * Tensor(signal, shape: perImage, on: x.device)
            + noise * Tensor(noiseScale, shape: perImage, on: x.device)
    }
}

extension DDPMScheduler {
    /// The step's scalars as diffusers' DDPMScheduler.step forms them in float32.
    /// `previousTimestep` is the next inference timestep, or -1 after the last.
    /// 1. x0 from the prediction, DDPM eq. 15: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (or the
    ///    sample itself, or from v: x0 = sqrt(abar_t) x_t - sqrt(1 - abar_t) v), clipped or thresholded.
    /// 2. The posterior mean, DDPM eq. 7: mu = sqrt(abar_prev) beta_t / (1 - abar_t) x0
    ///    + sqrt(alpha_t) (1 - abar_prev) / (1 - abar_t) x_t.
    /// 3. Its variance, DDPM eq. 7: beta~_t = (1 - abar_prev) / (1 - abar_t) beta_t ("fixed_small"), or
    ///    beta_t ("fixed_large", the other choice of section 3.2); x_prev = mu + sigma z (eq. 6).
    public func stepGeometry(timestep t: Int, previousTimestep prevT: Int) throws -> SchedulerStepGeometry {
        let options = try config.stepOptions()
        let abar = schedule.alphasCumprod
        guard abar.indices.contains(t), prevT < t else {
            throw DiffuseError.shape("DDPM step: timestep \(t) (previous \(prevT)) outside 0..<\(abar.count)")
        }
        let alphaProduct = abar[t]
        let alphaProductPrevious: Float = prevT >= 0 ? abar[prevT] : 1
        let betaProduct = 1 - alphaProduct
        let betaProductPrevious = 1 - alphaProductPrevious
        let currentAlpha = alphaProduct / alphaProductPrevious
        let currentBeta = 1 - currentAlpha
        var noiseScale: Float = 0
        if t > 0 {
            let variance = max(betaProductPrevious / betaProduct * currentBeta, 1e-20)
            switch config.varianceType {
            case .fixedSmall: noiseScale = variance.squareRoot()
            case .fixedSmallLog: noiseScale = Foundation.exp(0.5 * Foundation.log(variance))
            case .fixedLarge: noiseScale = currentBeta.squareRoot()
            // diffusers takes the square root of log(beta) here, which is NaN for every beta < 1;
            // we follow it so results stay comparable, and say so in the README.
            case .fixedLargeLog: noiseScale = Foundation.log(currentBeta).squareRoot()
            case .learned, .learnedRange:
                throw DiffuseError.input(
                    "variance_type '\(config.varianceType.rawValue)' (a model that predicts its variance) is not supported by "
                        + "the DDPM step yet: use fixed_small, fixed_small_log, fixed_large or fixed_large_log, or sample with "
                        + "DDIM"
                )
            }
        }
        return SchedulerStepGeometry(
            count: 0, prediction: options.prediction, sqrtAlphaProduct: alphaProduct.squareRoot(),
            sqrtBetaProduct: betaProduct.squareRoot(), clipRange: options.clip, recomputeEpsilon: false,
            x0Coefficient: (alphaProductPrevious.squareRoot() * currentBeta) / betaProduct,
            sampleCoefficient: currentAlpha.squareRoot() * betaProductPrevious / betaProduct,
            epsilonCoefficient: 0, noiseCoefficient: noiseScale)
    }

    /// diffusers' DDPMScheduler.step on the device: (prev_sample, pred_original_sample). `noise` is
    /// the standard normal variance noise (unused at t = 0).
    public func step(
        modelOutput: Tensor, timestep: Int, previousTimestep: Int, sample: Tensor,
        noise: Tensor?
    ) throws -> (previous: Tensor, original: Tensor) {
        let g = try stepGeometry(timestep: timestep, previousTimestep: previousTimestep)
        guard g.noiseCoefficient == 0 || noise != nil else {
            throw DiffuseError.shape("DDPM step at t = \(timestep) needs variance noise")
        }
        return try config.applyStep(sample: sample, modelOutput: modelOutput, noise: noise, g)
    }
}

extension DDPMScheduler {
    /// diffusers' get_velocity: sqrt(abar_t) noise - sqrt(1 - abar_t) x, the v-prediction target.
    public func velocity(_ x: Tensor, noise: Tensor, timesteps: [Int]) throws -> Tensor {
        // add_noise(noise, -x) = sqrt(abar) noise + sqrt(1 - abar) (-x).
        try addNoise(noise, noise: x.scaled(by: -1), timesteps: timesteps)
    }
}
