// Reverse-mode autograd: each result that needs gradients records its inputs and a closure that
// maps the output gradient to input gradients; backward() walks that graph in reverse topological order.
import DiffuseCore

final class GradNode {
    let inputs: [Tensor]
    /// Returns one gradient per input (nil where the input needs none). The second argument holds,
    /// for an op that can add its result into an existing gradient (a GEMM with beta 1, a kernel's
    /// accumulate flag), input i's gradient so far where nothing else refers to it; returning that
    /// same tensor says the sum is done, saving the separate addition and its launch.
    let backward: (Tensor, [Tensor?]) throws -> [Tensor?]
    /// Whether `backward` uses its second argument (others are not handed gradients to add into).
    let accumulates: Bool

    init(inputs: [Tensor], accumulates: Bool, backward: @escaping (Tensor, [Tensor?]) throws -> [Tensor?]) {
        self.inputs = inputs
        self.accumulates = accumulates
        self.backward = backward
    }
}

public enum GradMode {
    nonisolated(unsafe) static var enabled = true
    /// Whether ops that can add a gradient into an existing one do so (GradNode); off only in the
    /// tests that compare both ways of summing.
    nonisolated(unsafe) static var sumsInPlace = true

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
            gradNode = GradNode(inputs: inputs, accumulates: false) { grad, _ in try backward(grad) }
        }
        return self
    }

    /// As `recording`, for a backward that may add input i's gradient into `into[i]` (see GradNode).
    @discardableResult
    func recordingAccumulating(
        _ inputs: [Tensor], _ backward: @escaping (_ grad: Tensor, _ into: [Tensor?]) throws -> [Tensor?]
    ) -> Tensor {
        if GradMode.enabled && inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            gradNode = GradNode(inputs: inputs, accumulates: true, backward: backward)
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
                try tensor.accumulateGradient(g)
                continue
            }
            let into =
                node.accumulates && GradMode.sumsInPlace
                ? takeAccumulators(node.inputs, from: &grads) : [Tensor?](repeating: nil, count: node.inputs.count)
            let inputGrads = try node.backward(g, into)
            for (index, (input, inputGrad)) in zip(node.inputs, inputGrads).enumerated() {
                let id = ObjectIdentifier(input)
                let taken = into[index]
                guard let inputGrad, input.requiresGrad else {
                    if let taken { grads[id] = taken }
                    continue
                }
                if let taken, taken === inputGrad {
                    grads[id] = taken  // summed in place by the op
                } else if let taken {
                    grads[id] = try taken.adding(inputGrad)
                } else {
                    grads[id] = try grads[id].map { try input.sum($0, inputGrad) } ?? inputGrad
                }
            }
            tensor.gradNode = nil
        }
    }

    /// The gradients so far of `inputs` that an op may add into: each taken out of `grads` only when
    /// this is its one reference and its buffer is not shared with a reshaped view, so that adding
    /// in place cannot change a value anything else will read. An input listed twice gets it once.
    private func takeAccumulators(_ inputs: [Tensor], from grads: inout [ObjectIdentifier: Tensor]) -> [Tensor?] {
        inputs.map { input in
            let id = ObjectIdentifier(input)
            guard input.requiresGrad, var existing = grads.removeValue(forKey: id) else { return nil }
            if isKnownUniquelyReferenced(&existing) && !existing.sharesBuffer { return existing }
            grads[id] = existing
            return nil
        }
    }

    /// Adds a leaf's gradient from this pass into `grad`. With a gradient slot, the gradient stays
    /// in it: written there by the op (nothing to do), copied there, or added into it in place
    /// (a second backward pass before the optimizer step).
    func accumulateGradient(_ g: Tensor) throws {
        defer { gradientSlotHandedOut = false }
        guard let slot = gradientSlot else {
            grad = try grad.map { try $0.adding(g) } ?? g
            return
        }
        if grad == nil {
            // A gradient written into the slot may arrive as a reshaped view of it.
            if g.buffer !== slot.buffer { try slot.copy(from: g) }
            grad = slot
        } else {
            grad = try sum(grad!, g)
        }
    }

    /// existing + extra for this tensor's gradient: added into `existing` in place when it is the
    /// gradient slot (which nothing else reads), else into a new tensor.
    func sum(_ existing: Tensor, _ extra: Tensor) throws -> Tensor {
        guard let slot = gradientSlot, existing === slot else { return try existing.adding(extra) }
        try slot.copy(from: extra, adding: true)
        return slot
    }

    /// Where an op writes `input`'s gradient: its slot when it has one not yet used in this pass
    /// (and wants a gradient), or for a reshaped view of such a tensor that slot in the view's
    /// shape; else a new tensor.
    static func gradient(for input: Tensor) throws -> Tensor {
        let owner = input.viewSource ?? input
        if input.requiresGrad, owner.grad == nil, !owner.gradientSlotHandedOut, let slot = owner.gradientSlot {
            owner.gradientSlotHandedOut = true
            return owner === input ? slot : Tensor(shape: input.shape, buffer: slot.buffer, device: input.device)
        }
        return try Tensor.empty(input.shape, on: input.device)
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
