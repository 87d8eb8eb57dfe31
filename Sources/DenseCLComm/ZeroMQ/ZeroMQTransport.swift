import CZeroMQ
import Foundation

/// Socket settings of a ``ZeroMQTransport``.
public struct ZeroMQTransportOptions: Sendable {
    /// `ZMQ_SNDHWM`/`ZMQ_RCVHWM` of every data socket, in messages (ZeroMQ's default is 1000, which for 1 MiB
    /// parts would let a gigabyte pile up). A link holds between this and twice this many messages, so it is
    /// reported as the link capacity; keep it at least the collectives' window.
    public var highWaterMark: Int = 8
    /// `ZMQ_LINGER`: how long closing waits to flush the last messages (the tail of a collective that the
    /// neighbour still needs) before dropping them. Bounded, so shutdown never hangs.
    public var linger: Duration = .seconds(2)
    /// Where the inbox listens (TCP on an address of this machine, or IPC for ranks on one machine).
    public var binding: DataPlaneBinding = .tcp(host: "127.0.0.1")

    public init(highWaterMark: Int = 8, linger: Duration = .seconds(2), binding: DataPlaneBinding = .tcp(host: "127.0.0.1")) {
        self.highWaterMark = highWaterMark
        self.linger = linger
        self.binding = binding
    }
}

/// The data plane over ZeroMQ (TCP, or IPC on one machine): every rank binds one PULL inbox and connects one PUSH socket to each
/// peer's inbox (a full mesh, so that all-to-all needs no forwarding; the ring collectives use two of them).
///
/// Messages are a 64-byte header frame plus one payload frame. Borrowed payloads go out without a copy
/// (`zmq_msg_init_data`, released through a free callback); received payloads stay in their `zmq_msg_t`.
/// The inbox fair-queues all senders, so messages from a peer other than the one being waited for are kept
/// in a per-peer FIFO until asked for (order per sender is preserved).
///
/// One transport serves one membership generation: re-forming the ring means new transports with new
/// endpoints, so stale connections never feed the new ring.
///
/// Thread confinement: see ``Transport``.
public final class ZeroMQTransport: ConnectableTransport {
    public let rank: Int
    public let worldSize: Int
    public var linkCapacity: Int { options.highWaterMark }
    /// The inbox's resolved endpoint (`tcp://<host>:<port>` or `ipc://<path>`), to be published to the other ranks.
    public let endpoint: String

    private let options: ZeroMQTransportOptions
    private let context: ZMQContext
    private let inbox: ZMQSocket
    private var outboxes: [ZMQSocket?]
    private var stash: [PeerFIFO]
    private let borrowed = BorrowedSendTracker()
    private let headerMessage = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
    private let headerBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: FrameHeader.byteCount, alignment: 8)

    /// Binds the inbox. Call ``connect(to:)`` with every rank's endpoint before the first collective.
    public init(context: ZMQContext, rank: Int, worldSize: Int, options: ZeroMQTransportOptions = .init())
        throws(CommError)
    {
        guard worldSize >= 1, (0..<worldSize).contains(rank) else {
            throw .invalidArgument("rank \(rank) outside a world of \(worldSize)")
        }
        guard options.highWaterMark >= 1 else { throw .invalidArgument("high-water mark must be at least 1") }
        guard let bindEndpoint = try options.binding.makeBindEndpoint() else {
            throw .invalidArgument("a ZeroMQ transport cannot bind \(options.binding); use SharedMemoryTransport")
        }
        self.rank = rank
        self.worldSize = worldSize
        self.options = options
        self.context = context
        inbox = try ZMQSocket(context: context, type: ZMQ_PULL, role: "ring inbox", linger: options.linger)
        try inbox.set(ZMQ_RCVHWM, Int32(options.highWaterMark), "ZMQ_RCVHWM")
        endpoint = try inbox.bind(bindEndpoint)
        outboxes = Array(repeating: nil, count: worldSize)
        stash = Array(repeating: PeerFIFO(), count: worldSize)
        zmq_msg_init(headerMessage)
    }

    deinit {
        close()
        zmq_msg_close(headerMessage)
        headerMessage.deallocate()
        headerBytes.deallocate()
    }

    /// Connects to every other rank's inbox. `endpoints[r]` is rank `r`'s ``endpoint``; this rank's own
    /// entry is ignored.
    public func connect(to endpoints: [String]) throws(CommError) {
        guard endpoints.count == worldSize else {
            throw .invalidArgument("\(endpoints.count) endpoints for a world of \(worldSize)")
        }
        for peer in 0..<worldSize where peer != rank && outboxes[peer] == nil {
            let socket = try ZMQSocket(
                context: context, type: ZMQ_PUSH, role: "link \(rank)->\(peer)", linger: options.linger)
            try socket.set(ZMQ_SNDHWM, Int32(options.highWaterMark), "ZMQ_SNDHWM")
            try socket.connect(endpoints[peer])
            outboxes[peer] = socket
        }
    }

    /// Closes every socket (each waits at most its linger for unsent messages).
    public func close() {
        inbox.close()
        for socket in outboxes { socket?.close() }
        // ZeroMQ removes an IPC socket file when its I/O thread gets to the closed listener, which may be after
        // this returns; the path is ours (``DataPlaneBinding/makeBindEndpoint(temporaryDirectory:)``), so remove
        // it now.
        if endpoint.hasPrefix("ipc://") { unlink(String(endpoint.dropFirst("ipc://".count))) }
    }

    public func makePayload(byteCount: Int) throws(CommError) -> ZMQMessage {
        try ZMQMessage(byteCount: byteCount)
    }

    public func send(_ header: FrameHeader, payload: ZMQMessage, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        let socket = try outbox(peer)
        guard try sendHeader(header, payloadBytes: payload.bytes.count, on: socket, timeout: timeout) else {
            return false
        }
        guard try socket.send(message: payload.message, more: false) else {
            throw CommError.zmq(
                call: "zmq_msg_send(payload to rank \(peer))", errno: EAGAIN,
                message: "payload frame refused after its header was queued")
        }
        return true
    }

    public func send(_ header: FrameHeader, borrowing bytes: UnsafeRawBufferPointer, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        let socket = try outbox(peer)
        guard try sendHeader(header, payloadBytes: bytes.count, on: socket, timeout: timeout) else { return false }
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        if bytes.isEmpty {
            zmq_msg_init(message)
        } else {
            // ZeroMQ calls the free function from its I/O thread once the bytes are on the wire; the tracker
            // stays retained until then.
            let hint = Unmanaged.passRetained(borrowed).toOpaque()
            borrowed.started()
            let status = zmq_msg_init_data(
                message, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count,
                { _, hint in
                    guard let hint else { return }
                    Unmanaged<BorrowedSendTracker>.fromOpaque(hint).takeRetainedValue().released()
                }, hint)
            guard status == 0 else {
                borrowed.released()
                Unmanaged<BorrowedSendTracker>.fromOpaque(hint).release()
                throw ZMQError.last("zmq_msg_init_data")
            }
        }
        defer { zmq_msg_close(message) }
        guard try socket.send(message: message, more: false) else {
            throw CommError.zmq(
                call: "zmq_msg_send(payload to rank \(peer))", errno: EAGAIN,
                message: "payload frame refused after its header was queued")
        }
        return true
    }

    public func waitForBorrowedSends(timeout: Duration) throws(CommError) -> Bool {
        borrowed.waitUntilIdle(timeout: timeout)
    }

    public func receive(from peer: Int, timeout: Duration) throws(CommError)
        -> (header: FrameHeader, payload: ZMQMessage)?
    {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw .invalidArgument("peer \(peer) is not another rank of a world of \(worldSize)")
        }
        if let message = stash[peer].pop() { return message }
        let deadline = ContinuousClock.now + timeout
        while true {
            while let (header, payload) = try readOne() {
                if Int(header.source) == peer { return (header, payload) }
                stash[Int(header.source)].push((header, payload))
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, try inbox.poll(ZMQ_POLLIN, timeout: remaining) else {
                // One last look: a message may have landed between the read and the deadline.
                if let (header, payload) = try readOne() {
                    if Int(header.source) == peer { return (header, payload) }
                    stash[Int(header.source)].push((header, payload))
                }
                return nil
            }
        }
    }

    // MARK: - Frames

    private func outbox(_ peer: Int) throws(CommError) -> ZMQSocket {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw .invalidArgument("peer \(peer) is not another rank of a world of \(worldSize)")
        }
        guard let socket = outboxes[peer] else {
            throw .invalidArgument("rank \(rank) has no link to rank \(peer): call connect(to:) first")
        }
        return socket
    }

    /// Waits for room on the link, then queues the header frame with `ZMQ_SNDMORE`. The payload frame that
    /// follows cannot be refused: ZeroMQ checks the high-water mark on a message's first frame only.
    private func sendHeader(_ header: FrameHeader, payloadBytes: Int, on socket: ZMQSocket, timeout: Duration)
        throws(CommError) -> Bool
    {
        guard try socket.poll(ZMQ_POLLOUT, timeout: timeout) else { return false }
        var header = header
        header.frames = 1
        header.payloadBytes = UInt64(payloadBytes)
        header.encode(into: headerBytes)
        return try socket.send(bytes: UnsafeRawBufferPointer(headerBytes), more: true)
    }

    /// Reads one complete message from the inbox if one is queued, validating its framing.
    private func readOne() throws(CommError) -> (FrameHeader, ZMQMessage)? {
        guard try inbox.receive(into: headerMessage) else { return nil }
        let header: FrameHeader
        do throws(CommError) {
            header = try FrameHeader.decode(
                UnsafeRawBufferPointer(start: zmq_msg_data(headerMessage), count: zmq_msg_size(headerMessage)))
        } catch {
            inbox.discardRemainingFrames(after: headerMessage)
            throw error
        }
        let source = Int(header.source)
        guard (0..<worldSize).contains(source), source != rank else {
            inbox.discardRemainingFrames(after: headerMessage)
            throw .protocolMismatch(peer: nil, detail: "message claims to come from rank \(header.source)")
        }
        guard header.frames == 1, zmq_msg_more(headerMessage) != 0 else {
            inbox.discardRemainingFrames(after: headerMessage)
            throw .protocolMismatch(peer: source, detail: "data message without its payload frame")
        }
        let payload = ZMQMessage()
        // The frames of a multipart message arrive together, so the payload frame is already queued.
        guard try inbox.receive(into: payload.message) else {
            throw .protocolMismatch(peer: source, detail: "payload frame missing after its header")
        }
        guard zmq_msg_more(payload.message) == 0 else {
            inbox.discardRemainingFrames(after: payload.message)
            throw .protocolMismatch(peer: source, detail: "more frames than the header announces")
        }
        guard UInt64(payload.bytes.count) == header.payloadBytes else {
            throw .protocolMismatch(
                peer: source, detail: "payload of \(payload.bytes.count) bytes, header says \(header.payloadBytes)")
        }
        return (header, payload)
    }
}
