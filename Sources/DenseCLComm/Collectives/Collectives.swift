/// Collective operations over a ``Transport``: ring all-reduce (sum or mean), all-gather of variable-size
/// blocks in rank order, all-to-all, broadcast and barrier.
///
/// Every rank must call the same collectives in the same order (the way `torch.distributed` requires it):
/// each call takes the next operation number, which travels in every message header, so two ranks running
/// different collectives fail with ``CommError/protocolMismatch(peer:detail:)`` instead of mixing data.
/// Every wait is bounded by ``CollectiveOptions/timeout``. After any error the communicator is unusable
/// (``CommError/broken(cause:)``): its links may hold half-finished traffic, so the runtime re-forms the ring
/// with a new generation.
///
/// Thread confinement: like its transport, a communicator is used by one thread at a time.
public final class Collectives<T: Transport> {
    public let transport: T
    public let session: Session
    public let options: CollectiveOptions
    /// The training step stamped on every message; all ranks must agree on it during a collective.
    public var step: UInt64 = 0
    /// Messages from older generations dropped so far (stale traffic after a ring re-formed).
    public private(set) var staleMessagesDropped = 0

    public var rank: Int { transport.rank }
    public var worldSize: Int { transport.worldSize }
    var left: Int { (rank + worldSize - 1) % worldSize }
    var right: Int { (rank + 1) % worldSize }

    /// Number of the collective in progress (or of the last one).
    private(set) var operation: UInt32 = 0
    private var failure: CommError?
    /// Reused between calls: messages received but not yet forwarded (see `RingPipeline.swift`).
    var pending = ForwardQueue<T.Payload>()

    public init(transport: T, session: Session, options: CollectiveOptions = .init()) throws(CommError) {
        guard options.partBytes >= 4, options.partBytes % 4 == 0 else {
            throw .invalidArgument("partBytes \(options.partBytes) must be a positive multiple of 4")
        }
        guard options.window >= 1, options.window <= transport.linkCapacity else {
            throw .invalidArgument(
                "window \(options.window) must be between 1 and the transport's link capacity \(transport.linkCapacity)")
        }
        guard options.partBytes <= transport.maxPayloadBytes else {
            throw .invalidArgument(
                "partBytes \(options.partBytes) exceeds the transport's largest message of \(transport.maxPayloadBytes) bytes")
        }
        guard options.timeout > .zero else { throw .invalidArgument("timeout must be positive") }
        self.transport = transport
        self.session = session
        self.options = options
    }

    // MARK: - Running one collective

    /// Runs `body` as the next collective: refuses to start on a broken communicator and marks it broken if
    /// `body` fails.
    func collective<R>(_ body: () throws -> R) throws -> R {
        if let failure { throw CommError.broken(cause: failure.description) }
        operation &+= 1
        do {
            return try body()
        } catch let error as CommError {
            failure = error
            pending.removeAll()
            throw error
        } catch {
            let wrapped = CommError.invalidArgument("unexpected error \(error)")
            failure = wrapped
            throw wrapped
        }
    }

    // MARK: - Bounded sends and receives

    private func checkAbort() throws(CommError) {
        if let reason = options.abort?.reason { throw reason }
    }

    /// How long one transport call may block before we look at the abort signal again.
    private func slice(_ remaining: Duration) -> Duration {
        options.abort == nil ? remaining : min(remaining, AbortSignal.pollSlice)
    }

    /// Receives the next message from `peer` for the current collective, dropping stale generations and
    /// checking run, generation, step, kind, operation, bucket and part.
    func receive(
        from peer: Int, kind: MessageKind, bucket: UInt32, part: Int, what: @autoclosure () -> String
    ) throws(CommError) -> (header: FrameHeader, payload: T.Payload) {
        let deadline = ContinuousClock.now + options.timeout
        while true {
            try checkAbort()
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else {
                throw .timeout(peer: peer, operation: "\(what()): receive", after: options.timeout)
            }
            guard let message = try transport.receive(from: peer, timeout: slice(remaining)) else { continue }
            let header = message.header
            guard header.runID == session.runID else {
                throw .protocolMismatch(peer: peer, detail: "message of run \(header.runID), this is run \(session.runID)")
            }
            if header.generation < session.generation {
                staleMessagesDropped += 1
                continue
            }
            guard header.generation == session.generation else {
                throw .protocolMismatch(
                    peer: peer, detail: "message of generation \(header.generation), this ring is \(session.generation)")
            }
            guard header.kind == kind, header.operation == operation, header.bucket == bucket,
                header.part == UInt32(truncatingIfNeeded: part), header.step == step
            else {
                throw .protocolMismatch(
                    peer: peer,
                    detail: "expected \(kind) #\(operation) bucket \(bucket) part \(part) at step \(step), got "
                        + "\(header.kind) #\(header.operation) bucket \(header.bucket) part \(header.part) "
                        + "at step \(header.step) (ranks are running different collectives)")
            }
            return message
        }
    }

    /// The header of the next message this rank sends in the current collective.
    func header(kind: MessageKind, bucket: UInt32, part: Int, extent: Int) -> FrameHeader {
        FrameHeader(
            kind: kind, runID: session.runID, generation: session.generation, source: UInt32(rank), step: step,
            operation: operation, bucket: bucket, part: UInt32(truncatingIfNeeded: part), extent: UInt64(extent))
    }

    /// Repeats `attempt` (given the time left) until it reports success, the operation is aborted, or
    /// ``CollectiveOptions/timeout`` has passed, which is a timeout error naming `peer` and the operation.
    private func untilDeadline(
        peer: Int, operation: @autoclosure () -> String, _ attempt: (Duration) throws(CommError) -> Bool
    ) throws(CommError) {
        let deadline = ContinuousClock.now + options.timeout
        while true {
            try checkAbort()
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw .timeout(peer: peer, operation: operation(), after: options.timeout) }
            if try attempt(slice(remaining)) { return }
        }
    }

    /// Sends an owned payload, waiting for room on the link at most ``CollectiveOptions/timeout``.
    func send(_ header: FrameHeader, payload: T.Payload, to peer: Int, what: @autoclosure () -> String)
        throws(CommError)
    {
        try untilDeadline(peer: peer, operation: "\(what()): send") { (wait) throws(CommError) in
            try transport.send(header, payload: payload, to: peer, timeout: wait)
        }
    }

    /// Sends bytes that stay owned by the caller (see ``Transport/send(_:borrowing:to:timeout:)``).
    func send(_ header: FrameHeader, borrowing bytes: UnsafeRawBufferPointer, to peer: Int, what: @autoclosure () -> String)
        throws(CommError)
    {
        try untilDeadline(peer: peer, operation: "\(what()): send") { (wait) throws(CommError) in
            try transport.send(header, borrowing: bytes, to: peer, timeout: wait)
        }
    }

    /// Waits until the transport has let go of every borrowed buffer (before the caller's memory is written).
    func waitForBorrowedSends(what: @autoclosure () -> String) throws(CommError) {
        try untilDeadline(peer: right, operation: "\(what()): flushing sends") { (wait) throws(CommError) in
            try transport.waitForBorrowedSends(timeout: wait)
        }
    }

    /// Checks that a part carries the byte counts the plan expects.
    func checkSize(_ header: FrameHeader, from peer: Int, payload: Int, extent: Int, what: @autoclosure () -> String)
        throws(CommError)
    {
        guard header.payloadBytes == UInt64(payload), header.extent == UInt64(extent) else {
            throw .protocolMismatch(
                peer: peer,
                detail: "\(what()): part of \(header.payloadBytes) bytes of a \(header.extent)-byte block, expected "
                    + "\(payload) of \(extent) (ranks disagree on buffer sizes)")
        }
    }
}
