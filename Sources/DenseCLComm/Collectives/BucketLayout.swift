/// How a flat gradient arena is cut into all-reduce buckets: `ranges[b]` is bucket b's slice.
///
/// Every rank must use the same layout and reduce the buckets in index order (mismatched orders mix data or
/// hang, the pitfall PyTorch's DDP notes warn about). Index order is also the order in which the caller
/// makes buckets ready, so bucket 0 should hold the gradients backward produces first.
public struct BucketLayout: Equatable, Sendable {
    public let ranges: [Range<Int>]

    /// - Throws: ``CommError/invalidArgument(_:)`` if a range is empty, negative or overlaps another.
    public init(ranges: [Range<Int>]) throws(CommError) {
        for (b, range) in ranges.enumerated() {
            guard range.lowerBound >= 0, !range.isEmpty else {
                throw .invalidArgument("bucket \(b) covers \(range), which is empty or negative")
            }
        }
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.upperBound > b.lowerBound {
            throw .invalidArgument("buckets \(a) and \(b) overlap")
        }
        self.ranges = ranges
    }

    /// Buckets of at most `capacity` elements covering `0..<count` from the end backwards: bucket 0 is the
    /// tail of the arena, where the last layers' gradients live (backward produces them first), as
    /// `torch.nn.parallel.DistributedDataParallel` orders its buckets (`bucket_cap_mb`).
    public static func reverseOrder(count: Int, capacity: Int) -> BucketLayout {
        precondition(count >= 0 && capacity >= 1, "count must be non-negative and capacity positive")
        let ranges = stride(from: count, to: 0, by: -capacity).map { max(0, $0 - capacity)..<$0 }
        // Cannot fail: the ranges are disjoint and non-empty by construction.
        return try! BucketLayout(ranges: ranges)
    }

    public var count: Int { ranges.count }
}
