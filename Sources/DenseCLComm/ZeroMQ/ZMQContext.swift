import CZeroMQ

/// A ZeroMQ context: the I/O threads shared by every socket of a process.
///
/// Contexts are thread-safe (the only thread-safe ZeroMQ object), hence `@unchecked Sendable`. Sockets keep
/// their context alive, so it is terminated (`zmq_ctx_term`) only after the last socket closed; every socket
/// of this module sets a bounded `ZMQ_LINGER`, so termination never waits long on unsent messages.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// The `void *` context, for other ZeroMQ code of this process that needs `inproc` endpoints or raw
    /// sockets (the tests use it to inject malformed frames). Sockets made from it must be closed before the
    /// last reference to this object goes away.
    public var unsafeHandle: UnsafeMutableRawPointer { handle }

    /// - Parameter ioThreads: ZeroMQ I/O threads (`ZMQ_IO_THREADS`); one moves about a gigabyte per second.
    public init(ioThreads: Int = 1) throws(CommError) {
        guard let context = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = context
        if zmq_ctx_set(context, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
            let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)")
            zmq_ctx_term(context)
            throw error
        }
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }
}

/// Builds ``CommError/zmq(call:errno:message:)`` values from `zmq_errno`.
enum ZMQError {
    static func last(_ call: String) -> CommError {
        let code = zmq_errno()
        return .zmq(call: call, errno: code, message: String(cString: zmq_strerror(code)))
    }
}
