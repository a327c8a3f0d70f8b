// libFuzzer harness: scheduler_config.json through validation and on to the schedules and
// timesteps built from it (betas, alphas, spacings).
import DiffusionModels
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSchedulerConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let config = try? JSONDecoder().decode(SchedulerConfig.self, from: Data(bytes: data, count: size)),
        (try? config.validate(source: "fuzz")) != nil
    else { return 0 }
    if let scheduler = try? DDPMScheduler(config: config) {
        _ = try? scheduler.timesteps(steps: min(config.numTrainTimesteps, 50))
    }
    return 0
}
