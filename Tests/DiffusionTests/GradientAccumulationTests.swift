// Gradient accumulation (issue 13 item 2): two batches of 4 with their losses halved give the
// gradients of one batch of 8 (MSE is a mean over the batch), with the same images, noise and
// timesteps, on both backends.
import DataIO
import DiffusionModels
import Tensor
import TestSupport
import XCTest

@testable import DiffusionPipelines

final class GradientAccumulationTests: XCTestCase {
    func testTwoHalfBatchesGiveTheGradientsOfTheWholeBatch() throws {
        let dataset = try XCTUnwrap(TrainingReplayTests.dataset, "Fashion-MNIST is needed: Tools/setup.sh installs it")
        var config = UNet2DConfig.tutorial
        config.blockOutChannels = [8, 16, 16]
        config.normNumGroups = 4
        config.attentionHeadDim = 4
        try DevicesUnderTest.each { device in
            func gradients(_ parts: Int) throws -> [[Float]] {
                var options = TrainingOptions()
                options.batchSize = 8
                options.gradientAccumulationSteps = parts
                let trainer = try UNet2DTrainer(options: options, config: config, dataset: dataset, device: device)
                let noise = try Tensor.normal([8, 1, 28, 28], generator: RandomGenerator(seed: 4), on: device)
                let timesteps = [3, 100, 500, 999, 42, 7, 250, 800]
                let clean = try trainer.batcher.batch(Array(0..<8)[...], on: device)
                let size = 8 / parts
                for k in 0..<parts {
                    _ = try trainer.backward(
                        clean.slice(axis: 0, start: k * size, length: size), labels: [],
                        noise: noise.slice(axis: 0, start: k * size, length: size),
                        timesteps: Array(timesteps[k * size..<(k + 1) * size]), lossScale: 1 / Float(parts))
                }
                return try trainer.model.parameters.map { try XCTUnwrap($0.grad).toArray() }
            }
            let whole = try gradients(1), halves = try gradients(2)
            XCTAssertEqual(whole.count, halves.count)
            // All gradients at once: some biases' gradients are zero in exact arithmetic (a group norm
            // follows them), so their own relative error is rounding noise over rounding noise. An
            // ignored loss scale would double the halves' sum: an error of 1.
            XCTAssertLessThan(relativeError(halves.flatMap { $0 }, whole.flatMap { $0 }), 1e-5, "\(device.name)")
        }
    }
}
