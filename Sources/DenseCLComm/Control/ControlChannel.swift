import CZeroMQ
import Foundation

/// The control plane: a coordinator's ROUTER socket (bound) talking to workers' DEALER sockets (connected),
/// carrying typed ``ControlMessage``s framed as a ``FrameHeader`` plus one payload frame.
///
/// Liveness is ping-pong (the Paranoid Pirate pattern): a worker pings every `heartbeatInterval`, the
/// coordinator answers each ping with a pong, and each side reports the other down after `missedBeats`
/// intervals without any traffic (every message counts as a heartbeat). Heartbeats are sent and answered by
/// the channel's own I/O thread, which never waits on anything but its socket, so a worker busy computing
/// or all-reducing stays alive.
///
/// Everything arrives as ``ControlEvent``s through ``nextEvent(timeout:)``. ``close()`` says goodbye to the
/// peers, closes the socket with a short linger and joins the I/O thread, so shutdown never hangs.
///
/// Thread safety: all methods may be called from any thread. The socket itself is created on the calling
/// thread (so bind/connect errors are thrown from the constructor) and then used only by the I/O thread.
public final class ControlChannel: Sendable {
    public enum Role: Sendable {
        case coordinator
        case worker
    }

    public let role: Role
    /// The coordinator's resolved bind endpoint (e.g. `tcp://127.0.0.1:40123`), or the endpoint a worker
    /// connected to.
    public let endpoint: String
    private let shared: ControlShared

    /// Binds the coordinator's ROUTER socket; `bind` may use port `*` and ``endpoint`` tells the result.
    public static func coordinator(
        context: ZMQContext, bind: String = "tcp://127.0.0.1:*", options: ControlOptions
    ) throws(CommError) -> ControlChannel {
        let socket = try ZMQSocket(context: context, type: ZMQ_ROUTER, role: "control ROUTER", linger: options.linger)
        try socket.set(ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY")  // report unroutable sends
        try socket.set(ZMQ_ROUTER_HANDOVER, 1, "ZMQ_ROUTER_HANDOVER")  // a restarted worker takes its name back
        try Self.setWaterMarks(socket, options)
        let endpoint = try socket.bind(bind)
        return try ControlChannel(role: .coordinator, endpoint: endpoint, socket: socket, options: options)
    }

    /// Connects a worker's DEALER socket under the routing identity `identity`.
    public static func worker(
        context: ZMQContext, connect endpoint: String, identity: PeerID, options: ControlOptions
    ) throws(CommError) -> ControlChannel {
        guard !identity.bytes.isEmpty, identity.bytes.count <= 255, identity.bytes[0] != 0 else {
            throw .invalidArgument("worker identity must be 1...255 bytes and not start with a zero byte")
        }
        let socket = try ZMQSocket(context: context, type: ZMQ_DEALER, role: "control DEALER", linger: options.linger)
        try socket.set(ZMQ_ROUTING_ID, bytes: identity.bytes, "ZMQ_ROUTING_ID")
        try Self.setWaterMarks(socket, options)
        try socket.connect(endpoint)
        return try ControlChannel(role: .worker, endpoint: endpoint, socket: socket, options: options)
    }

    private static func setWaterMarks(_ socket: ZMQSocket, _ options: ControlOptions) throws(CommError) {
        try socket.set(ZMQ_SNDHWM, Int32(clamping: options.highWaterMark), "ZMQ_SNDHWM")
        try socket.set(ZMQ_RCVHWM, Int32(clamping: options.highWaterMark), "ZMQ_RCVHWM")
    }

    private init(role: Role, endpoint: String, socket: ZMQSocket, options: ControlOptions) throws(CommError) {
        guard options.heartbeatInterval > .zero, options.missedBeats >= 1 else {
            throw .invalidArgument("heartbeat interval must be positive and missedBeats at least 1")
        }
        self.role = role
        self.endpoint = endpoint
        shared = ControlShared(wake: try WakePipe())
        let loop = ControlLoop(role: role, socket: socket, options: options, shared: shared)
        let handoff = LoopHandoff(loop: loop)
        let thread = Thread { handoff.loop.run() }
        thread.name = role == .coordinator ? "densecl-control-router" : "densecl-control-dealer"
        thread.start()
    }

    deinit { close() }

    /// Queues `message` for `peer` (a worker's only peer is ``PeerID/coordinator``) and returns at once.
    /// Failures to hand it to ZeroMQ are reported as ``ControlEvent/undeliverable(to:kind:_:)``.
    public func send(_ message: ControlMessage, to peer: PeerID = .coordinator) throws(CommError) {
        guard message.kind.isApplication || message.kind == .endpointReport || message.kind == .addressBook else {
            throw .invalidArgument("\(message.kind) is reserved for the channel itself")
        }
        try shared.enqueue(OutgoingControl(peer: peer, kind: message.kind, generation: message.generation,
                                           step: message.step, payload: message.payload))
    }

    /// The next event, waiting at most `timeout`; `nil` if none came (or the channel is closed and drained).
    public func nextEvent(timeout: Duration) -> ControlEvent? { shared.nextEvent(timeout: timeout) }

    /// Says goodbye, closes the socket (bounded by the linger) and stops the I/O thread. Idempotent.
    public func close() { shared.stopAndJoin() }
}

/// Moves the loop (not `Sendable`: it owns the socket) into its thread.
private struct LoopHandoff: @unchecked Sendable {
    let loop: ControlLoop
}

/// One queued outgoing message.
struct OutgoingControl: Sendable {
    let peer: PeerID
    let kind: MessageKind
    let generation: UInt32
    let step: UInt64
    let payload: [UInt8]
}
