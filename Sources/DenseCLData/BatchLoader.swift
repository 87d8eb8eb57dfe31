import Foundation

/// A batch produced by `BatchLoader`: both views, channels-last and normalised, plus what was loaded.
public struct LoadedBatch {
    /// `[queryCount, size, size, 3]`.
    public var query: UnsafeBufferPointer<Float>
    /// `[keyCount, size, size, 3]`.
    public var key: UnsafeBufferPointer<Float>
    public var info: BatchInfo
}

/// Metadata of a loaded batch.
public struct BatchInfo: Sendable, Equatable {
    /// Which batch of the plan this is (0, 1, 2, ...).
    public var sequence: Int
    public var request: BatchRequest
    /// The dataset image behind each row (differs from the epoch order where a bad file was replaced).
    public var queryImages: [Int]
    public var keyImages: [Int]
    /// Class labels of the query rows (nil for unlabelled datasets).
    public var queryLabels: [Int?]
    /// Samples of this batch (distinct positions) served by a replacement image.
    public var replacedSamples: Int
}

/// Prefetching batch production for one worker: `threads` loader threads fill up to `prefetchBatches` batch
/// slots ahead of the consumer, following a plan (batch number → request). Memory is bounded by the slots,
/// allocated once; in steady state producing a batch allocates only its small metadata.
///
/// Every pixel is a pure function of `(seed, epoch, position, view)` (see `SampleLoader`), so the rows of a
/// global batch are the same whichever worker, thread or slot computes them.
public final class BatchLoader: Sendable {
    private let state: LoaderState

    /// - Parameters:
    ///   - plan: the request for batch number `k` (0, 1, ...), or nil when the plan is over. Called on loader
    ///     threads and the consumer thread, in increasing `k`.
    ///   - maxBatch: the largest number of rows a request may have, per view (sizes the slots).
    public init(
        index: DatasetIndex, options: AugmentationOptions, seed: UInt64, threads: Int, prefetchBatches: Int = 2,
        maxBatch: Int, badFiles: BadFileRegistry = BadFileRegistry(),
        plan: @escaping @Sendable (Int) -> BatchRequest?
    ) throws {
        try options.validate()
        guard threads >= 1 else { throw DatasetError.invalidOption("loader threads must be at least 1") }
        guard prefetchBatches >= 1 else { throw DatasetError.invalidOption("prefetch depth must be at least 1") }
        guard maxBatch >= 1 else { throw DatasetError.invalidOption("batch size must be at least 1") }
        state = LoaderState(
            index: index, options: options, seed: seed, slots: prefetchBatches, maxBatch: maxBatch,
            badFiles: badFiles, plan: plan)
        state.start(threads: threads)
    }

    /// Loads the sharded global batches of `schedule` for one worker, from global step `startStep` on
    /// (`steps` batches, or without end).
    public convenience init(
        index: DatasetIndex, options: AugmentationOptions, seed: UInt64, schedule: DataSchedule, rank: Int,
        workers: Int, startStep: Int = 0, steps: Int? = nil, threads: Int, prefetchBatches: Int = 2,
        badFiles: BadFileRegistry = BadFileRegistry()
    ) throws {
        guard workers >= 1, rank >= 0, rank < workers else {
            throw DatasetError.invalidOption("rank \(rank) is not in 0..<\(workers)")
        }
        let maxBatch = (schedule.globalBatchSize + workers - 1) / workers
        try self.init(
            index: index, options: options, seed: seed, threads: threads, prefetchBatches: prefetchBatches,
            maxBatch: maxBatch, badFiles: badFiles
        ) { k in
            if let steps, k >= steps { return nil }
            return schedule.globalBatch(step: startStep + k).shard(rank: rank, workers: workers)
        }
    }

    deinit { state.stop() }

    public var badFiles: BadFileRegistry { state.badFiles }

    /// Waits for the next batch of the plan and lends it to `body`; nil when the plan is over. The buffers are
    /// valid only inside `body`. Throws what loading the batch threw (e.g. `DatasetError.noReadableReplacement`).
    public func withNextBatch<R>(_ body: (LoadedBatch) throws -> R) throws -> R? {
        try state.withNextBatch(body)
    }

    /// Copies the next batch into caller-owned buffers (`query` and `key` need `rows · size² · 3` floats each).
    public func next(query: UnsafeMutableBufferPointer<Float>, key: UnsafeMutableBufferPointer<Float>) throws
        -> BatchInfo?
    {
        try withNextBatch { batch in
            precondition(query.count >= batch.query.count && key.count >= batch.key.count, "output buffers too small")
            _ = query.update(fromContentsOf: batch.query)
            _ = key.update(fromContentsOf: batch.key)
            return batch.info
        }
    }
}

/// The shared state of a `BatchLoader` and its threads, guarded by one condition variable. The threads hold this
/// object (not the loader), so dropping the loader stops them.
private final class LoaderState: @unchecked Sendable {
    struct Item {
        var position: Int
        var image: Int
        var queryRow: Int
        var keyRow: Int
    }

    final class Slot {
        let query: UnsafeMutablePointer<Float>
        let key: UnsafeMutablePointer<Float>
        var sequence = -1
        var request = BatchRequest(epoch: 0, positions: [])
        var items: [Item] = []
        var nextItem = 0
        var remaining = 0
        var queryImages: [Int] = []
        var keyImages: [Int] = []
        var replaced = 0
        var error: Error?

        init(capacity: Int) {
            query = .allocate(capacity: capacity)
            key = .allocate(capacity: capacity)
            query.initialize(repeating: 0, count: capacity)
            key.initialize(repeating: 0, count: capacity)
        }

        deinit {
            query.deallocate()
            key.deallocate()
        }
    }

    let index: DatasetIndex
    let options: AugmentationOptions
    let seed: UInt64
    let badFiles: BadFileRegistry
    let maxBatch: Int
    let viewFloats: Int
    let plan: @Sendable (Int) -> BatchRequest?
    let condition = NSCondition()
    var slots: [Slot]
    var free: [Slot]
    var filling: [Slot] = []  // in sequence order
    var nextToSchedule = 0
    var nextToDeliver = 0
    var planEnded = false
    var stopping = false
    var running = 0
    var orders: [EpochOrder] = []

    init(
        index: DatasetIndex, options: AugmentationOptions, seed: UInt64, slots count: Int, maxBatch: Int,
        badFiles: BadFileRegistry, plan: @escaping @Sendable (Int) -> BatchRequest?
    ) {
        self.index = index
        self.options = options
        self.seed = seed
        self.badFiles = badFiles
        self.maxBatch = maxBatch
        self.plan = plan
        viewFloats = options.imageSize * options.imageSize * 3
        slots = (0..<count).map { _ in Slot(capacity: maxBatch * options.imageSize * options.imageSize * 3) }
        free = slots
    }

    func start(threads: Int) {
        condition.lock()
        schedule()
        running = threads
        condition.unlock()
        for t in 0..<threads {
            let thread = Thread { [self] in work() }
            thread.name = "densecl-loader-\(t)"
            thread.start()
        }
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
    }

    /// The epoch's order, computed once per epoch (the last two are kept: requests move forward in epochs).
    private func order(for epoch: Int) -> EpochOrder {
        if let cached = orders.first(where: { $0.epoch == epoch }) { return cached }
        let order = EpochOrder(seed: seed, epoch: epoch, count: index.count)
        orders.append(order)
        if orders.count > 2 { orders.removeFirst() }
        return order
    }

    /// Assigns planned requests to free slots. Called with the lock held.
    private func schedule() {
        while !planEnded, !stopping, let slot = free.popLast() {
            guard let request = plan(nextToSchedule) else {
                planEnded = true
                free.append(slot)
                break
            }
            slot.sequence = nextToSchedule
            nextToSchedule += 1
            slot.request = request
            slot.items.removeAll(keepingCapacity: true)
            slot.nextItem = 0
            slot.replaced = 0
            slot.error = nil
            slot.queryImages = [Int](repeating: -1, count: request.queryPositions.count)
            slot.keyImages = [Int](repeating: -1, count: request.keyPositions.count)
            let all = request.queryPositions + request.keyPositions
            if request.queryPositions.count > maxBatch || request.keyPositions.count > maxBatch {
                slot.error = DatasetError.invalidOption(
                    "batch request \(slot.sequence) has more than \(maxBatch) rows per view")
            } else if let bad = all.first(where: { $0 < 0 || $0 >= index.count }) {
                slot.error = DatasetError.invalidOption(
                    "batch request \(slot.sequence) names position \(bad), outside 0..<\(index.count)")
            } else {
                let order = order(for: request.epoch)
                if request.queryPositions == request.keyPositions {
                    for (row, position) in request.queryPositions.enumerated() {
                        slot.items.append(Item(position: position, image: order[position], queryRow: row, keyRow: row))
                    }
                } else {
                    // One decode per distinct position, rendering whichever views it is needed for.
                    var itemOf: [Int: Int] = [:]
                    for (row, position) in request.queryPositions.enumerated() {
                        itemOf[position] = slot.items.count
                        slot.items.append(Item(position: position, image: order[position], queryRow: row, keyRow: -1))
                    }
                    for (row, position) in request.keyPositions.enumerated() {
                        if let i = itemOf[position], slot.items[i].keyRow < 0 {
                            slot.items[i].keyRow = row
                        } else {
                            slot.items.append(
                                Item(position: position, image: order[position], queryRow: -1, keyRow: row))
                        }
                    }
                }
            }
            if slot.error != nil { slot.items.removeAll(keepingCapacity: true) }
            slot.remaining = slot.items.count
            filling.append(slot)
        }
        condition.broadcast()
    }

    private func work() {
        let loader = SampleLoader(index: index, options: options, seed: seed, badFiles: badFiles)
        condition.lock()
        while true {
            if stopping { break }
            guard let slot = filling.first(where: { $0.nextItem < $0.items.count }) else {
                condition.wait()
                continue
            }
            let item = slot.items[slot.nextItem]
            slot.nextItem += 1
            let epoch = slot.request.epoch
            condition.unlock()
            var outcome: SampleLoader.Outcome? = nil
            var failure: Error? = nil
            do {
                outcome = try loader.load(
                    epoch: epoch, position: item.position, datasetIndex: item.image,
                    query: item.queryRow >= 0 ? slot.query + item.queryRow * viewFloats : nil,
                    key: item.keyRow >= 0 ? slot.key + item.keyRow * viewFloats : nil)
            } catch {
                failure = error
            }
            condition.lock()
            if let outcome {
                if item.queryRow >= 0 { slot.queryImages[item.queryRow] = outcome.datasetIndex }
                if item.keyRow >= 0 { slot.keyImages[item.keyRow] = outcome.datasetIndex }
                if outcome.replaced { slot.replaced += 1 }
            }
            if let failure, slot.error == nil { slot.error = failure }
            slot.remaining -= 1
            if slot.remaining == 0 { condition.broadcast() }
        }
        running -= 1
        condition.broadcast()
        condition.unlock()
    }

    func withNextBatch<R>(_ body: (LoadedBatch) throws -> R) throws -> R? {
        condition.lock()
        schedule()
        var slot: Slot? = nil
        while true {
            slot = filling.first(where: { $0.sequence == nextToDeliver })
            if let slot, slot.remaining == 0 { break }
            if slot == nil && planEnded {
                condition.unlock()
                return nil
            }
            condition.wait()
        }
        let ready = slot!
        condition.unlock()
        defer {
            condition.lock()
            filling.removeAll { $0 === ready }
            free.append(ready)
            nextToDeliver += 1
            schedule()
            condition.unlock()
        }
        if let error = ready.error { throw error }
        let request = ready.request
        let info = BatchInfo(
            sequence: ready.sequence, request: request, queryImages: ready.queryImages, keyImages: ready.keyImages,
            queryLabels: ready.queryImages.map { index.label(of: $0) }, replacedSamples: ready.replaced)
        let batch = LoadedBatch(
            query: UnsafeBufferPointer(start: ready.query, count: request.queryPositions.count * viewFloats),
            key: UnsafeBufferPointer(start: ready.key, count: request.keyPositions.count * viewFloats), info: info)
        return try body(batch)
    }
}
