import DenseCLCore

/// How an all-reduce combines the ranks' buffers.
public enum ReduceOperation: Sendable {
    /// Element-wise sum.
    case sum
    /// Element-wise mean: the sum, scaled once by 1/n by the rank that completes it (`torch.distributed`
    /// `all_reduce(SUM)` followed by `div_(world_size)`, as DDP averages gradients).
    case mean
}

/// Where every element goes in a ring all-reduce of `count` floats, for one rank. Computed once per buffer
/// size (a gradient bucket's plan is reused every step), then executed by
/// ``Collectives/allReduce(_:plan:operation:bucket:)``.
///
/// The buffer is cut into `worldSize` chunks, chunk c = elements `[c·count/n, (c+1)·count/n)` (sizes differ by
/// at most one; with count < n some are empty and carry no messages), and each chunk into parts of at most
/// `partElements`. Rank r first sends the parts of chunk r. It then receives 2(n-1) chunks from its left
/// neighbour, part by part:
/// - reduce-scatter, steps s = 0 ..< n-1: chunk (r-1-s) mod n; it adds its own values into the received
///   message and forwards it, except at the last step (chunk r+1) where the sum is complete: it scales it,
///   stores it and forwards it as the first all-gather message;
/// - all-gather, steps t = 0 ..< n-1: chunk (r-t) mod n, already final; it stores it and forwards it unless
///   t = n-2 (its right neighbour is the chunk's owner, which already has it).
/// Each rank sends and receives 2(n-1)/n of the buffer, the bandwidth optimum for a ring.
///
/// Only the own chunk is sent straight from the caller's buffer (zero-copy); every later message is a
/// received one, modified in place and passed on. The own chunk is overwritten only by its finished values
/// in the all-gather, and part k of those cannot exist before the right neighbour has received own part k
/// (the first hop of its reduce-scatter chain), so ZeroMQ has always read a borrowed part before it is
/// overwritten. Returning waits until ZeroMQ has released every borrowed part.
public struct RingAllReducePlan: Equatable, Sendable {
    enum Action: Equatable, Sendable {
        /// Reduce-scatter: add the local slice into the message and pass it on.
        case accumulate
        /// Last reduce-scatter step: complete and scale the sum, store it, pass it on.
        case finish
        /// All-gather: store the finished values.
        case store
    }

    struct Incoming: Equatable, Sendable {
        let range: Range<Int>
        let action: Action
        let forward: Bool
    }

    public let count: Int
    public let worldSize: Int
    public let rank: Int
    public let partElements: Int
    /// Element ranges of this rank's own chunk, sent first from the caller's buffer.
    let ownParts: [Range<Int>]
    /// Every message this rank receives, in order.
    let incoming: [Incoming]

    public init(count: Int, worldSize: Int, rank: Int, partElements: Int) {
        precondition(count >= 0 && worldSize >= 1 && (0..<worldSize).contains(rank) && partElements >= 1)
        self.count = count
        self.worldSize = worldSize
        self.rank = rank
        self.partElements = partElements
        let n = worldSize
        func parts(ofChunk chunk: Int) -> [Range<Int>] {
            let lower = chunk * count / n
            let upper = (chunk + 1) * count / n
            return stride(from: lower, to: upper, by: partElements).map { $0..<min($0 + partElements, upper) }
        }
        func chunk(_ offset: Int) -> Int { ((rank + offset) % n + n) % n }

        ownParts = n > 1 ? parts(ofChunk: rank) : []
        var incoming: [Incoming] = []
        if n > 1 {
            for s in 0..<(n - 1) {
                let action: Action = s == n - 2 ? .finish : .accumulate
                for range in parts(ofChunk: chunk(-1 - s)) {
                    incoming.append(Incoming(range: range, action: action, forward: true))
                }
            }
            for t in 0..<(n - 1) {
                for range in parts(ofChunk: chunk(-t)) {
                    incoming.append(Incoming(range: range, action: .store, forward: t < n - 2))
                }
            }
        }
        self.incoming = incoming
    }
}

extension Collectives {
    /// Reduces `buffer` across all ranks in place (every rank ends with the same values, bit for bit).
    ///
    /// Mirrors `torch.distributed.all_reduce` (with `.mean`, DDP's gradient averaging). `buffer` must have
    /// the same count on every rank. `bucket` is stamped on the messages (ranks must reduce buckets in the
    /// same order). Builds a plan on every call; reuse one with ``allReduce(_:plan:operation:bucket:)`` in a
    /// training loop.
    public func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, operation: ReduceOperation = .mean, bucket: Int = 0)
        throws
    {
        let plan = RingAllReducePlan(
            count: buffer.count, worldSize: worldSize, rank: rank, partElements: options.partBytes / 4)
        try allReduce(buffer, plan: plan, operation: operation, bucket: bucket)
    }

    /// Executes a precomputed ``RingAllReducePlan`` (built for this rank, world size and `buffer.count`).
    public func allReduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, plan: RingAllReducePlan, operation: ReduceOperation = .mean,
        bucket: Int = 0
    ) throws {
        _ = try ringAllReduce(buffer, plan: plan, operation: operation, bucket: bucket, checkFinite: false)
    }

    /// ``allReduce(_:plan:operation:bucket:)``, also telling whether every reduced value is finite
    /// (`torch.isfinite(buffer).all()` after the reduction): the same answer on every rank, since the values are.
    ///
    /// Each rank stores every element of the result exactly once (its `.finish` chunk and the `n - 1` chunks of
    /// the all-gather) and checks each part right after storing it, while it is still in cache, instead of
    /// sweeping the whole buffer from memory afterwards. A world of one checks `buffer` as it is.
    public func allReduceCheckingFinite(
        _ buffer: UnsafeMutableBufferPointer<Float>, plan: RingAllReducePlan, operation: ReduceOperation = .mean,
        bucket: Int = 0
    ) throws -> Bool {
        try ringAllReduce(buffer, plan: plan, operation: operation, bucket: bucket, checkFinite: true)
    }

    /// The ring all-reduce; returns `true` when `checkFinite` is off.
    private func ringAllReduce(
        _ buffer: UnsafeMutableBufferPointer<Float>, plan: RingAllReducePlan, operation: ReduceOperation,
        bucket: Int, checkFinite: Bool
    ) throws -> Bool {
        guard plan.count == buffer.count, plan.worldSize == worldSize, plan.rank == rank else {
            throw CommError.invalidArgument(
                "all-reduce plan for \(plan.count) floats on rank \(plan.rank)/\(plan.worldSize) used for "
                    + "\(buffer.count) floats on rank \(rank)/\(worldSize)")
        }
        let tag = UInt32(truncatingIfNeeded: bucket)
        return try collective {
            guard worldSize > 1, buffer.count > 0 else {
                return !checkFinite || FiniteCheck.allFinite(UnsafeBufferPointer(buffer))
            }
            var finite = true
            let scale: Float = operation == .mean ? 1 / Float(worldSize) : 1
            let extent = buffer.count * 4
            let ownCount = plan.ownParts.count
            var next = 0
            let what = { "all-reduce #\(self.operation) (bucket \(bucket))" }

            try runPipeline(
                to: right, ownParts: ownCount,
                sendOwn: { (k) throws(CommError) in
                    let range = plan.ownParts[k]
                    try send(
                        header(kind: .allReduce, bucket: tag, part: k, extent: extent),
                        borrowing: UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[
                            (range.lowerBound * 4)..<(range.upperBound * 4)]),
                        to: right, what: what())
                },
                moreInput: { next < plan.incoming.count },
                receiveNext: { () throws(CommError) -> (header: FrameHeader, payload: T.Payload)? in
                    let j = next
                    next += 1
                    let part = plan.incoming[j]
                    let message = try receive(from: left, kind: .allReduce, bucket: tag, part: j, what: what())
                    try checkSize(
                        message.header, from: left, payload: part.range.count * 4, extent: extent, what: what())
                    let bytes = message.payload.bytes
                    let local = UnsafeMutableBufferPointer(rebasing: buffer[part.range])
                    switch part.action {
                    case .accumulate:
                        ReduceKernels.accumulate(bytes, UnsafeBufferPointer(local))
                    case .finish:
                        ReduceKernels.finish(bytes, local, scale: scale)
                    case .store:
                        ReduceKernels.store(UnsafeRawBufferPointer(bytes), into: local)
                    }
                    if checkFinite && part.action != .accumulate && finite {
                        finite = FiniteCheck.allFinite(UnsafeBufferPointer(local))
                    }
                    guard part.forward else { return nil }
                    return (header(kind: .allReduce, bucket: tag, part: ownCount + j, extent: extent), message.payload)
                },
                what: what())
            // The caller may reuse the buffer as soon as we return.
            try waitForBorrowedSends(what: what())
            return finite
        }
    }
}
