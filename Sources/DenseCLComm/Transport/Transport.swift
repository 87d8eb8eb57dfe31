/// The bytes of one message payload, owned by whoever holds the object.
///
/// A received payload may be modified in place and then sent on (the ring collectives accumulate into the
/// message they received and forward it, so no extra copy or allocation is made per hop). Sending a payload
/// consumes it: after a successful `send` the sender must not touch it again.
public protocol TransportPayload: AnyObject {
    var bytes: UnsafeMutableRawBufferPointer { get }
}

/// Point-to-point message links between the ranks of one membership generation.
///
/// Every message is one ``FrameHeader`` plus exactly one payload frame (possibly empty); the transport fills
/// in the header's `frames` and `payloadBytes` fields and checks them on receipt. Messages from one sender to
/// one receiver arrive in the order they were sent; messages from different senders are independent.
///
/// Waits are bounded by the caller: `send` and `receive` return `false`/`nil` when `timeout` passes without
/// progress, and the collectives turn that into ``CommError/timeout(peer:operation:after:)``.
///
/// Thread confinement: a transport object is used by one thread at a time (ZeroMQ sockets are not
/// thread-safe). Implementations are classes that are not `Sendable`; hand one to another thread only through
/// a synchronisation point (a lock or a thread start), never concurrently.
public protocol Transport: AnyObject, SendableMetatype {
    associatedtype Payload: TransportPayload

    /// This process's rank, in `0..<worldSize`.
    var rank: Int { get }
    var worldSize: Int { get }
    /// How many messages one link can hold before `send` has to wait. The collectives keep at most
    /// ``CollectiveOptions/window`` messages in flight per link, which must not exceed this.
    var linkCapacity: Int { get }
    /// The largest payload one message can carry (``CollectiveOptions/partBytes`` must not exceed it).
    var maxPayloadBytes: Int { get }

    /// A payload of `byteCount` bytes to fill and send.
    func makePayload(byteCount: Int) throws(CommError) -> Payload

    /// Queues a message carrying `payload` (consumed on success) for `peer`.
    /// - Returns: `false` if the link stayed full for `timeout`; `payload` is then untouched.
    func send(_ header: FrameHeader, payload: Payload, to peer: Int, timeout: Duration) throws(CommError) -> Bool

    /// Queues a message whose payload is `bytes`, without copying where the transport can.
    ///
    /// The caller must keep `bytes` alive and unmodified until ``waitForBorrowedSends(timeout:)`` returns
    /// `true`.
    /// - Returns: `false` if the link stayed full for `timeout`.
    func send(_ header: FrameHeader, borrowing bytes: UnsafeRawBufferPointer, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool

    /// Waits until the transport no longer reads any buffer passed to `send(_:borrowing:to:timeout:)`.
    /// - Returns: `false` if some were still in use after `timeout`.
    func waitForBorrowedSends(timeout: Duration) throws(CommError) -> Bool

    /// The next message from `peer`, or `nil` if none arrived within `timeout`.
    func receive(from peer: Int, timeout: Duration) throws(CommError) -> (header: FrameHeader, payload: Payload)?
}

extension Transport {
    /// No limit beyond memory (ZeroMQ and the in-process links take payloads of any size).
    public var maxPayloadBytes: Int { Int.max }
}

/// A transport between processes whose ranks find each other through an address book: each publishes its
/// ``endpoint`` (through ``Rendezvous``), then connects to everyone's. ZeroMQ and shared memory implement it.
public protocol ConnectableTransport: Transport {
    /// What the other ranks need to reach this one (`tcp://…`, `ipc://…` or `shm:…`).
    var endpoint: String { get }
    /// Connects to every other rank; `endpoints[r]` is rank `r`'s ``endpoint``.
    func connect(to endpoints: [String]) throws(CommError)
    /// Ends this rank's side of every link; bounded in time.
    func close()
}
