// `diffuse visualize`: what a trained model makes of noisy inputs, the tutorial's figure
// ("model predictions on noisy inputs") for any model folder. BasicUNet: inputs, inputs corrupted by
// amounts 0..1, predictions. DDPM pipelines: clean images, the same images noised by add_noise at
// timesteps spread over 0..T-1 (the tutorial's noising-process figure), and the model's estimate of
// the clean image from each, pred_original_sample as diffusers' step forms it.
import DataIO
import DiffuseCore
import DiffusionModels
import Foundation
import Tensor

public enum Visualization {
    /// Timesteps 0 ... T-1 evenly spread over `count` images.
    public static func spreadTimesteps(count: Int, trainTimesteps: Int) -> [Int] {
        (0..<count).map { count > 1 ? Int((Double($0) * Double(trainTimesteps - 1) / Double(count - 1)).rounded()) : 0 }
    }

    /// `clean` in [0, 1], shaped for the pipeline's UNet; `labels` for class-conditional models.
    public static func ddpm(
        _ pipeline: DDPMPipelineFolder, clean: Tensor, labels: [Int], generator: RandomGenerator
    ) throws -> Image8 {
        let scheduler = try DDPMScheduler(config: pipeline.schedulerConfig)
        let n = clean.shape[0]
        let timesteps = spreadTimesteps(count: n, trainTimesteps: scheduler.config.numTrainTimesteps)
        let x0 = try clean.affine(scale: 2, shift: -1)
        let noise = try Tensor.normal(x0.shape, generator: generator, on: x0.device)
        let noisy = try scheduler.addNoise(x0, noise: noise, timesteps: timesteps)
        pipeline.unet.train(false)
        let output = try GradMode.withoutGradients {
            try pipeline.unet(noisy, timesteps: timesteps, classLabels: pipeline.unet.config.isClassConditional ? labels : nil)
        }
        let estimate = try scheduler.predictedOriginal(output, sample: noisy, timesteps: timesteps)
        let shape = x0.shape
        return try LabelledFigure.render(
            [x0, noisy, estimate].map { Figures.tiles(try $0.toArray(), shape: shape, low: -1, high: 1) },
            title: "Predictions (timestep under each column)", rowNames: ["input", "noised", "prediction"],
            columnLabels: timesteps.map { "\($0)" })
    }
}

extension DDPMScheduler {
    /// The clean image the model's output implies at each image's timestep (diffusers' step,
    /// "pred_original_sample"), for epsilon, sample and v_prediction models; no clipping.
    public func predictedOriginal(_ modelOutput: Tensor, sample: Tensor, timesteps: [Int]) throws -> Tensor {
        guard timesteps.count == sample.shape[0], modelOutput.shape == sample.shape else {
            throw DiffuseError.shape(
                "pred_original_sample: \(timesteps.count) timesteps for batch \(sample.shape[0]), output \(modelOutput.shape)")
        }
        let perImage = [sample.shape[0]] + Array(repeating: 1, count: sample.rank - 1)
        let signal = timesteps.map { schedule.alphasCumprod[$0].squareRoot() }
        let noiseScale = timesteps.map { (1 - schedule.alphasCumprod[$0]).squareRoot() }
        let a = try Tensor(signal, shape: perImage, on: sample.device)
        let s = try Tensor(noiseScale, shape: perImage, on: sample.device)
        switch config.predictionType {
        case .epsilon: return try (sample - modelOutput * s) / a
        case .sample: return modelOutput
        case .velocity: return try sample * a - modelOutput * s
        }
    }
}
