// diffusers' learning-rate schedules and EMAModel against Tests/Fixtures/ema_lr.safetensors
// (Tools/reference/ema_lr.py): every schedule over four warmup/length cases, and 40 EMA updates
// with warmup on both backends.
import NN
import Tensor
import TestSupport
import XCTest

final class EMAAndLearningRateTests: XCTestCase {
    func testEverySchedulesLearningRatesEqualGetSchedulers() throws {
        let fixture = try Fixtures.load("ema_lr.safetensors")
        var cases = 0
        for kind in LearningRateSchedule.Kind.allCases {
            for (warmup, total) in [(0, 10), (3, 12), (5, 5), (4, 30)] {
                guard let expected = fixture["lr/\(kind.rawValue)_\(warmup)_\(total)"]?.values else {
                    XCTAssertTrue(kind == .polynomial && warmup == total, "missing \(kind) \(warmup) \(total)")
                    continue
                }
                let schedule = LearningRateSchedule(kind: kind, warmupSteps: warmup, trainingSteps: total)
                let got = (0..<expected.count).map { Float(schedule.learningRate(base: 2e-4, step: $0)) }
                XCTAssertLessThan(relativeError(got, expected), 1e-6, "\(kind) warmup \(warmup) total \(total)")
                cases += 1
            }
        }
        XCTAssertEqual(cases, 23)
    }

    func testEMAEqualsEMAModelWithWarmupOnEveryDevice() throws {
        let fixture = try Fixtures.load("ema_lr.safetensors")
        let shapes = [[5], [2, 3], [4]]
        let decays = try fixture.values("ema/decays")
        try DevicesUnderTest.each { device in
            let parameters = try shapes.indices.map {
                try Tensor(fixture.values("ema/initial_\($0)"), shape: shapes[$0], on: device)
            }
            let ema = try ExponentialMovingAverage(
                parameters: parameters, maxDecay: 0.995, useWarmup: true, inverseGamma: 1, power: 0.75)
            for step in 1...40 {
                for (i, p) in parameters.enumerated() {
                    let all = try fixture.values("ema/params_\(i)")
                    try p.assign(Array(all[(step - 1) * p.count..<step * p.count]))
                }
                try ema.step(parameters)
                XCTAssertEqual(Float(ema.decay(at: step)), decays[step - 1], accuracy: 1e-7, "decay at \(step)")
                guard [1, 2, 10, 40].contains(step) else { continue }
                for i in parameters.indices {
                    let expected = try fixture.values("ema/shadow_\(i)_\(step)")
                    XCTAssertLessThan(
                        relativeError(try ema.shadow[i].toArray(), expected), 1e-6, "\(device.name) step \(step) tensor \(i)")
                }
            }
            // The decay is capped at 0.995 (1 - 40^-0.75 = 0.937 at step 40), and step 1 copies the parameters.
            XCTAssertEqual(ema.decay(at: 100_000), 0.995)
            XCTAssertEqual(ema.decay(at: 1), 0)
            try ema.copy(to: parameters)
            XCTAssertEqual(try parameters[0].toArray(), try ema.shadow[0].toArray())
        }
    }
}

final class GradientClippingTests: XCTestCase {
    func testClippingEqualsClipGradNormOnEveryDevice() throws {
        let fixture = try Fixtures.load("ema_lr.safetensors")
        let shapes = [[7], [3, 4], [5]]
        try DevicesUnderTest.each { device in
            for maxNorm in [Float(0.5), 100] {
                let parameters = try shapes.indices.map { i -> Tensor in
                    let p = try Tensor.zeros(shapes[i], on: device)
                    p.grad = try Tensor(fixture.values("clip/grad_\(i)"), shape: shapes[i], on: device)
                    return p
                }
                let total = try XCTUnwrap(GradientClipping.clipNorm(parameters, maxNorm: maxNorm))
                XCTAssertEqual(try total.item(), try fixture.values("clip/total")[0], accuracy: 1e-6)
                for (i, p) in parameters.enumerated() {
                    let expected = try fixture.values("clip/clipped_\(i)_\(maxNorm == 100 ? "100" : "0.5")")
                    XCTAssertLessThan(relativeError(try p.grad!.toArray(), expected), 1e-6, "\(device.name) \(maxNorm) \(i)")
                }
            }
            // The fixture's gradients are larger than 0.5 in all: clipping changed them.
            XCTAssertGreaterThan(try fixture.values("clip/total")[0], 0.5)
        }
    }
}
