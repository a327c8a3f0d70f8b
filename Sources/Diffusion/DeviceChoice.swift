// Resolving --device: the backends this build has, in the order `auto` tries them.
import Tensor

public enum DeviceChoice {
    /// `auto` or `cpu`; OpenCL devices join this list when that backend is built in.
    public static func resolve(_ spec: String) throws -> Device {
        switch spec.lowercased() {
        case "auto", "cpu":
            return CPUDevice.shared
        default:
            throw DiffuseError.usage("unknown --device '\(spec)': use auto or cpu")
        }
    }
}
