// Building the kernel program once per device, with its binary cached under the user's cache
// directory, keyed by device, driver version, source hash and build options.
import COpenCL
import DiffuseCore
import Foundation
import Kernels
import Tensor

/// Work-group and register tiling of `gemm_tiled` (Kernels/gemm_tiled.cl), its -D options.
/// The default, 16 x 16 work-items of 4 x 4 outputs over K tiles of 16, is a 64 x 64 block of C per
/// work-group: 8.3 KiB of local memory (OpenCL 1.2 guarantees 32 KiB) and 16 accumulators per
/// work-item, in a 256-item work-group (AMD's limit; NVIDIA's is 1,024), and 64 x 64 still gives
/// the products of the seed UNets (M = 32...128 channels) mostly whole blocks. 128 x 128 (8 x 8 per
/// item) is the usual choice for large square products on big GPUs, but 1024^3 is then only 64
/// work-groups for an H200's 132 SMs, and these layers would waste most of each block.
struct TiledGemmShape: Equatable, Sendable {
    var groupRows = 16, groupColumns = 16
    var rows = 4, columns = 4
    var depth = 16

    var blockRows: Int { groupRows * rows }
    var blockColumns: Int { groupColumns * columns }
    var workGroupSize: Int { groupRows * groupColumns }
    /// The kernel's two padded local tiles.
    var localBytes: Int { 4 * depth * (blockRows + 1 + blockColumns + 1) }

    var options: String {
        "-DGT_WG_M=\(groupRows) -DGT_WG_N=\(groupColumns) -DGT_REG_M=\(rows) -DGT_REG_N=\(columns) -DGT_BK=\(depth)"
    }

    /// Whether the device can run a work-group of this shape at all (the kernel's own limit, which
    /// register use can lower, is checked once the program is built).
    func fits(_ info: OpenCLDeviceInfo) -> Bool {
        workGroupSize <= info.maxWorkGroupSize && UInt64(localBytes) <= info.localMemoryBytes
    }
}

enum ProgramBuilder {
    /// GEMM tile (rows, columns) per work-item, chosen per device type; `DIFFUSE_GEMM_TILE=MxN`
    /// overrides it for tuning on a new device.
    static func gemmTile(for info: OpenCLDeviceInfo) -> (rows: Int, columns: Int) {
        if let text = ProcessInfo.processInfo.environment["DIFFUSE_GEMM_TILE"] {
            let parts = text.split(separator: "x").compactMap { Int($0) }
            if parts.count == 2, [1, 2, 4, 8].contains(parts[0]), [8, 16].contains(parts[1]) { return (parts[0], parts[1]) }
        }
        return info.isGPU ? (8, 8) : (8, 16)
    }

    /// Shape of `gemm_tiled`; `DIFFUSE_GEMM_TILED=WGMxWGNxRMxRNxBK` overrides it for tuning on a new
    /// GPU. CPU devices get the GPU default too: they run the kernel only when it is forced
    /// (`DIFFUSE_GEMM_KERNEL=tiled`, or tests), and then run it as a GPU would.
    static func tiledGemmShape(for info: OpenCLDeviceInfo) -> TiledGemmShape {
        if let text = ProcessInfo.processInfo.environment["DIFFUSE_GEMM_TILED"] {
            let p = text.split(separator: "x").compactMap { Int($0) }
            if p.count == 5, p.allSatisfy({ $0 > 0 }), (1...8).contains(p[2]), (1...8).contains(p[3]) {
                return TiledGemmShape(groupRows: p[0], groupColumns: p[1], rows: p[2], columns: p[3], depth: p[4])
            }
        }
        // A device limited to smaller work-groups (under 256 items) gets 8 x 8 items of 8 x 8
        // outputs: the same 64 x 64 block and local tiles.
        let shape = TiledGemmShape()
        return shape.fits(info) ? shape : TiledGemmShape(groupRows: 8, groupColumns: 8, rows: 8, columns: 8)
    }

    static func options(for info: OpenCLDeviceInfo) -> String {
        let tile = gemmTile(for: info)
        return "-cl-std=CL1.2 -DTILE_M=\(tile.rows) -DTILE_N=\(tile.columns) " + tiledGemmShape(for: info).options
    }

    /// `$DIFFUSE_CACHE_DIR`, else `$XDG_CACHE_HOME/diffuse`, else `~/.cache/diffuse`; then `opencl/`.
    static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        let base: URL
        if let dir = env["DIFFUSE_CACHE_DIR"], !dir.isEmpty {
            base = URL(fileURLWithPath: dir)
        } else if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            base = URL(fileURLWithPath: xdg).appendingPathComponent("diffuse")
        } else {
            base = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/diffuse")
        }
        return base.appendingPathComponent("opencl")
    }

    /// FNV-1a, 64 bits: a cache key, not a security boundary.
    static func hash(_ text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        return String(h, radix: 16)
    }

    static func cacheKey(_ info: OpenCLDeviceInfo, source: String, options: String) -> String {
        hash(
            [info.platformName, info.platformVersion, info.name, info.vendor, info.driverVersion, options, source]
                .joined(separator: "\u{1}"))
    }

    static func buildLog(_ program: cl_program, _ device: cl_device_id) -> String {
        var size = 0
        clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
        guard size > 1 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Programs built or loaded in this process (a steady-state step must add none).
    nonisolated(unsafe) static var programsBuilt = 0

    static func build(
        context: cl_context, info: OpenCLDeviceInfo,
        source: String = KernelSources.combined
    ) throws -> (cl_program, String) {
        programsBuilt += 1
        let options = options(for: info)
        let file = cacheDirectory.appendingPathComponent(cacheKey(info, source: source, options: options) + ".bin")
        if let binary = FileManager.default.contents(atPath: file.path), !binary.isEmpty,
            let program = fromBinary(binary, context: context, info: info, options: options)
        {
            return (program, "cache")
        }
        var status: cl_int = 0
        let program: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let program else {
            throw DiffuseError.device("OpenCL clCreateProgramWithSource failed with \(OpenCLStatus.name(status))")
        }
        var device: cl_device_id? = info.device
        status = clBuildProgram(program, 1, &device, options, nil, nil)
        guard status == CL_SUCCESS else {
            let log = buildLog(program, info.device)
            clReleaseProgram(program)
            throw DiffuseError.device("OpenCL kernel build failed on \(info.name) with \(OpenCLStatus.name(status)):\n\(log)")
        }
        saveBinary(program, to: file)
        return (program, "built")
    }

    static func fromBinary(_ binary: Data, context: cl_context, info: OpenCLDeviceInfo, options: String) -> cl_program? {
        var status: cl_int = 0
        var binaryStatus: cl_int = 0
        var device: cl_device_id? = info.device
        var length = binary.count
        let program: cl_program? = binary.withUnsafeBytes { raw in
            var pointer: UnsafePointer<UInt8>? = raw.bindMemory(to: UInt8.self).baseAddress
            return clCreateProgramWithBinary(context, 1, &device, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            if let program { clReleaseProgram(program) }
            return nil
        }
        guard clBuildProgram(program, 1, &device, options, nil, nil) == CL_SUCCESS else {
            clReleaseProgram(program)
            return nil
        }
        return program
    }

    /// Best effort: a cache that cannot be written only costs a rebuild next time.
    static func saveBinary(_ program: cl_program, to file: URL) {
        var size = 0
        guard
            clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil)
                == CL_SUCCESS, size > 0
        else { return }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = bytes.withUnsafeMutableBufferPointer { buffer -> cl_int in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return clGetProgramInfo(
                program, cl_program_info(CL_PROGRAM_BINARIES),
                MemoryLayout<UnsafeMutablePointer<UInt8>>.size, &pointer, nil)
        }
        guard status == CL_SUCCESS else { return }
        try? AtomicFile.write(Data(bytes), to: file)
    }
}
