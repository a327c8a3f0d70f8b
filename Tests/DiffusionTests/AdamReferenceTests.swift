// Adam and AdamW against torch.optim (Tests/Fixtures/adam.safetensors, Tools/reference/adam.py).
import NN
import Tensor
import TestSupport
import XCTest

final class AdamReferenceTests: XCTestCase {
    func testStepsMatchTorchOptim() throws {
        let fixture = try Fixtures.load("adam.safetensors")
        let variants: [(String, Adam.Variant, Double, Double?, Double, Double, Double)] = [
            ("adam", .adam, 1e-2, nil, 0.9, 0.999, 1e-8),
            ("adam_l2", .adam, 1e-2, 0.1, 0.9, 0.999, 1e-8),
            ("adamw", .adamw, 1e-2, nil, 0.9, 0.999, 1e-8),
            ("adamw_wd", .adamw, 4e-4, 0.3, 0.8, 0.95, 1e-6),
        ]
        try DevicesUnderTest.each { device in
            for (name, variant, lr, decay, beta1, beta2, eps) in variants {
                let params = try (0..<2).map { try fixture.tensor("init.p\($0)", requiresGrad: true) }
                let optimizer = try Adam(
                    parameters: params, learningRate: lr, beta1: beta1, beta2: beta2, epsilon: eps,
                    weightDecay: decay, variant: variant)
                for step in 0..<6 {
                    for (n, p) in params.enumerated() { p.grad = try fixture.tensor("grad.s\(step).p\(n)") }
                    try optimizer.update()
                    for (n, p) in params.enumerated() {
                        XCTAssertLessThan(
                            relativeError(try p.toArray(), try fixture.values("\(name).s\(step).p\(n)")), 2e-6,
                            "\(name) step \(step) parameter \(n) on \(device.name)")
                    }
                }
            }
        }
    }

    func testDefaultsAreTorchDefaults() throws {
        XCTAssertEqual(try Adam(parameters: []).weightDecay, 0)
        XCTAssertEqual(try Adam(parameters: [], variant: .adamw).weightDecay, 0.01)
        XCTAssertEqual(try Adam(parameters: []).learningRate, 1e-3)
    }
}
