// Resolving --device: auto (the first OpenCL GPU, else the native CPU backend), cpu,
// opencl (the first OpenCL device) or opencl:N (the N-th in `diffuse devices`); under mpirun each
// process of a host takes the next GPU (opencl:N,M,... lists them).
import CPUBackend
import DiffuseCore
import DiffusionModels
import OpenCLBackend
import Tensor

public enum DeviceChoice {
    /// `localRank`: this process's index among a data-parallel job's processes on its host, so
    /// each takes its own GPU: auto takes the localRank-th GPU, opencl the localRank-th OpenCL
    /// device, opencl:A,B,... the localRank-th of the list (each counting round).
    public static func resolve(_ spec: String, localRank: Int = 0) throws -> Device {
        let lowered = spec.lowercased()
        switch lowered {
        case "cpu":
            return CPUDevice.shared
        case "auto":
            guard let gpu = OpenCLPlatforms.preferred(in: OpenCLPlatforms.devices(), localRank: localRank) else {
                return CPUDevice.shared
            }
            return try OpenCLDevice(info: gpu)
        case "opencl":
            return try OpenCLDevice(index: localRank % max(OpenCLPlatforms.devices().count, 1))
        default:
            if lowered.hasPrefix("opencl:") {
                let list = lowered.dropFirst("opencl:".count).split(separator: ",", omittingEmptySubsequences: false)
                let indices = list.compactMap { Int($0) }
                if !indices.isEmpty, indices.count == list.count, indices.allSatisfy({ $0 >= 0 }) {
                    return try OpenCLDevice(index: indices[localRank % indices.count])
                }
            }
            throw DiffuseError.usage(
                "unknown \(Setting.device) '\(spec)': use auto, cpu, opencl, opencl:N or opencl:N,M,... (see `diffuse devices`)")
        }
    }

    /// Every device a user can pick, as `diffuse devices` and `diffuse bench` list them.
    public static func available() throws -> [Device] {
        var devices: [Device] = [CPUDevice.shared]
        for info in OpenCLPlatforms.devices() { devices.append(try OpenCLDevice(info: info)) }
        return devices
    }
}
