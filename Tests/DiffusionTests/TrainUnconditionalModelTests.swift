// train_unconditional.py's RGB model (issue 13 item 4): diffusers' parameter count, and a
// training step and a sampling step of the bench workloads at 32 and 64 pixels on the CPU.
import CPUBackend
import DiffusionModels
import Tensor
import XCTest

@testable import DiffusionPipelines

final class TrainUnconditionalModelTests: XCTestCase {
    func testTheModelHasDiffusersParametersAndTrainsAndSamples() throws {
        let device = CPUDevice.shared
        // UNet2DModel(sample_size=32, ..., block_out_channels=(128, 128, 256, 256, 512, 512)) in diffusers 0.42.1.
        let model = try UNet2DModel(
            config: .trainUnconditional(sampleSize: 32), generator: RandomGenerator(seed: 0), device: device)
        XCTAssertEqual(model.parameterCount, 113_673_219)
        for name in ["unet2d_rgb32_train", "unet2d_rgb32_sample_step", "unet2d_rgb64_train"] {
            let workload = try Benchmark.workload(name, device: device, batchSize: 1)
            let result = try workload.step().toArray()
            XCTAssertTrue(result.allSatisfy(\.isFinite), name)
            XCTAssertEqual(result.count, name.hasSuffix("sample_step") ? 3 * 32 * 32 : 1, name)
        }
    }
}
