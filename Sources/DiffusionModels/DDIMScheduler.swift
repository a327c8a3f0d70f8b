// DDIMScheduler following diffusers' scheduling_ddim.py (0.42): the DDPM tables with DDIM's final
// alpha, its previous-timestep rule and its update (DDIM paper eq. 12) with eta, on the device.
import DiffuseCore
import Foundation
import Tensor

public struct DDIMScheduler: Sendable {
    public let config: SchedulerConfig
    /// The shared tables and timestep spacing live in DDPMScheduler.
    public let tables: DDPMScheduler

    public init(config: SchedulerConfig) throws {
        self.config = config
        tables = try DDPMScheduler(config: config)
    }

    public func timesteps(steps: Int) throws -> [Int] { try tables.timesteps(steps: steps) }

    /// The step's scalars as diffusers' DDIMScheduler.step forms them in float32, DDIM (Song et al.
    /// 2021) eq. 12 with alpha there meaning abar here:
    ///   x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
    /// x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) as in DDPM eq. 15, and eq. 16 for sigma:
    ///   sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
    /// (eta 0: deterministic DDIM; eta 1: DDPM's posterior variance).
    public func stepGeometry(
        timestep t: Int, steps: Int, eta: Float, useClippedModelOutput: Bool = false
    ) throws
        -> SchedulerStepGeometry
    {
        let options = try config.stepOptions()
        let abar = tables.schedule.alphasCumprod
        guard abar.indices.contains(t), steps > 0 else {
            throw DiffuseError.shape("DDIM step: timestep \(t) outside 0..<\(abar.count)")
        }
        let prevT = t - config.numTrainTimesteps / steps
        let finalAlphaProduct: Float = config.setAlphaToOne ? 1 : abar[0]
        let alphaProduct = abar[t]
        let alphaProductPrevious = prevT >= 0 ? abar[prevT] : finalAlphaProduct
        let betaProduct = 1 - alphaProduct
        let betaProductPrevious = 1 - alphaProductPrevious
        let variance = (betaProductPrevious / betaProduct) * (1 - alphaProduct / alphaProductPrevious)
        let standardDeviation = eta * variance.squareRoot()
        return SchedulerStepGeometry(
            count: 0, prediction: options.prediction, sqrtAlphaProduct: alphaProduct.squareRoot(),
            sqrtBetaProduct: betaProduct.squareRoot(), clipRange: options.clip, recomputeEpsilon: useClippedModelOutput,
            x0Coefficient: alphaProductPrevious.squareRoot(), sampleCoefficient: 0,
            epsilonCoefficient: (1 - alphaProductPrevious - standardDeviation * standardDeviation).squareRoot(),
            noiseCoefficient: eta > 0 ? standardDeviation : 0)
    }

    /// diffusers' DDIMScheduler.step on the device; `noise` (standard normal) is needed when eta > 0.
    public func step(
        modelOutput: Tensor, timestep: Int, steps: Int, sample: Tensor, eta: Float = 0,
        useClippedModelOutput: Bool = false, noise: Tensor? = nil
    ) throws -> (previous: Tensor, original: Tensor) {
        let g = try stepGeometry(timestep: timestep, steps: steps, eta: eta, useClippedModelOutput: useClippedModelOutput)
        guard g.noiseCoefficient == 0 || noise != nil else {
            throw DiffuseError.shape("DDIM step with eta \(eta) needs variance noise")
        }
        return try config.applyStep(sample: sample, modelOutput: modelOutput, noise: noise, g)
    }
}
