// The data-parallel all-reduce on an OpenCL device: gradients are packed on the device by block
// copies and read in one wait, not one per parameter, and a steady-state step allocates nothing;
// a parameter arena's gradients are read and written back whole, with no packing.
// (A group of one sums nothing, so the gradients come back as they were; DataParallelCLITests
// checks the sums under mpirun.)
import DataParallel
import Tensor
import TestSupport
import XCTest

@testable import DiffusionPipelines
@testable import OpenCLBackend

final class GradientAllReduceTests: XCTestCase {
    func testGradientsArePackedAndReadInOneWait() throws {
        let device = try DevicesUnderTest.opencl()
        // Odd sizes, one parameter without a gradient (a process with no images in the batch).
        let shapes = [[7], [3, 5], [1], [33, 3], [4, 1, 3, 3]]
        let parameters = try shapes.enumerated().map { i, shape in
            try Tensor.uniform(shape, generator: RandomGenerator(seed: UInt64(i)), on: device)
        }
        let gradients = try shapes.enumerated().map { i, shape in
            try Tensor.normal(shape, generator: RandomGenerator(seed: UInt64(10 + i)), on: device)
        }
        let allReduce = GradientAllReduce(group: .single, parameters: parameters)
        func step(_ round: Int) throws -> Bool {
            for (i, p) in parameters.enumerated() { p.grad = i == 2 ? nil : gradients[i] }
            return try allReduce(stopRequested: round == 1)
        }
        XCTAssertFalse(try step(0))
        device.ledger.reset()
        XCTAssertTrue(try step(1), "the stop flag comes back")
        XCTAssertEqual(device.ledger.hostWaits, 1, "one read for all the gradients")
        // The packed and summed buffers are kept from the first step; only the zeros of the
        // parameter without a gradient may need a buffer the pool does not have.
        XCTAssertLessThanOrEqual(device.ledger.buffersCreated, 1)
        // Packing and unpacking 5 tensors, two copies per launch (zeroing the missing one aside).
        XCTAssertEqual(
            (device.ledger.rows["copy_blocks_pair"]?.launches ?? 0)
                + (device.ledger.rows["copy_blocks_pair_rows"]?.launches ?? 0),
            4)
        for (i, p) in parameters.enumerated() {
            let grad = try XCTUnwrap(p.grad)
            XCTAssertFalse(grad === gradients[i], "each parameter gets the summed tensor")
            let expected = i == 2 ? [Float](repeating: 0, count: p.count) : try gradients[i].toArray()
            XCTAssertEqual(try grad.toArray(), expected, "parameter \(i)")
        }
    }

    func testAnArenasGradientsAreSummedWholeWithoutPacking() throws {
        let device = try DevicesUnderTest.opencl()
        let shapes = [[7], [3, 5], [1], [33, 3]]
        let parameters = try shapes.enumerated().map { i, shape in
            try Tensor.uniform(shape, generator: RandomGenerator(seed: UInt64(i)), on: device)
        }
        let arena = try ParameterArena(parameters)
        let allReduce = GradientAllReduce(group: .single, parameters: parameters, arena: arena)
        let gradients = try shapes.enumerated().map { i, shape in
            try Tensor.normal(shape, generator: RandomGenerator(seed: UInt64(10 + i)), on: device)
        }
        for (i, p) in parameters.enumerated() where i != 2 { try p.gradientSlot!.copy(from: gradients[i]) }
        for (i, p) in parameters.enumerated() { p.grad = i == 2 ? nil : p.gradientSlot }
        device.ledger.reset()
        XCTAssertTrue(try allReduce(stopRequested: true))
        XCTAssertEqual(device.ledger.hostWaits, 1, "one read for the whole arena")
        XCTAssertEqual(device.ledger.buffersCreated, 0)
        XCTAssertFalse(device.ledger.rows.keys.contains { $0.hasPrefix("copy_blocks") }, "no packing")
        XCTAssertTrue(arena.gradientsInPlace, "the parameter without a gradient adds zeros from its slot")
        for (i, p) in parameters.enumerated() {
            let expected = i == 2 ? [Float](repeating: 0, count: p.count) : try gradients[i].toArray()
            XCTAssertEqual(try p.grad!.toArray(), expected, "parameter \(i)")
        }
    }
}
