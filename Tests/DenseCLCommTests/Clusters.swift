import DenseCLComm
import XCTest

/// Moves a value that is not `Sendable` into the one thread that will use it (a transport confined to its
/// rank's thread). Safe because the handing-over thread never touches it again.
struct Handoff<Value>: @unchecked Sendable {
    let value: Value
}

/// The transports of one test cluster, one per rank, built on the test's thread.
enum Cluster {
    static func inProcess(_ worldSize: Int, linkCapacity: Int = 4) -> [InProcessTransport] {
        let network = InProcessNetwork(worldSize: worldSize, linkCapacity: linkCapacity)
        return (0..<worldSize).map { network.transport(rank: $0) }
    }

    /// ZeroMQ transports on 127.0.0.1 with system-picked ports (or on Unix-domain sockets), connected all to all.
    static func zeroMQ(
        _ worldSize: Int, highWaterMark: Int = 4, binding: DataPlaneBinding = .tcp(host: "127.0.0.1")
    ) throws -> [ZeroMQTransport] {
        let context = try ZMQContext()
        let options = ZeroMQTransportOptions(highWaterMark: highWaterMark, linger: .milliseconds(200), binding: binding)
        let transports = try (0..<worldSize).map {
            try ZeroMQTransport(context: context, rank: $0, worldSize: worldSize, options: options)
        }
        let endpoints = transports.map(\.endpoint)
        for transport in transports { try transport.connect(to: endpoints) }
        return transports
    }

    /// Shared-memory transports of one session (threads of this process map each other's inboxes exactly as
    /// processes do), connected all to all.
    static func sharedMemory(
        _ worldSize: Int, options: SharedMemoryTransportOptions = .init(slotCount: 8),
        session: Session = Session(runID: UInt64.random(in: 1...UInt64(UInt32.max)), generation: 1)
    ) throws -> [SharedMemoryTransport] {
        let transports = try (0..<worldSize).map {
            try SharedMemoryTransport(session: session, rank: $0, worldSize: worldSize, options: options)
        }
        let endpoints = transports.map(\.endpoint)
        for transport in transports { try transport.connect(to: endpoints) }
        return transports
    }
}

/// Runs `body` on one thread per rank, each with its own communicator over `transports[rank]`.
func runCollectives<T: Transport>(
    _ transports: [T], session: Session = Session(runID: 7, generation: 1), options: CollectiveOptions,
    limit: Duration = .seconds(30), file: StaticString = #filePath, line: UInt = #line,
    _ body: @escaping @Sendable (Collectives<T>) throws -> Void
) -> [CommError?] {
    let handoff = Handoff(value: transports)
    return runRanks(transports.count, limit: limit, file: file, line: line) { rank in
        let comm = try Collectives(transport: handoff.value[rank], session: session, options: options)
        try body(comm)
    }
}
