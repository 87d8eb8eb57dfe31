import Foundation

/// The state shared between callers and the communication thread, and the thread's loop.
///
/// `@unchecked Sendable`: everything mutable is guarded by `condition`, except `collectives`, which only the
/// communication thread touches after `start()`.
final class CommunicationThread<T: Transport>: @unchecked Sendable {
    let layout: BucketLayout
    private let plans: [RingAllReducePlan]
    private let gradients: UnsafeMutableBufferPointer<Float>
    private let operation: ReduceOperation
    private let collectives: Collectives<T>

    private enum Job {
        case setStep(UInt64)
        case reduce(bucket: Int)
        case run(() -> Void)
        case stop
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var nextBucket = 0
    private var completedBuckets = 0
    /// Whether every bucket of the step reduced so far came out finite.
    private var stepFinite = true
    private var firstError: CommError?
    private var stopped = false
    private var started = false

    init(
        collectives: Collectives<T>, layout: BucketLayout, gradients: UnsafeMutableBufferPointer<Float>,
        operation: ReduceOperation
    ) {
        self.layout = layout
        self.gradients = gradients
        self.operation = operation
        self.collectives = collectives
        plans = layout.ranges.map {
            RingAllReducePlan(
                count: $0.count, worldSize: collectives.worldSize, rank: collectives.rank,
                partElements: collectives.options.partBytes / 4)
        }
    }

    func start() {
        let thread = Thread { self.serve() }
        thread.name = "densecl-comm"
        started = true
        thread.start()
    }

    /// Queues a stop and waits until the thread has left its loop.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        guard started else { return }
        if !stopped { enqueue(.stop) }
        while !stopped { condition.wait() }
    }

    func begin(step: UInt64) throws(CommError) {
        condition.lock()
        defer { condition.unlock() }
        if let firstError { throw firstError }
        guard nextBucket == 0 || (nextBucket == layout.count && completedBuckets == layout.count) else {
            throw .invalidArgument("begin(step:) while buckets of the previous step are pending; call finish()")
        }
        nextBucket = 0
        completedBuckets = 0
        stepFinite = true
        enqueue(.setStep(step))
    }

    func reduce(bucket: Int) throws(CommError) {
        condition.lock()
        defer { condition.unlock() }
        if let firstError { throw firstError }
        guard bucket == nextBucket, bucket < layout.count else {
            throw .invalidArgument(
                "bucket \(bucket) submitted, expected \(nextBucket) of \(layout.count): buckets go in index order")
        }
        nextBucket += 1
        enqueue(.reduce(bucket: bucket))
    }

    var bucketsCompleted: Int {
        condition.lock()
        defer { condition.unlock() }
        return completedBuckets
    }

    func finish() throws(CommError) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard nextBucket == layout.count else {
            throw .invalidArgument("finish() after \(nextBucket) of \(layout.count) buckets were submitted")
        }
        while completedBuckets < layout.count && firstError == nil && !stopped { condition.wait() }
        if let firstError { throw firstError }
        if completedBuckets < layout.count { throw .closed }
        return stepFinite
    }

    func run<R>(_ body: @escaping (Collectives<T>) throws -> R) throws -> R {
        var result: Result<R, any Error>?
        condition.lock()
        defer { condition.unlock() }
        if stopped { throw CommError.closed }
        // The job runs on the communication thread and publishes its result under `condition`, which this
        // caller holds (except inside `wait`) whenever it reads `result`.
        let collectives = self.collectives
        let job: () -> Void = { [condition] in
            let value = Result { try body(collectives) }
            condition.lock()
            result = value
            condition.broadcast()
            condition.unlock()
        }
        enqueue(.run(job))
        while result == nil && !stopped { condition.wait() }
        guard let result else { throw CommError.closed }
        return try result.get()
    }

    /// Appends a job and wakes the thread. Caller holds `condition`.
    private func enqueue(_ job: Job) {
        jobs.append(job)
        condition.broadcast()
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            let failed = firstError != nil
            condition.unlock()

            switch job {
            case .stop:
                condition.lock()
                stopped = true
                jobs.removeAll()
                condition.broadcast()
                condition.unlock()
                return
            case .setStep(let step):
                collectives.step = step
            case .reduce(let bucket):
                if failed { continue }  // a failed step reduces nothing more; finish() reports the error
                let outcome: Result<Bool, CommError>
                do {
                    outcome = .success(try collectives.allReduceCheckingFinite(
                        UnsafeMutableBufferPointer(rebasing: gradients[layout.ranges[bucket]]), plan: plans[bucket],
                        operation: operation, bucket: bucket))
                } catch {
                    outcome = .failure((error as? CommError) ?? .invalidArgument("\(error)"))
                }
                condition.lock()
                switch outcome {
                case .success(let finite):
                    completedBuckets += 1
                    stepFinite = stepFinite && finite
                case .failure(let error):
                    firstError = error
                }
                condition.broadcast()
                condition.unlock()
            case .run(let body):
                body()
            }
        }
    }
}
