// Discovering OpenCL platforms and devices, and reading their properties for `diffuse devices`.
import COpenCL
import DiffuseCore
import Tensor

/// One OpenCL device as the listing shows it; `index` is its N in `--device opencl:N`.
public struct OpenCLDeviceInfo: @unchecked Sendable {
    public let index: Int
    public let platformName: String
    public let platformVersion: String
    public let name: String
    public let vendor: String
    public let version: String
    public let driverVersion: String
    public let isGPU: Bool
    public let isCPU: Bool
    public let computeUnits: Int
    public let globalMemoryBytes: UInt64
    public let localMemoryBytes: UInt64
    public let maxWorkGroupSize: Int
    /// CL_DEVICE_MEM_BASE_ADDR_ALIGN: the alignment, in bits, of a sub-buffer's origin.
    public let baseAddressAlignBits: Int
    let platform: cl_platform_id
    let device: cl_device_id
}

public enum OpenCLPlatforms {
    /// Reads a string property through one of clGet*Info's (size, buffer, size-out) calls.
    static func infoString(_ query: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) -> String {
        var size = 0
        guard query(0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: size)
        guard bytes.withUnsafeMutableBytes({ query(size, $0.baseAddress, nil) }) == CL_SUCCESS else { return "" }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func string(_ device: cl_device_id, _ param: Int32) -> String {
        infoString { clGetDeviceInfo(device, cl_device_info(param), $0, $1, $2) }
    }

    static func value<T: FixedWidthInteger>(_ device: cl_device_id, _ param: Int32, as: T.Type) -> T {
        var v: T = 0
        _ = clGetDeviceInfo(device, cl_device_info(param), MemoryLayout<T>.size, &v, nil)
        return v
    }

    static func platformString(_ platform: cl_platform_id, _ param: Int32) -> String {
        infoString { clGetPlatformInfo(platform, cl_platform_info(param), $0, $1, $2) }
    }

    /// Every device of every platform, in platform order; empty when no ICD is installed.
    public static func devices() -> [OpenCLDeviceInfo] {
        var platformCount: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &platformCount) == CL_SUCCESS, platformCount > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        guard clGetPlatformIDs(platformCount, &platforms, nil) == CL_SUCCESS else { return [] }
        var out: [OpenCLDeviceInfo] = []
        for case let platform? in platforms {
            var deviceCount: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount) == CL_SUCCESS,
                deviceCount > 0
            else { continue }
            var ids = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &ids, nil) == CL_SUCCESS else {
                continue
            }
            for case let device? in ids {
                let type = value(device, CL_DEVICE_TYPE, as: cl_device_type.self)
                out.append(
                    OpenCLDeviceInfo(
                        index: out.count,
                        platformName: platformString(platform, CL_PLATFORM_NAME),
                        platformVersion: platformString(platform, CL_PLATFORM_VERSION),
                        name: string(device, CL_DEVICE_NAME),
                        vendor: string(device, CL_DEVICE_VENDOR),
                        version: string(device, CL_DEVICE_VERSION),
                        driverVersion: string(device, CL_DRIVER_VERSION),
                        isGPU: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0,
                        isCPU: type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0,
                        computeUnits: Int(value(device, CL_DEVICE_MAX_COMPUTE_UNITS, as: cl_uint.self)),
                        globalMemoryBytes: value(device, CL_DEVICE_GLOBAL_MEM_SIZE, as: cl_ulong.self),
                        localMemoryBytes: value(device, CL_DEVICE_LOCAL_MEM_SIZE, as: cl_ulong.self),
                        maxWorkGroupSize: value(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, as: Int.self),
                        baseAddressAlignBits: Int(value(device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, as: cl_uint.self)),
                        platform: platform, device: device))
            }
        }
        return out
    }

    /// What `--device auto` takes: the first OpenCL GPU (the process of a data-parallel job with
    /// local rank r, the r-th, counting round); nil leaves the native CPU backend, which runs the
    /// seed models about 3x faster than PoCL on the same cores (README benchmarks), so an OpenCL
    /// CPU device is used only when named (`--device opencl:N`).
    public static func preferred(in devices: [OpenCLDeviceInfo], localRank: Int = 0) -> OpenCLDeviceInfo? {
        let gpus = devices.filter { $0.isGPU }
        return gpus.isEmpty ? nil : gpus[localRank % gpus.count]
    }

    /// Why `--device auto` takes what it takes, in one line for `diffuse devices`.
    public static func choiceReason(in devices: [OpenCLDeviceInfo]) -> String {
        if let gpu = preferred(in: devices) {
            return "auto: opencl:\(gpu.index), the first OpenCL GPU"
        }
        if devices.isEmpty { return "auto: cpu, the native CPU backend (no OpenCL device)" }
        return
            "auto: cpu, the native CPU backend: no OpenCL GPU, and an OpenCL CPU device is slower on the same cores; name one "
            + "with \(Setting.device) opencl:N"
    }

    public static let installHint =
        "no OpenCL platform found; install one (Debian: `sudo apt-get install pocl-opencl-icd` for the CPU, or your GPU vendor's "
        + "ICD such as nvidia-opencl-icd, mesa-opencl-icd, intel-opencl-icd), or use \(Setting.device) cpu"
}
