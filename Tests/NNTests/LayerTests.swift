// Layers: shapes, PyTorch's initialisation bounds, state-dict names and loading checks.
import CPUBackend
import NN
import Tensor
import XCTest

final class LayerTests: XCTestCase {
    let device = CPUDevice.shared

    func testConvolutionInitialisationFollowsPyTorch() throws {
        let conv = try Conv2d(
            inChannels: 4, outChannels: 8, kernelSize: 3, padding: 1,
            generator: RandomGenerator(seed: 1), device: device)
        let bound = 1 / Float(4 * 9).squareRoot()
        let weights = try conv.weight.toArray()
        XCTAssertTrue(weights.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(weights.map { abs($0) }.max()!, bound * 0.9)
        XCTAssertEqual(conv.namedParameters().map(\.name), ["weight", "bias"])
        let y = try conv(Tensor.zeros([2, 4, 5, 5], on: device))
        XCTAssertEqual(y.shape, [2, 8, 5, 5])
    }

    func testLoadRejectsMissingAndMisshapenWeights() throws {
        let linear = try Linear(inFeatures: 3, outFeatures: 2, generator: RandomGenerator(seed: 2), device: device)
        XCTAssertThrowsError(try linear.load(state: ["weight": ([2, 3], Array(repeating: 0, count: 6))], source: "t")) {
            XCTAssertTrue("\($0)".contains("bias is missing"))
        }
        XCTAssertThrowsError(
            try linear.load(
                state: [
                    "weight": ([3, 2], Array(repeating: 0, count: 6)),
                    "bias": ([2], [0, 0]),
                ], source: "t")
        ) {
            XCTAssertTrue("\($0)".contains("[3, 2]"))
        }
        try linear.load(state: ["weight": ([2, 3], [1, 0, 0, 0, 1, 0]), "bias": ([2], [5, 6])], source: "t")
        XCTAssertEqual(try linear(Tensor([1, 2, 3], shape: [1, 3], on: device)).toArray(), [6, 8])
    }

    func testGroupNormNormalises() throws {
        let norm = try GroupNorm(groups: 2, channels: 4, device: device)
        let x = try Tensor.uniform([3, 4, 5, 5], low: -3, high: 7, generator: RandomGenerator(seed: 3), on: device)
        let y = try norm(x).toArray()
        for group in 0..<6 {
            let slice = y[(group * 50)..<((group + 1) * 50)]
            let mean = slice.reduce(0, +) / 50
            XCTAssertEqual(mean, 0, accuracy: 1e-4)
            XCTAssertEqual(slice.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 50, 1, accuracy: 1e-3)
        }
        XCTAssertThrowsError(try GroupNorm(groups: 3, channels: 4, device: device))
    }
}
