// Sampling split over the processes of a data-parallel job: each draws its slice of the batch
// (SampleRequest.initialNoise), then every one gets the whole batch back. The gather is an
// all-reduce of a zeroed batch into which each process wrote its own slice: x + 0 is exact, so
// the images are bit for bit those one process draws.
import DataParallel
import Tensor

extension SampleOutput {
    /// The whole batch from each process's `shard` of it (itself for one process).
    func gathered(_ shard: ImageShard?, group: ProcessGroup) throws -> SampleOutput {
        guard let shard else { return self }
        return SampleOutput(
            sample: try Self.gather(sample, shard, group), images: try Self.gather(images, shard, group), trajectory: trajectory)
    }

    static func gather(_ part: Tensor, _ shard: ImageShard, _ group: ProcessGroup) throws -> Tensor {
        let perImage = part.count / max(shard.count, 1)
        var whole = [Float](repeating: 0, count: perImage * shard.total)
        try whole.withUnsafeMutableBufferPointer { all in
            let mine = UnsafeMutableBufferPointer(
                rebasing: all[(shard.first * perImage)..<((shard.first + shard.count) * perImage)])
            try part.device.download(part.buffer, to: mine)
            try group.allReduceSum(all)
        }
        return try Tensor(whole, shape: [shard.total] + part.shape.dropFirst(), on: part.device)
    }
}
