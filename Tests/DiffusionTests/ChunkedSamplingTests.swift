// Sampling a batch in chunks (issue 10 item 5): the chunk sizes SamplingMemory picks, and that a
// chunked run gives the images of the unchunked one (each chunk's noise is its slice of the batch's).
import CPUBackend
import DataIO
import DiffusionModels
import DiffusionPipelines
import Tensor
import TestSupport
import XCTest

final class ChunkedSamplingTests: XCTestCase {
    func testChunkSizesFitTheBudgetAndKeepRandomBlocksWhole() {
        // Fits: the whole batch.
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 37, imageSize: 784, bytesPerImage: 1e6, budget: 1e9), 37)
        // Ten fit; 784 values per image start every chunk on a whole block.
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 37, imageSize: 784, bytesPerImage: 1e6, budget: 1e7), 10)
        // 25 values per image: chunks are multiples of 4 images so each starts on a whole block.
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 37, imageSize: 25, bytesPerImage: 1e6, budget: 1e7), 8)
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 37, imageSize: 25, bytesPerImage: 1e6, budget: 1), 4)
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 37, imageSize: 50, bytesPerImage: 1e6, budget: 1), 2)
        // Nothing fits: still one image (or one aligned group) at a time, never zero.
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 5, imageSize: 784, bytesPerImage: 1e12, budget: 1e6), 1)
        XCTAssertEqual(SamplingMemory.chunkSize(batch: 1, imageSize: 25, bytesPerImage: 1e12, budget: 1), 1)
    }

    func testTheEstimateGrowsWithTheImageAndCountsAttention() {
        var config = UNet2DConfig.tutorial
        let small = SamplingMemory.bytesPerImage(config, device: CPUDevice.shared)
        // The tutorial model at 28x28: skips, working set and the CPU's saved attention
        // probabilities (8 heads x 196^2) come to a few MB per image.
        XCTAssertGreaterThan(small, 1e6)
        XCTAssertLessThan(small, 1e7)
        config.sampleSize = 56
        let large = SamplingMemory.bytesPerImage(config, device: CPUDevice.shared)
        // Four times the pixels; the attention probabilities grow sixteen-fold.
        XCTAssertGreaterThan(large, 4 * small)
        XCTAssertLessThan(large, 16 * small)
    }

    func testChunkedSamplingGivesTheUnchunkedImages() throws {
        var config = UNet2DConfig()
        config.sampleSize = 8
        config.inChannels = 1
        config.outChannels = 1
        config.layersPerBlock = 1
        config.blockOutChannels = [8, 16]
        config.downBlockTypes = [.downBlock2D, .attnDownBlock2D]
        config.upBlockTypes = [.attnUpBlock2D, .upBlock2D]
        config.normNumGroups = 4
        config.attentionHeadDim = 4
        let unet = try UNet2DModel(config: config, generator: RandomGenerator(seed: 3), device: CPUDevice.shared)
        for (kind, eta) in [(SamplerKind.ddpm, Float(0)), (.ddim, 0.5)] {
            var results: [[Float]] = []
            for chunk in [nil, 4, 2] as [Int?] {
                var sampler = UNetSampler(kind: kind, steps: 4, eta: eta, config: SchedulerConfig())
                sampler.maxChunk = chunk
                let noise = try Tensor.normal([6, 1, 8, 8], generator: RandomGenerator(seed: 9), on: CPUDevice.shared)
                let result = try sampler.sample(
                    unet: unet, initialNoise: noise,
                    generator: RandomGenerator(seed: 9, offset: 1 << 40), recordTrajectory: true)
                XCTAssertEqual(result.sample.shape, [6, 1, 8, 8])
                XCTAssertEqual(result.trajectory.inputs.count, 4)
                XCTAssertEqual(result.trajectory.inputs.last?.count, 6 * 64)
                results.append(try result.sample.toArray())
            }
            for chunked in results.dropFirst() {
                let scale = results[0].map(abs).max() ?? 1
                let worst = zip(chunked, results[0]).map { abs($0 - $1) }.max() ?? 0
                XCTAssertLessThan(worst / scale, 1e-5, "\(kind) eta \(eta)")
            }
        }
    }

    /// BasicUNet's sampler in chunks gives the images (and the trajectory) of one pass.
    /// A random 8x8 BasicUNet saved in `folder` and loaded back as a pipeline.
    func basicUNetPipeline(in folder: URL, steps: Int) throws -> (BasicUNetPipeline, BasicUNetConfig) {
        var config = BasicUNetConfig()
        config.sampleSize = 8
        let model = try BasicUNet(config: config, generator: RandomGenerator(seed: 5), device: CPUDevice.shared)
        try BasicUNetFolder.save(model, sampler: X0MixingSamplerConfig(numInferenceSteps: steps), to: folder)
        return (try BasicUNetPipeline.load(folder, device: CPUDevice.shared), config)
    }

    func testChunkedBasicUNetSamplingGivesTheUnchunkedImages() throws {
        let (pipeline, _) = try basicUNetPipeline(in: try makeScratchDirectory(), steps: 3)
        var request = SampleRequest()
        request.batchSize = 7
        request.recordTrajectory = true
        var notices: [String] = []
        request.notice = { notices.append($0) }
        var results: [SampleOutput] = []
        for chunk in [nil, 3, 1] as [Int?] {
            pipeline.maxChunk = chunk
            results.append(try pipeline.sample(request))
        }
        XCTAssertEqual(notices.count, 2, "each chunked run says so")
        for chunked in results.dropFirst() {
            XCTAssertEqual(chunked.sample.shape, [7, 1, 8, 8])
            assertClose(try chunked.sample.toArray(), try results[0].sample.toArray(), tolerance: 1e-6)
            XCTAssertEqual(chunked.trajectory, results[0].trajectory)
        }
    }

    /// --init-noise is checked before anything reaches the device: sizes the model's resampling
    /// cannot keep aligned, and images too large for the device even one at a time.
    func testInitialNoiseSizesAreChecked() throws {
        let folder = try makeScratchDirectory()
        let (pipeline, config) = try basicUNetPipeline(in: folder, steps: 2)
        for (shape, fragment) in [([1, 1, 10, 8], "positive multiples of 4"), ([1, 1, 8, 0], "positive multiples of 4")] {
            let url = folder.appendingPathComponent("noise-\(shape[2])x\(shape[3]).safetensors")
            try Safetensors.write(
                [
                    (
                        name: "sample",
                        tensor: SafetensorsTensor(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
                    )
                ],
                metadata: [:], to: url)
            var request = SampleRequest()
            request.initialNoise = url
            XCTAssertThrowsError(try pipeline.sample(request)) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
        // 16384 x 16384 BasicUNet images: about 40 GiB each, refused before any is drawn.
        let huge = SamplingMemory.bytesPerImage(config, height: 1 << 14, width: 1 << 14)
        XCTAssertGreaterThan(huge, 30 * Double(1 << 30))
        XCTAssertThrowsError(
            try SamplingMemory.requireOneImageFits(bytesPerImage: huge, height: 1 << 14, width: 1 << 14, device: CPUDevice.shared)
        ) { XCTAssertTrue("\($0)".contains("16384x16384 image needs about"), "\($0)") }
        XCTAssertNoThrow(
            try SamplingMemory.requireOneImageFits(
                bytesPerImage: SamplingMemory.bytesPerImage(config, height: 28, width: 28), height: 28, width: 28,
                device: CPUDevice.shared))
    }
}
