import DenseCLComm
import Foundation
import XCTest

/// The shared-memory data plane: the all-reduce matrix over it (ranks as threads, which map each other's inboxes
/// exactly as processes do), the slot accounting that keeps its link capacity, and its failure modes. The
/// multi-process runs are in ``MultiProcessTests``.
final class SharedMemoryTransportTests: XCTestCase {
    /// 512 KiB slots hold every chunk of the matrix's sizes in one part; 4 slots per link (link capacity 2).
    static let options = SharedMemoryTransportOptions(slotCount: 4, slotBytes: 1 << 19)

    func testMeanMatchesClosedFormForWorldSizes1To8() throws {
        try checkMeanMatrix(label: "shared memory", largeParts: 1 << 19, window: 2) {
            try Cluster.sharedMemory($0, options: Self.options)
        }
    }

    /// The same reduction gives the same bits over shared memory as over the in-process links.
    func testSameBitsAsInProcess() throws {
        let count = 300_001
        func reduce<T: Transport>(_ transports: [T]) -> [[Float]] {
            let outputs = RankValues<[Float]>(3)
            let errors = runCollectives(
                transports, options: CollectiveOptions(partBytes: 1 << 16, window: 2, timeout: .seconds(10))
            ) { comm in
                // Values whose sums round differently in different orders.
                var values = (0..<count).map { Float(sin(Double($0 * (comm.rank + 3)))) * 1e3 + 0.1 }
                try values.withUnsafeMutableBufferPointer { try comm.allReduce($0) }
                outputs[comm.rank] = values
            }
            XCTAssertEqual(errors.compactMap { $0 }, [])
            return (0..<3).map { outputs[$0] ?? [] }
        }
        let shared = reduce(try Cluster.sharedMemory(3, options: .init(slotCount: 4, slotBytes: 1 << 16)))
        let reference = reduce(Cluster.inProcess(3, linkCapacity: 2))
        for rank in 0..<3 {
            XCTAssertEqual(shared[rank].count, count, "rank \(rank)")
            let differing = zip(shared[rank], reference[rank]).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "rank \(rank): elements that differ from the in-process reduction")
        }
    }

    /// A receiver that keeps every payload it reads must not starve the sender: beyond half the slots, received
    /// messages are copied out and their slots given back, so `linkCapacity` messages always fit.
    func testHeldPayloadsDoNotBlockTheSender() throws {
        let transports = Handoff(value: try Cluster.sharedMemory(2, options: .init(slotCount: 4, slotBytes: 64)))
        let messages = 12
        let kept = RankValues<[UInt8]>(2)
        let errors = runRanks(2, limit: .seconds(20)) { rank in
            let transport = transports.value[rank]
            if rank == 0 {
                for m in 0..<messages {
                    if try !Self.send(part: m, filledWith: UInt8(m), count: 64, over: transport, timeout: .seconds(5)) { throw CommError.invalidArgument("message \(m) found no free slot within 5 s") }
                }
            } else {
                var held: [SharedMemoryPayload] = []
                for m in 0..<messages {
                    guard let (header, payload) = try transport.receive(from: 0, timeout: .seconds(5)) else {
                        throw CommError.invalidArgument("message \(m) did not arrive")
                    }
                    if header.part != UInt32(m) { throw CommError.invalidArgument("message \(m) arrived as \(header.part)") }
                    held.append(payload)
                }
                // Every payload still reads its own message: no slot was reused under a held payload.
                kept[1] = held.map { payload in payload.bytes.allSatisfy { $0 == payload.bytes[0] } ? payload.bytes[0] : 255 }
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
        XCTAssertEqual(kept[1], (0..<messages).map { UInt8($0) })
    }

    /// Payloads released out of order: later slots are reused while an older payload stays held, and the held
    /// one keeps its bytes.
    func testOutOfOrderReleaseKeepsTheOldestSlot() throws {
        let transports = Handoff(value: try Cluster.sharedMemory(2, options: .init(slotCount: 4, slotBytes: 16)))
        let errors = runRanks(2, limit: .seconds(20)) { rank in
            let transport = transports.value[rank]
            if rank == 0 {
                for m in 0..<10 {
                    if try !Self.send(part: m, filledWith: UInt8(m), count: 16, over: transport, timeout: .seconds(5)) { throw CommError.invalidArgument("message \(m) found no free slot within 5 s") }
                }
            } else {
                guard let (_, first) = try transport.receive(from: 0, timeout: .seconds(5)) else {
                    throw CommError.invalidArgument("message 0 did not arrive")
                }
                // Read and drop the rest one by one while message 0 stays held.
                for m in 1..<10 {
                    guard let (header, payload) = try transport.receive(from: 0, timeout: .seconds(5)) else {
                        throw CommError.invalidArgument("message \(m) did not arrive")
                    }
                    guard header.part == UInt32(m), payload.bytes.allSatisfy({ $0 == UInt8(m) }) else {
                        throw CommError.invalidArgument("message \(m) arrived as part \(header.part) or corrupted")
                    }
                    guard first.bytes.allSatisfy({ $0 == 0 }) else {
                        throw CommError.invalidArgument("message 0 overwritten while held (after message \(m))")
                    }
                }
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
    }

    /// A peer that closes its transport is reported as lost within a fraction of the 20 s timeout.
    func testClosedPeerIsLostQuickly() throws {
        let transports = try Cluster.sharedMemory(2, options: .init(slotCount: 2, slotBytes: 16))
        transports[1].close()
        let start = ContinuousClock.now
        XCTAssertThrowsError(try transports[0].receive(from: 1, timeout: .seconds(20))) { error in
            guard case .peerLost(peer: 1, _) = error as? CommError else { return XCTFail("\(error)") }
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
    }

    /// A silent (open) peer is a plain timeout after the caller's bound.
    func testSilentPeerTimesOut() throws {
        let transports = try Cluster.sharedMemory(2, options: .init(slotCount: 2, slotBytes: 16))
        let start = ContinuousClock.now
        XCTAssertNil(try transports[0].receive(from: 1, timeout: .milliseconds(250)))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(250))
        // A full link: two messages fill the two slots, the third send waits out its timeout.
        for m in 0..<2 {
            XCTAssertTrue(try Self.send(part: m, over: transports[0], timeout: .milliseconds(250)))
        }
        XCTAssertFalse(try Self.send(part: 2, over: transports[0], timeout: .milliseconds(250)))
    }

    /// The inbox's name disappears once every peer has mapped it (checked when connecting and at each transfer)
    /// and in any case at close, so a run leaves nothing in the shared-memory file system.
    func testNamesAreRemoved() throws {
        func path(_ transport: SharedMemoryTransport) -> String {
            "/dev/shm" + transport.endpoint.dropFirst(SharedMemoryTransport.scheme.count)
        }
        // Rank 0 connects first, then rank 1, which rank 0 had already mapped: only rank 0's name is left.
        let transports = try Cluster.sharedMemory(2, options: .init(slotCount: 2, slotBytes: 16))
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path(transports[0])), "POSIX shared memory is not under /dev/shm here")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(transports[1])), "rank 1's inbox was mapped before it connected")
        XCTAssertTrue(try Self.send(part: 0, over: transports[0], timeout: .seconds(1)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(transports[0])), "rank 0's inbox name outlived its mapping by rank 1")
        // Closed before any peer mapped it.
        let early = try SharedMemoryTransport(session: Session(runID: 6, generation: 1), rank: 0, worldSize: 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path(early)))
        early.close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(early)))
        // A world of one: nobody will map the inbox, so its name goes at once (a worker killed later leaves nothing).
        let alone = try SharedMemoryTransport(session: Session(runID: 5, generation: 1), rank: 0, worldSize: 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path(alone)))
    }

    /// Misconfigurations are named: a slot count that is not a power of two, a peer that is not a shared-memory endpoint, an inbox of another layout, a
    /// message larger than a slot, and collectives whose parts exceed the slots.
    func testMisconfigurationsAreReported() throws {
        let session = Session(runID: 99, generation: 3)
        XCTAssertThrowsError(
            try SharedMemoryTransport(session: session, rank: 0, worldSize: 2, options: .init(slotCount: 6, slotBytes: 64))
        ) { error in XCTAssertTrue("\(error)".contains("power of two"), "\(error)") }
        let a = try SharedMemoryTransport(session: session, rank: 0, worldSize: 2, options: .init(slotCount: 2, slotBytes: 64))
        let b = try SharedMemoryTransport(session: session, rank: 1, worldSize: 2, options: .init(slotCount: 4, slotBytes: 64))
        XCTAssertThrowsError(try a.connect(to: [a.endpoint, "ipc:///tmp/x"])) { error in
            XCTAssertTrue("\(error)".contains("not a shared-memory inbox"), "\(error)")
        }
        XCTAssertThrowsError(try a.connect(to: [a.endpoint, b.endpoint])) { error in
            guard case .protocolMismatch(peer: 1, let detail) = error as? CommError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("same transport options"), detail)
        }
        XCTAssertThrowsError(try a.connect(to: [a.endpoint, "shm:/densecl-no-such-inbox"])) { error in
            XCTAssertTrue("\(error)".contains("needs every worker on one machine"), "\(error)")
        }
        // A second inbox for rank 1 in the same session and process takes over the name (a crashed process's
        // leftover with a reused process id looks the same).
        let c = try SharedMemoryTransport(session: session, rank: 1, worldSize: 2, options: .init(slotCount: 2, slotBytes: 64))
        try a.connect(to: [a.endpoint, c.endpoint])
        XCTAssertThrowsError(try Self.send(part: 0, count: 65, over: a, timeout: .seconds(1))) { error in XCTAssertTrue("\(error)".contains("exceeds the 64-byte"), "\(error)") }
        XCTAssertThrowsError(
            try Collectives(transport: a, session: session, options: CollectiveOptions(partBytes: 128, window: 1))
        ) { error in XCTAssertTrue("\(error)".contains("largest message"), "\(error)") }
    }

    private static func header(part: Int) -> FrameHeader {
        FrameHeader(kind: .allReduce, runID: 1, generation: 1, source: 0, step: 0, part: UInt32(part))
    }

    /// Sends message `part` (`count` bytes of `filledWith`) from rank 0 to rank 1; `false` if no slot freed up in time.
    private static func send(
        part: Int, filledWith byte: UInt8 = 1, count: Int = 4, over transport: SharedMemoryTransport, timeout: Duration
    ) throws -> Bool {
        try [UInt8](repeating: byte, count: count).withUnsafeBytes {
            try transport.send(header(part: part), borrowing: $0, to: 1, timeout: timeout)
        }
    }
}
