// EulerDiscreteScheduler.from_config of the tiny DDPM pipeline against diffusers
// (Tests/Fixtures/euler.safetensors, Tools/reference/euler.py): its timesteps, sigmas and initial
// noise scale, and diffusers' whole loop (scale_model_input, UNet, step) from the same noise, on
// every backend.
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor
import TestSupport
import XCTest

final class EulerSchedulerTests: XCTestCase {
    func testScheduleMatchesDiffusers() throws {
        let f = try Fixtures.load("euler.safetensors")
        let pipeline = try DDPMPipelineFolder.load(
            Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: DevicesUnderTest.current)
        for steps in [7, 20] {
            let euler = try EulerDiscreteScheduler(config: pipeline.schedulerConfig, steps: steps)
            XCTAssertEqual(euler.timesteps.map(Float.init), try f.values("euler\(steps).timesteps"))
            assertClose(euler.sigmas, try f.values("euler\(steps).sigmas"), tolerance: 1e-6, "sigmas \(steps)")
            XCTAssertEqual(euler.initNoiseSigma, try f.values("euler\(steps).init_noise_sigma")[0], accuracy: 1e-4)
        }
    }

    func testSamplingLoopMatchesDiffusersOnEveryBackend() throws {
        let f = try Fixtures.load("euler.safetensors")
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
            for steps in [7, 20] {
                let sampler = UNetSampler(kind: .euler, steps: steps, eta: 0, config: pipeline.schedulerConfig)
                let result = try sampler.sample(
                    unet: pipeline.unet, initialNoise: try noise.tensor("sample"), generator: RandomGenerator(seed: 0))
                assertClose(
                    try result.sample.toArray(), try f.values("euler\(steps).sample"), tolerance: 1e-5,
                    "\(device.name) Euler \(steps) steps")
            }
        }
    }

    /// linspace spacing (Euler's own default) puts the steps between training timesteps: the model
    /// embeds them as floats, as diffusers' UNet does.
    func testLinspaceTimestepsBetweenTrainingStepsMatchDiffusers() throws {
        let f = try Fixtures.load("euler.safetensors")
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
            var config = pipeline.schedulerConfig
            config.timestepSpacing = .linspace
            let euler = try EulerDiscreteScheduler(config: config, steps: 9)
            XCTAssertEqual(euler.timestepValues, try f.values("linspace9.timesteps"))
            assertClose(euler.sigmas, try f.values("linspace9.sigmas"), tolerance: 1e-6, "linspace sigmas")
            XCTAssertEqual(euler.initNoiseSigma, try f.values("linspace9.init_noise_sigma")[0], accuracy: 1e-4)
            let sampler = UNetSampler(kind: .euler, steps: 9, eta: 0, config: config)
            let result = try sampler.sample(
                unet: pipeline.unet, initialNoise: try noise.tensor("sample", on: device), generator: RandomGenerator(seed: 0))
            assertClose(try result.sample.toArray(), try f.values("linspace9.sample"), tolerance: 1e-5, "\(device.name) linspace")
        }
    }
}

/// EulerAncestralDiscreteScheduler.from_config of the tiny DDPM pipeline against diffusers
/// (Tests/Fixtures/euler_ancestral.safetensors, Tools/reference/euler_ancestral.py): its schedule,
/// and diffusers' loop step by step with the noise diffusers drew, on every backend.
final class EulerAncestralSchedulerTests: XCTestCase {
    func testStepsWithDiffusersNoiseMatchItsLoopOnEveryBackend() throws {
        let f = try Fixtures.load("euler_ancestral.safetensors")
        let start = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
            for (name, steps, spacing) in [("leading8", 8, TimestepSpacing.leading), ("trailing6", 6, .trailing)] {
                var config = pipeline.schedulerConfig
                config.timestepSpacing = spacing
                let scheduler = try EulerAncestralDiscreteScheduler(config: config, steps: steps)
                XCTAssertEqual(scheduler.timesteps.map(Float.init), try f.values("\(name).timesteps"), name)
                assertClose(scheduler.sigmas, try f.values("\(name).sigmas"), tolerance: 1e-6, "sigmas \(name)")
                let initial = try f.values("\(name).init_noise_sigma")[0]
                XCTAssertEqual(scheduler.euler.initNoiseSigma, initial, accuracy: 1e-4 * initial)
                let draws = try f.tensor("\(name).noise", on: device)
                var x = try start.tensor("sample", on: device).affine(scale: scheduler.euler.initNoiseSigma, shift: 0)
                try GradMode.withoutGradients {
                    for (i, t) in scheduler.timesteps.enumerated() {
                        let input = try x.affine(scale: scheduler.euler.inputScale(step: i), shift: 0)
                        let output = try pipeline.unet(input, timesteps: Array(repeating: t, count: x.shape[0]))
                        let noise = try draws.reshaped([steps, x.count]).slice(axis: 0, start: i, length: 1).reshaped(x.shape)
                        x = try scheduler.step(modelOutput: output, step: i, sample: x, noise: noise).previous
                    }
                }
                assertClose(try x.toArray(), try f.values("\(name).sample"), tolerance: 1e-5, "\(device.name) \(name)")
            }
        }
    }

    func testTheSamplerDrawsItsNoiseFromTheSeed() throws {
        let pipeline = try DDPMPipelineFolder.load(
            Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: DevicesUnderTest.current)
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors").tensor("sample")
        let sampler = UNetSampler(kind: .eulerAncestral, steps: 6, eta: 0, config: pipeline.schedulerConfig)
        func run(_ seed: UInt64) throws -> [Float] {
            try sampler.sample(unet: pipeline.unet, initialNoise: noise, generator: RandomGenerator(seed: seed)).sample.toArray()
        }
        let (a, again, other) = (try run(1), try run(1), try run(2))
        XCTAssertEqual(a, again)
        XCTAssertGreaterThan(relativeError(a, other, floor: 1e-6), 1e-3, "the ancestral noise must come from the seed")
    }
}
