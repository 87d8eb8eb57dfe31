import DenseCLComm

/// The step's gradient all-reduce (mean), overlapped with the backward pass the way
/// `torch.nn.parallel.DistributedDataParallel` overlaps it: the gradient arena is cut into buckets from its end
/// (``BucketLayout/reverseOrder(count:capacity:)``: bucket 0 holds the neck and the last backbone layers, whose
/// gradients backward finishes first) and each bucket goes to the communication thread of a
/// ``BucketedAllReduce`` as soon as backward reports all of it final.
///
/// Per step: ``begin(step:)``, then `DenseCLStep.backward(lambda:gradientsReady:)` with ``gradientsReady``
/// as its hook, then ``finish()``. Every rank queues the buckets in index order, whatever its timing. The other
/// collectives of the step (the key all-to-all, the BatchNorm buffers) go through ``run(_:)``: the communicator
/// and its transport belong to the communication thread from ``init(collectives:gradients:bucketCapacity:)`` on.
///
/// The caller must not touch the arena between ``begin(step:)`` and ``finish()`` except through backward
/// (which writes a bucket's gradients only before it reports them final).
public final class GradientAllReduce<T: Transport> {
    public let layout: BucketLayout
    /// The hook for `backward(lambda:gradientsReady:)`: given an arena offset `w` from which every gradient to the
    /// end is final, queues, in index order, each bucket not yet queued that lies entirely at or above `w`. Built
    /// once (passing it costs no allocation per step).
    public private(set) var gradientsReady: (Int) -> Void = { _ in }
    /// Buckets of the current step queued so far.
    public private(set) var bucketsQueued = 0

    private let reducer: BucketedAllReduce<T>
    private let gradients: UnsafeMutableBufferPointer<Float>
    private var poison = false
    private var failure: CommError?

    /// Starts the communication thread.
    /// - Parameters:
    ///   - collectives: the communicator; used only by the communication thread from now on.
    ///   - gradients: the gradient arena (same size on every rank); must outlive this object.
    ///   - bucketCapacity: floats per bucket (the last bucket, at the arena's start, may be smaller).
    public init(
        collectives: Collectives<T>, gradients: UnsafeMutableBufferPointer<Float>, bucketCapacity: Int
    ) throws(CommError) {
        guard bucketCapacity >= 1 else { throw .invalidArgument("bucket capacity \(bucketCapacity) must be positive") }
        layout = .reverseOrder(count: gradients.count, capacity: bucketCapacity)
        self.gradients = gradients
        reducer = try BucketedAllReduce(collectives: collectives, layout: layout, gradients: gradients)
        gradientsReady = { [unowned self] offset in self.queue(downTo: offset) }
    }

    /// Starts step `step`: its number stamps every following message.
    public func begin(step: Int) throws(CommError) {
        try reducer.begin(step: UInt64(step))
        bucketsQueued = 0
        failure = nil
        poison = false
    }

    /// Makes this step's reduced gradient non-finite on every rank, so that the skip decision of a non-finite
    /// loss travels with the gradients: element 0 of the arena (in the last bucket) is set to NaN just before
    /// that bucket is queued. Call between ``begin(step:)`` and backward.
    public func poisonGradient() { poison = true }

    /// Queues the buckets backward did not report (all gradients are final once it has returned) and waits until
    /// every bucket is reduced.
    /// - Returns: whether the whole reduced gradient is finite, the step's skip decision (identical on every rank;
    ///   checked by the communication thread as it stores each part, so the compute thread does not sweep the
    ///   arena again).
    /// - Throws: the first error of the step's collectives (a timeout names the silent neighbour).
    @discardableResult
    public func finish() throws(CommError) -> Bool {
        queue(downTo: 0)
        if let failure { throw failure }
        return try reducer.finish()
    }

    /// Runs `body` with the communicator on the communication thread, after the queued buckets.
    public func run<R>(_ body: @escaping (Collectives<T>) throws -> R) throws -> R { try reducer.run(body) }

    /// Stops the communication thread (before the transport is closed).
    public func close() { reducer.close() }

    private func queue(downTo offset: Int) {
        while failure == nil, bucketsQueued < layout.count, layout.ranges[bucketsQueued].lowerBound >= offset {
            if poison, layout.ranges[bucketsQueued].lowerBound == 0 { gradients[0] = .nan }
            do throws(CommError) {
                try reducer.reduce(bucket: bucketsQueued)
            } catch {
                failure = error  // reported by finish(); the hook itself cannot throw
                return
            }
            bucketsQueued += 1
        }
    }
}
