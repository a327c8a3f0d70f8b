// Short-vector loops with explicit SIMD8 lanes: Swift keeps float reductions in order, so a plain
// `acc += a[i] * b[i]` loop stays scalar; eight partial sums let it use the vector units.
// Multiply then add, not addProduct: without a target CPU that has FMA, addProduct becomes a
// libm fmaf call per lane.

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
