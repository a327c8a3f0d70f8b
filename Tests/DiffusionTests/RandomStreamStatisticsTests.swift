// The random streams a training run draws from, tested for the statistics PyTorch's have (issue 15,
// item 2): Philox normals (torch.randn), timesteps (torch.randint), shuffles (DataLoader's
// randperm) and every layer's initialisation (PyTorch's reset_parameters). Each bound is five
// standard errors of the statistic, so a correct stream fails about once in 3.5 million runs, and
// the streams are seeded: a test's outcome never changes between runs.
import CPUBackend
import DiffusionModels
import DiffusionPipelines
import Foundation
import NN
import Tensor
import XCTest

final class RandomStreamStatisticsTests: XCTestCase {
    struct Moments {
        var mean = 0.0, variance = 0.0, skew = 0.0, excessKurtosis = 0.0

        init(_ values: [Float]) {
            let n = Double(values.count)
            mean = values.reduce(0.0) { $0 + Double($1) } / n
            var m2 = 0.0, m3 = 0.0, m4 = 0.0
            for v in values {
                let d = Double(v) - mean
                m2 += d * d
                m3 += d * d * d
                m4 += d * d * d * d
            }
            variance = m2 / n
            skew = (m3 / n) / pow(variance, 1.5)
            excessKurtosis = (m4 / n) / (variance * variance) - 3
        }
    }

    func testPhiloxNormalsHaveTheMomentsAndTailsOfTheStandardNormal() throws {
        let n = 1 << 22
        let values = try Tensor.normal([n], generator: RandomGenerator(seed: 1234), on: CPUDevice.shared).toArray()
        let m = Moments(values)
        let root = Double(n).squareRoot()
        XCTAssertEqual(m.mean, 0, accuracy: 5 / root)
        XCTAssertEqual(m.variance, 1, accuracy: 5 * 2.0.squareRoot() / root)
        XCTAssertEqual(m.skew, 0, accuracy: 5 * 6.0.squareRoot() / root)
        XCTAssertEqual(m.excessKurtosis, 0, accuracy: 5 * 24.0.squareRoot() / root)
        // Two-sided tail probabilities of N(0, 1): P(|z| > 3) = 2.6998e-3, P(|z| > 4) = 6.3342e-5.
        for (threshold, probability) in [(3.0, 2.6998e-3), (4.0, 6.3342e-5)] {
            let expected = probability * Double(n)
            let seen = Double(values.filter { abs(Double($0)) > threshold }.count)
            XCTAssertEqual(seen, expected, accuracy: 5 * expected.squareRoot(), "beyond \(threshold) sigma")
        }
        // Box-Muller on 24-bit uniforms reaches 5.77 sigma: P(|z| > 5) = 5.7e-7 leaves ~2.4 expected.
        XCTAssertLessThanOrEqual(values.filter { abs($0) > 5 }.count, 12)
    }

    /// Pearson's chi-square of `counts` against equal expected counts.
    func chiSquare(_ counts: [Int]) -> Double {
        let expected = Double(counts.reduce(0, +)) / Double(counts.count)
        return counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
    }

    /// The chi-square bound for `dof` degrees of freedom: mean plus five standard deviations.
    func bound(_ dof: Int) -> Double { Double(dof) + 5 * (2 * Double(dof)).squareRoot() }

    func testTimestepsAreUniformOverTheTrainingSteps() {
        let generator = RandomGenerator(seed: 7)
        var counts = [Int](repeating: 0, count: 1000)
        for _ in 0..<100 {
            for t in generator.nextInts(count: 10_000, below: 1000) { counts[t] += 1 }
        }
        XCTAssertLessThan(chiSquare(counts), bound(999))
        XCTAssertTrue(counts.allSatisfy { $0 > 0 })
    }

    func testShufflesArePermutationsWithUniformPositions() {
        let generator = RandomGenerator(seed: 11)
        XCTAssertEqual(generator.permutation(60_000).sorted(), Array(0..<60_000))
        let n = 8
        var counts = [Int](repeating: 0, count: n * n)
        for _ in 0..<80_000 {
            for (position, element) in generator.permutation(n).enumerated() { counts[element * n + position] += 1 }
        }
        XCTAssertLessThan(chiSquare(counts), bound((n - 1) * (n - 1)))
        // Consecutive shuffles must not repeat (a stream that did not advance would).
        XCTAssertNotEqual(generator.permutation(1000), generator.permutation(1000))
    }

    /// U(-b, b) with b = 1 / sqrt(fanIn): kaiming_uniform_(a = sqrt(5)) for weights, PyTorch's bias rule.
    func assertUniform(_ values: [Float], bound b: Double, _ what: String) {
        let n = Double(values.count)
        XCTAssertTrue(values.allSatisfy { abs(Double($0)) <= b }, "\(what) leaves [-\(b), \(b)]")
        let m = Moments(values)
        XCTAssertEqual(m.mean, 0, accuracy: 5 * b / (3 * n).squareRoot(), "\(what) mean")
        // Var(U) = b^2/3; the sample variance's standard error is sqrt(4/45) b^2 / sqrt(n).
        XCTAssertEqual(m.variance, b * b / 3, accuracy: 5 * (4.0 / 45).squareRoot() * b * b / n.squareRoot(), "\(what) variance")
        if values.count >= 1000 {
            XCTAssertGreaterThan(Double(values.max()!), 0.99 * b, "\(what) does not reach its bound")
            XCTAssertLessThan(Double(values.min()!), -0.99 * b, "\(what) does not reach its bound")
        }
    }

    func testLayersInitialiseAsPyTorchDoes() throws {
        let generator = RandomGenerator(seed: 3)
        let device = CPUDevice.shared
        let conv = try Conv2d(inChannels: 64, outChannels: 64, kernelSize: 3, padding: 1, generator: generator, device: device)
        assertUniform(try conv.weight.toArray(), bound: 1 / 576.0.squareRoot(), "Conv2d weight")
        assertUniform(try conv.bias!.toArray(), bound: 1 / 576.0.squareRoot(), "Conv2d bias")
        let pointwise = try Conv2d(inChannels: 256, outChannels: 128, kernelSize: 1, generator: generator, device: device)
        assertUniform(try pointwise.weight.toArray(), bound: 1 / 16.0, "1x1 Conv2d weight")
        let linear = try Linear(inFeatures: 128, outFeatures: 512, generator: generator, device: device)
        assertUniform(try linear.weight.toArray(), bound: 1 / 128.0.squareRoot(), "Linear weight")
        assertUniform(try linear.bias!.toArray(), bound: 1 / 128.0.squareRoot(), "Linear bias")
        let norm = try GroupNorm(groups: 8, channels: 64, device: device)
        XCTAssertEqual(try norm.weight!.toArray(), [Float](repeating: 1, count: 64))
        XCTAssertEqual(try norm.bias!.toArray(), [Float](repeating: 0, count: 64))
        let embedding = try Embedding(count: 1000, dimension: 64, generator: generator, device: device)
        let e = Moments(try embedding.weight.toArray())
        let root = 64_000.0.squareRoot()
        XCTAssertEqual(e.mean, 0, accuracy: 5 / root, "Embedding mean")
        XCTAssertEqual(e.variance, 1, accuracy: 5 * 2.0.squareRoot() / root, "Embedding variance")
    }

    func testTheTutorialUNetInitialisesEveryLayerByItsRule() throws {
        // Every conv and linear weight of the seed UNet2DModel within its own fan-in bound, biases
        // too, norms at ones/zeros: the whole model, not one layer of each kind.
        let model = try UNet2DModel(config: .tutorial, generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
        let parameters = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
        var checked = 0
        for (name, tensor) in parameters {
            let values = try tensor.toArray()
            if name.contains("norm") {
                XCTAssertTrue(values.allSatisfy { $0 == (name.hasSuffix("weight") ? 1 : 0) }, name)
            } else if name.hasSuffix("weight") {
                let fanIn = tensor.shape.dropFirst().reduce(1, *)
                assertUniform(values, bound: 1 / Double(fanIn).squareRoot(), name)
                let biasName = String(name.dropLast("weight".count)) + "bias"
                if let bias = parameters[biasName] {
                    XCTAssertTrue(try bias.toArray().allSatisfy { abs(Double($0)) <= 1 / Double(fanIn).squareRoot() }, biasName)
                }
            }
            checked += 1
        }
        XCTAssertEqual(checked, parameters.count)
    }
}
