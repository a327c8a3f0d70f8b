// DDPM and DDIM steps on the device against diffusers' step outputs (Tests/Fixtures/schedulers.safetensors).
import DataIO
import Foundation
import Tensor
import TestSupport
import XCTest

@testable import DiffusionModels

final class SchedulerStepTests: XCTestCase {
    func testDDPMStepEveryVarianceAndPredictionType() throws {
        let f = try Fixtures.load("schedulers.safetensors")
        try DevicesUnderTest.each { device in
            for variance in ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"] {
                for prediction in ["epsilon", "sample", "v_prediction"] {
                    var config = SchedulerConfig()
                    config.varianceType = try XCTUnwrap(VarianceType(rawValue: variance))
                    config.predictionType = try XCTUnwrap(PredictionType(rawValue: prediction))
                    let scheduler = try DDPMScheduler(config: config)
                    let timesteps = try scheduler.timesteps(steps: 50)
                    XCTAssertEqual(timesteps[10], 780)
                    let out = try scheduler.step(
                        modelOutput: f.tensor("step.output"), timestep: 780,
                        previousTimestep: timesteps[11], sample: f.tensor("step.sample"),
                        noise: f.tensor("step.noise"))
                    let name = "ddpm.\(variance).\(prediction)", on = "\(name) on \(device.name)"
                    XCTAssertLessThan(relativeError(try out.original.toArray(), try f.values(name + ".x0")), 1e-6, on)
                    if variance == "fixed_large_log" {
                        // diffusers takes sqrt(log(beta)) here: NaN, and so do we.
                        XCTAssertTrue(try f.values(name + ".prev").allSatisfy(\.isNaN))
                        XCTAssertTrue(try out.previous.toArray().allSatisfy(\.isNaN), on)
                    } else {
                        XCTAssertLessThan(relativeError(try out.previous.toArray(), try f.values(name + ".prev")), 1e-6, on)
                    }
                }
            }
            let scheduler = try DDPMScheduler()
            let last = try scheduler.step(
                modelOutput: f.tensor("step.output"), timestep: 0, previousTimestep: -1,
                sample: f.tensor("step.sample"), noise: nil)
            XCTAssertLessThan(relativeError(try last.previous.toArray(), try f.values("ddpm.last.prev")), 1e-6, device.name)
            XCTAssertLessThan(relativeError(try last.original.toArray(), try f.values("ddpm.last.x0")), 1e-6, device.name)
        }
    }

    func testDDIMStepCases() throws {
        let f = try Fixtures.load("schedulers.safetensors")
        var config = SchedulerConfig()
        config.className = "DDIMScheduler"
        let cases: [(String, (inout SchedulerConfig) -> Void, Int, Float, Bool)] = [
            ("eta0", { _ in }, 780, 0, false),
            ("eta07", { _ in }, 780, 0.7, false),
            ("clipped_output", { _ in }, 780, 0.5, true),
            ("sample_pred", { $0.predictionType = .sample }, 500, 0, false),
            (
                "v_pred",
                {
                    $0.predictionType = .velocity; $0.clipSample = false
                }, 500, 0.3, false
            ),
            ("last_no_alpha_one", { $0.setAlphaToOne = false }, 0, 0, false),
            (
                "scaled_linear_trailing",
                {
                    $0.betaSchedule = .scaledLinear; $0.betaStart = 0.00085; $0.betaEnd = 0.012
                    $0.timestepSpacing = .trailing; $0.clipSample = false
                }, 999, 0, false
            ),
        ]
        try DevicesUnderTest.each { device in
            for (name, adjust, t, eta, clipped) in cases {
                var c = config
                adjust(&c)
                let scheduler = try DDIMScheduler(config: c)
                let out = try scheduler.step(
                    modelOutput: f.tensor("step.output"), timestep: t, steps: 50,
                    sample: f.tensor("step.sample"), eta: eta, useClippedModelOutput: clipped,
                    noise: f.tensor("step.noise"))
                XCTAssertLessThan(
                    relativeError(try out.previous.toArray(), try f.values("ddim.\(name).prev")), 1e-6,
                    "\(name) on \(device.name)")
                XCTAssertLessThan(
                    relativeError(try out.original.toArray(), try f.values("ddim.\(name).x0")), 1e-6,
                    "\(name) on \(device.name)")
            }
        }
    }

    /// Dynamic thresholding: DDPM for every prediction type, DDIM with and without
    /// use_clipped_model_output and with v-prediction (Tools/reference/schedulers.py, THRESHOLD).
    func testDynamicThresholdingMatchesDiffusers() throws {
        let f = try Fixtures.load("schedulers.safetensors")
        func thresholding(_ c: inout SchedulerConfig) {
            c.thresholding = true
            c.dynamicThresholdingRatio = 0.9
            c.sampleMaxValue = 2.5
        }
        try DevicesUnderTest.each { device in
            let output = try f.tensor("step.output") * 3
            for prediction in ["epsilon", "sample", "v_prediction"] {
                var config = SchedulerConfig()
                config.predictionType = try XCTUnwrap(PredictionType(rawValue: prediction))
                thresholding(&config)
                let scheduler = try DDPMScheduler(config: config)
                let out = try scheduler.step(
                    modelOutput: output, timestep: 780, previousTimestep: 760,
                    sample: f.tensor("step.sample"), noise: f.tensor("step.noise"))
                let name = "ddpm_threshold.\(prediction)"
                XCTAssertLessThan(
                    relativeError(try out.original.toArray(), try f.values(name + ".x0")), 1e-6,
                    "\(name) on \(device.name)")
                XCTAssertLessThan(
                    relativeError(try out.previous.toArray(), try f.values(name + ".prev")), 1e-6,
                    "\(name) on \(device.name)")
            }
            for (name, prediction, t, eta, clipped) in [
                ("threshold", "epsilon", 780, Float(0.5), false),
                ("threshold_clipped", "epsilon", 780, 0.5, true),
                ("threshold_v", "v_prediction", 500, 0, false),
            ] {
                var config = SchedulerConfig()
                config.className = "DDIMScheduler"
                config.predictionType = try XCTUnwrap(PredictionType(rawValue: prediction))
                thresholding(&config)
                let out = try DDIMScheduler(config: config).step(
                    modelOutput: f.tensor("step.output"), timestep: t, steps: 50, sample: f.tensor("step.sample"),
                    eta: eta, useClippedModelOutput: clipped, noise: f.tensor("step.noise"))
                XCTAssertLessThan(
                    relativeError(try out.original.toArray(), try f.values("ddim.\(name).x0")), 1e-6,
                    "\(name) on \(device.name)")
                XCTAssertLessThan(
                    relativeError(try out.previous.toArray(), try f.values("ddim.\(name).prev")), 1e-6,
                    "\(name) on \(device.name)")
            }
        }
        // torch.quantile's linear interpolation.
        XCTAssertEqual(SchedulerConfig.quantile([4, 1, 3, 2], 0.5), 2.5)
        XCTAssertEqual(SchedulerConfig.quantile([4, 1, 3, 2], 1), 4)
        XCTAssertEqual(SchedulerConfig.quantile([7], 0.995), 7)
    }

    func testUnsupportedOptionsAreClearErrors() throws {
        var config = SchedulerConfig()
        config.thresholding = true
        config.sampleMaxValue = 0.5
        XCTAssertThrowsError(try DDPMScheduler(config: config).stepGeometry(timestep: 10, previousTimestep: 9)) {
            XCTAssertTrue("\($0)".contains("sample_max_value"))
        }
        config = SchedulerConfig()
        config.varianceType = .learned
        XCTAssertThrowsError(try DDPMScheduler(config: config).stepGeometry(timestep: 10, previousTimestep: 9)) {
            XCTAssertTrue("\($0)".contains("learned"))
        }
    }
}
