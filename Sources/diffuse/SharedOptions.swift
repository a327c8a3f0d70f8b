// Options more than one command declares, written once (swift-argument-parser's @OptionGroup),
// and the library's closed sets of values as arguments (their --help lists the choices).
import ArgumentParser
import Diffusion
import Tensor

/// `--device` of the commands that run a model on one device (`bench` takes `all` as well).
struct DeviceOption: ParsableArguments {
    @Option(help: "auto, cpu, opencl or opencl:N (see `diffuse devices`).")
    var device = "auto"

    /// The device, and how the choice is shown ("cpu ... (--device auto)").
    func resolve() throws -> (device: Device, label: String) {
        let chosen = try DeviceChoice.resolve(device)
        return (chosen, chosen.name + (device == "auto" ? " (--device auto)" : ""))
    }
}

extension SamplerKind: ExpressibleByArgument {}
