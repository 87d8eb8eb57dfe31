import DenseCLComm
import XCTest

/// The all-reduce matrix of ``InProcessAllReduceTests`` over real ZeroMQ sockets on 127.0.0.1, ranks as
/// threads of this process (the multi-process version is in ``MultiProcessTests``).
final class ZeroMQAllReduceTests: XCTestCase {
    func testMeanAndSumMatchClosedFormForWorldSizes1To8() throws {
        // Small parts: many parts per chunk, and small frames that ZeroMQ may hand over unaligned.
        try checkMeanMatrix(label: "ZeroMQ", largeParts: 1 << 20, window: 4) { try Cluster.zeroMQ($0) }
    }
}

/// The all-reduce matrix over one kind of transport: world sizes 1 through 8, the sizes of
/// ``InProcessAllReduceTests``, parts of `largeParts` bytes and small parts (many parts per chunk), each size
/// its own communicator and generation; every rank must hold the closed-form mean, bit-identical to rank 0's.
func checkMeanMatrix<T: Transport>(
    label: String, largeParts: Int, window: Int, file: StaticString = #filePath, line: UInt = #line,
    cluster: (Int) throws -> [T]
) throws {
    for worldSize in 1...8 {
        for small in [false, true] {
            let outputs = RankValues<[[Float]]>(worldSize)
            let transports = Handoff(value: try cluster(worldSize))
            let errors = runRanks(worldSize, file: file, line: line) { rank in
                var results: [[Float]] = []
                for (bucket, count) in InProcessAllReduceTests.sizes.enumerated() {
                    let comm = try Collectives(
                        transport: transports.value[rank], session: Session(runID: 7, generation: UInt32(bucket)),
                        options: CollectiveOptions(
                            partBytes: small ? InProcessAllReduceTests.partBytes(count: count, small: true) : largeParts,
                            window: window, timeout: .seconds(10)))
                    var values = RankEncoded.input(rank: comm.rank, count: count)
                    try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, bucket: bucket) }
                    results.append(values)
                }
                outputs[rank] = results
            }
            let context = "\(label) world \(worldSize), \(small ? "small" : "\(largeParts >> 10) KiB") parts"
            XCTAssertEqual(errors.compactMap { $0 }, [], context, file: file, line: line)
            for rank in 0..<worldSize {
                guard let results = outputs[rank] else { continue }
                for (k, count) in InProcessAllReduceTests.sizes.enumerated() {
                    assertClosedForm(
                        results[k], count: count, worldSize: worldSize, mean: true, context: "\(context), rank \(rank)")
                }
                XCTAssertEqual(results, outputs[0], "\(context): rank \(rank) differs from rank 0", file: file, line: line)
            }
        }
    }
}
