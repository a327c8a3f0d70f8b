// Classifier-free guidance (issue 12 item 3): the label dropout that trains the null class, and
// the guided sampler's output against the formula formed by hand from two separate model calls.
import CPUBackend
import DataIO
import DiffusionModels
import Tensor
import XCTest

@testable import DiffusionPipelines

final class ClassifierFreeGuidanceTests: XCTestCase {
    func testLabelDropoutReplacesTheChosenShareWithTheNullClassFromTheRunsStream() {
        let labels = (0..<20_000).map { $0 % 10 }
        // Nothing can drop: the labels as given and no draw taken, so the stream is unchanged.
        let untouched = RandomGenerator(seed: 1)
        XCTAssertEqual(UNet2DTrainer.dropLabels(labels, probability: 0, nullClass: 10, generator: untouched), labels)
        XCTAssertEqual(UNet2DTrainer.dropLabels(labels, probability: 0.5, nullClass: nil, generator: untouched), labels)
        XCTAssertEqual(untouched.offset, 0)
        XCTAssertEqual(
            UNet2DTrainer.dropLabels(labels, probability: 1, nullClass: 10, generator: RandomGenerator(seed: 1)),
            Array(repeating: 10, count: labels.count))
        let dropped = UNet2DTrainer.dropLabels(labels, probability: 0.1, nullClass: 10, generator: RandomGenerator(seed: 2))
        let share = Double(dropped.filter { $0 == 10 }.count) / Double(labels.count)
        // 20,000 Bernoulli(0.1) draws: the share's standard deviation is 0.0021.
        XCTAssertEqual(share, 0.1, accuracy: 0.01)
        XCTAssertTrue(zip(labels, dropped).allSatisfy { $1 == $0 || $1 == 10 }, "a label is kept or dropped, never changed")
        // The same seed drops the same images (a resumed run replays its stream).
        XCTAssertEqual(
            UNet2DTrainer.dropLabels(labels, probability: 0.1, nullClass: 10, generator: RandomGenerator(seed: 2)), dropped)
    }

    func testGuidedSamplingIsUnconditionalPlusScaleTimesTheDifference() throws {
        var config = UNet2DConfig()
        config.sampleSize = 8
        config.inChannels = 1
        config.outChannels = 1
        config.layersPerBlock = 1
        config.blockOutChannels = [8, 16]
        config.downBlockTypes = [.downBlock2D, .attnDownBlock2D]
        config.upBlockTypes = [.attnUpBlock2D, .upBlock2D]
        config.normNumGroups = 4
        config.attentionHeadDim = 4
        config.numClassEmbeds = 4
        config.nullClassLabel = 3
        let device = CPUDevice.shared
        let unet = try UNet2DModel(config: config, generator: RandomGenerator(seed: 5), device: device)
        unet.train(false)
        let labels = [0, 2, 1]
        let noise = try Tensor.normal([3, 1, 8, 8], generator: RandomGenerator(seed: 6), on: device)
        let steps = 3
        func sample(_ guidance: UNetSampler.Guidance?) throws -> [Float] {
            var sampler = UNetSampler(kind: .ddim, steps: steps, eta: 0, config: SchedulerConfig())
            sampler.guidance = guidance
            return try sampler.sample(
                unet: unet, initialNoise: noise, generator: RandomGenerator(seed: 7), classLabels: labels
            ).sample.toArray()
        }
        // By hand: two separate passes per step, combined as diffusers' pipelines combine them.
        let scale: Float = 2.5
        let ddim = try DDIMScheduler(config: SchedulerConfig())
        var x = noise
        try GradMode.withoutGradients {
            for t in try DDPMScheduler(config: SchedulerConfig()).timesteps(steps: steps) {
                let times = Array(repeating: t, count: 3)
                let unconditional = try unet(x, timesteps: times, classLabels: Array(repeating: 3, count: 3))
                let conditional = try unet(x, timesteps: times, classLabels: labels)
                let guided = try unconditional + (conditional - unconditional).affine(scale: scale, shift: 0)
                x = try ddim.step(modelOutput: guided, timestep: t, steps: steps, sample: x).previous
            }
        }
        let expected = try x.toArray()
        let got = try sample(UNetSampler.Guidance(scale: scale, nullClass: 3))
        let largest = expected.map(abs).max() ?? 1
        XCTAssertLessThan(zip(got, expected).map { abs($0 - $1) }.max()! / largest, 1e-5)
        // Scale 1 is the conditional model alone: exactly the unguided conditional sample.
        XCTAssertEqual(try sample(UNetSampler.Guidance(scale: 1, nullClass: 3)), try sample(nil))
        // And guidance changes the images (the check above is not comparing a sample with itself).
        XCTAssertGreaterThan(zip(got, try sample(nil)).map { abs($0 - $1) }.max()!, 1e-3)
    }
}
