// Running the same op on OpenCL and on its CPU twin: outputs and the gradients of sum(out * w).
import CPUBackend
import DiffuseCore
import OpenCLBackend
import Tensor
import TestSupport
import XCTest

/// Compares forward and backward of `f` between the CPU and OpenCL within `tolerance` (max error
/// relative to the largest CPU magnitude).
func compareBackends(
    _ name: String, _ inputs: [(values: [Float], shape: [Int])], tolerance: Float = 1e-5,
    file: StaticString = #filePath, line: UInt = #line, _ f: ([Tensor]) throws -> Tensor
) throws {
    let gpu = try DevicesUnderTest.opencl(file: file, line: line)
    var results: [(out: [Float], grads: [[Float]])] = []
    for device in [CPUDevice.shared as Device, gpu] {
        let leaves = try inputs.map { input -> Tensor in
            let t = try Tensor(input.values, shape: input.shape, on: device)
            t.requiresGrad = true
            return t
        }
        let out = try f(leaves)
        let weights = try Tensor(testValues(out.count, seed: 77), shape: out.shape, on: device)
        try (out * weights).sum().backward()
        results.append((try out.toArray(), try leaves.map { try XCTUnwrap($0.grad, "\(name): no gradient").toArray() }))
    }
    XCTAssertLessThan(
        relativeError(results[1].out, results[0].out, floor: 1e-6), tolerance, "\(name) forward", file: file, line: line)
    for i in inputs.indices {
        XCTAssertLessThan(
            relativeError(results[1].grads[i], results[0].grads[i], floor: 1e-6), tolerance,
            "\(name) gradient of input \(i)", file: file, line: line)
    }
}

/// The output of `f` and every input's gradient under a fixed upstream gradient (testValues seed 5),
/// on one device: for comparing two formulations of an op on the same backend.
func outputAndGradients(
    _ inputs: [(values: [Float], shape: [Int])], on device: Device, _ f: ([Tensor]) throws -> Tensor
) throws -> [[Float]] {
    let leaves = try inputs.map { input -> Tensor in
        let t = try Tensor(input.values, shape: input.shape, on: device)
        t.requiresGrad = true
        return t
    }
    let out = try f(leaves)
    try out.backward(gradient: try Tensor(testValues(out.count, seed: 5), shape: out.shape, on: device))
    return [try out.toArray()] + (try leaves.map { try XCTUnwrap($0.grad).toArray() })
}

/// (input [N, C, H, W], weight [Cout, C, kh, kw], stride, padding, bias)
typealias ConvolutionCase = (input: [Int], weight: [Int], stride: Int, padding: Int, bias: Bool)

/// A convolution (with its input, weight and bias gradients) on both backends, within 1e-4.
func compareConvolution(_ c: ConvolutionCase, file: StaticString = #filePath, line: UInt = #line) throws {
    var inputs = [
        (try testValues(Shape.count(c.input), seed: 1), c.input),
        (try testValues(Shape.count(c.weight), seed: 2), c.weight),
    ]
    if c.bias { inputs.append((try testValues(c.weight[0], seed: 3), [c.weight[0]])) }
    try compareBackends(
        "conv \(c.input) * \(c.weight) stride \(c.stride) padding \(c.padding) bias \(c.bias)", inputs,
        tolerance: 1e-4, file: file, line: line
    ) {
        try $0[0].conv2d(weight: $0[1], bias: c.bias ? $0[2] : nil, stride: c.stride, padding: c.padding)
    }
}
