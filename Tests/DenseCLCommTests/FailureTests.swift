import DenseCLComm
import Foundation
import XCTest

/// Failures must surface as typed errors within the configured bounds, never as hangs.
final class FailureTests: XCTestCase {
    /// Rank 2 of 3 never joins the all-reduce. Its neighbours must fail with a timeout naming a peer, within
    /// a small multiple of the 200 ms timeout (runRanks itself fails the test if anything runs for 10 s).
    func testSilentNeighbourBecomesTimeoutInProcess() {
        checkSilentNeighbour(Cluster.inProcess(3))
    }

    func testSilentNeighbourBecomesTimeoutOverZeroMQ() throws {
        checkSilentNeighbour(try Cluster.zeroMQ(3))
    }

    func testSilentNeighbourBecomesTimeoutOverSharedMemory() throws {
        checkSilentNeighbour(try Cluster.sharedMemory(3))
    }

    private func checkSilentNeighbour<T: Transport>(_ transports: [T]) {
        let timeout = Duration.milliseconds(200)
        let start = ContinuousClock.now
        let errors = runCollectives(
            transports, options: CollectiveOptions(partBytes: 1024, window: 2, timeout: timeout), limit: .seconds(10)
        ) { comm in
            guard comm.rank != 2 else { return }  // the silent rank
            var values = RankEncoded.input(rank: comm.rank, count: 100_000)
            try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }
        }
        let elapsed = ContinuousClock.now - start
        for rank in 0..<2 {
            guard case .timeout(let peer, let operation, let after)? = errors[rank] else {
                XCTFail("rank \(rank): expected a timeout, got \(String(describing: errors[rank]))")
                continue
            }
            XCTAssertEqual(after, timeout)
            XCTAssertTrue((0..<3).contains(peer) && peer != rank, "rank \(rank) blamed rank \(peer)")
            XCTAssertTrue(operation.contains("all-reduce"), operation)
        }
        XCTAssertNil(errors[2])
        // Bound: rank 1 may first wait out rank 0's sends, then its own timeout: a few timeouts at most.
        XCTAssertLessThan(elapsed, .seconds(3), "failure took \(elapsed)")
    }

    /// Two ranks running different collectives must fail with a protocol mismatch, not mix their data.
    func testDifferentCollectivesAreAProtocolMismatch() {
        let errors = runCollectives(Cluster.inProcess(2), options: CollectiveOptions(timeout: .seconds(2))) { comm in
            var values: [Float] = [1, 2, 3, 4]
            if comm.rank == 0 {
                try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }
            } else {
                _ = try comm.allGather(values)
            }
        }
        for rank in 0..<2 {
            guard case .protocolMismatch(let peer, _)? = errors[rank] else {
                XCTFail("rank \(rank): expected a protocol mismatch, got \(String(describing: errors[rank]))")
                continue
            }
            XCTAssertEqual(peer, 1 - rank)
        }
    }

    /// Ranks disagreeing on a buffer's size is caught from the headers.
    func testDifferentBufferSizesAreAProtocolMismatch() {
        let errors = runCollectives(Cluster.inProcess(2), options: CollectiveOptions(timeout: .seconds(2))) { comm in
            var values = [Float](repeating: 1, count: comm.rank == 0 ? 10 : 12)
            try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }
        }
        for rank in 0..<2 {
            guard case .protocolMismatch? = errors[rank] else {
                XCTFail("rank \(rank): expected a protocol mismatch, got \(String(describing: errors[rank]))")
                continue
            }
        }
    }

    /// Messages left over from an older generation are dropped (and counted); the collective of the new
    /// generation then completes with the right values.
    func testStaleGenerationMessagesAreDropped() throws {
        let transports = Cluster.inProcess(2)
        // A leftover from generation 1 waiting in rank 1's inbox from rank 0.
        let stale = FrameHeader(kind: .allReduce, runID: 7, generation: 1, source: 0, step: 0, operation: 1, extent: 8)
        let payload = try transports[0].makePayload(byteCount: 8)
        XCTAssertTrue(try transports[0].send(stale, payload: payload, to: 1, timeout: .seconds(1)))

        let dropped = RankValues<Int>(2)
        let outputs = RankValues<[Float]>(2)
        let errors = runCollectives(
            transports, session: Session(runID: 7, generation: 2), options: CollectiveOptions(timeout: .seconds(2))
        ) { comm in
            var values = RankEncoded.input(rank: comm.rank, count: 2)
            try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .sum) }
            dropped[comm.rank] = comm.staleMessagesDropped
            outputs[comm.rank] = values
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
        XCTAssertEqual(dropped[1], 1)
        XCTAssertEqual(dropped[0], 0)
        for rank in 0..<2 {
            assertClosedForm(outputs[rank] ?? [], count: 2, worldSize: 2, mean: false, context: "rank \(rank)")
        }
    }

    /// A message from another run is rejected outright.
    func testForeignRunIsAProtocolMismatch() throws {
        let transports = Cluster.inProcess(2)
        let foreign = FrameHeader(kind: .allReduce, runID: 99, generation: 1, source: 0, step: 0, operation: 1)
        XCTAssertTrue(try transports[0].send(foreign, payload: try transports[0].makePayload(byteCount: 0), to: 1, timeout: .seconds(1)))
        let comm = try Collectives(transport: transports[1], session: Session(runID: 7, generation: 1))
        var values: [Float] = [1]
        XCTAssertThrowsError(try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }) { error in
            guard case CommError.protocolMismatch(let peer, let detail) = error else {
                return XCTFail("expected a protocol mismatch, got \(error)")
            }
            XCTAssertEqual(peer, 0)
            XCTAssertTrue(detail.contains("run 99"), detail)
        }
    }

    /// A rank that is gone (a crashed process, as the transport reports it) surfaces as `peerLost` on both
    /// of its ring neighbours, and a communicator that failed refuses further collectives.
    func testLostPeerThenBrokenCommunicator() {
        let network = InProcessNetwork(worldSize: 3, linkCapacity: 4)
        let transports = Handoff(value: (0..<3).map { network.transport(rank: $0) })
        network.disconnect(rank: 2)
        let errors = runRanks(2, limit: .seconds(10)) { rank in
            let comm = try Collectives(
                transport: transports.value[rank], session: Session(runID: 1, generation: 1),
                options: CollectiveOptions(timeout: .seconds(5)))
            var values = [Float](repeating: 1, count: 1000)
            do {
                try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }
            } catch CommError.peerLost {
                // Expected; the next call must refuse to run.
                do {
                    try comm.barrier()
                } catch CommError.broken(let cause) where cause.contains("lost") {
                    return
                }
                throw CommError.invalidArgument("rank \(rank): barrier ran on a broken communicator")
            }
            throw CommError.invalidArgument("rank \(rank): all-reduce succeeded without rank 2")
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
    }

    /// An abort from another thread interrupts a blocked wait long before the timeout.
    func testAbortSignalInterruptsAWait() throws {
        let signal = AbortSignal()
        let transports = Cluster.inProcess(2)
        let comm = try Collectives(
            transport: transports[0], session: Session(runID: 1, generation: 1),
            options: CollectiveOptions(timeout: .seconds(20), abort: signal))
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
            signal.abort(.peerLost(peer: 1, detail: "missed 3 heartbeats"))
        }
        let start = ContinuousClock.now
        var values: [Float] = [1, 2]
        XCTAssertThrowsError(try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }) { error in
            XCTAssertEqual(error as? CommError, .peerLost(peer: 1, detail: "missed 3 heartbeats"))
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
    }

    func testWindowLargerThanLinkCapacityIsRejected() {
        XCTAssertThrowsError(
            try Collectives(
                transport: Cluster.inProcess(2, linkCapacity: 2)[0], session: Session(runID: 1, generation: 1),
                options: CollectiveOptions(window: 3))
        ) { error in
            guard case CommError.invalidArgument(let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("window"), detail)
        }
    }
}
