import CZeroMQ
import Foundation

/// A ZeroMQ socket, closed on `deinit` (or by ``close()``).
///
/// Not `Sendable`: a socket is confined to one thread. It may be handed to another thread through a
/// synchronisation point (ZeroMQ allows migrating a socket across a full memory barrier), never used from
/// two threads at once.
final class ZMQSocket {
    let context: ZMQContext
    private(set) var handle: UnsafeMutableRawPointer?
    /// Name used in error messages ("ring inbox", "control ROUTER", ...).
    let role: String

    init(context: ZMQContext, type: Int32, role: String, linger: Duration) throws(CommError) {
        guard let socket = zmq_socket(context.handle, type) else { throw ZMQError.last("zmq_socket(\(role))") }
        self.context = context
        self.handle = socket
        self.role = role
        try set(ZMQ_LINGER, Int32(clamping: linger.milliseconds), "ZMQ_LINGER")
    }

    deinit { close() }

    func close() {
        if let socket = handle {
            zmq_close(socket)
            handle = nil
        }
    }

    private func open() throws(CommError) -> UnsafeMutableRawPointer {
        guard let handle else { throw .closed }
        return handle
    }

    func set(_ option: Int32, _ value: Int32, _ name: String) throws(CommError) {
        var value = value
        guard zmq_setsockopt(try open(), option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(role), \(name))")
        }
    }

    func set(_ option: Int32, bytes: [UInt8], _ name: String) throws(CommError) {
        let socket = try open()
        let status = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        guard status == 0 else { throw ZMQError.last("zmq_setsockopt(\(role), \(name))") }
    }

    /// Binds and returns the resolved endpoint (`ZMQ_LAST_ENDPOINT`), so that `tcp://127.0.0.1:*` yields the
    /// port the system picked.
    func bind(_ endpoint: String) throws(CommError) -> String {
        let socket = try open()
        guard zmq_bind(socket, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(role), \(endpoint))") }
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQError.last("zmq_getsockopt(\(role), ZMQ_LAST_ENDPOINT)")
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func connect(_ endpoint: String) throws(CommError) {
        guard zmq_connect(try open(), endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(role), \(endpoint))") }
    }

    /// Waits up to `timeout` for `events` (`ZMQ_POLLIN`/`ZMQ_POLLOUT`). Retries on `EINTR`.
    func poll(_ events: Int32, timeout: Duration) throws(CommError) -> Bool {
        var item = zmq_pollitem_t(socket: try open(), fd: -1, events: Int16(events), revents: 0)
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            let status = zmq_poll(&item, 1, remaining > .zero ? remaining.millisecondsRoundedUp : 0)
            if status >= 0 { return status > 0 && (Int32(item.revents) & events) != 0 }
            if zmq_errno() == EINTR { continue }
            if zmq_errno() == ETERM { throw .closed }
            throw ZMQError.last("zmq_poll(\(role))")
        }
    }

    /// Sends one frame copied from `bytes`; `false` if the socket would block.
    func send(bytes: UnsafeRawBufferPointer, more: Bool) throws(CommError) -> Bool {
        let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
        while true {
            if zmq_send(try open(), bytes.baseAddress, bytes.count, flags) >= 0 { return true }
            switch zmq_errno() {
            case EAGAIN: return false
            case EINTR: continue
            case ETERM: throw .closed
            default: throw ZMQError.last("zmq_send(\(role))")
            }
        }
    }

    /// Sends `message` (its content moves into ZeroMQ on success); `false` if the socket would block.
    func send(message: UnsafeMutablePointer<zmq_msg_t>, more: Bool) throws(CommError) -> Bool {
        let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
        while true {
            if zmq_msg_send(message, try open(), flags) >= 0 { return true }
            switch zmq_errno() {
            case EAGAIN: return false
            case EINTR: continue
            case ETERM: throw .closed
            default: throw ZMQError.last("zmq_msg_send(\(role))")
            }
        }
    }

    /// Receives one frame into `message` without waiting; `false` if none is queued.
    func receive(into message: UnsafeMutablePointer<zmq_msg_t>) throws(CommError) -> Bool {
        while true {
            if zmq_msg_recv(message, try open(), ZMQ_DONTWAIT) >= 0 { return true }
            switch zmq_errno() {
            case EAGAIN: return false
            case EINTR: continue
            case ETERM: throw .closed
            default: throw ZMQError.last("zmq_msg_recv(\(role))")
            }
        }
    }

    /// Receives the remaining frames of a multipart message and drops them (after a malformed first frame).
    func discardRemainingFrames(after message: UnsafeMutablePointer<zmq_msg_t>) {
        while zmq_msg_more(message) != 0 {
            guard (try? receive(into: message)) == true else { return }
        }
    }
}
