// Single ops on every backend against PyTorch (Tests/Fixtures/ops.safetensors, Tools/reference/ops.py).
import DataIO
import Tensor
import TestSupport
import XCTest

final class ReferenceOpsTests: XCTestCase {
    /// Runs `f` on the fixture's inputs on each backend, then compares the output and the gradients of sum(out * w).
    func check(_ name: String, inputs: [String], tolerance: Float = 1e-5, _ f: ([Tensor]) throws -> Tensor) throws {
        let fixture = try Fixtures.load("ops.safetensors")
        try DevicesUnderTest.each { device in
            let leaves = try inputs.map { try fixture.tensor("\(name).in.\($0)", requiresGrad: true) }
            let out = try f(leaves)
            XCTAssertLessThan(
                relativeError(try out.toArray(), try fixture.values("\(name).out")), tolerance,
                "\(name) forward on \(device.name)")
            let w = try fixture.tensor("\(name).w")
            try (out * w.reshaped(out.shape)).sum().backward()
            for (input, leaf) in zip(inputs, leaves) {
                let grad = try XCTUnwrap(leaf.grad, "\(name): no gradient for \(input)")
                XCTAssertLessThan(
                    relativeError(try grad.toArray(), try fixture.values("\(name).grad.\(input)")), tolerance,
                    "\(name) gradient of \(input) on \(device.name)")
            }
        }
    }

    func testConvolution() throws {
        try check("conv", inputs: ["x", "w", "b"]) { try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1) }
        try check("conv1x1", inputs: ["x", "w", "b"]) { try $0[0].conv2d(weight: $0[1], bias: $0[2]) }
    }

    func testGroupNorm() throws {
        try check("group_norm", inputs: ["x", "w", "b"]) {
            try $0[0].groupNorm(groups: 3, gamma: $0[1], beta: $0[2], epsilon: 1e-6)
        }
    }

    func testAttention() throws {
        try check("attention", inputs: ["q", "k", "v"]) {
            try Tensor.attention(query: $0[0], key: $0[1], value: $0[2], scale: 1 / Float(8).squareRoot())
        }
    }

    func testPoolingUpsamplingActivations() throws {
        try check("max_pool", inputs: ["x"]) { try $0[0].maxPool2d(kernel: 2) }
        try check("upsample", inputs: ["x"]) { try $0[0].upsampleNearest(factor: 2) }
        try check("silu", inputs: ["x"]) { try $0[0].silu() }
        try check("softmax", inputs: ["x"]) { try $0[0].softmax() }
    }

    func testLinearBroadcastAndLoss() throws {
        try check("linear", inputs: ["x", "w", "b"]) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
        try check("broadcast_mul", inputs: ["a", "b"]) { try $0[0] * $0[1] }
        try check("mse", inputs: ["a", "b"]) { try Tensor.mseLoss($0[0], $0[1]) }
    }
}
