// DPMSolverMultistepScheduler.from_config of the tiny DDPM pipeline against diffusers
// (Tests/Fixtures/dpm_solver.safetensors, Tools/reference/dpm_solver.py), over 14 option sets:
// orders 1-3, midpoint and heun, lower-order and Euler final steps, zero and sigma_min final
// sigmas, the three timestep spacings, a clipped lambda, Karras sigmas, thresholding and the SDE
// variant. Timesteps and sigmas, then diffusers' whole loop from the same noise on every backend
// (the SDE loop with diffusers' noise given per step).
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor
import TestSupport
import XCTest

final class DPMSolverTests: XCTestCase {
    /// The fixture's cases: steps, the scheduler config from_config saw, and DPM-Solver's own options.
    static func cases(_ base: SchedulerConfig) -> [(name: String, steps: Int, config: SchedulerConfig, options: DPMSolverOptions)]
    {
        func options(_ change: (inout DPMSolverOptions) -> Void) -> DPMSolverOptions {
            var o = DPMSolverOptions()
            change(&o)
            return o
        }
        func config(_ change: (inout SchedulerConfig) -> Void) -> SchedulerConfig {
            var c = base
            change(&c)
            return c
        }
        return [
            ("2m_7", 7, base, DPMSolverOptions()),
            ("2m_20", 20, base, DPMSolverOptions()),
            ("3m_20", 20, base, options { $0.solverOrder = 3 }),
            ("1_10", 10, base, options { $0.solverOrder = 1 }),
            ("heun_10", 10, base, options { $0.solverType = .heun }),
            (
                "3m_sigma_min_16", 16, base,
                options {
                    $0.solverOrder = 3; $0.finalSigmas = .sigmaMin
                }
            ),
            ("euler_final_16", 16, base, options { $0.eulerAtFinal = true }),
            ("linspace_12", 12, config { $0.timestepSpacing = .linspace }, DPMSolverOptions()),
            ("trailing_12", 12, config { $0.timestepSpacing = .trailing }, DPMSolverOptions()),
            ("clipped_12", 12, base, options { $0.lambdaMinClipped = -5.1 }),
            ("karras_10", 10, config { $0.betaSchedule = .linear }, options { $0.useKarrasSigmas = true }),
            (
                "threshold_3m_9", 9,
                config {
                    $0.thresholding = true; $0.sampleMaxValue = 1.2
                },
                options { $0.solverOrder = 3 }
            ),
            ("sde_10", 10, base, options { $0.algorithm = .sdeDPMSolverPlusPlus }),
            (
                "sde_3m_12", 12, base,
                options {
                    $0.algorithm = .sdeDPMSolverPlusPlus; $0.solverOrder = 3; $0.solverType = .heun
                }
            ),
        ]
    }

    func pipeline(_ device: Device) throws -> DDPMPipelineFolder {
        try DDPMPipelineFolder.load(Fixtures.directory.appendingPathComponent("tiny-ddpm"), device: device)
    }

    func testSchedulesMatchDiffusers() throws {
        let f = try Fixtures.load("dpm_solver.safetensors")
        for c in DPMSolverTests.cases(try pipeline(DevicesUnderTest.current).schedulerConfig) {
            let dpm = try DPMSolverMultistepScheduler(config: c.config, options: c.options, steps: c.steps)
            XCTAssertEqual(dpm.timesteps.map(Float.init), try f.values("\(c.name).timesteps"), c.name)
            assertClose(dpm.sigmas, try f.values("\(c.name).sigmas"), tolerance: 1e-6, "sigmas \(c.name)")
        }
    }

    func testSamplingLoopsMatchDiffusersOnEveryBackend() throws {
        let f = try Fixtures.load("dpm_solver.safetensors")
        let noise = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try pipeline(device)
            for c in DPMSolverTests.cases(pipeline.schedulerConfig) where !c.name.hasPrefix("sde") {
                var sampler = UNetSampler(kind: .dpmPlusPlus2M, steps: c.steps, eta: 0, config: c.config)
                sampler.dpmOptions = c.options
                let result = try sampler.sample(
                    unet: pipeline.unet, initialNoise: try noise.tensor("sample"), generator: RandomGenerator(seed: 0))
                assertClose(
                    try result.sample.toArray(), try f.values("\(c.name).sample"), tolerance: 1e-5,
                    "\(device.name) \(c.name)")
            }
        }
    }

    func testSDEStepsMatchDiffusersWithItsNoise() throws {
        let f = try Fixtures.load("dpm_solver.safetensors")
        let start = try Fixtures.load("tiny-ddpm-noise.safetensors")
        try DevicesUnderTest.each { device in
            let pipeline = try pipeline(device)
            for c in DPMSolverTests.cases(pipeline.schedulerConfig) where c.name.hasPrefix("sde") {
                let dpm = try DPMSolverMultistepScheduler(config: c.config, options: c.options, steps: c.steps)
                let draws = try f.tensor("\(c.name).noise", on: device)
                var x = try start.tensor("sample", on: device)
                var state = DPMSolverMultistepScheduler.State()
                try GradMode.withoutGradients {
                    for (i, t) in dpm.timesteps.enumerated() {
                        let output = try pipeline.unet(x, timesteps: Array(repeating: t, count: x.shape[0]))
                        let noise = try draws.reshaped([draws.shape[0], x.count]).slice(axis: 0, start: i, length: 1)
                            .reshaped(x.shape)
                        x = try dpm.step(modelOutput: output, step: i, sample: x, noise: noise, state: &state).previous
                    }
                }
                assertClose(try x.toArray(), try f.values("\(c.name).sample"), tolerance: 1e-5, "\(device.name) \(c.name)")
            }
        }
    }

    /// A pipeline that ships a DPM-Solver scheduler (save_config's file, Tests/Fixtures/dpm-scheduler,
    /// with solver_order 3, heun and trailing spacing, and -Infinity for lambda_min_clipped as Python
    /// writes it) samples with it as saved; one whose file asks for what this version cannot do
    /// fails to load, naming the file and the key.
    func testAFolderWithADPMSolverSchedulerSamplesAsSaved() throws {
        let folder = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("pipeline")
        try FileManager.default.copyItem(at: Fixtures.directory.appendingPathComponent("tiny-ddpm"), to: copy)
        let config = copy.appendingPathComponent("scheduler/scheduler_config.json")
        try FileManager.default.removeItem(at: config)
        try FileManager.default.copyItem(
            at: Fixtures.directory.appendingPathComponent("dpm-scheduler/scheduler_config.json"), to: config)
        let pipeline = try DDPMPipeline.load(copy, device: DevicesUnderTest.current)
        var request = SampleRequest()
        request.steps = 12
        request.initialNoise = Fixtures.directory.appendingPathComponent("tiny-ddpm-noise.safetensors")
        let output = try pipeline.sample(request)
        let expected = try Fixtures.load("dpm_solver.safetensors").values("folder_3m_heun_12.sample")
        assertClose(try output.sample.toArray(), expected, tolerance: 1e-5, "as saved")

        let text = try String(contentsOf: config, encoding: .utf8)
        try text.replacingOccurrences(of: "\"use_lu_lambdas\": false", with: "\"use_lu_lambdas\": true")
            .write(to: config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DDPMPipeline.load(copy, device: DevicesUnderTest.current)) {
            XCTAssertTrue("\($0)".contains("scheduler_config.json use_lu_lambdas=true"), "\($0)")
        }
    }

    func testOptionsItCannotHonourAreRefusedByName() throws {
        var cosine = SchedulerConfig()
        cosine.betaSchedule = .squaredCosCapV2
        var karras = DPMSolverOptions()
        karras.useKarrasSigmas = true
        XCTAssertThrowsError(try DPMSolverMultistepScheduler(config: cosine, options: karras, steps: 10)) {
            XCTAssertTrue("\($0)".contains("use_karras_sigmas"), "\($0)")
        }
        var learned = SchedulerConfig()
        learned.varianceType = .learnedRange
        XCTAssertThrowsError(try DPMSolverMultistepScheduler(config: learned, steps: 10)) {
            XCTAssertTrue("\($0)".contains("learned_range"), "\($0)")
        }
        var fourth = DPMSolverOptions()
        fourth.solverOrder = 4
        XCTAssertThrowsError(try DPMSolverMultistepScheduler(config: SchedulerConfig(), options: fourth, steps: 10)) {
            XCTAssertTrue("\($0)".contains("solver_order"), "\($0)")
        }
    }
}
