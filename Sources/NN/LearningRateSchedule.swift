// diffusers' learning-rate schedules (src/diffusers/optimization.py, get_scheduler): each a
// LambdaLR factor of the step, lr = base_lr * factor(step), computed in double as Python does.
// With W warmup steps, T training steps and p = (step - W) / max(1, T - W):
//   constant                1
//   constant_with_warmup    step / max(1, W) while step < W, then 1
//   linear                  warmup, then max(0, (T - step) / max(1, T - W))
//   cosine                  warmup, then max(0, (1 + cos(pi * 2 * 0.5 * p)) / 2)
//   cosine_with_restarts    warmup, then 0 once p >= 1, else max(0, (1 + cos(pi * ((1 * p) % 1))) / 2)
//   polynomial              warmup, then ((lr - 1e-7) * (1 - p)^1 + 1e-7) / lr; past T, 1e-7 / lr
import DiffuseCore
import Foundation

public struct LearningRateSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case constant
        case constantWithWarmup = "constant_with_warmup"
        case linear, cosine
        case cosineWithRestarts = "cosine_with_restarts"
        case polynomial
    }

    public var kind: Kind
    public var warmupSteps: Int
    public var trainingSteps: Int

    public init(kind: Kind = .constant, warmupSteps: Int = 0, trainingSteps: Int = 1) {
        self.kind = kind
        self.warmupSteps = warmupSteps
        self.trainingSteps = trainingSteps
    }

    /// get_scheduler's defaults for the arguments train_unconditional.py does not pass.
    static let cosineCycles = 0.5
    static let restartCycles = 1.0
    static let polynomialPower = 1.0
    public static let polynomialEnd = 1e-7

    /// The learning rate after `step` scheduler steps (LambdaLR's last_epoch = step).
    public func learningRate(base: Double, step: Int) -> Double {
        base * factor(step: step, base: base)
    }

    func factor(step: Int, base: Double) -> Double {
        let current = Double(step), warmup = Double(warmupSteps), total = Double(trainingSteps)
        if kind == .constant { return 1 }
        if step < warmupSteps { return current / max(1, warmup) }
        if kind == .constantWithWarmup { return 1 }
        let progress = (current - warmup) / max(1, total - warmup)
        switch kind {
        case .constant, .constantWithWarmup: return 1
        case .linear: return max(0, (total - current) / max(1, total - warmup))
        case .cosine: return max(0, 0.5 * (1 + cos(Double.pi * Self.cosineCycles * 2 * progress)))
        case .cosineWithRestarts:
            if progress >= 1 { return 0 }
            return max(0, 0.5 * (1 + cos(Double.pi * (Self.restartCycles * progress).truncatingRemainder(dividingBy: 1))))
        case .polynomial:
            if step > trainingSteps { return Self.polynomialEnd / base }
            let remaining = 1 - (current - warmup) / (total - warmup)
            return ((base - Self.polynomialEnd) * pow(remaining, Self.polynomialPower) + Self.polynomialEnd) / base
        }
    }

    /// Refuses what get_scheduler would refuse (polynomial needs lr > lr_end).
    public func validate(base: Double) throws {
        guard warmupSteps >= 0 else { throw DiffuseError.usage("lr warmup steps must be 0 or more, got \(warmupSteps)") }
        if kind == .polynomial && !(base > Self.polynomialEnd) {
            throw DiffuseError.usage(
                "the polynomial lr schedule decays to 1e-7; the learning rate must be above that, got \(base)")
        }
    }
}
