// `diffuse convert MODEL --output DIR`: a pipeline with pickled weights rewritten as safetensors.
import ArgumentParser
import DiffuseCore
import DiffusionPipelines
import Foundation

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a pipeline folder with safetensors weights (from PyTorch .bin pickles, read without running code).")

    @Argument(help: "Model folder, or a Hub repository id owner/name[@revision].")
    var model: String
    @Option(help: "The folder to write (refused if it exists, unless --overwrite).")
    var output: String
    @OptionGroup var overwriteOption: OverwriteOption

    func validate() throws {
        guard !output.isEmpty else { throw ValidationError("--output is empty: give the folder to write") }
    }

    func run() throws {
        let folder = URL(fileURLWithPath: output)
        try OutputCheck.validateRunFolder(folder.path)
        let source = try ModelSource.resolve(model)
        guard source.standardizedFileURL.path != folder.standardizedFileURL.path else {
            throw DiffuseError.usage("--output \(output) is the model folder itself; write the conversion elsewhere")
        }
        let existed = FileManager.default.fileExists(atPath: folder.path)
        try PipelineFolder.prepareOutput(folder, overwrite: overwriteOption.overwrite)
        let written: [URL]
        do {
            written = try PipelineConversion.convert(source, to: folder)
        } catch {
            if !existed { try? FileManager.default.removeItem(at: folder) }  // nothing half-written is left
            throw error
        }
        print("converted \(model) into \(folder.path): \(written.map(\.lastPathComponent).count) safetensors weights file(s)")
    }
}
