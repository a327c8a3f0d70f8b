// Resolving --device: auto (the first OpenCL GPU, else the native CPU backend), cpu,
// opencl (the first OpenCL device) or opencl:N (the N-th in `diffuse devices`).
import CPUBackend
import DiffuseCore
import DiffusionModels
import OpenCLBackend
import Tensor

public enum DeviceChoice {
    public static func resolve(_ spec: String) throws -> Device {
        let lowered = spec.lowercased()
        switch lowered {
        case "cpu":
            return CPUDevice.shared
        case "auto":
            guard let preferred = OpenCLPlatforms.preferred(in: OpenCLPlatforms.devices()) else { return CPUDevice.shared }
            return try OpenCLDevice(info: preferred)
        case "opencl":
            return try OpenCLDevice(index: 0)
        default:
            if lowered.hasPrefix("opencl:"), let index = Int(lowered.dropFirst("opencl:".count)), index >= 0 {
                return try OpenCLDevice(index: index)
            }
            throw DiffuseError.usage(
                "unknown \(Setting.device) '\(spec)': use auto, cpu, opencl or opencl:N (see `diffuse devices`)")
        }
    }

    /// Every device a user can pick, as `diffuse devices` and `diffuse bench` list them.
    public static func available() throws -> [Device] {
        var devices: [Device] = [CPUDevice.shared]
        for info in OpenCLPlatforms.devices() { devices.append(try OpenCLDevice(info: info)) }
        return devices
    }
}
