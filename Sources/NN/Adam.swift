// Adam and AdamW with PyTorch's update rules and defaults (torch/optim/adam.py, adamw.py),
// one fused device update per parameter; moments stay on the device.
import Tensor

public final class Adam {
    public enum Variant: String, Codable, Sendable { case adam, adamw }

    public let parameters: [Tensor]
    public var learningRate: Double
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    public let variant: Variant
    /// Steps taken so far (PyTorch's `state["step"]`).
    public private(set) var step = 0
    private var firstMoments: [Tensor] = []
    private var secondMoments: [Tensor] = []

    /// `weightDecay` defaults to PyTorch's: 0 for Adam, 0.01 for AdamW.
    public init(parameters: [Tensor], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, weightDecay: Double? = nil, variant: Variant = .adam) throws {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay ?? (variant == .adamw ? 0.01 : 0)
        self.variant = variant
        firstMoments = try parameters.map { try Tensor.zeros($0.shape, on: $0.device) }
        secondMoments = try parameters.map { try Tensor.zeros($0.shape, on: $0.device) }
    }

    /// Updates every parameter that has a gradient.
    public func update() throws {
        step += 1
        let scalars = AdamStep(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                               weightDecay: weightDecay, decoupledWeightDecay: variant == .adamw, step: step)
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            try p.device.adamUpdate(parameter: p.buffer, gradient: g.buffer, firstMoment: firstMoments[i].buffer,
                                    secondMoment: secondMoments[i].buffer, count: p.count, scalars)
        }
    }

    public func zeroGradients() {
        for p in parameters { p.grad = nil }
    }
}
