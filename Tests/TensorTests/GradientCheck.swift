// Finite-difference checking of autograd: analytic gradients of sum(f(x) * w) against central differences.
import CPUBackend
import Tensor
import TestSupport
import XCTest

let cpu = CPUDevice.shared

/// Deterministic test values from the project's own Philox stream.
func randomValues(_ count: Int, seed: UInt64, low: Float = -1, high: Float = 1) -> [Float] {
    let t = try! Tensor.uniform([count], low: low, high: high, generator: RandomGenerator(seed: seed), on: cpu)
    return try! t.toArray()
}

/// Values in random order with gaps of at least `spacing`: no ties for max-pool or ReLU kinks.
func spacedValues(_ count: Int, seed: UInt64, spacing: Float = 0.05) -> [Float] {
    let order = RandomGenerator(seed: seed).permutation(count)
    return order.map { Float($0) * spacing - Float(count) * spacing / 2 }
}

/// Checks d sum(f(inputs) * w) / d input against central differences for every input.
func checkGradients(
    _ inputs: [(values: [Float], shape: [Int])], epsilon: Float = 1e-2, tolerance: Float = 2e-2,
    _ name: String, file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> Tensor
) throws {
    func evaluate(_ values: [[Float]]) throws -> (Tensor, [Tensor]) {
        let leaves = try zip(values, inputs).map { v, input -> Tensor in
            let t = try Tensor(v, shape: input.shape, on: cpu)
            t.requiresGrad = true
            return t
        }
        return (try f(leaves), leaves)
    }
    let (out, leaves) = try evaluate(inputs.map(\.values))
    let weights = randomValues(out.count, seed: 99)
    let weighted = try (out * Tensor(weights, shape: out.shape, on: cpu)).sum()
    try weighted.backward()
    func loss(_ values: [[Float]]) throws -> Double {
        let result = try GradMode.withoutGradients { try evaluate(values).0.toArray() }
        return zip(result, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    for (index, input) in inputs.enumerated() {
        let analytic = try XCTUnwrap(leaves[index].grad, "\(name): input \(index) got no gradient", file: file, line: line)
        var numeric = [Float](repeating: 0, count: input.values.count)
        var values = inputs.map(\.values)
        for i in 0..<input.values.count {
            let original = values[index][i]
            values[index][i] = original + epsilon
            let up = try loss(values)
            values[index][i] = original - epsilon
            let down = try loss(values)
            values[index][i] = original
            numeric[i] = Float((up - down) / Double(2 * epsilon))
        }
        assertElementsClose(
            try analytic.toArray(), numeric, relative: tolerance, absolute: tolerance,
            "\(name) input \(index)", file: file, line: line)
    }
}
