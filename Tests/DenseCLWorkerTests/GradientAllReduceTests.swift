import DenseCLComm
import DenseCLKernels
import DenseCLModel
import DenseCLWorker
import Foundation
import XCTest

/// The worker's gradient all-reduce overlapped with backward (`GradientAllReduce`), against the plain definition
/// of the step's reduced gradient: the mean over ranks of each rank's final local gradient.
final class GradientAllReduceTests: XCTestCase {
    /// Which buckets the hook queues for each reported offset, and the poisoning of element 0, on one rank with
    /// a 10-float arena in buckets of 4 (`[6..<10, 2..<6, 0..<2]`): a bucket goes only once all of it is final.
    func testHookQueuesOnlyBucketsThatAreEntirelyFinal() throws {
        let network = InProcessNetwork(worldSize: 1, linkCapacity: 4)
        let comm = try Collectives(transport: network.transport(rank: 0), session: Session(runID: 1, generation: 1))
        let arena = UnsafeMutableBufferPointer<Float>.allocate(capacity: 10)
        defer { arena.deallocate() }
        arena.initialize(repeating: 2)
        let reduction = try GradientAllReduce(collectives: comm, gradients: arena, bucketCapacity: 4)
        defer { reduction.close() }
        XCTAssertEqual(reduction.layout.ranges, [6..<10, 2..<6, 0..<2])

        try reduction.begin(step: 0)
        var queued: [Int] = []
        for offset in [7, 6, 3, 2, 0] {
            reduction.gradientsReady(offset)
            queued.append(reduction.bucketsQueued)
        }
        XCTAssertEqual(queued, [0, 1, 1, 2, 3])
        try reduction.finish()
        XCTAssertEqual(Array(arena), Array(repeating: 2, count: 10), "one rank: the mean is the gradient itself")

        // finish() queues what backward did not report; poison reaches element 0 only.
        try reduction.begin(step: 1)
        reduction.poisonGradient()
        reduction.gradientsReady(6)
        try reduction.finish()
        XCTAssertEqual(reduction.bucketsQueued, 3)
        XCTAssertTrue(arena[0].isNaN)
        XCTAssertEqual(Array(arena[1...]), Array(repeating: 2, count: 9))

        // The next step starts clean: no poison unless asked again.
        arena[0] = 2
        try reduction.begin(step: 2)
        try reduction.finish()
        XCTAssertEqual(arena[0], 2)
    }

    /// Two ranks, each a real DenseCL step (ResNet-18 at 64 px, 2 samples, its own images): the gradient reduced
    /// bucket by bucket during backward (buckets of 64 Ki floats, about 170 of them) equals the mean of the two
    /// ranks' final gradients from a backward without the hook, bit for bit, on both ranks. A bucket queued before
    /// backward has finished it (or one forgotten) would carry a partial sum or another rank's stale values.
    /// The next step, poisoned by rank 1 only, is NaN at element 0 on both ranks and unchanged elsewhere.
    func testBucketsReducedDuringBackwardEqualTheMeanOfTheFinalGradients() throws {
        let world = 2
        let network = InProcessNetwork(worldSize: world, linkCapacity: 4)
        let transports = Shared((0..<world).map { network.transport(rank: $0) })
        let results = Shared([RankResult?](repeating: nil, count: world))
        let lock = NSLock()
        let group = DispatchGroup()
        for rank in 0..<world {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                let outcome = Result { try Self.runRank(rank, world: world, transport: transports.value[rank]) }
                lock.lock()
                results.value[rank] = RankResult(outcome: outcome)
                lock.unlock()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "a rank hung")
        lock.lock()
        let ranks = try results.value.map { try XCTUnwrap($0).outcome.get() }
        lock.unlock()

        let count = ranks[0].local.count
        XCTAssertGreaterThan(count, 1_000_000)
        // Exact: with two ranks the ring adds each pair once (a + b = b + a in floating point) and scales by 1/2,
        // which is exact; so the reduced values are fl(fl(a + b) · 0.5) on both ranks.
        let expected = (0..<count).map { (ranks[0].local[$0] + ranks[1].local[$0]) * 0.5 }
        XCTAssertTrue(expected.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(expected.filter { $0 != 0 }.count, count / 2, "the gradients are mostly zero: a weak test")
        for (rank, result) in ranks.enumerated() {
            XCTAssertGreaterThan(
                result.queuedBeforeLastReport, 0, "rank \(rank): no bucket was queued before backward's last layer")
            let wrong = (0..<count).filter { result.reduced[$0].bitPattern != expected[$0].bitPattern }
            XCTAssertEqual(wrong.count, 0, "rank \(rank): \(wrong.count) elements differ, first \(wrong.prefix(5))")
            XCTAssertTrue(result.poisoned[0].isNaN, "rank \(rank): element 0 of the poisoned step is \(result.poisoned[0])")
            let poisonWrong = (1..<count).filter { result.poisoned[$0].bitPattern != expected[$0].bitPattern }
            XCTAssertEqual(poisonWrong.count, 0, "rank \(rank), poisoned step: first \(poisonWrong.prefix(5))")
        }
    }

    private struct RankOutput {
        var local: [Float]
        var reduced: [Float]
        var poisoned: [Float]
        var queuedBeforeLastReport: Int
    }

    private struct RankResult {
        var outcome: Result<RankOutput, any Error>
    }

    private static func runRank(_ rank: Int, world: Int, transport: InProcessTransport) throws -> RankOutput {
        let config = try tinyTestConfig(["data.image_size=64", "model.bn_groups=1"])
        let setup = try TrainingSetup(config: config, workers: world)
        let context = try ComputeContext(threads: 1)  // one lane: the hook-less backward gives the same bits twice
        context.activate()
        let step = try DenseCLStep(
            state: setup.initialState(), configuration: setup.stepConfiguration(bnGroups: 1), context: context)
        for i in step.queryImages.indices { step.queryImages[i] = sin(Float(i) * 0.37 + Float(rank)) }
        for i in step.keyImages.indices { step.keyImages[i] = cos(Float(i) * 0.23 - Float(rank)) }
        try step.forwardEncoders(lambda: 0.5, shuffle: (step: 0, seed: 1))
        _ = step.computeLosses(lambda: 0.5)

        step.backward(lambda: 0.5)
        let local = Array(step.gradients.buffer)

        let comm = try Collectives(
            transport: transport, session: Session(runID: 9, generation: 1),
            options: CollectiveOptions(timeout: .seconds(60)))
        let reduction = try GradientAllReduce(collectives: comm, gradients: step.gradients.buffer, bucketCapacity: 1 << 16)
        defer { reduction.close() }
        var queuedBeforeLastReport = -1
        try reduction.begin(step: 0)
        step.backward(lambda: 0.5) { offset in
            if offset == 0 { queuedBeforeLastReport = reduction.bucketsQueued }
            reduction.gradientsReady(offset)
        }
        try reduction.finish()
        let reduced = Array(step.gradients.buffer)

        try reduction.begin(step: 1)
        if rank == 1 { reduction.poisonGradient() }
        step.backward(lambda: 0.5, gradientsReady: reduction.gradientsReady)
        try reduction.finish()
        return RankOutput(
            local: local, reduced: reduced, poisoned: Array(step.gradients.buffer),
            queuedBeforeLastReport: queuedBeforeLastReport)
    }
}

/// A value handed to the rank threads (each touches only its own element, under the test's lock for results).
private final class Shared<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
