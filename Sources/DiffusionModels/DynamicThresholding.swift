// diffusers' dynamic thresholding (Imagen, `_threshold_sample` in scheduling_ddpm.py and
// scheduling_ddim.py): per image, s = the `dynamic_thresholding_ratio` quantile of |x0| (torch's
// linear interpolation), clamped to [1, sample_max_value]; x0 becomes clamp(x0, -s, s) / s.
// The quantile is a sort, done on the host; the rest of the step stays on the device: one fused
// step gives the raw x0, a second one continues from the thresholded x0 as a `sample` prediction.
import Tensor

extension SchedulerConfig {
    /// torch.quantile(values, q) with interpolation "linear", in float32 as torch computes it.
    static func quantile(_ values: [Float], _ q: Float) -> Float {
        let sorted = values.sorted()
        let rank = q * Float(sorted.count - 1)
        let below = Int(rank)
        let above = min(below + 1, sorted.count - 1)
        let weight = rank - Float(below)
        let (low, high) = (sorted[below], sorted[above])
        // torch.lerp's two-sided form.
        return weight < 0.5 ? low + weight * (high - low) : high - (high - low) * (1 - weight)
    }

    /// The per-image thresholds s of `x0` ([B, ...]).
    func thresholds(_ x0: Tensor) throws -> [Float] {
        let values = try x0.toArray()
        let batch = x0.shape[0]
        let perImage = values.count / max(batch, 1)
        return (0..<batch).map { i in
            let magnitudes = values[(i * perImage)..<((i + 1) * perImage)].map { abs($0) }
            let s = SchedulerConfig.quantile(magnitudes, Float(dynamicThresholdingRatio))
            return min(max(s, 1), Float(sampleMaxValue))
        }
    }

    /// The step both schedulers share once they have its geometry: the fused device step, through
    /// dynamic thresholding when the config asks for it. `noise` is dropped where it has no weight.
    func applyStep(
        sample: Tensor, modelOutput: Tensor, noise: Tensor?, _ g: SchedulerStepGeometry
    )
        throws -> (previous: Tensor, original: Tensor)
    {
        let noise = g.noiseCoefficient == 0 ? nil : noise
        if thresholding {
            return try Tensor.thresholdedSchedulerStep(sample: sample, modelOutput: modelOutput, noise: noise, g, config: self)
        }
        return try Tensor.schedulerStep(sample: sample, modelOutput: modelOutput, noise: noise, g)
    }

    /// clamp(x0, -s, s) / s per image. With s >= 1 this equals clamp(x0 / s, -1, 1) exactly
    /// (division rounds monotonically and s / s is 1), which needs only a broadcast divide.
    func thresholded(_ x0: Tensor) throws -> Tensor {
        let perImage = [x0.shape[0]] + Array(repeating: 1, count: x0.rank - 1)
        let s = try Tensor(try thresholds(x0), shape: perImage, on: x0.device)
        return try (x0 / s).clamped(-1, 1)
    }
}

extension Tensor {
    /// A DDPM/DDIM step with dynamic thresholding of the predicted original sample. diffusers keeps
    /// the unthresholded epsilon for the DDIM direction unless use_clipped_model_output is set.
    static func thresholdedSchedulerStep(
        sample: Tensor, modelOutput: Tensor, noise: Tensor?,
        _ g: SchedulerStepGeometry, config: SchedulerConfig
    )
        throws -> (previous: Tensor, original: Tensor)
    {
        var raw = g
        raw.clipRange = nil
        let x0 = try config.thresholded(try schedulerStep(sample: sample, modelOutput: modelOutput, noise: nil, raw).original)
        var resumed = raw
        resumed.prediction = .sample
        if g.recomputeEpsilon || g.epsilonCoefficient == 0 {
            return try schedulerStep(sample: sample, modelOutput: x0, noise: noise, resumed)
        }
        resumed.epsilonCoefficient = 0
        let partial = try schedulerStep(sample: sample, modelOutput: x0, noise: noise, resumed)
        let (sa, sb) = (g.sqrtAlphaProduct, g.sqrtBetaProduct)
        let epsilon: Tensor
        switch g.prediction {
        case .epsilon: epsilon = modelOutput
        case .sample: epsilon = try linearCombination(1 / sb, sample, -sa / sb, modelOutput)
        case .velocity: epsilon = try linearCombination(sa, modelOutput, sb, sample)
        }
        return (try linearCombination(1, partial.previous, g.epsilonCoefficient, epsilon), x0)
    }
}
