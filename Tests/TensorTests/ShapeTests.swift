// Broadcasting, coalescing and forward values of the simple ops on the CPU backend.
import Tensor
import XCTest

final class ShapeTests: XCTestCase {
    func testBroadcastShapesAndCoalescing() {
        XCTAssertEqual(Shape.broadcast([2, 3, 4], [3, 1]), [2, 3, 4])
        XCTAssertNil(Shape.broadcast([2, 3], [4]))
        let g = BroadcastGeometry(a: [8, 4, 5, 5], b: [8, 4, 1, 1])!
        XCTAssertEqual(g.shape, [32, 25])
        XCTAssertEqual(g.stridesA, [25, 1])
        XCTAssertEqual(g.stridesB, [1, 0])
        let r = ReduceGeometry(input: [8, 4, 5], output: [4, 1])
        XCTAssertEqual(r.shape, [8, 4, 5])
        XCTAssertEqual(r.outputStrides, [0, 1, 0])
        XCTAssertEqual(r.outputCount, 4)
    }

    func testForwardValues() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], on: cpu)
        let b = try Tensor([10, 20, 30], shape: [3], on: cpu)
        XCTAssertEqual(try (a + b).toArray(), [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(try (a * b).summed(toShape: [3]).toArray(), [50, 140, 270])
        XCTAssertEqual(try a.sum().item(), 21)
        XCTAssertEqual(try a.transposedLastTwo().toArray(), [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(try Tensor.concatenate([a, a], axis: 1).toArray(), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6])
        XCTAssertEqual(try a.matmul(a, transposeOther: true).toArray(), [14, 32, 32, 77])
        XCTAssertEqual(try a.clamped(2, 4).toArray(), [2, 2, 3, 4, 4, 4])
        XCTAssertEqual(try Tensor.linearCombination(2, a, -1, a).toArray(), [1, 2, 3, 4, 5, 6])
        let pooled = try Tensor([1, 5, 2, 0, 3, 4, 7, 1, 0, 0, 9, 8, 1, 2, 3, 6], shape: [1, 1, 4, 4], on: cpu)
            .maxPool2d(kernel: 2)
        XCTAssertEqual(try pooled.toArray(), [5, 7, 2, 9])
        XCTAssertThrowsError(try a + Tensor.zeros([4], on: cpu))
        XCTAssertThrowsError(try a.reshaped([4, 2]))
    }

    func testLargeSumUsesBothWorkersAndStaysAccurate() throws {
        let n = 1_000_003
        let t = try Tensor.full([n], value: 0.1, on: cpu)
        XCTAssertEqual(try t.sum().item(), Float(Double(n) * 0.1), accuracy: 1)
        XCTAssertEqual(try Tensor.mseLoss(t, Tensor.zeros([n], on: cpu)).item(), 0.01, accuracy: 1e-6)
    }

    func testBackwardAccumulatesIntoLeavesAndReleasesTheGraph() throws {
        let x = try Tensor([1, 2, 3], shape: [3], on: cpu)
        x.requiresGrad = true
        let y = try (x * x).sum()
        try y.backward()
        XCTAssertEqual(try x.grad!.toArray(), [2, 4, 6])
        try (x * 3).sum().backward()
        XCTAssertEqual(try x.grad!.toArray(), [5, 7, 9])
        XCTAssertTrue(y.isLeaf)
        let z = try GradMode.withoutGradients { try x * 2 }
        XCTAssertFalse(z.requiresGrad)
    }
}

final class DropoutTests: XCTestCase {
    func testInvertedDropoutKeepsTheMeanAndPassesTheMaskAsGradient() throws {
        let x = try Tensor.ones([100_000], on: cpu)
        x.requiresGrad = true
        let y = try x.dropout(probability: 0.3, generator: RandomGenerator(seed: 12))
        let values = try y.toArray()
        let zeros = values.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 100_000, 0.3, accuracy: 0.01)
        XCTAssertTrue(values.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        XCTAssertEqual(values.reduce(0, +) / 100_000, 1, accuracy: 0.02)
        try y.sum().backward()
        XCTAssertEqual(try x.grad!.toArray(), values, "d(x * mask)/dx is the mask")
        XCTAssertTrue(try x.dropout(probability: 0, generator: RandomGenerator(seed: 1)) === x)
    }
}
