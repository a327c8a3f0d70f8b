// pred_original_sample (what `diffuse visualize` draws) inverts add_noise for each prediction type.
import CPUBackend
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Tensor
import XCTest

final class VisualizationTests: XCTestCase {
    func testPredictedOriginalInvertsAddNoiseForEveryPredictionType() throws {
        let device = CPUDevice()
        let generator = RandomGenerator(seed: 3)
        let x0 = try Tensor.uniform([5, 2, 3, 3], low: -1, high: 1, generator: generator, on: device)
        let noise = try Tensor.normal(x0.shape, generator: generator, on: device)
        let timesteps = Visualization.spreadTimesteps(count: 5, trainTimesteps: 1000)
        XCTAssertEqual(timesteps, [0, 250, 500, 749, 999])
        for type in ["epsilon", "sample", "v_prediction"] {
            var config = SchedulerConfig()
            config.predictionType = try XCTUnwrap(PredictionType(rawValue: type))
            config.betaSchedule = .linear
            let scheduler = try DDPMScheduler(config: config)
            let noisy = try scheduler.addNoise(x0, noise: noise, timesteps: timesteps)
            // What a perfect model outputs for each prediction type.
            let output: Tensor
            switch type {
            case "epsilon": output = noise
            case "sample": output = x0
            default: output = try scheduler.velocity(x0, noise: noise, timesteps: timesteps)
            }
            let estimate = try scheduler.predictedOriginal(output, sample: noisy, timesteps: timesteps).toArray()
            let expected = try x0.toArray()
            // At t=999 the linear schedule keeps sqrt(abar) ~ 6e-3 of the image: epsilon's division
            // magnifies float32 rounding there, so the bound is loose for the last image only.
            let perImage = expected.count / 5
            for i in 0..<expected.count {
                let bound: Float = (type == "epsilon" && i >= 4 * perImage) ? 2e-3 : 2e-5
                XCTAssertEqual(estimate[i], expected[i], accuracy: bound, "\(type) element \(i)")
            }
        }
        // A prediction type no step implements is refused when scheduler_config.json is read.
        XCTAssertThrowsError(
            try JSONFile.decode(
                SchedulerConfig.self, from: Data(#"{"prediction_type": "noise"}"#.utf8),
                source: "scheduler_config.json")
        ) {
            XCTAssertTrue(
                "\($0)".contains("prediction_type: 'noise' is not supported; this version reads epsilon, sample, v_prediction"),
                "\($0)")
        }
    }
}
