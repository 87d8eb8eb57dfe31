/// A peer of the control channel: a ZeroMQ routing identity (a worker picks a stable name such as
/// `worker-<uuid>` before it connects; the coordinator assigns ranks, so a restarted worker can rejoin).
public struct PeerID: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ name: String) { bytes = Array(name.utf8) }
    public init(stringLiteral name: String) { self.init(name) }

    /// How a worker names its only peer.
    public static let coordinator = PeerID("coordinator")

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

/// A typed message of the control plane: its ``MessageKind`` (an application kind), the membership
/// generation and step it refers to, and an opaque payload (encode it with ``ByteWriter``).
public struct ControlMessage: Equatable, Sendable {
    public var kind: MessageKind
    public var generation: UInt32
    public var step: UInt64
    public var payload: [UInt8]

    public init(kind: MessageKind, generation: UInt32 = 0, step: UInt64 = 0, payload: [UInt8] = []) {
        self.kind = kind
        self.generation = generation
        self.step = step
        self.payload = payload
    }
}

/// Why a peer is no longer considered alive.
public enum PeerDownReason: Equatable, Sendable {
    /// Nothing was heard from it for this long (at least `heartbeatInterval · missedBeats`).
    case silent(for: Duration)
    /// It closed its channel cleanly.
    case goodbye
}

/// What the control channel reports to its owner.
public enum ControlEvent: Equatable, Sendable {
    /// An application message.
    case message(ControlMessage, from: PeerID)
    /// First traffic from a peer, or traffic again after it was declared down.
    case peerUp(PeerID)
    case peerDown(PeerID, PeerDownReason)
    /// A message that was dropped because it does not follow the protocol or belongs to another run.
    case rejected(from: PeerID?, CommError)
    /// A message this side could not hand to ZeroMQ (unknown peer, or its queue is full).
    case undeliverable(to: PeerID, kind: MessageKind, CommError)
}
