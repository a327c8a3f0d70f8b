// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; Random123),
// the counter-based generator PyTorch's CUDA backend uses. Keyed by the seed and indexed by a
// counter, so every backend computes element i of a draw independently and identically.
import Foundation

public enum Philox {
    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let weyl0: UInt32 = 0x9E37_79B9
    static let weyl1: UInt32 = 0xBB67_AE85

    /// The ten-round block function: four 32-bit outputs for a 128-bit counter and 64-bit key.
    @inline(__always)
    public static func block(
        counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)
    )
        -> (UInt32, UInt32, UInt32, UInt32)
    {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 {
                k.0 &+= weyl0
                k.1 &+= weyl1
            }
            let p0 = UInt64(multiplier0) &* UInt64(c.0)
            let p1 = UInt64(multiplier1) &* UInt64(c.2)
            c = (
                UInt32(truncatingIfNeeded: p1 >> 32) ^ c.1 ^ k.0, UInt32(truncatingIfNeeded: p1),
                UInt32(truncatingIfNeeded: p0 >> 32) ^ c.3 ^ k.1, UInt32(truncatingIfNeeded: p0)
            )
        }
        return c
    }

    /// Outputs of block `index` of the stream (seed, offset): counter = offset + index.
    @inline(__always)
    public static func block(key: RandomKey, index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        let position = key.offset &+ index
        return block(
            counter: (UInt32(truncatingIfNeeded: position), UInt32(truncatingIfNeeded: position >> 32), 0, 0),
            key: (UInt32(truncatingIfNeeded: key.seed), UInt32(truncatingIfNeeded: key.seed >> 32)))
    }

    /// Uniform in [0, 1) from the top 24 bits, exactly representable in float32.
    @inline(__always)
    public static func unitFloat(_ bits: UInt32) -> Float { Float(bits >> 8) * (1.0 / 16_777_216.0) }

    /// Box-Muller on two outputs; `first` picks the cosine or the sine half of the pair.
    @inline(__always)
    public static func normal(_ bits0: UInt32, _ bits1: UInt32, first: Bool) -> Float {
        let u1 = (Float(bits0 >> 8) + 1) * (1.0 / 16_777_216.0)  // (0, 1]: log is finite
        let u2 = unitFloat(bits1)
        let radius = (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Float.pi * u2
        return first ? radius * Foundation.cos(angle) : radius * Foundation.sin(angle)
    }

    /// Output `lane` (0...3) of a block, without building an array.
    @inline(__always)
    public static func lane(_ b: (UInt32, UInt32, UInt32, UInt32), _ lane: Int) -> UInt32 {
        switch lane {
        case 0: return b.0
        case 1: return b.1
        case 2: return b.2
        default: return b.3
        }
    }

    /// Blocks a draw of `count` values consumes.
    public static func blocks(for count: Int) -> UInt64 { UInt64((count + 3) / 4) }

    /// The raw output behind value `index` of the draw `key`.
    @inline(__always)
    public static func bits(key: RandomKey, index: Int) -> UInt32 {
        let e = key.shift + index
        return lane(block(key: key, index: UInt64(e / 4)), e % 4)
    }
}

/// The images of a batch one process draws for: `count` of the batch's `total`, from image
/// `first` on. Draws made under a shard reserve the whole batch's values and read the shard's
/// slice, so every process's stream stays where one process's would be, and image g's noise,
/// timestep and dropout masks are the same however the batch is split.
public struct ImageShard: Equatable, Sendable {
    public var first: Int
    public var count: Int
    public var total: Int
    public init(first: Int, count: Int, total: Int) {
        self.first = first
        self.count = count
        self.total = total
    }

    /// Process `rank` of `size`'s part of a batch of `total`: contiguous, the first `total % size`
    /// processes one image more.
    public static func split(total: Int, rank: Int, size: Int) -> ImageShard {
        let base = total / size
        let extra = total % size
        return ImageShard(first: rank * base + min(rank, extra), count: base + (rank < extra ? 1 : 0), total: total)
    }
}

/// A seeded stream that hands out non-overlapping keys; (seed, offset) is its whole state,
/// so saving those two integers resumes a run bit-exactly.
public final class RandomGenerator {
    public let seed: UInt64
    public private(set) var offset: UInt64

    public init(seed: UInt64, offset: UInt64 = 0) {
        self.seed = seed
        self.offset = offset
    }

    /// Moves the stream to `offset` (a value read from `offset` earlier): resuming a checkpoint.
    public func seek(to offset: UInt64) { self.offset = offset }

    /// The part of each batch this process draws for (nil: all of it); set by `withShard`.
    public private(set) var shard: ImageShard?

    /// Runs `body` with draws sharded: a draw of `count` values is the shard's images' part of a
    /// draw of `count / shard.count * shard.total` (every draw in `body` is per image).
    public func withShard<T>(_ shard: ImageShard?, _ body: () throws -> T) rethrows -> T {
        let outer = self.shard
        self.shard = shard
        defer { self.shard = outer }
        return try body()
    }

    /// Reserves `count` values and returns the key that draws them (under a shard, the key of
    /// the shard's slice of the whole batch's draw).
    public func next(count: Int) -> RandomKey {
        let key = RandomKey(seed: seed, offset: offset)
        guard let shard, shard.count > 0 else {
            offset &+= Philox.blocks(for: count)
            return key
        }
        precondition(count % shard.count == 0, "a sharded draw of \(count) values over \(shard.count) images")
        let perImage = count / shard.count
        offset &+= Philox.blocks(for: perImage * shard.total)
        return key.advanced(byElements: perImage * shard.first)
    }

    /// Host-side uniform integers in 0..<bound (shuffling), from the same stream.
    public func nextInts(count: Int, below bound: Int) -> [Int] {
        let key = next(count: count)
        return (0..<count).map { Int((UInt64(Philox.bits(key: key, index: $0)) &* UInt64(bound)) >> 32) }
    }

    /// A Fisher-Yates permutation of 0..<n.
    public func permutation(_ n: Int) -> [Int] {
        var order = Array(0..<n)
        guard n > 1 else { return order }
        // The whole order, whatever the shard: every process walks the same epoch.
        let draws = withShard(nil) { nextInts(count: n, below: Int(UInt32.max)) }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = Int((UInt64(draws[i]) &* UInt64(i + 1)) >> 32)
            order.swapAt(i, j)
        }
        return order
    }
}
