import DenseCLComm
import XCTest

/// Ring all-reduce with threads as ranks over the in-process transport, against closed-form sums.
final class InProcessAllReduceTests: XCTestCase {
    static let sizes = [0, 1, 7, 1000, 100_000]

    /// World sizes 1 through 8 and sizes {0, 1, 7, 1000, 100000}, mean and sum, with the default 1 MiB
    /// parts and with 64-byte parts (many parts per chunk: the pipelined path).
    func testMeanAndSumMatchClosedFormForWorldSizes1To8() {
        for worldSize in 1...8 {
            for partBytes in [1 << 20, 64] {
                checkAllReduce(worldSize: worldSize, partBytes: partBytes)
            }
        }
    }

    private func checkAllReduce(worldSize: Int, partBytes: Int) {
        let network = InProcessNetwork(worldSize: worldSize, linkCapacity: 4)
        let outputs = RankValues<[[Float]]>(worldSize)
        let errors = runRanks(worldSize) { rank in
            let comm = try Collectives(
                transport: network.transport(rank: rank), session: Session(runID: 7, generation: 1),
                options: CollectiveOptions(partBytes: partBytes, window: 4, timeout: .seconds(10)))
            var results: [[Float]] = []
            for (bucket, count) in Self.sizes.enumerated() {
                var mean = RankEncoded.input(rank: rank, count: count)
                try mean.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .mean, bucket: bucket) }
                var sum = RankEncoded.input(rank: rank, count: count)
                try sum.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .sum, bucket: bucket) }
                results += [mean, sum]
            }
            outputs[rank] = results
        }
        let context = "world \(worldSize), parts of \(partBytes) bytes"
        XCTAssertEqual(errors.compactMap { $0 }, [], context)
        for rank in 0..<worldSize {
            guard let results = outputs[rank] else { continue }
            for (k, count) in Self.sizes.enumerated() {
                let where_ = "\(context), rank \(rank), count \(count)"
                assertClosedForm(results[2 * k], count: count, worldSize: worldSize, mean: true, context: where_)
                assertClosedForm(results[2 * k + 1], count: count, worldSize: worldSize, mean: false, context: where_)
            }
            // Every rank must hold bit-identical results (the owner scales once, the others copy).
            XCTAssertEqual(results, outputs[0], "\(context): rank \(rank) differs from rank 0")
        }
    }
}
