// diffusers' EMAModel (src/diffusers/training_utils.py) as train_unconditional.py uses it: a
// shadow copy of the parameters moved towards them after every optimizer step,
//   shadow -= (1 - decay) * (shadow - parameter)   (here as decay * shadow + (1 - decay) * parameter),
// with the decay of optimization step n (1-based)
//   s = max(0, n - update_after_step - 1);  0 when s <= 0, else
//   warmup:  1 - (1 + s / inv_gamma)^(-power);  otherwise (1 + s) / (10 + s),
// capped at `decay` (the maximum) and floored at `min_decay`, computed in double.
import DiffuseCore
import Foundation
import Tensor

public final class ExponentialMovingAverage {
    public let maxDecay: Double
    public let minDecay: Double
    public let updateAfterStep: Int
    public let useWarmup: Bool
    public let inverseGamma: Double
    public let power: Double
    /// Updates taken so far (EMAModel's optimization_step).
    public private(set) var optimizationStep = 0
    /// The averaged parameters, one per parameter, on the parameters' devices.
    public let shadow: [Tensor]
    /// With an arena (holding the parameters), the shadow is one arena-shaped tensor and a step
    /// over the arena's parameters is one update.
    private let arena: ParameterArena?
    private let wholeShadow: Tensor?

    public init(
        parameters: [Tensor], maxDecay: Double = 0.9999, minDecay: Double = 0, updateAfterStep: Int = 0,
        useWarmup: Bool = true, inverseGamma: Double = 1, power: Double = 3.0 / 4, arena: ParameterArena? = nil
    ) throws {
        guard maxDecay >= 0, maxDecay <= 1, minDecay >= 0, minDecay <= maxDecay else {
            throw DiffuseError.usage("EMA decay must be in [0, 1] with min_decay <= decay, got \(minDecay) and \(maxDecay)")
        }
        guard inverseGamma > 0, inverseGamma.isFinite, power > 0, power.isFinite else {
            throw DiffuseError.usage("EMA inv_gamma and power must be positive, got \(inverseGamma) and \(power)")
        }
        self.maxDecay = maxDecay
        self.minDecay = minDecay
        self.updateAfterStep = updateAfterStep
        self.useWarmup = useWarmup
        self.inverseGamma = inverseGamma
        self.power = power
        if let arena, arena.holds(parameters) {
            let whole = try Tensor.empty([arena.count], on: arena.device)
            try whole.copy(from: arena.values)
            (self.arena, wholeShadow, shadow) = (arena, whole, try arena.views(of: whole))
        } else {
            (self.arena, wholeShadow) = (nil, nil)
            shadow = try parameters.map { p in
                let copy = try Tensor.empty(p.shape, on: p.device)
                try copy.copy(from: p)
                return copy
            }
        }
    }

    /// EMAModel.get_decay.
    public func decay(at optimizationStep: Int) -> Double {
        let step = Double(max(0, optimizationStep - updateAfterStep - 1))
        guard step > 0 else { return 0 }
        let value = useWarmup ? 1 - pow(1 + step / inverseGamma, -power) : (1 + step) / (10 + step)
        return max(min(value, maxDecay), minDecay)
    }

    /// EMAModel.step: one update towards `parameters` (in the order the shadow was made from).
    public func step(_ parameters: [Tensor]) throws {
        guard parameters.count == shadow.count else {
            throw DiffuseError.shape("EMA over \(shadow.count) parameters stepped with \(parameters.count)")
        }
        optimizationStep += 1
        let decay = decay(at: optimizationStep)
        if let arena, let wholeShadow, arena.holds(parameters) {
            return try arena.device.movingAverage(
                [AveragedTensor(average: wholeShadow.buffer, value: arena.values.buffer, count: arena.count)],
                decay: Float(decay), oneMinusDecay: Float(1 - decay))
        }
        // decay * shadow + (1 - decay) * parameter, which differs from EMAModel's
        // shadow - (1 - decay) * (shadow - parameter) only in its rounding; grouped by device so a
        // backend updates many tensors per launch.
        var groups: [ObjectIdentifier: (device: Device, pairs: [AveragedTensor])] = [:]
        var order: [ObjectIdentifier] = []
        for (s, p) in zip(shadow, parameters) {
            let key = ObjectIdentifier(s.device as AnyObject)
            if groups[key] == nil {
                groups[key] = (s.device, [])
                order.append(key)
            }
            groups[key]!.pairs.append(AveragedTensor(average: s.buffer, value: p.buffer, count: s.count))
        }
        for key in order {
            try groups[key]!.device.movingAverage(groups[key]!.pairs, decay: Float(decay), oneMinusDecay: Float(1 - decay))
        }
    }

    /// Copies the averages into `parameters` (EMAModel.copy_to).
    public func copy(to parameters: [Tensor]) throws {
        for (s, p) in zip(shadow, parameters) { try p.copy(from: s) }
    }

    /// Restores saved averages and the step count (a resumed run).
    public func load(_ values: [[Float]], optimizationStep: Int) throws {
        guard values.count == shadow.count, optimizationStep >= 0 else {
            throw DiffuseError.input(
                "EMA state holds \(values.count) tensors at step \(optimizationStep), expected \(shadow.count)")
        }
        for (s, v) in zip(shadow, values) { try s.assign(v) }
        self.optimizationStep = optimizationStep
    }
}
