// The `diffuse` command line: argument parsing only; the work lives in the Diffusion library.
import ArgumentParser
import DataParallel
import DiffuseCore
import Foundation
import Tensor

struct Diffuse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffuse",
        abstract: "Train and sample image diffusion models on OpenCL or the CPU.",
        version: "0.1.0",
        subcommands: [
            TrainCommand.self, SampleCommand.self, VisualizeCommand.self, BenchCommand.self, DevicesCommand.self,
            ServeHubCommand.self, ConvertCommand.self,
        ])
}

/// Usage and input errors exit with 2 and one line; help and version exit 0 as usual.
func runMain() -> Never {
    Interruption.install()
    // Line-buffered stdout: a piped `train` or `sample` shows each progress line as it is written,
    // not minutes later when a 4 KiB block fills.
    setvbuf(stdout, nil, _IOLBF, 0)
    // In a data-parallel job (ProcessGroup.world) only rank 0 speaks for an interruption every
    // process agreed on; any other error is said with its rank and ends the whole job
    // (MPI_Abort), so no process is left waiting for one that failed.
    let world = { ProcessGroup.world }
    do {
        var command = try Diffuse.parseAsRoot()
        try command.run()
        world().finish()
        exit(0)
    } catch let error as DiffuseError {
        if case .interrupted = error {
            if world().isRoot { FileHandle.standardError.write(Data("\(error.worded(Flags.name))\n".utf8)) }
            world().finish()
            exit(error.exitCode)
        }
        let rank = world().isDistributed ? "rank \(world().rank): " : ""
        FileHandle.standardError.write(Data("error: \(rank)\(error.worded(Flags.name))\n".utf8))
        if world().isDistributed { world().abort(code: error.exitCode) }
        exit(error.exitCode)
    } catch {
        let code = Diffuse.exitCode(for: error)
        if code == .success {
            Diffuse.exit(withError: error)
        }
        let message = Diffuse.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
        FileHandle.standardError.write(Data("error: \(message) (see --help)\n".utf8))
        if world().isDistributed { world().abort(code: 2) }
        exit(2)
    }
}

runMain()
