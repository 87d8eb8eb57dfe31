import Foundation

/// A heap buffer standing in for a message payload between threads of one process.
///
/// `@unchecked Sendable`: ownership moves with the message (see ``TransportPayload``), so only one thread
/// touches the bytes at a time.
public final class InProcessPayload: TransportPayload, @unchecked Sendable {
    public let bytes: UnsafeMutableRawBufferPointer

    init(byteCount: Int) {
        bytes = .allocate(byteCount: byteCount, alignment: 64)
    }

    deinit { bytes.deallocate() }
}

/// The links of one in-process "cluster": `worldSize` ranks, usually threads of a test, connected all to all
/// through bounded FIFO mailboxes that behave like ZeroMQ pipes at their high-water mark (a full mailbox
/// makes `send` wait).
///
/// ``disconnect(rank:)`` simulates a crashed process: its peers' pending and future operations with it fail
/// with ``CommError/peerLost(peer:detail:)``.
public final class InProcessNetwork: Sendable {
    public let worldSize: Int
    public let linkCapacity: Int
    /// `mailboxes[source * worldSize + destination]`.
    private let mailboxes: [Mailbox]

    public init(worldSize: Int, linkCapacity: Int = 8) {
        precondition(worldSize >= 1, "world size must be at least 1")
        precondition(linkCapacity >= 1, "link capacity must be at least 1")
        self.worldSize = worldSize
        self.linkCapacity = linkCapacity
        mailboxes = (0..<worldSize * worldSize).map { _ in Mailbox(capacity: linkCapacity) }
    }

    /// The endpoint of `rank`; give each to exactly one thread.
    public func transport(rank: Int) -> InProcessTransport {
        precondition((0..<worldSize).contains(rank), "rank \(rank) outside 0..<\(worldSize)")
        return InProcessTransport(network: self, rank: rank)
    }

    /// Marks `rank` as dead: everything it sent and everything sent to it is dropped.
    public func disconnect(rank: Int) {
        for peer in 0..<worldSize {
            mailbox(from: rank, to: peer).markLost()
            mailbox(from: peer, to: rank).markLost()
        }
    }

    func mailbox(from source: Int, to destination: Int) -> Mailbox {
        mailboxes[source * worldSize + destination]
    }
}

/// One direction of one link: a bounded FIFO guarded by a condition variable.
final class Mailbox: @unchecked Sendable {
    private let condition = NSCondition()
    private let capacity: Int
    // Guarded by `condition`.
    private var queue: [(FrameHeader, InProcessPayload)] = []
    private var head = 0
    private var lost = false

    init(capacity: Int) { self.capacity = capacity }

    enum Outcome { case done, timedOut, lost }

    func put(_ header: FrameHeader, _ payload: InProcessPayload, timeout: Duration) -> Outcome {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !lost && queue.count - head >= capacity {
            if !condition.wait(until: deadline) && queue.count - head >= capacity && !lost { return .timedOut }
        }
        if lost { return .lost }
        queue.append((header, payload))
        condition.broadcast()
        return .done
    }

    func take(timeout: Duration) -> (Outcome, (FrameHeader, InProcessPayload)?) {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !lost && head == queue.count {
            if !condition.wait(until: deadline) && head == queue.count && !lost { return (.timedOut, nil) }
        }
        if lost { return (.lost, nil) }
        let message = queue[head]
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        condition.broadcast()
        return (.done, message)
    }

    func markLost() {
        condition.lock()
        lost = true
        queue.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}

/// One rank's view of an ``InProcessNetwork``. Borrowed sends are copied at once, so
/// ``waitForBorrowedSends(timeout:)`` never waits.
public final class InProcessTransport: Transport {
    public let rank: Int
    public var worldSize: Int { network.worldSize }
    public var linkCapacity: Int { network.linkCapacity }
    private let network: InProcessNetwork

    init(network: InProcessNetwork, rank: Int) {
        self.network = network
        self.rank = rank
    }

    public func makePayload(byteCount: Int) throws(CommError) -> InProcessPayload {
        InProcessPayload(byteCount: byteCount)
    }

    public func send(_ header: FrameHeader, payload: InProcessPayload, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        try checkPeer(peer)
        var header = header
        header.frames = 1
        header.payloadBytes = UInt64(payload.bytes.count)
        switch network.mailbox(from: rank, to: peer).put(header, payload, timeout: timeout) {
        case .done: return true
        case .timedOut: return false
        case .lost: throw CommError.peerLost(peer: peer, detail: "disconnected from the in-process network")
        }
    }

    public func send(_ header: FrameHeader, borrowing bytes: UnsafeRawBufferPointer, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        let payload = InProcessPayload(byteCount: bytes.count)
        if bytes.count > 0 { payload.bytes.copyMemory(from: bytes) }
        return try send(header, payload: payload, to: peer, timeout: timeout)
    }

    public func waitForBorrowedSends(timeout: Duration) throws(CommError) -> Bool { true }

    public func receive(from peer: Int, timeout: Duration) throws(CommError)
        -> (header: FrameHeader, payload: InProcessPayload)?
    {
        try checkPeer(peer)
        let (outcome, message) = network.mailbox(from: peer, to: rank).take(timeout: timeout)
        switch outcome {
        case .done: return message.map { (header: $0.0, payload: $0.1) }
        case .timedOut: return nil
        case .lost: throw CommError.peerLost(peer: peer, detail: "disconnected from the in-process network")
        }
    }

    private func checkPeer(_ peer: Int) throws(CommError) {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw .invalidArgument("peer \(peer) is not another rank of a world of \(worldSize)")
        }
    }
}
