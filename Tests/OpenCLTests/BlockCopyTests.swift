// Strided block copies (concatenation, slicing, a parameter arena's packing) on both OpenCL kernel
// sets against the CPU: one float per work-item (`copy_blocks`, `copy_blocks_pair`, what GPUs run)
// and 16 per work-item (`copy_blocks_rows`, `copy_blocks_pair_rows`, CPU devices), with block
// lengths around 16 (tails of 1 and 15), one block, offsets, strides and accumulation.
import CPUBackend
import Tensor
import TestSupport
import XCTest

@testable import OpenCLBackend

final class BlockCopyTests: XCTestCase {
    let geometries: [BlockCopyGeometry] = [
        BlockCopyGeometry(
            blockCount: 3, blockLength: 7, sourceOffset: 1, sourceStride: 9, destinationOffset: 0, destinationStride: 7),
        BlockCopyGeometry(
            blockCount: 1, blockLength: 33, sourceOffset: 0, sourceStride: 33, destinationOffset: 5, destinationStride: 33,
            accumulate: true),
        BlockCopyGeometry(
            blockCount: 4, blockLength: 16, sourceOffset: 3, sourceStride: 20, destinationOffset: 2, destinationStride: 17),
        BlockCopyGeometry(
            blockCount: 2, blockLength: 1, sourceOffset: 0, sourceStride: 3, destinationOffset: 1, destinationStride: 2,
            accumulate: true),
        BlockCopyGeometry(
            blockCount: 5, blockLength: 49, sourceOffset: 7, sourceStride: 64, destinationOffset: 0, destinationStride: 98),
    ]

    /// Every geometry alone, then in pairs (the last one alone), from and into fixed test values.
    func results(on device: Device) throws -> [[Float]] {
        let sources = try geometries.enumerated().map { i, g in
            try Tensor(
                testValues(g.sourceOffset + g.blockCount * g.sourceStride, seed: 500 + UInt64(i)),
                shape: [g.sourceOffset + g.blockCount * g.sourceStride], on: device)
        }
        func destinations() throws -> [Tensor] {
            try geometries.enumerated().map { i, g in
                try Tensor(
                    testValues(g.destinationOffset + g.blockCount * g.destinationStride, seed: 600 + UInt64(i)),
                    shape: [g.destinationOffset + g.blockCount * g.destinationStride], on: device)
            }
        }
        let alone = try destinations()
        for (i, g) in geometries.enumerated() { try device.copyBlocks(from: sources[i].buffer, to: alone[i].buffer, g) }
        let paired = try destinations()
        try device.copyBlocks(
            geometries.indices.map { BlockCopy(from: sources[$0].buffer, to: paired[$0].buffer, geometries[$0]) })
        return try (alone + paired).map { try $0.toArray() }
    }

    func testBothKernelSetsMatchTheCPU() throws {
        let gpu = try DevicesUnderTest.opencl()
        let expected = try results(on: CPUDevice.shared)
        let saved = gpu.prefersVectorItems
        defer { gpu.prefersVectorItems = saved }
        for (vector, kernels) in [
            (true, ["copy_blocks_rows", "copy_blocks_pair_rows"]), (false, ["copy_blocks", "copy_blocks_pair"]),
        ] {
            gpu.prefersVectorItems = vector
            gpu.ledger.reset()
            XCTAssertEqual(try results(on: gpu), expected, "vector items: \(vector)")
            // Five alone and the last of the pairs alone; two pairs.
            XCTAssertEqual(gpu.ledger.rows[kernels[0]]?.launches, 6, kernels[0])
            XCTAssertEqual(gpu.ledger.rows[kernels[1]]?.launches, 2, kernels[1])
        }
    }
}
