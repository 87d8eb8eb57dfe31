/// What went wrong in the communication layer.
///
/// Peers are named by rank, or -1 for the coordinator (during rendezvous). Every blocking wait in this module
/// is bounded, so a dead or silent peer surfaces as ``timeout(peer:operation:after:)`` rather than a hang.
public enum CommError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A wait for `peer` (a rank) made no progress within `after`.
    case timeout(peer: Int, operation: String, after: Duration)
    /// A frame that does not follow the wire protocol, or a peer that is running a different collective,
    /// step or run than this rank expects.
    case protocolMismatch(peer: Int?, detail: String)
    /// A peer is known to be gone (reported by the transport or by the control plane through an abort).
    case peerLost(peer: Int, detail: String)
    /// The operation was cancelled through an ``AbortSignal``.
    case aborted(reason: String)
    /// A communicator that already failed once; its links may hold half-sent messages, so it must be
    /// rebuilt (new transport, new generation) before it can be used again.
    case broken(cause: String)
    /// A caller passed something this layer cannot work with.
    case invalidArgument(String)
    /// The object was closed before or during the call.
    case closed
    /// A ZeroMQ call failed; `errno` is ZeroMQ's error number.
    case zmq(call: String, errno: Int32, message: String)
    /// A system call of the shared-memory transport failed; `errno` is the C library's error number.
    case system(call: String, errno: Int32, message: String)

    public var description: String {
        switch self {
        case .timeout(let peer, let operation, let after):
            return "timeout: \(operation) made no progress with rank \(peer) for \(after)"
        case .protocolMismatch(let peer, let detail):
            return "protocol mismatch\(peer.map { " with rank \($0)" } ?? ""): \(detail)"
        case .peerLost(let peer, let detail):
            return "rank \(peer) lost: \(detail)"
        case .aborted(let reason):
            return "aborted: \(reason)"
        case .broken(let cause):
            return "communicator unusable after an earlier failure (\(cause)); re-form it with a new generation"
        case .invalidArgument(let detail):
            return "invalid argument: \(detail)"
        case .closed:
            return "communication object already closed"
        case .zmq(let call, let errno, let message):
            return "\(call) failed: \(message) (zmq errno \(errno))"
        case .system(let call, let errno, let message):
            return "\(call) failed: \(message) (errno \(errno))"
        }
    }
}
