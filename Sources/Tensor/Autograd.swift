// Reverse-mode autograd: each result that needs gradients records its inputs and a closure that
// maps the output gradient to input gradients; backward() walks that graph in reverse topological order.
import DiffuseCore

final class GradNode {
    let inputs: [Tensor]
    /// Returns one gradient per input (nil where the input needs none).
    let backward: (Tensor) throws -> [Tensor?]

    init(inputs: [Tensor], backward: @escaping (Tensor) throws -> [Tensor?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

public enum GradMode {
    nonisolated(unsafe) static var enabled = true

    public static var isEnabled: Bool { enabled }

    /// Runs `body` without recording a graph (sampling, evaluation, optimizer updates).
    public static func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
        let previous = enabled
        enabled = false
        defer { enabled = previous }
        return try body()
    }
}

extension Tensor {
    /// Attaches a backward closure when grad mode is on and some input requires gradients.
    @discardableResult
    func recording(_ inputs: [Tensor], _ backward: @escaping (Tensor) throws -> [Tensor?]) -> Tensor {
        if GradMode.enabled && inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            gradNode = GradNode(inputs: inputs, backward: backward)
        }
        return self
    }

    /// Accumulates d(self)/d(leaf) into every leaf's `grad`. `self` is usually a one-element loss;
    /// otherwise pass the upstream gradient. The graph is released afterwards, as in PyTorch.
    public func backward(gradient: Tensor? = nil) throws {
        guard requiresGrad else {
            throw DiffuseError.shape("backward() on a tensor that does not require gradients")
        }
        let seed = try gradient ?? Tensor.ones(shape, on: device)
        // Iterative depth-first search for a topological order (deep graphs must not overflow the stack).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded {
                order.append(tensor)
                continue
            }
            guard visited.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in tensor.gradNode?.inputs ?? []
            where input.requiresGrad
                && !visited.contains(ObjectIdentifier(input))
            {
                stack.append((input, false))
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
        let previous = GradMode.enabled
        GradMode.enabled = false
        defer { GradMode.enabled = previous }
        for tensor in order.reversed() {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(tensor)) else { continue }
            guard let node = tensor.gradNode else {
                tensor.grad = try tensor.grad.map { try $0.adding(g) } ?? g
                continue
            }
            let inputGrads = try node.backward(g)
            for (input, inputGrad) in zip(node.inputs, inputGrads) {
                guard let inputGrad, input.requiresGrad else { continue }
                let id = ObjectIdentifier(input)
                grads[id] = try grads[id].map { try $0.adding(inputGrad) } ?? inputGrad
            }
            tensor.gradNode = nil
        }
    }

    /// Elementwise sum without recording, for gradient accumulation.
    func adding(_ other: Tensor) throws -> Tensor {
        let out = try Tensor.empty(shape, on: device)
        try device.binary(
            .add, buffer, other.buffer, out: out.buffer,
            BroadcastGeometry(shape: [count], stridesA: [1], stridesB: [1]))
        return out
    }
}
