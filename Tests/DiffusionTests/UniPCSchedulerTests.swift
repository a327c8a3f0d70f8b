// UniPCMultistepScheduler.from_config of the tiny DDPM pipeline against diffusers
// (Tests/Fixtures/unipc.safetensors, Tools/reference/unipc.py): bh1 and bh2, orders 1-3, with and
// without lower-order final steps, a disabled corrector, trailing spacing and thresholding; the
// timesteps and sigmas, then diffusers' whole loop from the same noise on every backend.
import DiffuseCore
import DiffusionPipelines
import Foundation
import Tensor
import TestSupport
import XCTest

@testable import DiffusionModels

final class UniPCSchedulerTests: XCTestCase {
    static func cases(_ base: SchedulerConfig) -> [(name: String, steps: Int, config: SchedulerConfig, options: UniPCOptions)] {
        func options(_ change: (inout UniPCOptions) -> Void) -> UniPCOptions {
            var o = UniPCOptions()
            change(&o)
            return o
        }
        func config(_ change: (inout SchedulerConfig) -> Void) -> SchedulerConfig {
            var c = base
            change(&c)
            return c
        }
        return [
            ("bh2_2_8", 8, base, UniPCOptions()),
            ("bh2_2_20", 20, base, UniPCOptions()),
            // bh1 ends at sigma_min: with a zero final sigma diffusers returns NaN (B(h) = -h = -inf
            // times a zero residual), where this version returns the data prediction.
            (
                "bh1_3_12", 12, base,
                options {
                    $0.solverType = .bh1; $0.solverOrder = 3; $0.finalSigmas = .sigmaMin
                }
            ),
            ("bh2_3_16", 16, base, options { $0.solverOrder = 3 }),
            ("bh2_1_6", 6, base, options { $0.solverOrder = 1 }),
            (
                "no_final_3_10", 10, base,
                options {
                    $0.solverOrder = 3; $0.lowerOrderFinal = false; $0.finalSigmas = .sigmaMin
                }
            ),
            ("corrector_off_10", 10, base, options { $0.disableCorrector = [0, 3] }),
            ("trailing_9", 9, config { $0.timestepSpacing = .trailing }, UniPCOptions()),
            (
                "threshold_10", 10,
                config {
                    $0.thresholding = true; $0.sampleMaxValue = 1.2
                }, UniPCOptions()
            ),
        ]
    }

    func testSchedulesAndLoopsMatchDiffusersOnEveryBackend() throws {
        let f = try Fixtures.load("unipc.safetensors")
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
            for c in UniPCSchedulerTests.cases(pipeline.schedulerConfig) {
                let unipc = try UniPCMultistepScheduler(config: c.config, options: c.options, steps: c.steps)
                XCTAssertEqual(unipc.timesteps.map(Float.init), try f.values("\(c.name).timesteps"), c.name)
                assertClose(unipc.sigmas, try f.values("\(c.name).sigmas"), tolerance: 1e-6, "sigmas \(c.name)")
                var sampler = UNetSampler(kind: .unipc, steps: c.steps, eta: 0, config: c.config)
                sampler.unipcOptions = c.options
                let result = try sampler.sample(
                    unet: pipeline.unet, initialNoise: try noise.tensor("sample", on: device), generator: RandomGenerator(seed: 0)
                )
                assertClose(
                    try result.sample.toArray(), try f.values("\(c.name).sample"), tolerance: 1e-5, "\(device.name) \(c.name)")
            }
        }
    }

    func testTheSmallSystemSolver() {
        // 2x + y = 5, x + 3y = 10 (a pivot swap on the way for the second system).
        let x = UniPCMultistepScheduler.solve([[2, 1], [1, 3]], [5, 10])
        XCTAssertEqual(x[0], 1, accuracy: 1e-6)
        XCTAssertEqual(x[1], 3, accuracy: 1e-6)
        let y = UniPCMultistepScheduler.solve([[0, 1, 0], [1, 0, 0], [0, 0, 2]], [2, 3, 8])
        XCTAssertEqual(y, [3, 2, 4])
    }
}
