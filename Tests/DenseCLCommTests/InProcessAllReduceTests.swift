import DenseCLComm
import XCTest

/// Ring all-reduce with threads as ranks over the in-process transport, against closed-form sums.
final class InProcessAllReduceTests: XCTestCase {
    static let sizes = [0, 1, 7, 1000, 100_000]

    /// World sizes 1 through 8 and sizes {0, 1, 7, 1000, 100000}, mean and sum, with the default 1 MiB
    /// parts and with small parts (many parts per chunk: the pipelined path).
    func testMeanAndSumMatchClosedFormForWorldSizes1To8() {
        for worldSize in 1...8 {
            for small in [false, true] {
                checkAllReduce(worldSize: worldSize, smallParts: small)
            }
        }
    }

    /// The test-only knob: 64-byte parts (16 floats), except 4 KiB for the largest size so that the test
    /// stays fast while every chunk still spans several parts.
    static func partBytes(count: Int, small: Bool) -> Int {
        small ? (count >= 100_000 ? 4096 : 64) : 1 << 20
    }

    private func checkAllReduce(worldSize: Int, smallParts: Bool) {
        let network = InProcessNetwork(worldSize: worldSize, linkCapacity: 4)
        let outputs = RankValues<[[Float]]>(worldSize)
        let errors = runRanks(worldSize) { rank in
            let transport = network.transport(rank: rank)
            var results: [[Float]] = []
            for (bucket, count) in Self.sizes.enumerated() {
                let comm = try Collectives(
                    transport: transport, session: Session(runID: 7, generation: UInt32(bucket)),
                    options: CollectiveOptions(
                        partBytes: Self.partBytes(count: count, small: smallParts), window: 4, timeout: .seconds(10)))
                var mean = RankEncoded.input(rank: rank, count: count)
                try mean.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .mean, bucket: bucket) }
                var sum = RankEncoded.input(rank: rank, count: count)
                try sum.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .sum, bucket: bucket) }
                results += [mean, sum]
            }
            outputs[rank] = results
        }
        let context = "world \(worldSize), \(smallParts ? "small" : "1 MiB") parts"
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
