// Short-vector loops with explicit SIMD8 lanes: Swift keeps float reductions in order, so a plain
// `acc += a[i] * b[i]` loop stays scalar; eight partial sums let it use the vector units.
// Multiply then add, not addProduct: without a target CPU that has FMA, addProduct becomes a
// libm fmaf call per lane.
import Foundation

@inline(__always)
func simdLoad(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func simdStore(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// sum(a[i] * b[i]) for i in 0..<n.
@inline(__always)
func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n {
        lanes += simdLoad(a + i) * simdLoad(b + i)
        i += 8
    }
    var total = lanes.sum()
    while i < n {
        total += a[i] * b[i]
        i += 1
    }
    return total
}

/// y[i] += alpha * x[i] for i in 0..<n.
@inline(__always)
func multiplyAdd(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    let a = SIMD8<Float>(repeating: alpha)
    var i = 0
    while i + 8 <= n {
        simdStore(simdLoad(y + i) + a * simdLoad(x + i), y + i)
        i += 8
    }
    while i < n {
        y[i] += alpha * x[i]
        i += 1
    }
}

/// sum(x[i]) for i in 0..<n.
@inline(__always)
func vectorSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var lanes = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= n {
        lanes += simdLoad(x + i)
        i += 8
    }
    var total = lanes.sum()
    while i < n {
        total += x[i]
        i += 1
    }
    return total
}

/// max(x[i]) for i in 0..<n (-infinity when empty), with four running maxima so the compares overlap.
@inline(__always)
func vectorMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var (m0, m1, m2, m3) = (-Float.infinity, -Float.infinity, -Float.infinity, -Float.infinity)
    var i = 0
    while i + 4 <= n {
        m0 = max(m0, x[i])
        m1 = max(m1, x[i + 1])
        m2 = max(m2, x[i + 2])
        m3 = max(m3, x[i + 3])
        i += 4
    }
    while i < n {
        m0 = max(m0, x[i])
        i += 1
    }
    return max(max(m0, m1), max(m2, m3))
}

// MARK: Exponentials

/// e^x for x in [-87, 88]: Cephes' expf (round x / ln 2 to n, reduce with a two-part ln 2, a
/// degree-6 polynomial, scale by 2^n written into the exponent bits), within 2 ulp of libm.
/// Branch-free scalar code, so loops over it vectorise; libm's expf is a call per element and
/// SiLU, sigmoid and softmax spent most of their time there. (Swift's SIMD masks, lane access
/// and pointwiseMax go through memory lane by lane without a target CPU, so no SIMD8 here.)
@inline(__always)
func polynomialExp(_ x: Float) -> Float {
    // Adding 1.5 * 2^23 rounds to an integer; the +127 bias leaves n + 127 in the low mantissa bits.
    let magic: Float = 12_582_912 + 127
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    // 0.693359375 has few mantissa bits, so n * it is exact; the remainder of ln 2 follows.
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_40e-4
    var p: Float = 1.987_569_150_0e-4
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    p = p * (r * r) + r + 1
    return p * Float(bitPattern: t.bitPattern &<< 23)
}

/// Clamps x into polynomialExp's range and sets `outside` when that changed it (or x is NaN),
/// so callers can redo such a range with libm and match it at the edges.
@inline(__always)
func expArgument(_ x: Float, _ outside: inout UInt32) -> Float {
    let clamped = min(max(x, -87), 88)
    outside |= clamped == x ? 0 : 1
    return clamped
}
