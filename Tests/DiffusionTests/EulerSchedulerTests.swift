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

    /// linspace spacing puts Euler's steps between training timesteps, which the UNet here cannot
    /// take: refused by name rather than rounded.
    func testFractionalTimestepsAreRefused() throws {
        var config = SchedulerConfig()
        config.timestepSpacing = .linspace
        XCTAssertThrowsError(try EulerDiscreteScheduler(config: config, steps: 7)) {
            XCTAssertTrue("\($0)".contains("linspace"), "\($0)")
        }
    }
}
