// torch.nn.utils.clip_grad_norm_ (norm_type 2, torch/nn/utils/clip_grad.py): the total norm is
// the 2-norm of the per-tensor 2-norms, and every gradient is multiplied by
//   min(max_norm / (total_norm + 1e-6), 1),
// all on the device (no host read, so clipping adds no wait to a training step).
import DiffuseCore
import Tensor

public enum GradientClipping {
    /// Clips the gradients of `parameters` in place of their `grad`; returns the total norm
    /// before clipping, unread (nil when no parameter has a gradient). Where `arena` holds the
    /// parameters and all their gradients, it is clipped as one tensor (its gaps are zeros).
    @discardableResult
    public static func clipNorm(_ parameters: [Tensor], maxNorm: Float, arena: ParameterArena? = nil) throws -> Tensor? {
        let withGradients = parameters.filter { $0.grad != nil }
        guard let device = withGradients.first?.device else { return nil }
        if let fused = device as? FusedGradientClipping, withGradients.allSatisfy({ $0.device === device }) {
            let result = try Tensor.empty([2], on: device)
            let whole = arena.flatMap { $0.holds(parameters) && $0.gradientsInPlace ? $0.gradients : nil }
            try fused.clipGradientNorm(
                whole.map { [($0.buffer, $0.count)] } ?? withGradients.map { ($0.grad!.buffer, $0.grad!.count) },
                maxNorm: maxNorm, result: result.buffer)
            return try result.slice(axis: 0, start: 1, length: 1).reshaped([])
        }
        return try GradMode.withoutGradients {
            let norms = try withGradients.map { try $0.grad!.square().sum().sqrt().reshaped([1]) }
            let total = try Tensor.concatenate(norms, axis: 0).square().sum().sqrt()
            let coefficient = try (Tensor.full([], value: maxNorm, on: device) / (total + 1e-6)).clamped(-.infinity, 1)
            for p in withGradients { p.grad = try p.grad! * coefficient }
            return total
        }
    }
}
