import DenseCLComm
import XCTest

/// The all-reduce matrix of ``InProcessAllReduceTests`` over real ZeroMQ sockets on 127.0.0.1, ranks as
/// threads of this process (the multi-process version is in ``MultiProcessTests``).
final class ZeroMQAllReduceTests: XCTestCase {
    func testMeanAndSumMatchClosedFormForWorldSizes1To8() throws {
        for worldSize in 1...8 {
            // Small parts: many parts per chunk, and small frames that ZeroMQ may hand over unaligned.
            for small in [false, true] {
                let outputs = RankValues<[[Float]]>(worldSize)
                let transports = Handoff(value: try Cluster.zeroMQ(worldSize))
                let errors = runRanks(worldSize) { rank in
                    var results: [[Float]] = []
                    for (bucket, count) in InProcessAllReduceTests.sizes.enumerated() {
                        // One communicator per size (each a new generation) to vary the part size.
                        let comm = try Collectives(
                            transport: transports.value[rank], session: Session(runID: 7, generation: UInt32(bucket)),
                            options: CollectiveOptions(
                                partBytes: InProcessAllReduceTests.partBytes(count: count, small: small), window: 4,
                                timeout: .seconds(10)))
                        var values = RankEncoded.input(rank: comm.rank, count: count)
                        try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, bucket: bucket) }
                        results.append(values)
                    }
                    outputs[rank] = results
                }
                let context = "ZeroMQ world \(worldSize), \(small ? "small" : "1 MiB") parts"
                XCTAssertEqual(errors.compactMap { $0 }, [], context)
                for rank in 0..<worldSize {
                    guard let results = outputs[rank] else { continue }
                    for (k, count) in InProcessAllReduceTests.sizes.enumerated() {
                        assertClosedForm(
                            results[k], count: count, worldSize: worldSize, mean: true,
                            context: "\(context), rank \(rank)")
                    }
                    XCTAssertEqual(results, outputs[0], "\(context): rank \(rank) differs from rank 0")
                }
            }
        }
    }
}
