// Philox4x32-10 against Random123's known-answer vectors, and the distributions drawn from it.
import Tensor
import XCTest

final class PhiloxTests: XCTestCase {
    func testKnownAnswerVectors() {
        // Random123 kat_vectors: counter, key -> output.
        let zero = Philox.block(counter: (0, 0, 0, 0), key: (0, 0))
        XCTAssertEqual([zero.0, zero.1, zero.2, zero.3], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox.block(counter: (.max, .max, .max, .max), key: (.max, .max))
        XCTAssertEqual([ones.0, ones.1, ones.2, ones.3], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox.block(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        XCTAssertEqual([pi.0, pi.1, pi.2, pi.3], [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    func testUniformMomentsAndRange() throws {
        let values = try Tensor.uniform([100_000], generator: RandomGenerator(seed: 7), on: cpu).toArray()
        XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = values.reduce(0, +) / Float(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
        XCTAssertEqual(mean, 0.5, accuracy: 0.005)
        XCTAssertEqual(variance, 1.0 / 12, accuracy: 0.002)
    }

    func testNormalMoments() throws {
        let values = try Tensor.normal(
            [100_001], mean: 2, standardDeviation: 3, generator: RandomGenerator(seed: 8),
            on: cpu
        ).toArray()
        let mean = values.reduce(0, +) / Float(values.count)
        let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(values.count)
        XCTAssertEqual(mean, 2, accuracy: 0.05)
        XCTAssertEqual(variance.squareRoot(), 3, accuracy: 0.05)
        XCTAssertTrue(values.allSatisfy { $0.isFinite })
    }

    func testStreamsAreReproducibleAndAdvance() throws {
        let a = RandomGenerator(seed: 3)
        let first = try Tensor.uniform([10], generator: a, on: cpu).toArray()
        let second = try Tensor.uniform([10], generator: a, on: cpu).toArray()
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(a.offset, 6)  // ceil(10/4) blocks per draw
        // Resuming from (seed, offset) continues the stream exactly.
        let resumed = RandomGenerator(seed: 3, offset: 3)
        XCTAssertEqual(try Tensor.uniform([10], generator: resumed, on: cpu).toArray(), second)
        // Element i of a draw is block i/4, lane i%4, whatever the draw's length.
        let key = RandomKey(seed: 3, offset: 0)
        let b = Philox.block(key: key, index: 1)
        XCTAssertEqual(first[5], Philox.unitFloat(b.1))
    }

    func testShiftedKeysDrawSlicesOfTheWholeDraw() throws {
        let whole = RandomKey(seed: 4, offset: 2)
        let uniform = try Tensor.uniform([23], generator: RandomGenerator(seed: 4, offset: 2), on: cpu).toArray()
        let normal = try Tensor.normal([23], key: whole, on: cpu).toArray()
        let mask = try Tensor.ones([23], on: cpu).dropout(probability: 0.5, generator: RandomGenerator(seed: 4, offset: 2))
            .toArray()
        for start in [1, 2, 3, 5, 6, 7, 10] {
            let key = whole.advanced(byElements: start)
            XCTAssertEqual(key.offset, 2 + UInt64(start / 4))
            XCTAssertEqual(key.shift, start % 4)
            let n = 23 - start
            XCTAssertEqual(try Tensor.normal([n], key: key, on: cpu).toArray(), Array(normal[start...]), "normal from \(start)")
            let u = try Tensor.empty([n], on: cpu)
            try cpu.fillUniform(u.buffer, count: n, key: key, low: 0, high: 1)
            XCTAssertEqual(try u.toArray(), Array(uniform[start...]), "uniform from \(start)")
            let m = try Tensor.empty([n], on: cpu)
            try cpu.fillDropoutMask(m.buffer, count: n, key: key, probability: 0.5)
            XCTAssertEqual(try m.toArray(), Array(mask[start...]), "dropout mask from \(start)")
        }
    }

    func testShardedDrawsAreTheWholeBatchsSplitAndAdvanceAlike() throws {
        // 7 images of 3 values (a width that splits blocks), and one value per image.
        for size in [1, 2, 3] {
            let one = RandomGenerator(seed: 9)
            let whole = try Tensor.normal([7, 3], generator: one, on: cpu).toArray()
            let wholeInts = one.nextInts(count: 7, below: 1000)
            let wholeMask = try Tensor.ones([7, 3], on: cpu).dropout(probability: 0.3, generator: one).toArray()
            var parts: [Float] = [], ints: [Int] = [], masks: [Float] = []
            for rank in 0..<size {
                let shard = ImageShard.split(total: 7, rank: rank, size: size)
                let g = RandomGenerator(seed: 9)
                try g.withShard(shard) {
                    parts += try Tensor.normal([shard.count, 3], generator: g, on: cpu).toArray()
                    ints += g.nextInts(count: shard.count, below: 1000)
                    masks += try Tensor.ones([shard.count, 3], on: cpu).dropout(probability: 0.3, generator: g).toArray()
                }
                XCTAssertEqual(g.offset, one.offset, "rank \(rank) of \(size): the stream is where one process's is")
                XCTAssertNil(g.shard)
            }
            XCTAssertEqual(parts, whole, "\(size) shards")
            XCTAssertEqual(ints, wholeInts, "\(size) shards")
            XCTAssertEqual(masks, wholeMask, "\(size) shards")
        }
        XCTAssertEqual(
            (0..<3).map { ImageShard.split(total: 8, rank: $0, size: 3) },
            [
                ImageShard(first: 0, count: 3, total: 8), ImageShard(first: 3, count: 3, total: 8),
                ImageShard(first: 6, count: 2, total: 8),
            ])
        // The epoch's order is the whole one under a shard.
        let sharded = RandomGenerator(seed: 2)
        let order = sharded.withShard(ImageShard(first: 1, count: 1, total: 2)) { sharded.permutation(10) }
        XCTAssertEqual(order, RandomGenerator(seed: 2).permutation(10))
    }

    func testPermutationIsAPermutation() {
        let p = RandomGenerator(seed: 11).permutation(1000)
        XCTAssertEqual(Set(p).count, 1000)
        XCTAssertNotEqual(p, Array(0..<1000))
        XCTAssertEqual(p, RandomGenerator(seed: 11).permutation(1000))
    }
}
