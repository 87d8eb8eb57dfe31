import DenseCLComm
import Foundation
import XCTest

/// Where a worker's data inbox listens: `--data-plane` parsing, the route to the coordinator, and the IPC
/// transport carrying a real all-reduce.
final class DataPlaneBindingTests: XCTestCase {
    func testParsesExplicitChoices() throws {
        XCTAssertEqual(try DataPlaneBinding.parse("ipc", coordinator: "tcp://10.1.2.3:5555"), .ipc)
        XCTAssertEqual(try DataPlaneBinding.parse("shm", coordinator: "tcp://10.1.2.3:5555"), .sharedMemory)
        XCTAssertThrowsError(
            try ZeroMQTransport(context: ZMQContext(), rank: 0, worldSize: 1, options: .init(binding: .sharedMemory))
        ) { error in XCTAssertTrue("\(error)".contains("SharedMemoryTransport"), "\(error)") }
        XCTAssertEqual(try DataPlaneBinding.parse("10.0.0.5", coordinator: "tcp://10.1.2.3:5555"), .tcp(host: "10.0.0.5"))
        XCTAssertEqual(try DataPlaneBinding.parse("auto", coordinator: "ipc:///tmp/coordinator"), .ipc)
        XCTAssertEqual(try DataPlaneBinding.parse("auto", coordinator: "inproc://coordinator"), .ipc)
        for bad in ["", "tcp://10.0.0.5:*", "two words"] {
            XCTAssertThrowsError(try DataPlaneBinding.parse(bad, coordinator: "tcp://127.0.0.1:5555"), "'\(bad)'") { error in
                XCTAssertTrue("\(error)".contains("--data-plane"), "the error names the option: \(error)")
            }
        }
    }

    /// `auto` with a local coordinator picks a loopback address (the route to 127.0.0.1 leaves from 127.0.0.1):
    /// before, every worker bound 127.0.0.1 whatever the coordinator's host, which no other machine can reach.
    func testAutoFollowsTheRouteToTheCoordinator() throws {
        XCTAssertEqual(try DataPlaneBinding.parse("auto", coordinator: "tcp://127.0.0.1:5555"), .tcp(host: "127.0.0.1"))
        XCTAssertEqual(try DataPlaneBinding.localAddress(routingTo: "tcp://localhost:7000"), "127.0.0.1")
        XCTAssertThrowsError(try DataPlaneBinding.localAddress(routingTo: "tcp://no-such-host.invalid:5555")) { error in
            XCTAssertTrue("\(error)".contains("no-such-host.invalid"), "the error names the host: \(error)")
        }
        XCTAssertThrowsError(try DataPlaneBinding.localAddress(routingTo: "udp://127.0.0.1:5555"))
    }

    /// IPC inboxes bind a fresh absolute path in the temporary directory: ZeroMQ's `ipc://*` made a relative one
    /// (a `tmpXXXXXX` folder in the working directory when `TMPDIR` is unset), which a rank started in another
    /// directory cannot reach and which a killed rank left behind in the user's folder.
    func testIPCEndpointsAreFreshAbsolutePathsInTheTemporaryDirectory() throws {
        let first = try XCTUnwrap(try DataPlaneBinding.ipc.makeBindEndpoint(temporaryDirectory: "/var/tmp/"))
        let second = try XCTUnwrap(try DataPlaneBinding.ipc.makeBindEndpoint(temporaryDirectory: "/var/tmp"))
        XCTAssertTrue(first.hasPrefix("ipc:///var/tmp/densecl-\(getpid())-"), first)
        XCTAssertTrue(first.hasSuffix(".sock"), first)
        XCTAssertNotEqual(first, second, "two inboxes of one process need two paths")
        XCTAssertEqual(try DataPlaneBinding.tcp(host: "10.0.0.5").makeBindEndpoint(), "tcp://10.0.0.5:*")
        XCTAssertNil(try DataPlaneBinding.sharedMemory.makeBindEndpoint())
        XCTAssertThrowsError(try DataPlaneBinding.ipc.makeBindEndpoint(temporaryDirectory: "relative/tmp")) { error in
            XCTAssertTrue("\(error)".contains("TMPDIR"), "the error names the variable to fix: \(error)")
        }
        let deep = "/" + String(repeating: "d", count: 90)
        XCTAssertThrowsError(try DataPlaneBinding.ipc.makeBindEndpoint(temporaryDirectory: deep)) { error in
            XCTAssertTrue("\(error)".contains("107 bytes"), "the error gives the limit: \(error)")
        }
    }

    /// The all-reduce over Unix-domain sockets gives the closed form on every rank, as over TCP; the endpoints
    /// published are absolute `ipc://` paths in the temporary directory, and closing removes the sockets.
    func testAllReduceOverIPC() throws {
        let worldSize = 3
        let transports = Handoff(value: try Cluster.zeroMQ(worldSize, binding: .ipc))
        let socketPaths = transports.value.map { String($0.endpoint.dropFirst("ipc://".count)) }
        for (transport, path) in zip(transports.value, socketPaths) {
            XCTAssertTrue(transport.endpoint.hasPrefix("ipc://" + DataPlaneBinding.temporaryDirectory), transport.endpoint)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "the socket exists while the inbox is open: \(path)")
        }
        let count = 100_001  // RankEncoded is exact up to 2^17 values; several 64 KiB parts per chunk
        let outputs = RankValues<[Float]>(worldSize)
        let errors = runRanks(worldSize) { rank in
            let comm = try Collectives(
                transport: transports.value[rank], session: Session(runID: 7, generation: 1),
                options: CollectiveOptions(partBytes: 64 << 10, window: 4, timeout: .seconds(10)))
            var values = RankEncoded.input(rank: comm.rank, count: count)
            try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, bucket: 0) }
            outputs[rank] = values
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
        for rank in 0..<worldSize {
            guard let values = outputs[rank] else { XCTFail("rank \(rank) has no result"); continue }
            assertClosedForm(values, count: count, worldSize: worldSize, mean: true, context: "ipc, rank \(rank)")
        }
        for transport in transports.value { transport.close() }
        for path in socketPaths {
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "closing the inbox removes its socket: \(path)")
        }
    }
}

/// The coordinator's warning for an address book that mixes machine-local endpoints with network ones.
final class AddressBookWarningTests: XCTestCase {
    private func book(_ endpoints: [String]) -> AddressBook {
        AddressBook(peers: endpoints.indices.map { PeerID("w\($0)") }, endpoints: endpoints)
    }

    func testWarnsOnlyWhenLocalAndNetworkEndpointsMix() {
        XCTAssertNil(book(["tcp://127.0.0.1:4001", "tcp://127.0.0.1:4002"]).machineLocalWarning, "all on one machine")
        XCTAssertNil(book(["ipc:///tmp/a", "ipc:///tmp/b"]).machineLocalWarning, "all on one machine")
        XCTAssertNil(book(["tcp://10.0.0.5:4001", "tcp://10.0.0.6:4001"]).machineLocalWarning, "all reachable")
        let mixed = book(["tcp://10.0.0.5:4001", "tcp://127.0.0.1:4002", "ipc:///tmp/c"]).machineLocalWarning
        XCTAssertNotNil(mixed)
        XCTAssertTrue(mixed?.contains("rank 1 (tcp://127.0.0.1:4002), rank 2 (ipc:///tmp/c)") == true, mixed ?? "")
        XCTAssertTrue(mixed?.contains("--data-plane") == true, mixed ?? "")
    }
}
