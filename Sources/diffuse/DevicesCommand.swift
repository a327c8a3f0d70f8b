// `diffuse devices`: every OpenCL platform and device, and the CPU backend, marking what auto takes.
import ArgumentParser
import CPUBackend
import DataParallel
import DiffusionModels
import DiffusionPipelines
import Foundation
import OpenCLBackend
import Tensor

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the devices --device can name; * marks what --device auto takes.")

    func run() throws {
        let devices = OpenCLPlatforms.devices()
        let preferred = OpenCLPlatforms.preferred(in: devices)
        for d in devices {
            let mark = d.index == preferred?.index ? "*" : " "
            print(
                "\(mark) opencl:\(d.index)  \(d.name.trimmingCharacters(in: .whitespaces)) "
                    + "[\(d.isGPU ? "GPU" : d.isCPU ? "CPU" : "accelerator")]"
            )
            print(
                "      platform \(d.platformName) (\(d.platformVersion)); vendor \(d.vendor); \(d.version); driver "
                    + "\(d.driverVersion)"
            )
            print(
                "      \(d.computeUnits) compute units, \(Self.bytes(d.globalMemoryBytes)) global, "
                    + "\(Self.bytes(d.localMemoryBytes)) local memory, work-groups up to \(d.maxWorkGroupSize)"
            )
        }
        if devices.isEmpty { print("  (no OpenCL devices: \(Flags.word(OpenCLPlatforms.installHint)))") }
        print("\(preferred == nil ? "*" : " ") cpu       \(CPUDevice.shared.name)")
        print(Flags.word(OpenCLPlatforms.choiceReason(in: devices)))
        let linked =
            "mpi: Open MPI (mpirun -np N diffuse train ... trains data-parallel; each process of a host takes the next GPU)"
        print(
            ProcessGroup.compiledWithMPI
                ? linked : "mpi: not in this build (swift build -c release --traits MPI, needs libopenmpi-dev)")
        print(
            OpenCLDevice.hasCLBlast
                ? "clblast: libclblast.so.1 found (DIFFUSE_GEMM_KERNEL=clblast runs OpenCL GEMMs on it)"
                : "clblast: not installed (Debian libclblast1; only needed for DIFFUSE_GEMM_KERNEL=clblast)")
    }

    static func bytes(_ n: UInt64) -> String {
        n >= 1 << 30
            ? String(format: "%.1f GiB", Double(n) / Double(1 << 30))
            : n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20)) : "\(n / 1024) KiB"
    }
}
