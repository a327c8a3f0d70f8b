// CLBlast (Debian libclblast1), the tuned OpenCL BLAS, as an optional GEMM behind the same
// StridedGemm as our kernels: DIFFUSE_GEMM_KERNEL=clblast sends every product it can express
// (no bias, row- or column-major operands) to CLBlastSgemmStridedBatched on our queue. Loaded
// with dlopen at first use, so the package neither links nor needs it; issue 9 asks for it to be
// measured against gemm_tiled on a GPU (Tools/gpu-check.sh runs both), and the README says which
// won and why. Signature from CLBlast 1.5's clblast_c.h.
import COpenCL
import DiffuseCore
import Foundation

struct CLBlast: @unchecked Sendable {
    typealias StridedBatchedGemm =
        @convention(c) (
            Int32, Int32, Int32, Int, Int, Int, Float, cl_mem?, Int, Int, Int, cl_mem?, Int, Int, Int, Float,
            cl_mem?, Int, Int, Int, Int, UnsafeMutablePointer<cl_command_queue?>?, UnsafeMutablePointer<cl_event?>?
        ) -> Int32

    // CLBlastLayout and CLBlastTranspose values.
    static let rowMajor: Int32 = 101
    static let noTranspose: Int32 = 111
    static let transpose: Int32 = 112

    let stridedBatchedGemm: StridedBatchedGemm

    /// The library, or nil where libclblast.so.1 is not installed.
    static let shared: CLBlast? = {
        for name in ["libclblast.so.1", "libclblast.so"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let symbol = dlsym(handle, "CLBlastSgemmStridedBatched") else { continue }
            return CLBlast(stridedBatchedGemm: unsafeBitCast(symbol, to: StridedBatchedGemm.self))
        }
        return nil
    }()

    /// One operand's CLBlast form for a row-major product: (transpose flag, leading dimension), or
    /// nil where its strides are neither row- nor column-major. `rows` x `columns` is the operand
    /// as the product reads it (A: m x k, B: k x n).
    static func operand(rowStride: Int, columnStride: Int, rows: Int, columns: Int) -> (Int32, Int)? {
        if columnStride == 1 && (rowStride >= columns || rows == 1) { return (noTranspose, max(rowStride, columns)) }
        if rowStride == 1 && (columnStride >= rows || columns == 1) { return (transpose, max(columnStride, rows)) }
        return nil
    }

    /// CLBlast's status code as a sentence for errors.
    static func describe(_ status: Int32) -> String {
        switch status {
        case 0: return "success"
        case -2048: return "CLBlast: not implemented"
        case -2046: return "CLBlast: invalid matrix dimensions or leading dimension"
        case -2040: return "CLBlast: no kernel parameters (tuning database) for this device"
        default: return "CLBlast status \(status) (negative OpenCL or CLBlast codes: see clblast_c.h)"
        }
    }
}

extension OpenCLDevice {
    /// Whether libclblast.so.1 can be loaded (`diffuse devices` says so).
    public static var hasCLBlast: Bool { CLBlast.shared != nil }

    /// Runs `g` on CLBlast when DIFFUSE_GEMM_KERNEL=clblast chose it and the library can express
    /// the product; false when our kernels should run it.
    func enqueueCLBlastGemm(_ a: cl_mem, _ b: cl_mem, _ c: cl_mem, _ g: StridedGemm) throws -> Bool {
        guard gemmKernel == .clblast, let blas = CLBlast.shared, g.bias.mode == 0,
            let opA = CLBlast.operand(rowStride: g.rsA, columnStride: g.csA, rows: g.m, columns: g.k),
            let opB = CLBlast.operand(rowStride: g.rsB, columnStride: g.csB, rows: g.k, columns: g.n)
        else { return false }
        try flushIfDeferred([.memory(a), .memory(b), .memory(c)])
        var queue: cl_command_queue? = self.queue
        var event: cl_event?
        let status = withUnsafeMutablePointer(to: &event) { eventPointer in
            blas.stridedBatchedGemm(
                CLBlast.rowMajor, opA.0, opB.0, g.m, g.n, g.k, g.alpha, a, g.offsetA, opA.1, g.strideA, b, g.offsetB,
                opB.1, g.strideB, g.beta, c, g.offsetC, g.n, g.batch == 1 ? g.m * g.n : g.strideC, g.batch, &queue,
                profiling ? eventPointer : nil)
        }
        guard status == 0 else {
            throw DiffuseError.device("CLBlastSgemmStridedBatched (\(g.m)x\(g.n)x\(g.k)) failed: \(CLBlast.describe(status))")
        }
        let flops = 2.0 * Double(g.m) * Double(g.n) * Double(g.k) * Double(g.batch)
        let bytes = 4.0 * Double(g.batch) * Double(g.m * g.k + g.k * g.n + g.m * g.n)
        // Counted as one launch; CLBlast may add its own pad or transpose kernels around the GEMM.
        ledger.record("clblast_sgemm", workItems: g.m * g.n * g.batch, serial: g.k, bytes: bytes, flops: flops)
        if let event { ledger.track("clblast_sgemm", event) }
        return true
    }
}
