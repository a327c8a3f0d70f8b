// Step-for-step parity of the tutorial's two training recipes with PyTorch (issue 15): Diffuse starts
// from PyTorch's initial weights and replays PyTorch's batches, noise and timesteps (or corruption
// amounts) for 200 steps, written by Tools/reference/training_replay.py. Every step's loss must
// match PyTorch's, within 1e-4 relative over the first 50 steps and 1e-3 up to step 200, and the
// final weights within 1e-3, on the CPU and on OpenCL. A drift here is a real difference in an op,
// the optimizer or the data path, which a single-step fixture can miss.
import DataIO
import DiffusionModels
import DiffusionPipelines
import Foundation
import NN
import Tensor
import TestSupport
import XCTest

final class TrainingReplayTests: XCTestCase {
    struct Replay {
        let fixture: [String: SafetensorsTensor]
        let steps: Int
        let batch: Int

        init(_ name: String) throws {
            fixture = try Fixtures.load(name)
            let indices = try XCTUnwrap(fixture["indices"])
            steps = indices.shape[0]
            batch = indices.shape[1]
        }

        func row(_ key: String, _ step: Int) throws -> [Float] {
            let all = try fixture.values(key)
            let width = all.count / steps
            return Array(all[step * width..<(step + 1) * width])
        }

        func indices(_ step: Int) throws -> ArraySlice<Int> { ArraySlice(try row("indices", step).map { Int($0) }) }

        /// The named weights under `prefix` ("init." or "delta."), keyed by their state-dict names.
        func weights(_ prefix: String) -> [String: (shape: [Int], values: [Float])] {
            var out: [String: (shape: [Int], values: [Float])] = [:]
            for (key, value) in fixture where key.hasPrefix(prefix) {
                out[String(key.dropFirst(prefix.count))] = (value.shape, value.values)
            }
            return out
        }

        /// PyTorch's final weights: the initial ones plus the stored change.
        func finalWeights() -> [String: (shape: [Int], values: [Float])] {
            let initial = weights("init.")
            return weights("delta.").reduce(into: [:]) { out, entry in
                guard let start = initial[entry.key] else { return }
                out[entry.key] = (entry.value.shape, zip(start.values, entry.value.values).map { $0 + $1 })
            }
        }

        /// Checks the replayed losses and final weights against PyTorch's. Weights are compared per
        /// tensor by relative L2 error, ||a - e|| / ||e||: two correct float32 runs (PyTorch on 1 and
        /// on 2 threads, Tools/reference/replay_floor.py) already differ by 1.5e-3 in the max norm.
        /// `zeroGradient` names parameters whose gradient is identically zero in exact arithmetic:
        /// their moves are Adam normalising rounding noise, different in any two implementations
        /// (PyTorch against itself: 6.8e-2), so they are only held to the distance Adam can move.
        func check(
            losses: [Float], module: Module, device: Device, learningRate: Float, zeroGradient: Set<String> = [],
            weightTolerance: Double = 1e-3, file: StaticString = #filePath, line: UInt = #line
        ) throws {
            let trace = ProcessInfo.processInfo.environment["REPLAY_TRACE"] != nil
            let expected = try fixture.values("loss")
            XCTAssertEqual(losses.count, expected.count, file: file, line: line)
            var worstEarly: Float = 0, worstLate: Float = 0
            for (i, (a, e)) in zip(losses, expected).enumerated() {
                let error = abs(a - e) / abs(e)
                if trace { print("step \(i + 1) loss \(a) torch \(e) relative error \(error)") }
                if i < 50 { worstEarly = max(worstEarly, error.isNaN ? .infinity : error) }
                worstLate = max(worstLate, error.isNaN ? .infinity : error)
            }
            print("replay on \(device.name): worst loss error \(worstEarly) (steps 1-50), \(worstLate) (all \(steps))")
            XCTAssertLessThanOrEqual(worstEarly, 1e-4, "loss over the first 50 steps on \(device.name)", file: file, line: line)
            XCTAssertLessThanOrEqual(worstLate, 1e-3, "loss over \(steps) steps on \(device.name)", file: file, line: line)
            let final = finalWeights(), initial = weights("init.")
            var worstName = "", worstWeight = 0.0, worstMax: Float = 0
            for (name, tensor) in module.namedParameters() {
                let e = try XCTUnwrap(final[name], "fixture has no delta.\(name)", file: file, line: line).values
                let a = try tensor.toArray()
                if zeroGradient.contains(name) {
                    let start = try XCTUnwrap(initial[name]).values
                    let moved = zip(a, start).map { abs(Double($0) - Double($1)) }.max() ?? 0
                    XCTAssertLessThanOrEqual(
                        moved, 2 * Double(steps) * Double(learningRate), "\(name) moved further than Adam can",
                        file: file, line: line)
                    continue
                }
                var difference = 0.0, norm = 0.0
                for (x, y) in zip(a, e) {
                    difference += (Double(x) - Double(y)) * (Double(x) - Double(y))
                    norm += Double(y) * Double(y)
                }
                let error = (difference / max(norm, 1e-30)).squareRoot()
                worstMax = max(worstMax, relativeError(a, e))
                if trace { print("weight \(name) relative L2 error \(error), max-norm \(relativeError(a, e))") }
                if !(error <= worstWeight) { (worstName, worstWeight) = (name, error.isNaN ? .infinity : error) }
            }
            print(
                "replay on \(device.name): worst final weight error \(worstWeight) relative L2 (\(worstName)), \(worstMax) "
                    + "max-norm"
            )
            XCTAssertLessThanOrEqual(worstWeight, weightTolerance, "final \(worstName) on \(device.name)", file: file, line: line)
        }
    }

    /// The tutorial UNet2DModel's parameters with an identically zero gradient: its 32-channel
    /// levels (down_blocks.0, up_blocks.2) normalise with 32 groups, one channel each, so norm2
    /// removes any per-channel constant that conv1's bias or the time-embedding projection adds;
    /// the last resnet's conv2 and shortcut biases likewise vanish in conv_norm_out.
    static func tutorialZeroGradient() -> Set<String> {
        var names: Set<String> = ["up_blocks.2.resnets.2.conv2.bias", "up_blocks.2.resnets.2.conv_shortcut.bias"]
        for (block, resnets) in [("down_blocks.0", 2), ("up_blocks.2", 3)] {
            for r in 0..<resnets {
                for p in ["conv1.bias", "time_emb_proj.weight", "time_emb_proj.bias"] {
                    names.insert("\(block).resnets.\(r).\(p)")
                }
            }
        }
        return names
    }

    static let dataset: MNISTDataset? = try? MNISTDataset(directory: MNISTDataset.defaultDirectory)

    func fashionMNIST() throws -> MNISTDataset {
        try XCTUnwrap(
            TrainingReplayTests.dataset,
            "Fashion-MNIST is needed at \(MNISTDataset.defaultDirectory.path): Tools/setup.sh installs it")
    }

    func testDDPMRecipeMatchesPyTorchStepForStep() throws {
        let replay = try Replay("replay_ddpm.safetensors")
        let dataset = try fashionMNIST()
        try DevicesUnderTest.each { device in
            var options = TrainingOptions()
            options.batchSize = replay.batch
            options.learningRate = 4e-4
            options.optimizer = .adamw
            options.betaSchedule = .squaredCosCapV2
            let trainer = try UNet2DTrainer(options: options, config: .tutorial, dataset: dataset, device: device)
            try trainer.model.load(state: replay.weights("init."), source: "replay_ddpm init")
            var losses: [Float] = []
            for step in 0..<replay.steps {
                let clean = try trainer.batcher.batch(try replay.indices(step), on: device)
                let noise = try Tensor(try replay.row("noise", step), shape: clean.shape, on: device)
                let timesteps = try replay.row("timesteps", step).map { Int($0) }
                let loss = try trainer.step(clean, labels: [], noise: noise, timesteps: timesteps)
                losses.append(try loss.item())
            }
            try replay.check(
                losses: losses, module: trainer.model, device: device, learningRate: 4e-4,
                zeroGradient: TrainingReplayTests.tutorialZeroGradient())
        }
    }

    func testBasicUNetRecipeMatchesPyTorchStepForStep() throws {
        let replay = try Replay("replay_basic_unet.safetensors")
        let dataset = try fashionMNIST()
        try DevicesUnderTest.each { device in
            var options = TrainingOptions()
            options.batchSize = replay.batch
            options.learningRate = 1e-3
            options.optimizer = .adam
            let trainer = try BasicUNetTrainer(options: options, dataset: dataset, device: device)
            try trainer.model.load(state: replay.weights("init."), source: "replay_basic_unet init")
            var losses: [Float] = []
            for step in 0..<replay.steps {
                let clean = try trainer.batcher.batch(try replay.indices(step), on: device)
                let noise = try Tensor(try replay.row("noise", step), shape: clean.shape, on: device)
                let amount = try Tensor(try replay.row("amount", step), shape: [replay.batch], on: device)
                losses.append(try trainer.step(clean, noise: noise, amount: amount).item())
            }
            // BasicUNet, unnormalised at Adam 1e-3, amplifies rounding more than the UNet2DModel: on
            // an earlier fixture, PyTorch against itself with oneDNN off (another correct convolution)
            // ended 1.8e-3 apart in down_layers.1.weight (Tools/reference/replay_floor.py). On this
            // fixture Diffuse ends 5.8e-4 (CPU) and 8.2e-4 (PoCL) apart; a regenerated fixture may
            // need the floor measured again before this bar is judged.
            try replay.check(losses: losses, module: trainer.model, device: device, learningRate: 1e-3)
        }
    }
}
