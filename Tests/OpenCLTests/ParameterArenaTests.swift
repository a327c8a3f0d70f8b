// ParameterArena (issue 9, item 3): parameters and gradients in one buffer each, so that AdamW,
// clipping and the EMA are one launch over all parameters. Checked on both backends against the
// same steps without an arena, including gradient accumulation, a shared and an unused parameter.
import NN
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class ParameterArenaTests: XCTestCase {
    /// A linear as a 1x1 convolution (its weight reshaped, as attention's projections) -> conv ->
    /// group norm + SiLU -> linear, plus a linear applied twice (its gradients add up) and an
    /// optional parameter no op uses.
    final class Net: Module {
        let project: Linear
        let conv: Conv2d
        let norm: GroupNorm
        let head: Linear
        let shared: Linear
        init(device: Device, unused: Bool) throws {
            let generator = RandomGenerator(seed: 7)
            project = try Linear(inFeatures: 3, outFeatures: 3, generator: generator, device: device)
            conv = try Conv2d(
                inChannels: 3, outChannels: 5, kernelSize: 3, padding: 1, generator: generator, device: device)
            norm = try GroupNorm(groups: 5, channels: 5, device: device)
            head = try Linear(inFeatures: 5 * 7 * 7, outFeatures: 4, generator: generator, device: device)
            shared = try Linear(inFeatures: 4, outFeatures: 4, generator: generator, device: device)
            super.init()
            child("project", project)
            child("conv", conv)
            child("norm", norm)
            child("head", head)
            child("shared", shared)
            // A module's own parameters come first in namedParameters: this one is first.
            if unused { parameter("unused", try Tensor.full([3], value: 0.5, on: device)) }
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let projected = try x.conv2d(weight: project.weight.reshaped([3, 3, 1, 1]), bias: project.bias)
            let h = try norm(conv(projected), silu: true).reshaped([x.shape[0], 5 * 7 * 7])
            return try shared(shared(head(h)))
        }
    }

    struct Run {
        var parameters: [[Float]]
        var average: [[Float]]
        var inPlace: [Bool]
    }

    /// Three AdamW steps (the last with two backward passes and clipping), with or without an arena.
    func train(on device: Device, arena useArena: Bool, unused: Bool = false) throws -> Run {
        let net = try Net(device: device, unused: unused)
        let arena = useArena ? try ParameterArena(net.parameters) : nil
        let optimizer = try Adam(
            parameters: net.parameters, learningRate: 0.01, weightDecay: 0.1, variant: .adamw, arena: arena)
        let ema = try ExponentialMovingAverage(parameters: net.parameters, maxDecay: 0.9, arena: arena)
        let generator = RandomGenerator(seed: 3)
        var inPlace: [Bool] = []
        for step in 0..<3 {
            for _ in 0..<(step == 2 ? 2 : 1) {
                let x = try Tensor.normal([2, 3, 7, 7], generator: generator, on: device)
                let target = try Tensor.normal([2, 4], generator: generator, on: device)
                try Tensor.mseLoss(net(x), target).backward()
            }
            inPlace.append(arena?.gradientsInPlace ?? false)
            if step == 2 { try GradientClipping.clipNorm(net.parameters, maxNorm: 0.05, arena: arena) }
            try optimizer.update()
            optimizer.zeroGradients()
            try ema.step(net.parameters)
        }
        return Run(
            parameters: try net.parameters.map { try $0.toArray() }, average: try ema.shadow.map { try $0.toArray() },
            inPlace: inPlace)
    }

    func assertClose(_ a: [[Float]], _ b: [[Float]], _ message: String) {
        XCTAssertEqual(a.count, b.count, message)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.count, y.count, message)
            for (u, v) in zip(x, y) { XCTAssertEqual(u, v, accuracy: 2e-6 * max(1, abs(v)), message) }
        }
    }

    func testArenaStepsMatchPerTensorSteps() throws {
        try DevicesUnderTest.each { device in
            let plain = try train(on: device, arena: false)
            let fused = try train(on: device, arena: true)
            XCTAssertEqual(fused.inPlace, [true, true, true], "\(device.name): every gradient in its slot")
            assertClose(fused.parameters, plain.parameters, "\(device.name): parameters")
            assertClose(fused.average, plain.average, "\(device.name): EMA")
        }
    }

    func testArenaStepsMatchOnTheGPUKernels() throws {
        // There weight gradients are deferred sums into the slots: the update over the whole arena
        // must see them (a deferred write into a view counts as a write into its parent).
        try withGPUKernels { device in
            let plain = try train(on: device, arena: false)
            device.ledger.reset()
            let fused = try train(on: device, arena: true)
            XCTAssertNotNil(device.ledger.rows["sum_deferred"], "no deferred sums ran")
            XCTAssertEqual(fused.inPlace, [true, true, true])
            assertClose(fused.parameters, plain.parameters, "parameters")
        }
    }

    func testAnUnusedParameterKeepsPyTorchsSkipRule() throws {
        // PyTorch's Adam leaves a parameter without a gradient alone (no decay, no moment update):
        // the arena's one-launch step does not apply, the per-tensor one does.
        try DevicesUnderTest.each { device in
            let plain = try train(on: device, arena: false, unused: true)
            let fused = try train(on: device, arena: true, unused: true)
            XCTAssertEqual(fused.inPlace, [false, false, false], device.name)
            XCTAssertEqual(fused.parameters.first, [0.5, 0.5, 0.5], "\(device.name): the unused parameter moved")
            assertClose(fused.parameters, plain.parameters, "\(device.name): parameters")
        }
    }

    func testTakingParametersInKeepsTheirValuesInAlignedViews() throws {
        try DevicesUnderTest.each { device in
            let net = try Net(device: device, unused: true)
            let before = try net.parameters.map { try $0.toArray() }
            let arena = try ParameterArena(net.parameters)
            XCTAssertEqual(try net.parameters.map { try $0.toArray() }, before, device.name)
            XCTAssertTrue(arena.offsets.allSatisfy { $0 % device.viewAlignment == 0 }, device.name)
            XCTAssertEqual(device.viewAlignment % 16, 0, device.name)
            let whole = try arena.values.toArray()
            for (offset, values) in zip(arena.offsets, before) {
                XCTAssertEqual(Array(whole[offset..<offset + values.count]), values, device.name)
            }
            XCTAssertEqual(whole.reduce(0) { $0 + abs($1) }, before.joined().reduce(0) { $0 + abs($1) }, "gaps are zero")
            // The views are the parameters: writing the arena writes them.
            try arena.values.assign([Float](repeating: 2, count: arena.count))
            XCTAssertEqual(try net.conv.weight.toArray(), [Float](repeating: 2, count: net.conv.weight.count))
            // An unused parameter's slot is zeroed and becomes its gradient for an all-reduce.
            try Tensor.mseLoss(net(try Tensor.zeros([1, 3, 7, 7], on: device)), try Tensor.zeros([1, 4], on: device))
                .backward()
            XCTAssertFalse(arena.gradientsInPlace)
            try arena.gatherGradients()
            XCTAssertTrue(arena.gradientsInPlace)
            XCTAssertEqual(try net.parameters.first!.grad!.toArray(), [0, 0, 0])
        }
    }

    func testAnArenaStepIsOneAdamLaunchAndNoExtraCopies() throws {
        let device = try DevicesUnderTest.opencl()
        func launches(arena: Bool) throws -> (adam: Int, other: Int) {
            let net = try Net(device: device, unused: false)
            let optimizer = try Adam(
                parameters: net.parameters, variant: .adamw, arena: arena ? ParameterArena(net.parameters) : nil)
            let x = try Tensor.ones([2, 3, 7, 7], on: device)
            let target = try Tensor.zeros([2, 4], on: device)
            func step() throws {
                try Tensor.mseLoss(net(x), target).backward()
                try optimizer.update()
                optimizer.zeroGradients()
                _ = try net.conv.weight.toArray()
            }
            try step()
            device.ledger.reset()
            try step()
            let adam = device.ledger.rows.values.filter { $0.kernel.hasPrefix("adam_update") }.reduce(0) { $0 + $1.launches }
            return (adam, device.ledger.totalLaunches - adam)
        }
        let plain = try launches(arena: false)
        let fused = try launches(arena: true)
        XCTAssertEqual(fused.adam, 1)
        XCTAssertGreaterThanOrEqual(plain.adam, 1)
        // Every gradient was written into its slot by the op computing it: not one copy more.
        XCTAssertEqual(fused.other, plain.other)
    }
}
