import DenseCLComm
import Foundation
import XCTest

final class BucketedAllReduceTests: XCTestCase {
    func testReverseOrderLayoutCoversTheArenaFromTheEnd() throws {
        let layout = BucketLayout.reverseOrder(count: 10, capacity: 4)
        XCTAssertEqual(layout.ranges, [6..<10, 2..<6, 0..<2])
        XCTAssertEqual(BucketLayout.reverseOrder(count: 0, capacity: 4).ranges, [])
        XCTAssertThrowsError(try BucketLayout(ranges: [0..<4, 3..<6]))
        XCTAssertThrowsError(try BucketLayout(ranges: [2..<2]))
    }

    /// Three ranks, an arena of 10 000 floats in buckets of 1 500. Each rank "computes" bucket b only after
    /// bucket b-1 has been reduced (it waits on `bucketsCompleted`), which can only finish if the
    /// communication thread reduces a bucket while later ones are not yet submitted. Results must match the
    /// closed form, and every rank must also be able to run another collective through `run`.
    func testBucketsAreReducedWhileLaterOnesAreStillBeingComputed() throws {
        checkOverlap(Cluster.inProcess(3))
        // Over ZeroMQ the sockets, created on this thread, migrate to each rank's communication thread.
        checkOverlap(try Cluster.zeroMQ(3))
    }

    private func checkOverlap<T: Transport>(_ transportList: [T]) {
        let n = transportList.count
        let count = 10_000
        let transports = Handoff(value: transportList)
        let outputs = RankValues<[Float]>(n)
        let errors = runRanks(n) { rank in
            let comm = try Collectives(
                transport: transports.value[rank], session: Session(runID: 3, generation: 1),
                options: CollectiveOptions(partBytes: 1024, timeout: .seconds(10)))
            let layout = BucketLayout.reverseOrder(count: count, capacity: 1500)
            let arena = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { arena.deallocate() }
            arena.initialize(repeating: .nan)
            let reducer = try BucketedAllReduce(collectives: comm, layout: layout, gradients: arena)
            let input = RankEncoded.input(rank: rank, count: count)
            try reducer.begin(step: 42)
            for (bucket, range) in layout.ranges.enumerated() {
                if bucket > 0 {
                    // "Backward" reaches this bucket only once the previous one is reduced everywhere.
                    let deadline = ContinuousClock.now + .seconds(5)
                    while reducer.bucketsCompleted < bucket {
                        if ContinuousClock.now > deadline {
                            throw CommError.invalidArgument("bucket \(bucket - 1) was not reduced before finish()")
                        }
                        Thread.sleep(forTimeInterval: 0.001)
                    }
                }
                for i in range { arena[i] = input[i] }
                try reducer.reduce(bucket: bucket)
            }
            try reducer.finish()
            let total = try reducer.run { comm in try comm.allGather([Float(comm.step)]) }
            if total != Array(repeating: [42], count: n) {
                throw CommError.invalidArgument("run() saw \(total), expected step 42 on every rank")
            }
            outputs[rank] = Array(arena)
        }
        XCTAssertEqual(errors.compactMap { $0 }, [], "\(T.self)")
        for rank in 0..<n {
            assertClosedForm(outputs[rank] ?? [], count: count, worldSize: n, mean: true, context: "\(T.self) rank \(rank)")
        }
    }

    func testBucketsOutOfOrderAreRejected() throws {
        let comm = try Collectives(transport: Cluster.inProcess(1)[0], session: Session(runID: 1, generation: 1))
        let arena = UnsafeMutableBufferPointer<Float>.allocate(capacity: 8)
        defer { arena.deallocate() }
        arena.initialize(repeating: 1)
        let reducer = try BucketedAllReduce(
            collectives: comm, layout: .reverseOrder(count: 8, capacity: 4), gradients: arena)
        try reducer.begin(step: 0)
        XCTAssertThrowsError(try reducer.reduce(bucket: 1)) { error in
            guard case CommError.invalidArgument(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("index order"), detail)
        }
        try reducer.reduce(bucket: 0)
        XCTAssertThrowsError(try reducer.finish())  // bucket 1 was never submitted
        try reducer.reduce(bucket: 1)
        try reducer.finish()
        XCTAssertEqual(Array(arena), Array(repeating: 1, count: 8))
    }
}
