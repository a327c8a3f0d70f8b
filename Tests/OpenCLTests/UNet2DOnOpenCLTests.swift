// The whole UNet2DModel (every supported block) on OpenCL against the CPU: output and gradients.
import CPUBackend
import DiffusionModels
import DiffusionPipelines
import NN
import OpenCLBackend
import Tensor
import TestSupport
import XCTest

final class UNet2DOnOpenCLTests: XCTestCase {
    /// Two levels, attention below the top, scale_shift resnets: small, and every kind of layer.
    static var smallConfig: UNet2DConfig {
        var config = UNet2DConfig()
        config.inChannels = 2
        config.outChannels = 2
        config.layersPerBlock = 1
        config.blockOutChannels = [8, 16]
        config.downBlockTypes = [.downBlock2D, .attnDownBlock2D]
        config.upBlockTypes = [.attnUpBlock2D, .upBlock2D]
        config.normNumGroups = 4
        config.attentionHeadDim = 4
        config.resnetTimeScaleShift = .scaleShift
        return config
    }

    func testSmallUNetAgreesWithTheCPU() throws {
        let gpu = try DevicesUnderTest.opencl()
        let config = UNet2DOnOpenCLTests.smallConfig
        var results: [[Float]] = []
        for device in [CPUDevice.shared as Device, gpu] {
            let model = try UNet2DModel(config: config, generator: RandomGenerator(seed: 3), device: device)
            let x = try Tensor.normal([2, 2, 8, 8], generator: RandomGenerator(seed: 4), on: device)
            let out = try model(x, timesteps: [5, 901])
            try Tensor.mseLoss(out, Tensor.zeros(out.shape, on: device)).backward()
            results.append(try out.toArray() + model.parameters.flatMap { try $0.grad!.toArray() })
        }
        XCTAssertLessThan(relativeError(results[1], results[0], floor: 1e-6), 1e-4)
    }
}
