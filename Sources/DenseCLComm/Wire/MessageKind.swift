/// The `kind` field of a ``FrameHeader``: what a message is.
///
/// Values below ``firstApplicationValue`` belong to this module (collectives and the control channel's own
/// heartbeats); the runtime defines its control messages with ``application(_:)``.
public struct MessageKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// First value available to callers of the control channel.
    public static let firstApplicationValue: UInt16 = 0x100

    // Data plane: one kind per collective, so that two ranks running different collectives fail loudly.
    public static let allReduce = MessageKind(rawValue: 1)
    public static let allGather = MessageKind(rawValue: 2)
    public static let allToAll = MessageKind(rawValue: 3)
    public static let broadcast = MessageKind(rawValue: 4)
    public static let linkProbe = MessageKind(rawValue: 5)

    // Control plane, consumed by the channel itself.
    public static let ping = MessageKind(rawValue: 0x10)
    public static let pong = MessageKind(rawValue: 0x11)
    public static let goodbye = MessageKind(rawValue: 0x12)

    // Rendezvous (see `Rendezvous.swift`).
    public static let endpointReport = MessageKind(rawValue: 0x20)
    public static let addressBook = MessageKind(rawValue: 0x21)

    /// An application-defined control message; `value` is offset past the reserved range.
    public static func application(_ value: UInt16) -> MessageKind {
        precondition(value < UInt16.max - firstApplicationValue, "application kind out of range")
        return MessageKind(rawValue: firstApplicationValue + value)
    }

    public var isApplication: Bool { rawValue >= Self.firstApplicationValue }

    public var description: String {
        switch self {
        case .allReduce: return "all-reduce"
        case .allGather: return "all-gather"
        case .allToAll: return "all-to-all"
        case .broadcast: return "broadcast"
        case .linkProbe: return "link-probe"
        case .ping: return "ping"
        case .pong: return "pong"
        case .goodbye: return "goodbye"
        case .endpointReport: return "endpoint-report"
        case .addressBook: return "address-book"
        default:
            return isApplication ? "application(\(rawValue - Self.firstApplicationValue))" : "kind(\(rawValue))"
        }
    }
}
