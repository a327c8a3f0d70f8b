// Shape arithmetic shared by the tensor layer and every backend: broadcasting, strides, coalescing.

public enum Shape {
    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// Numpy broadcasting of two shapes, nil when they are incompatible.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Strides that read `shape` as if it had shape `target` (zero along broadcast dimensions).
    public static func broadcastStrides(of shape: [Int], to target: [Int]) -> [Int] {
        let own = contiguousStrides(shape)
        let lead = target.count - shape.count
        return (0..<target.count).map { i in
            if i < lead { return 0 }
            return shape[i - lead] == 1 && target[i] != 1 ? 0 : own[i - lead]
        }
    }

    /// Drops unit dimensions and merges neighbours that every stride set walks contiguously.
    public static func coalesce(shape: [Int], strides: [[Int]]) -> (shape: [Int], strides: [[Int]]) {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        for axis in 0..<shape.count where shape[axis] != 1 {
            if let last = outShape.last,
                strides.indices.allSatisfy({ outStrides[$0].last! == strides[$0][axis] * shape[axis] })
            {
                outShape[outShape.count - 1] = last * shape[axis]
                for s in strides.indices { outStrides[s][outStrides[s].count - 1] = strides[s][axis] }
            } else {
                outShape.append(shape[axis])
                for s in strides.indices { outStrides[s].append(strides[s][axis]) }
            }
        }
        if outShape.isEmpty { return ([1], strides.map { _ in [1] }) }
        return (outShape, outStrides)
    }
}
