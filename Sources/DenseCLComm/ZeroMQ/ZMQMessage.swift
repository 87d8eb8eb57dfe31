import CZeroMQ

/// An owned `zmq_msg_t`: the payload type of ``ZeroMQTransport``.
///
/// A received message's data can be modified in place and sent on (`zmq_msg_send` moves the content, leaving
/// this object empty); the collectives use that to accumulate into and forward a message without copying it.
public final class ZMQMessage: TransportPayload {
    let message: UnsafeMutablePointer<zmq_msg_t>

    /// An empty message (filled by `zmq_msg_recv`).
    init() {
        message = .allocate(capacity: 1)
        zmq_msg_init(message)
    }

    /// A message with `byteCount` bytes of uninitialised storage allocated by ZeroMQ.
    init(byteCount: Int) throws(CommError) {
        message = .allocate(capacity: 1)
        guard zmq_msg_init_size(message, byteCount) == 0 else {
            let error = ZMQError.last("zmq_msg_init_size(\(byteCount))")
            message.deallocate()
            throw error
        }
    }

    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
    }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }
}
