// Sampler updates on the tensors' device; not differentiable (sampling runs without gradients).
import DiffuseCore

extension Tensor {
    /// One DDPM/DDIM step: (previous sample, predicted original sample).
    public static func schedulerStep(
        sample: Tensor, modelOutput: Tensor, noise: Tensor?,
        _ geometry: SchedulerStepGeometry
    ) throws -> (previous: Tensor, original: Tensor) {
        try sample.sameDevice(modelOutput, "scheduler step")
        guard sample.shape == modelOutput.shape, noise.map({ $0.shape == sample.shape }) ?? true else {
            throw DiffuseError.shape(
                "scheduler step: sample \(sample.shape), model output \(modelOutput.shape), noise \(noise?.shape ?? [])")
        }
        if let noise { try sample.sameDevice(noise, "scheduler step") }
        var g = geometry
        g.count = sample.count
        let previous = try Tensor.empty(sample.shape, on: sample.device)
        let original = try Tensor.empty(sample.shape, on: sample.device)
        try sample.device.schedulerStep(
            sample: sample.buffer, modelOutput: modelOutput.buffer, noise: noise?.buffer,
            previous: previous.buffer, predictedOriginal: original.buffer, g)
        return (previous, original)
    }
}
