import Foundation

/// Averages a gradient arena bucket by bucket on a dedicated communication thread, so that bucket b is on
/// the wire while the caller still computes the gradients of later buckets (DDP's overlap of all-reduce with
/// backward).
///
/// Per step: ``begin(step:)``, then ``reduce(bucket:)`` for buckets 0, 1, 2, ... in index order as each becomes
/// ready (returns at once), then ``finish()``, which waits for all of them. Other collectives of the step
/// (all-gather of keys, all-to-all) go through ``run(_:)`` so that the transport stays on its thread.
///
/// Thread confinement: the communicator and its transport are used only by the communication thread. The
/// caller must not touch a bucket's slice of `gradients` between `reduce(bucket:)` and `finish()`. Calls
/// on this object itself may come from any thread.
public final class BucketedAllReduce<T: Transport>: Sendable {
    public var layout: BucketLayout { core.layout }
    private let core: CommunicationThread<T>

    /// Starts the communication thread.
    /// - Parameters:
    ///   - collectives: the communicator; from now on used only by the communication thread.
    ///   - gradients: the arena; must outlive this object and have the same size on every rank.
    public init(
        collectives: Collectives<T>, layout: BucketLayout, gradients: UnsafeMutableBufferPointer<Float>,
        operation: ReduceOperation = .mean
    ) throws(CommError) {
        if let outside = layout.ranges.first(where: { $0.upperBound > gradients.count }) {
            throw .invalidArgument("bucket \(outside) lies outside the \(gradients.count)-element arena")
        }
        core = CommunicationThread(
            collectives: collectives, layout: layout, gradients: gradients, operation: operation)
        core.start()
    }

    /// Stops the thread after the queued jobs and waits for it.
    deinit { core.stop() }

    /// Stops the communication thread after the queued jobs and waits for it (idempotent). Afterwards the
    /// transport may be closed by its owner; a later ``finish()`` or ``run(_:)`` throws ``CommError/closed``.
    public func close() { core.stop() }

    /// Starts a step: resets the bucket bookkeeping and stamps `step` on the following messages.
    public func begin(step: UInt64) throws(CommError) { try core.begin(step: step) }

    /// Queues bucket `bucket` for reduction and returns at once. Buckets must come in index order.
    public func reduce(bucket: Int) throws(CommError) { try core.reduce(bucket: bucket) }

    /// Buckets of the current step already reduced.
    public var bucketsCompleted: Int { core.bucketsCompleted }

    /// Waits until every bucket of the step is reduced. Each all-reduce bounds its own waits, so this
    /// returns or throws within about one ``CollectiveOptions/timeout`` of the last progress.
    /// - Returns: whether every reduced value of the step is finite (checked part by part as the all-reduce stores
    ///   it; ``Collectives/allReduceCheckingFinite(_:plan:operation:bucket:)``), the same answer on every rank.
    /// - Throws: the first error of the step (the communicator is then broken).
    @discardableResult
    public func finish() throws(CommError) -> Bool { try core.finish() }

    /// Runs `body` with the communicator on the communication thread, after the queued buckets, and returns
    /// its result.
    public func run<R>(_ body: @escaping (Collectives<T>) throws -> R) throws -> R { try core.run(body) }
}
