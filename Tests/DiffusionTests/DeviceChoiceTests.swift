// --device for the processes of a data-parallel job: each process of a host takes its own device
// by its local rank, counting round the devices (or the list given).
import CPUBackend
import DiffuseCore
import DiffusionPipelines
import OpenCLBackend
import Tensor
import TestSupport
import XCTest

final class DeviceChoiceTests: XCTestCase {
    func testEachLocalRankTakesTheNextDevice() throws {
        XCTAssertTrue(try DeviceChoice.resolve("cpu", localRank: 3) is CPUDevice)
        for bad in ["opencl:", "opencl:0,", "opencl:a,1", "opencl:-1", "gpu"] {
            XCTAssertThrowsError(try DeviceChoice.resolve(bad, localRank: 1), bad) { error in
                guard case DiffuseError.usage(let message) = error else { return XCTFail("\(bad): \(error)") }
                XCTAssertTrue(message.contains("opencl:N,M"), message)
            }
        }
        _ = try DevicesUnderTest.opencl()
        let all = OpenCLPlatforms.devices()
        // opencl: local rank r takes device r, counting round.
        for rank in 0..<(all.count + 1) {
            let device = try XCTUnwrap(try DeviceChoice.resolve("opencl", localRank: rank) as? OpenCLDevice)
            XCTAssertEqual(device.info.index, all[rank % all.count].index, "local rank \(rank)")
        }
        // opencl:LIST: local rank r takes the list's r-th, counting round.
        let last = all.count - 1
        for (rank, expected) in [(0, last), (1, 0), (2, last)] {
            let device = try XCTUnwrap(try DeviceChoice.resolve("opencl:\(last),0", localRank: rank) as? OpenCLDevice)
            XCTAssertEqual(device.info.index, expected, "local rank \(rank)")
        }
        XCTAssertThrowsError(try DeviceChoice.resolve("opencl:0,\(all.count)", localRank: 1))
    }
}
