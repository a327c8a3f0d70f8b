// The DDPM noise schedule: betas and cumulative alphas for diffusers' beta schedules, computed in
// float32 in the same order as diffusers' scheduling_ddpm.py (torch.linspace, torch.cumprod), so
// the tables match diffusers' bit for bit or within an ulp.
import DiffuseCore
import Foundation
import Tensor

public enum BetaScheduleKind: String, ConfigChoice {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredCosCapV2 = "squaredcos_cap_v2"
    case sigmoid
}

public struct NoiseSchedule: Sendable {
    public let betas: [Float]
    public let alphasCumprod: [Float]

    public init(
        numTrainTimesteps n: Int, betaStart: Double, betaEnd: Double, kind: BetaScheduleKind,
        trainedBetas: [Double]? = nil, rescaleBetasZeroSNR: Bool = false
    ) throws {
        guard n > 0 else { throw DiffuseError.input("num_train_timesteps must be positive, got \(n)") }
        var betas: [Float]
        if let trainedBetas {
            guard trainedBetas.count == n else {
                throw DiffuseError.input("trained_betas has \(trainedBetas.count) values for \(n) timesteps")
            }
            betas = trainedBetas.map { Float($0) }
        } else {
            switch kind {
            case .linear:
                betas = NoiseSchedule.linspace(Float(betaStart), Float(betaEnd), n)
            case .scaledLinear:
                betas = NoiseSchedule.linspace(Float(betaStart.squareRoot()), Float(betaEnd.squareRoot()), n).map { $0 * $0 }
            case .squaredCosCapV2:
                betas = NoiseSchedule.cosineBetas(n)
            case .sigmoid:
                let span = Float(betaEnd - betaStart)
                betas = NoiseSchedule.linspace(-6, 6, n).map { 1 / (1 + Foundation.exp(-$0)) * span + Float(betaStart) }
            }
        }
        if rescaleBetasZeroSNR { betas = NoiseSchedule.rescaleZeroTerminalSNR(betas) }
        self.betas = betas
        alphasCumprod = NoiseSchedule.cumulativeProduct(betas.map { 1 - $0 })
    }

    /// torch.linspace in float32: the first half counts up from start, the second down from end.
    static func linspace(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
        guard n > 1 else { return [start] }
        let step = (end - start) / Float(n - 1)
        let halfway = n / 2
        return (0..<n).map { i in i < halfway ? start + step * Float(i) : end - step * Float(n - 1 - i) }
    }

    /// diffusers' betas_for_alpha_bar with the cosine transform (Nichol & Dhariwal), in Double.
    static func cosineBetas(_ n: Int, maxBeta: Double = 0.999) -> [Float] {
        func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        return (0..<n).map { i in
            Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), maxBeta))
        }
    }

    /// torch.cumprod on the CPU: float32 values, accumulated in Double (ATen's acc_type for float).
    static func cumulativeProduct(_ values: [Float]) -> [Float] {
        var running: Double = 1
        return values.map {
            running *= Double($0); return Float(running)
        }
    }

    /// Lin et al. 2023, Algorithm 1: shift and scale sqrt(alphas_cumprod) so the last step has zero SNR.
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        var roots = cumulativeProduct(betas.map { 1 - $0 }).map { $0.squareRoot() }
        let first = roots[0]
        let last = roots[roots.count - 1]
        roots = roots.map { ($0 - last) * (first / (first - last)) }
        let bars = roots.map { $0 * $0 }
        var alphas = [bars[0]]
        for i in 1..<bars.count { alphas.append(bars[i] / bars[i - 1]) }
        return alphas.map { 1 - $0 }
    }
}
