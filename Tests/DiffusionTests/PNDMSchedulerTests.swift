// PNDMScheduler.from_config of the tiny DDPM pipeline against diffusers (Tests/Fixtures/pndm.safetensors,
// Tools/reference/pndm.py): Runge-Kutta warm-up or not, three timestep spacings, both final
// alphas; every model call's timestep, then diffusers' whole loop from the same noise on every backend.
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor
import TestSupport
import XCTest

final class PNDMSchedulerTests: XCTestCase {
    static func cases(_ base: SchedulerConfig) -> [(name: String, steps: Int, config: SchedulerConfig, skip: Bool)] {
        func config(_ change: (inout SchedulerConfig) -> Void) -> SchedulerConfig {
            var c = base
            change(&c)
            return c
        }
        return [
            ("prk_10", 10, base, false), ("prk_25", 25, base, false), ("skip_10", 10, base, true),
            ("skip_trailing_12", 12, config { $0.timestepSpacing = .trailing }, true),
            ("prk_linspace_8", 8, config { $0.timestepSpacing = .linspace }, false),
            (
                "alpha_one_6", 6,
                config {
                    $0.setAlphaToOne = true; $0.setAlphaToOneInFile = true
                }, false
            ),
        ]
    }

    func testTimestepsAndLoopsMatchDiffusersOnEveryBackend() throws {
        let f = try Fixtures.load("pndm.safetensors")
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
            // A DDPM config has no set_alpha_to_one: PNDM's own default (False) applies.
            XCTAssertFalse(pipeline.schedulerConfig.setAlphaToOneInFile)
            for c in PNDMSchedulerTests.cases(pipeline.schedulerConfig) {
                let pndm = try PNDMScheduler(config: c.config, steps: c.steps, skipPRKSteps: c.skip)
                XCTAssertEqual(pndm.timesteps.map(Float.init), try f.values("\(c.name).timesteps"), c.name)
                var sampler = UNetSampler(kind: .pndm, steps: c.steps, eta: 0, config: c.config)
                sampler.skipPRKSteps = c.skip
                let result = try sampler.sample(
                    unet: pipeline.unet, initialNoise: try noise.tensor("sample", on: device), generator: RandomGenerator(seed: 0)
                )
                assertClose(
                    try result.sample.toArray(), try f.values("\(c.name).sample"), tolerance: 1e-5, "\(device.name) \(c.name)")
            }
        }
    }

    func testWhatItCannotSampleIsRefused() throws {
        var sample = SchedulerConfig()
        sample.predictionType = .sample
        XCTAssertThrowsError(try PNDMScheduler(config: sample, steps: 10)) { XCTAssertTrue("\($0)".contains("sample")) }
        XCTAssertThrowsError(try PNDMScheduler(config: SchedulerConfig(), steps: 3)) {
            XCTAssertTrue("\($0)".contains("between 4 and"), "\($0)")
        }
    }
}
