/// Settings of a ``ControlChannel``.
public struct ControlOptions: Sendable {
    /// Stamped on every message; messages of another run are rejected.
    public var runID: UInt64
    /// How often a worker pings (and so how often the coordinator expects to hear from it).
    public var heartbeatInterval: Duration = .seconds(1)
    /// Intervals of silence after which a peer is reported down (zguide suggests 3 to 5).
    public var missedBeats: Int = 3
    /// `ZMQ_LINGER` of the socket: how long closing may wait to flush the last messages (the goodbye).
    public var linger: Duration = .milliseconds(100)
    /// `ZMQ_SNDHWM`/`ZMQ_RCVHWM` in messages. Control traffic is small, so this is generous; a ROUTER drops
    /// (and this channel reports as undeliverable) what exceeds it.
    public var highWaterMark: Int = 10_000

    public init(
        runID: UInt64, heartbeatInterval: Duration = .seconds(1), missedBeats: Int = 3,
        linger: Duration = .milliseconds(100), highWaterMark: Int = 10_000
    ) {
        self.runID = runID
        self.heartbeatInterval = heartbeatInterval
        self.missedBeats = missedBeats
        self.linger = linger
        self.highWaterMark = highWaterMark
    }
}
