// Adam and AdamW with PyTorch's update rules and defaults (torch/optim/adam.py, adamw.py),
// one fused device update per parameter, or one for all of them when they live in a
// ParameterArena (as PyTorch's fused Adam over flat buffers); moments stay on the device.
import DiffuseCore
import Tensor

public final class Adam {
    public enum Variant: String, Codable, Sendable, CaseIterable { case adam, adamw }

    public let parameters: [Tensor]
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    public let variant: Variant
    /// Steps taken so far (PyTorch's `state["step"]`).
    public private(set) var step = 0
    /// Where the parameters, their gradients and (as companions) the moments are contiguous.
    public let arena: ParameterArena?
    private var firstMoments: [Tensor] = []
    private var secondMoments: [Tensor] = []
    private var wholeMoments: (first: Tensor, second: Tensor)?

    /// `weightDecay` defaults to PyTorch's: 0 for Adam, 0.01 for AdamW. With `arena` (holding
    /// `parameters`, in order) a step whose gradients are all in the arena is one update.
    public init(
        parameters: [Tensor], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
        epsilon: Double = 1e-8, weightDecay: Double? = nil, variant: Variant = .adam, arena: ParameterArena? = nil
    ) throws {
        if let arena, !arena.holds(parameters) {
            throw DiffuseError.shape("Adam's arena holds other parameters than it was given")
        }
        self.arena = arena
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay ?? (variant == .adamw ? 0.01 : 0)
        self.variant = variant
        if let arena {
            let (first, second) = (try arena.companion(), try arena.companion())
            wholeMoments = (first.whole, second.whole)
            (firstMoments, secondMoments) = (first.views, second.views)
        } else {
            firstMoments = try parameters.map { try Tensor.zeros($0.shape, on: $0.device) }
            secondMoments = try parameters.map { try Tensor.zeros($0.shape, on: $0.device) }
        }
    }

    /// Updates every parameter that has a gradient.
    public func update() throws {
        step += 1
        let scalars = AdamStep(
            learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, decoupledWeightDecay: variant == .adamw, step: step)
        if let arena, let wholeMoments, arena.gradientsInPlace {
            return try arena.device.adamUpdate(
                [
                    AdamTensor(
                        parameter: arena.values.buffer, gradient: arena.gradients.buffer,
                        firstMoment: wholeMoments.first.buffer, secondMoment: wholeMoments.second.buffer, count: arena.count)
                ], scalars)
        }
        // Grouped by device so a backend can fuse the whole optimizer step into few launches.
        var groups: [ObjectIdentifier: (device: Device, tensors: [AdamTensor])] = [:]
        var order: [ObjectIdentifier] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let key = ObjectIdentifier(p.device as AnyObject)
            if groups[key] == nil {
                groups[key] = (p.device, [])
                order.append(key)
            }
            groups[key]!.tensors.append(
                AdamTensor(
                    parameter: p.buffer, gradient: g.buffer, firstMoment: firstMoments[i].buffer,
                    secondMoment: secondMoments[i].buffer, count: p.count))
        }
        for key in order {
            let group = groups[key]!
            try group.device.adamUpdate(group.tensors, scalars)
        }
    }

    /// PyTorch's per-parameter state, `exp_avg.<name>` and `exp_avg_sq.<name>` with `names` in
    /// parameter order, for checkpoints; `step` is saved beside it.
    public func state(names: [String]) throws -> [(name: String, shape: [Int], values: [Float])] {
        precondition(names.count == parameters.count, "one name per parameter")
        var out: [(name: String, shape: [Int], values: [Float])] = []
        for (i, name) in names.enumerated() {
            out.append(("exp_avg.\(name)", firstMoments[i].shape, try firstMoments[i].toArray()))
            out.append(("exp_avg_sq.\(name)", secondMoments[i].shape, try secondMoments[i].toArray()))
        }
        return out
    }

    /// Restores what `state(names:)` saved, and the step count.
    public func load(state: [String: (shape: [Int], values: [Float])], step: Int, names: [String], source: String) throws {
        guard step >= 0 else { throw DiffuseError.input("\(source): negative optimizer step \(step)") }
        for (i, name) in names.enumerated() {
            for (key, moment) in [("exp_avg.\(name)", firstMoments[i]), ("exp_avg_sq.\(name)", secondMoments[i])] {
                guard let entry = state[key] else {
                    throw DiffuseError.input(
                        "\(source): optimizer state \(key) is missing; the checkpoint does not match the model")
                }
                guard entry.shape == moment.shape else {
                    throw DiffuseError.input("\(source): \(key) has shape \(entry.shape), the model expects \(moment.shape)")
                }
                try moment.assign(entry.values)
            }
        }
        self.step = step
    }

    public func zeroGradients() {
        for p in parameters { p.grad = nil }
    }
}
