// libFuzzer harness: unet/config.json through validation and, for configs small enough to build
// quickly (the fuzzer runs thousands a second), model construction on the CPU.
import CPUBackend
import DiffusionModels
import Foundation
import Tensor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUNetConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let config = try? JSONDecoder().decode(UNet2DConfig.self, from: Data(bytes: data, count: size)),
        (try? config.validate(source: "fuzz")) != nil
    else { return 0 }
    guard config.blockOutChannels.reduce(0, +) <= 256, config.layersPerBlock <= 3,
        (config.sampleSize ?? 32) <= 64
    else { return 0 }
    _ = try? UNet2DModel(config: config, generator: RandomGenerator(seed: 0), device: CPUDevice.shared)
    return 0
}
