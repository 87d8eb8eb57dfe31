/// Tuning and safety knobs of the collectives.
public struct CollectiveOptions: Sendable {
    /// Largest payload of one message. Buffers are cut into parts of this size so that one part is on the
    /// wire while the previous one is reduced. 1 MiB: big enough that per-message overhead is small, small
    /// enough to stay in cache and to let ZeroMQ reuse its allocations. Tests shrink it (down to 4 bytes) to
    /// exercise the many-parts paths with small buffers.
    public var partBytes: Int = 1 << 20
    /// Messages a rank may have sent on a link beyond those it has received (the pipeline depth). Must not
    /// exceed the transport's link capacity, which makes the ring deadlock-free (see `RingPipeline.swift`).
    public var window: Int = 4
    /// Bound on every single wait (for room on a link, for the next message). A wait that passes it fails the
    /// collective with ``CommError/timeout(peer:operation:after:)``.
    public var timeout: Duration = .seconds(30)
    /// Cancels waits from another thread (for instance when the control plane reports a dead peer).
    public var abort: AbortSignal?

    public init(partBytes: Int = 1 << 20, window: Int = 4, timeout: Duration = .seconds(30), abort: AbortSignal? = nil) {
        self.partBytes = partBytes
        self.window = window
        self.timeout = timeout
        self.abort = abort
    }
}
