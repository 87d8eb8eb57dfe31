import DenseCLComm
import Foundation
import XCTest

/// The skip decision that travels with the all-reduce: `allReduceCheckingFinite` and `BucketedAllReduce.finish()`
/// say whether the reduced values are all finite, the same answer on every rank, without a second sweep.
final class AllReduceFinitenessTests: XCTestCase {
    /// World sizes 1-4, a buffer of 1 000 floats in 64-byte parts (several parts per chunk): a NaN, +∞ or -∞ placed
    /// on one rank at the first element, the last, or the first and last of each chunk is reported by every rank;
    /// finite inputs whose sum overflows are reported too (the check is on the result, not on the inputs).
    func testEveryRankReportsANonFiniteValueAnywhere() {
        let count = 1_000
        for worldSize in 1...4 {
            let chunkEdges = (0..<worldSize).flatMap { c in [c * count / worldSize, (c + 1) * count / worldSize - 1] }
            XCTAssertEqual(reduce(worldSize: worldSize, count: count) { _, _ in }, Array(repeating: true, count: worldSize),
                           "world \(worldSize): all finite")
            for position in Set([0, count - 1] + chunkEdges).sorted() {
                for bad: Float in [.nan, .infinity, -.infinity] {
                    let culprit = position % worldSize
                    let answers = reduce(worldSize: worldSize, count: count) { rank, values in
                        if rank == culprit { values[position] = bad }
                    }
                    XCTAssertEqual(answers, Array(repeating: false, count: worldSize),
                                   "world \(worldSize): \(bad) at \(position) on rank \(culprit)")
                }
            }
            if worldSize > 1 {
                let answers = reduce(worldSize: worldSize, count: count, operation: .sum) { _, values in
                    values[count / 2] = .greatestFiniteMagnitude
                }
                XCTAssertEqual(answers, Array(repeating: false, count: worldSize), "world \(worldSize): the sum overflows")
            }
        }
    }

    /// `finish()` gives the step's answer over all its buckets (a NaN in the last bucket reduced turns it false)
    /// and starts over at the next `begin(step:)`.
    func testBucketedFinishReportsTheWholeStepAndResetsPerStep() {
        let worldSize = 2
        let count = 4_000
        let transports = Handoff(value: Cluster.inProcess(worldSize))
        let answers = RankValues<[Bool]>(worldSize)
        let errors = runRanks(worldSize) { rank in
            let comm = try Collectives(
                transport: transports.value[rank], session: Session(runID: 5, generation: 1),
                options: CollectiveOptions(partBytes: 256, timeout: .seconds(10)))
            let layout = BucketLayout.reverseOrder(count: count, capacity: 1_500)
            let arena = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { arena.deallocate() }
            let reducer = try BucketedAllReduce(collectives: comm, layout: layout, gradients: arena)
            var results: [Bool] = []
            for step in 0..<3 {
                arena.initialize(repeating: Float(rank + 1))
                // Step 1: rank 1 puts a NaN in element 0, which lies in the last bucket reduced.
                if step == 1 && rank == 1 { arena[0] = .nan }
                try reducer.begin(step: UInt64(step))
                for bucket in 0..<layout.count { try reducer.reduce(bucket: bucket) }
                results.append(try reducer.finish())
            }
            answers[rank] = results
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
        for rank in 0..<worldSize {
            XCTAssertEqual(answers[rank], [true, false, true], "rank \(rank)")
        }
    }

    /// Runs one `allReduceCheckingFinite` over a fresh in-process world; `prepare(rank, &values)` edits each
    /// rank's input (all ones before). Returns each rank's answer.
    private func reduce(
        worldSize: Int, count: Int, operation: ReduceOperation = .mean,
        prepare: @escaping @Sendable (Int, inout [Float]) -> Void
    ) -> [Bool] {
        let transports = Handoff(value: Cluster.inProcess(worldSize))
        let answers = RankValues<Bool>(worldSize)
        let errors = runRanks(worldSize) { rank in
            let comm = try Collectives(
                transport: transports.value[rank], session: Session(runID: 9, generation: 1),
                options: CollectiveOptions(partBytes: 64, window: 4, timeout: .seconds(10)))
            var values = [Float](repeating: 1, count: count)
            prepare(rank, &values)
            let plan = RingAllReducePlan(count: count, worldSize: worldSize, rank: rank, partElements: 16)
            answers[rank] = try values.withUnsafeMutableBufferPointer {
                try comm.allReduceCheckingFinite($0, plan: plan, operation: operation)
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [], "world \(worldSize)")
        return (0..<worldSize).map { answers[$0] ?? true }
    }
}
