// Division by a run-time divisor as a multiply-high, an add and a shift, for kernels that divide
// indices in their inner loops (conv_tiled's gathers): GPUs have no integer divide instruction, so
// a 32-bit `/` by a value known only at run time costs ~20 instructions there. Granlund and
// Montgomery, "Division by invariant integers using multiplication" (PLDI 1994), figure 4.1, the
// form CUTLASS's FastDivmod uses: with l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1,
//   n / d = (mulhi(n, m) + n) >> l     for every 0 <= n < 2^31
// (mulhi(n, m) <= n, so the sum stays below 2^32). The kernels' side is conv_tiled.cl's `fdiv`.
import DiffuseCore

struct FastDivisor: Equatable {
    let divisor: UInt32
    /// m and l above: a kernel's uint2 (x: magic, y: shift).
    let magic: UInt32
    let shift: UInt32

    init(_ d: Int) throws {
        guard d >= 1, d <= Int(Int32.max) else {
            throw DiffuseError.device("fast division needs a divisor from 1 to 2^31 - 1, not \(d)")
        }
        divisor = UInt32(d)
        let l = d == 1 ? 0 : UInt64.bitWidth - (UInt64(d) - 1).leadingZeroBitCount
        shift = UInt32(l)
        // 2^32 (2^l - d) < 2^32 d <= 2^63: no overflow.
        magic = UInt32(truncatingIfNeeded: ((UInt64(1) << 32) * ((UInt64(1) << UInt64(l)) - UInt64(d))) / UInt64(d) + 1)
    }

    /// What the kernel computes, for tests.
    func quotient(_ n: UInt32) -> UInt32 {
        let high = UInt32((UInt64(n) * UInt64(magic)) >> 32)
        return (high &+ n) >> shift
    }
}
