// Sampling a batch in chunks (issue 10 item 5): the chunk sizes SamplingMemory picks, and that a
// chunked run gives the images of the unchunked one (each chunk's noise is its slice of the batch's).
import CPUBackend
import DiffusionModels
import DiffusionPipelines
import Tensor
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
}
