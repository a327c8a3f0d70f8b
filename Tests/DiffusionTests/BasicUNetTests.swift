// BasicUNet against the tutorial's PyTorch module: size, names, forward output and every gradient.
import CPUBackend
import DataIO
import DiffusionModels
import DiffusionPipelines
import NN
import Tensor
import TestSupport
import XCTest

final class BasicUNetTests: XCTestCase {
    func testParameterCountAndNamesMatchTheSeed() throws {
        let model = try BasicUNet(generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
        XCTAssertEqual(model.parameterCount, 309_057)
        let names = model.namedParameters().map(\.name)
        XCTAssertEqual(names.first, "down_layers.0.weight")
        XCTAssertEqual(names.last, "up_layers.2.bias")
        XCTAssertEqual(
            Set(names),
            Set(
                (0..<3).flatMap { i in
                    ["down_layers.\(i).weight", "down_layers.\(i).bias", "up_layers.\(i).weight", "up_layers.\(i).bias"]
                }))
    }

    func testForwardAndGradientsMatchPyTorch() throws {
        let fixture = try Fixtures.load("basic_unet.safetensors")
        try DevicesUnderTest.each { device in
            let model = try BasicUNet(generator: RandomGenerator(seed: 0), device: device)
            try model.load(state: fixture.mapValues { ($0.shape, $0.values) }, source: "basic_unet.safetensors")
            let output = try model(fixture.tensor("input"))
            XCTAssertLessThan(relativeError(try output.toArray(), try fixture.values("output")), 1e-4, device.name)
            let loss = try Tensor.mseLoss(output, fixture.tensor("target"))
            XCTAssertEqual(try loss.item(), try fixture.values("loss")[0], accuracy: 1e-6, device.name)
            try loss.backward()
            for (name, parameter) in model.namedParameters() {
                let grad = try XCTUnwrap(parameter.grad, "no gradient for \(name)")
                XCTAssertLessThan(
                    relativeError(try grad.toArray(), try fixture.values("grad." + name)), 1e-4,
                    "\(name) on \(device.name)")
            }
        }
    }
}
