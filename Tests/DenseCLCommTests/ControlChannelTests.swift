import CZeroMQ
import DenseCLComm
import Foundation
import XCTest

/// The control channel over real ZeroMQ sockets on 127.0.0.1 with short heartbeat intervals. Intervals and
/// bounds leave a wide margin (deadline 800 ms, traffic every 50 ms) because tests share two busy cores.
final class ControlChannelTests: XCTestCase {
    static let hello = MessageKind.application(1)
    let fast = ControlOptions(runID: 11, heartbeatInterval: .milliseconds(100), missedBeats: 8)
    /// A worker that pings once on connect and then (within a test) never again.
    let mute = ControlOptions(runID: 11, heartbeatInterval: .seconds(3600), missedBeats: 8)

    /// Waits for the first event matching `predicate`, failing the test on timeout.
    @discardableResult
    func awaitEvent(
        _ channel: ControlChannel, within limit: Duration, file: StaticString = #filePath, line: UInt = #line,
        _ predicate: (ControlEvent) -> Bool
    ) -> ControlEvent? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let event = channel.nextEvent(timeout: ContinuousClock.now.duration(to: deadline)), predicate(event) {
                return event
            }
        }
        XCTFail("no matching event within \(limit)", file: file, line: line)
        return nil
    }

    func testTypedMessagesBothWaysAndPeerUp() throws {
        let context = try ZMQContext()
        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        let worker = try ControlChannel.worker(
            context: context, connect: coordinator.endpoint, identity: "worker-a", options: fast)
        defer {
            worker.close()
            coordinator.close()
        }
        var writer = ByteWriter()
        writer.write(UInt32(3))
        writer.write("ready")
        try worker.send(ControlMessage(kind: Self.hello, generation: 2, step: 9, payload: writer.bytes))

        awaitEvent(coordinator, within: .seconds(5)) { $0 == .peerUp("worker-a") }
        let event = awaitEvent(coordinator, within: .seconds(5)) {
            if case .message = $0 { return true } else { return false }
        }
        guard case .message(let message, let from)? = event else { return }
        XCTAssertEqual(from, "worker-a")
        XCTAssertEqual(message.kind, Self.hello)
        XCTAssertEqual(message.generation, 2)
        XCTAssertEqual(message.step, 9)
        var reader = ByteReader(message.payload)
        XCTAssertEqual(try reader.read(UInt32.self), 3)
        XCTAssertEqual(try reader.readString(), "ready")
        XCTAssertTrue(reader.isAtEnd)

        try coordinator.send(ControlMessage(kind: Self.hello, payload: [7]), to: "worker-a")
        awaitEvent(worker, within: .seconds(5)) { $0 == .peerUp(.coordinator) }  // the first pong
        awaitEvent(worker, within: .seconds(5)) { $0 == .message(ControlMessage(kind: Self.hello, payload: [7]), from: .coordinator) }
    }

    /// A worker that stops heartbeating is reported dead after about `interval · missedBeats` of silence.
    func testWorkerThatStopsHeartbeatingIsReportedDead() throws {
        let context = try ZMQContext()
        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        let worker = try ControlChannel.worker(
            context: context, connect: coordinator.endpoint, identity: "worker-mute", options: mute)
        defer {
            worker.close()
            coordinator.close()
        }
        awaitEvent(coordinator, within: .seconds(5)) { $0 == .peerUp("worker-mute") }
        let upAt = ContinuousClock.now
        let event = awaitEvent(coordinator, within: .seconds(5)) {
            if case .peerDown = $0 { return true } else { return false }
        }
        guard case .peerDown(let peer, .silent(let silence))? = event else {
            return XCTFail("expected a silent peer, got \(String(describing: event))")
        }
        XCTAssertEqual(peer, "worker-mute")
        // The deadline is 800 ms: never earlier; later only by scheduling delays.
        XCTAssertGreaterThan(silence, .milliseconds(800))
        XCTAssertGreaterThan(ContinuousClock.now - upAt, .milliseconds(700))
    }

    /// Any traffic counts as life: a worker that never pings but sends an application message every 50 ms
    /// stays up for 2 s (two and a half deadlines), and is reported down once it stops.
    func testApplicationTrafficCountsAsLife() throws {
        let context = try ZMQContext()
        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        let worker = try ControlChannel.worker(
            context: context, connect: coordinator.endpoint, identity: "worker-chatty", options: mute)
        defer {
            worker.close()
            coordinator.close()
        }
        awaitEvent(coordinator, within: .seconds(5)) { $0 == .peerUp("worker-chatty") }
        let end = ContinuousClock.now + .milliseconds(2000)
        var nextSend = ContinuousClock.now
        var received = 0
        while ContinuousClock.now < end {
            if ContinuousClock.now >= nextSend {
                try worker.send(ControlMessage(kind: Self.hello))
                nextSend += .milliseconds(50)
            }
            while let event = coordinator.nextEvent(timeout: .milliseconds(10)) {
                if case .peerDown = event { return XCTFail("a worker sending messages was declared dead") }
                if case .message = event { received += 1 }
            }
        }
        XCTAssertGreaterThan(received, 10)
        awaitEvent(coordinator, within: .seconds(5)) {
            if case .peerDown("worker-chatty", .silent) = $0 { return true } else { return false }
        }
    }

    /// A worker whose coordinator never answers reports it down; one whose coordinator closes hears goodbye.
    func testWorkerReportsCoordinatorLoss() throws {
        let context = try ZMQContext()
        // Nothing listens on this endpoint: bind a socket to learn a free port, then close it.
        let probe = try ControlChannel.coordinator(context: context, options: fast)
        let deadEndpoint = probe.endpoint
        probe.close()
        let orphan = try ControlChannel.worker(context: context, connect: deadEndpoint, identity: "orphan", options: fast)
        defer { orphan.close() }
        awaitEvent(orphan, within: .seconds(5)) {
            if case .peerDown(.coordinator, .silent) = $0 { return true } else { return false }
        }

        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        let worker = try ControlChannel.worker(context: context, connect: coordinator.endpoint, identity: "w", options: fast)
        defer { worker.close() }
        awaitEvent(worker, within: .seconds(5)) { $0 == .peerUp(.coordinator) }
        awaitEvent(coordinator, within: .seconds(5)) { $0 == .peerUp("w") }
        coordinator.close()
        awaitEvent(worker, within: .seconds(5)) { $0 == .peerDown(.coordinator, .goodbye) }
    }

    /// Closing never hangs, even with messages queued for a peer that does not exist; sending after close is
    /// a typed error.
    func testCloseIsBoundedWithUnsentMessages() throws {
        let context = try ZMQContext()
        let probe = try ControlChannel.coordinator(context: context, options: fast)
        let nowhere = probe.endpoint
        probe.close()
        let worker = try ControlChannel.worker(context: context, connect: nowhere, identity: "w", options: fast)
        for _ in 0..<100 { try worker.send(ControlMessage(kind: Self.hello, payload: [UInt8](repeating: 1, count: 1000))) }
        let start = ContinuousClock.now
        worker.close()
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2), "close waited longer than its linger")
        XCTAssertThrowsError(try worker.send(ControlMessage(kind: Self.hello))) { error in
            XCTAssertEqual(error as? CommError, .closed)
        }
    }

    /// Messages of another run are rejected (and do not count as life); sends to unknown peers are reported.
    func testForeignRunRejectedAndUnknownPeerUndeliverable() throws {
        let context = try ZMQContext()
        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        var foreign = fast
        foreign.runID = 12
        let stranger = try ControlChannel.worker(
            context: context, connect: coordinator.endpoint, identity: "stranger", options: foreign)
        defer {
            stranger.close()
            coordinator.close()
        }
        let event = awaitEvent(coordinator, within: .seconds(5)) {
            if case .rejected = $0 { return true } else { return false }
        }
        guard case .rejected(let from, .protocolMismatch(_, let detail))? = event else { return }
        XCTAssertEqual(from, "stranger")
        XCTAssertTrue(detail.contains("run 12"), detail)

        try coordinator.send(ControlMessage(kind: Self.hello), to: "nobody")
        awaitEvent(coordinator, within: .seconds(5)) {
            if case .undeliverable("nobody", Self.hello, _) = $0 { return true } else { return false }
        }
        XCTAssertThrowsError(try coordinator.send(ControlMessage(kind: .ping), to: "stranger"))
    }

    /// A frame that is not a DenseCL header is reported as rejected and does not make its sender a peer;
    /// the channel keeps serving well-formed traffic afterwards.
    func testMalformedFramesAreRejected() throws {
        let context = try ZMQContext()
        let coordinator = try ControlChannel.coordinator(context: context, options: fast)
        defer { coordinator.close() }
        guard let raw = zmq_socket(context.unsafeHandle, ZMQ_DEALER) else { return XCTFail("zmq_socket") }
        defer { zmq_close(raw) }
        var linger: Int32 = 0
        zmq_setsockopt(raw, ZMQ_LINGER, &linger, 4)
        let name = Array("junk-peer".utf8)
        name.withUnsafeBytes { _ = zmq_setsockopt(raw, ZMQ_ROUTING_ID, $0.baseAddress, $0.count) }
        XCTAssertEqual(zmq_connect(raw, coordinator.endpoint), 0)
        let junk = Array("hello?".utf8)
        XCTAssertEqual(junk.withUnsafeBytes { zmq_send(raw, $0.baseAddress, $0.count, 0) }, Int32(junk.count))

        let event = awaitEvent(coordinator, within: .seconds(5)) { _ in true }
        guard case .rejected(let from, .protocolMismatch(_, let detail))? = event else {
            return XCTFail("expected a rejection first, got \(String(describing: event))")
        }
        XCTAssertEqual(from, "junk-peer")
        XCTAssertTrue(detail.contains("header frame of 6 bytes"), detail)

        let worker = try ControlChannel.worker(context: context, connect: coordinator.endpoint, identity: "w", options: fast)
        defer { worker.close() }
        awaitEvent(coordinator, within: .seconds(5)) { $0 == .peerUp("w") }
    }
}
