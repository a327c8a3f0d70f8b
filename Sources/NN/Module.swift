// Module: named parameters and child modules, the way PyTorch's nn.Module names its state dict.
import DiffuseCore
import Tensor

open class Module {
    public private(set) var ownParameters: [(name: String, tensor: Tensor)] = []
    public private(set) var children: [(name: String, module: Module)] = []
    public private(set) var isTraining = true

    public init() {}

    /// Registers a trainable tensor under `name` (e.g. "weight") and marks it as needing gradients.
    @discardableResult
    public func parameter(_ name: String, _ tensor: Tensor) -> Tensor {
        tensor.requiresGrad = true
        ownParameters.append((name, tensor))
        return tensor
    }

    /// Registers a child under `name` (e.g. "down_layers.0"); its parameters get that prefix.
    @discardableResult
    public func child<M: Module>(_ name: String, _ module: M) -> M {
        children.append((name, module))
        return module
    }

    /// Every parameter with its dotted state-dict name, in registration order.
    public func namedParameters(prefix: String = "") -> [(name: String, tensor: Tensor)] {
        var out = ownParameters.map { (prefix + $0.name, $0.tensor) }
        for (name, module) in children {
            out += module.namedParameters(prefix: prefix + name + ".")
        }
        return out
    }

    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Switches training behaviour (dropout) for this module and its children.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, module) in children { module.train(on) }
    }

    public func zeroGradients() {
        for p in parameters { p.grad = nil }
    }

    /// Loads values by state-dict name; every parameter must be present with its exact shape.
    public func load(state: [String: (shape: [Int], values: [Float])], source: String) throws {
        for (name, tensor) in namedParameters() {
            guard let entry = state[name] else {
                throw DiffuseError.input("\(source): weight \(name) is missing; the config does not match the weights")
            }
            guard entry.shape == tensor.shape else {
                throw DiffuseError.input("\(source): \(name) has shape \(entry.shape), the config expects \(tensor.shape)")
            }
            try tensor.assign(entry.values)
        }
    }

    /// name -> (shape, values) for saving, read from the device.
    public func state() throws -> [(name: String, shape: [Int], values: [Float])] {
        try namedParameters().map { ($0.name, $0.tensor.shape, try $0.tensor.toArray()) }
    }
}
