// The pipeline registry: folders are loaded by the _class_name of model_index.json, a new pipeline
// is one registered type, and the README's example of using the library runs as written.
import CPUBackend
import DataIO
import DiffuseCore
import DiffusionModels
import DiffusionPipelines
import Foundation
import Tensor
import TestSupport
import XCTest

/// A pipeline this test registers: BasicUNet weights under another class name, sampled by
/// returning the initial noise, so the registry's dispatch is visible in the output.
final class EchoPipeline: DiffusionPipeline {
    static let classNames: Set<String> = ["EchoPipeline"]
    let device: Device
    init(device: Device) { self.device = device }
    static func load(_ folder: URL, device: Device) throws -> EchoPipeline { EchoPipeline(device: device) }
    var imageChannels: Int { 1 }
    var imageSize: Int? { 4 }
    func sample(_ request: SampleRequest) throws -> SampleOutput {
        let x = try Tensor(
            [Float](repeating: 0.25, count: 16 * (request.batchSize ?? 1)), shape: [request.batchSize ?? 1, 1, 4, 4],
            on: device)
        return SampleOutput(sample: x, images: x, trajectory: nil)
    }
    func visualize(clean: Tensor, labels: [Int], generator: RandomGenerator) throws -> Image8 {
        Image8(width: 1, height: 1, channels: 1, pixels: [0])
    }
    func save(to folder: URL) throws {
        try PipelineFolder.writeIndex(ModelIndex(className: "EchoPipeline", components: [:]), to: folder)
    }
}

final class PipelineRegistryTests: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws { scratch = try makeScratchDirectory() }

    func testFoldersLoadByClassName() throws {
        let tiny = Fixtures.directory.appendingPathComponent("tiny-ddpm")
        XCTAssertTrue(try PipelineRegistry.pipelineType(of: tiny) == DDPMPipeline.self)
        XCTAssertTrue(PipelineRegistry.pipeline(forClass: "DDIMPipeline") == DDPMPipeline.self)
        XCTAssertTrue(PipelineRegistry.pipeline(forClass: "BasicUNetPipeline") == BasicUNetPipeline.self)
        XCTAssertEqual(PipelineRegistry.trainable.map { $0.trainingName }, ["basic-unet", "unet2d"])
        XCTAssertTrue(PipelineRegistry.trainable(named: "unet2d") == DDPMPipeline.self)
        XCTAssertNil(PipelineRegistry.trainable(named: "stable-diffusion"))
    }

    func testAnUnknownClassIsAnInputErrorNamingWhatLoads() throws {
        try PipelineFolder.writeIndex(ModelIndex(className: "StableDiffusionPipeline", components: [:]), to: scratch)
        assertInputError(["StableDiffusionPipeline", "cannot load", "DDPMPipeline", "BasicUNetPipeline"]) {
            _ = try PipelineRegistry.load(self.scratch, device: CPUDevice.shared)
        }
    }

    func testARegisteredPipelineIsLoadedWithoutOtherChanges() throws {
        try PipelineFolder.writeIndex(ModelIndex(className: "EchoPipeline", components: [:]), to: scratch)
        assertInputError(["EchoPipeline"]) { _ = try PipelineRegistry.load(self.scratch, device: CPUDevice.shared) }
        PipelineRegistry.register(EchoPipeline.self)
        let pipeline = try PipelineRegistry.load(scratch, device: CPUDevice.shared)
        XCTAssertTrue(pipeline is EchoPipeline)
        var request = SampleRequest()
        request.batchSize = 2
        XCTAssertEqual(try pipeline.sample(request).images.toArray(), [Float](repeating: 0.25, count: 32))
    }

    /// README "Architecture": sampling a pipeline from Swift (a local folder in place of the Hub id).
    func testTheReadmeLibraryExample() throws {
        let device = try DeviceChoice.resolve("cpu")
        let folder = try ModelSource.resolve(Fixtures.directory.appendingPathComponent("tiny-ddpm").path)
        let pipeline = try PipelineRegistry.load(folder, device: device)
        var request = SampleRequest()
        request.batchSize = 3
        request.steps = 4
        request.sampler = .ddim
        let images = try pipeline.sample(request).images
        XCTAssertEqual(images.shape, [3, pipeline.imageChannels, pipeline.imageSize ?? 0, pipeline.imageSize ?? 0])
        let values = try images.toArray()
        XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssertGreaterThan(Set(values).count, 10)
    }

    /// A loaded pipeline saved again loads back to the same samples (diffusers' layout, both classes).
    func testSavedPipelinesSampleAsTheirSources() throws {
        var config = BasicUNetConfig()
        config.sampleSize = 8
        let model = try BasicUNet(config: config, generator: RandomGenerator(seed: 3), device: CPUDevice.shared)
        let basic = scratch.appendingPathComponent("basic")
        try BasicUNetFolder.save(model, sampler: X0MixingSamplerConfig(numInferenceSteps: 3), to: basic)
        for source in [basic, Fixtures.directory.appendingPathComponent("tiny-ddpm")] {
            let pipeline = try PipelineRegistry.load(source, device: CPUDevice.shared)
            let copy = scratch.appendingPathComponent("copy-" + source.lastPathComponent)
            try pipeline.save(to: copy)
            XCTAssertEqual(try PipelineFolder.readIndex(copy).className, try PipelineFolder.readIndex(source).className)
            var request = SampleRequest()
            request.batchSize = 2
            request.steps = 3
            let reloaded = try PipelineRegistry.load(copy, device: CPUDevice.shared)
            XCTAssertEqual(
                try reloaded.sample(request).sample.toArray(), try pipeline.sample(request).sample.toArray(),
                source.lastPathComponent)
        }
    }

    /// Where a component has both, the safetensors file is read and the pickle is not even opened
    /// (a hostile .bin beside it changes nothing), as diffusers prefers safetensors.
    func testSafetensorsWinOverAPickleBesideThem() throws {
        let folder = scratch.appendingPathComponent("both")
        try FileManager.default.copyItem(at: Fixtures.directory.appendingPathComponent("tiny-ddpm"), to: folder)
        try FileManager.default.copyItem(
            at: Fixtures.directory.appendingPathComponent("pickle/evil_os_system.pt"),
            to: folder.appendingPathComponent("unet/diffusion_pytorch_model.bin"))
        XCTAssertNoThrow(try PipelineRegistry.load(folder, device: CPUDevice.shared))
        try FileManager.default.removeItem(at: folder.appendingPathComponent("unet/diffusion_pytorch_model.safetensors"))
        assertInputError(["the global os.system is not allowed"]) {
            _ = try PipelineRegistry.load(folder, device: CPUDevice.shared)
        }
    }

    /// BasicUNet has no scheduler, eta or labels: the request comes back as a typed refusal naming them.
    func testBasicUNetRefusesSchedulerChoicesByName() throws {
        var config = BasicUNetConfig()
        config.sampleSize = 8
        let model = try BasicUNet(config: config, generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
        try BasicUNetFolder.save(model, sampler: X0MixingSamplerConfig(), to: scratch)
        let pipeline = try PipelineRegistry.load(scratch, device: CPUDevice.shared)
        var request = SampleRequest()
        request.eta = 0.5
        request.classLabels = [1]
        XCTAssertThrowsError(try pipeline.sample(request)) {
            XCTAssertEqual($0 as? PipelineRequestError, .notApplicable([.eta, .classLabels], pipeline: "BasicUNetPipeline"))
        }
    }
}
