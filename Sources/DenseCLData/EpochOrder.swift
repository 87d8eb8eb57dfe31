import DenseCLCore

/// The order in which an epoch visits the dataset: a uniformly random permutation that is a pure function of
/// `(seed, epoch)` (Fisher-Yates driven by `CounterRNG(domain: .dataOrder, epoch:)`), so every worker derives the
/// same order without being told it.
///
/// Mirrors the official sampler's per-epoch shuffle (a permutation drawn from a generator seeded by the epoch),
/// with the run seed added.
public struct EpochOrder: Sendable, Equatable {
    public let seed: UInt64
    public let epoch: Int
    private let order: [Int32]

    public init(seed: UInt64, epoch: Int, count: Int) {
        precondition(count > 0 && count <= Int(Int32.max), "dataset size must be in 1...Int32.max")
        self.seed = seed
        self.epoch = epoch
        var rng = CounterRNG(seed: seed, domain: .dataOrder, epoch: epoch)
        var order = (0..<Int32(count)).map { $0 }
        var i = count - 1
        while i > 0 {
            order.swapAt(i, rng.nextInt(below: i + 1))
            i -= 1
        }
        self.order = order
    }

    public var count: Int { order.count }

    /// The dataset index of the sample at `position` in this epoch.
    public subscript(position: Int) -> Int { Int(order[position]) }
}

/// What one worker must produce for one step: sample positions within an epoch's order, for the query view
/// (view 0) and for the key view (view 1). The two lists are usually the same; they differ when the key views are
/// sent to a worker chosen by a shuffle.
public struct BatchRequest: Sendable, Equatable {
    public var epoch: Int
    public var queryPositions: [Int]
    public var keyPositions: [Int]

    public init(epoch: Int, queryPositions: [Int], keyPositions: [Int]) {
        self.epoch = epoch
        self.queryPositions = queryPositions
        self.keyPositions = keyPositions
    }

    /// Both views of the same samples.
    public init(epoch: Int, positions: [Int]) {
        self.init(epoch: epoch, queryPositions: positions, keyPositions: positions)
    }

    /// The contiguous share of worker `rank` out of `workers` (see `DataSchedule.shard`).
    public func shard(rank: Int, workers: Int) -> BatchRequest {
        precondition(queryPositions == keyPositions, "shard a request whose views cover the same samples")
        let range = DataSchedule.shard(count: queryPositions.count, rank: rank, workers: workers)
        return BatchRequest(epoch: epoch, positions: Array(queryPositions[range]))
    }
}

/// Steps, epochs and global batches under drop_last: epoch `e` has `count / globalBatch` steps, and global step
/// `t` (counted from the start of training) takes positions `[s·B, (s+1)·B)` of epoch `t / stepsPerEpoch`'s order,
/// with `s = t mod stepsPerEpoch`.
public struct DataSchedule: Sendable, Equatable {
    public let datasetCount: Int
    public let globalBatchSize: Int

    public init(datasetCount: Int, globalBatchSize: Int) throws {
        guard globalBatchSize > 0 else { throw DatasetError.invalidOption("global batch size must be positive") }
        guard datasetCount >= globalBatchSize else {
            throw DatasetError.smallerThanBatch(images: datasetCount, globalBatch: globalBatchSize)
        }
        self.datasetCount = datasetCount
        self.globalBatchSize = globalBatchSize
    }

    /// Steps per epoch; the last `count mod B` samples of each epoch's order are dropped.
    public var stepsPerEpoch: Int { datasetCount / globalBatchSize }

    public func epoch(ofStep step: Int) -> Int { step / stepsPerEpoch }

    /// The whole global batch of training step `step`: both views of `globalBatchSize` samples.
    public func globalBatch(step: Int) -> BatchRequest {
        precondition(step >= 0, "steps count from 0")
        let inEpoch = step % stepsPerEpoch
        let start = inEpoch * globalBatchSize
        return BatchRequest(epoch: step / stepsPerEpoch, positions: Array(start..<(start + globalBatchSize)))
    }

    /// Worker `rank`'s contiguous share of a batch of `count`: the first `count mod workers` ranks take one
    /// sample more. The shares, in rank order, tile `0..<count`.
    public static func shard(count: Int, rank: Int, workers: Int) -> Range<Int> {
        precondition(workers > 0 && rank >= 0 && rank < workers, "rank must be in 0..<workers")
        let base = count / workers
        let extra = count % workers
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}
