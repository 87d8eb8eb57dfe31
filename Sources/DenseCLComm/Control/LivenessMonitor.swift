/// Who is alive, judged by when each peer was last heard from: the Paranoid Pirate rule (zguide ch. 4) of
/// declaring a peer dead after `missedBeats` heartbeat intervals of silence, where any message counts as a
/// heartbeat.
///
/// A pure value: time is passed in (as a duration since any fixed origin), so tests drive it with a fake
/// clock and the control channel with `ContinuousClock`.
public struct LivenessMonitor<Peer: Hashable & Sendable>: Sendable {
    public let interval: Duration
    public let missedBeats: Int
    /// Silence after which a peer is declared dead: `interval · missedBeats`.
    public var deadline: Duration { interval * missedBeats }

    private struct State: Sendable {
        var lastHeard: Duration
        var up: Bool
    }

    private var peers: [Peer: State] = [:]

    public init(interval: Duration, missedBeats: Int) {
        precondition(interval > .zero && missedBeats >= 1, "interval must be positive and missedBeats >= 1")
        self.interval = interval
        self.missedBeats = missedBeats
    }

    /// Starts the clock for a peer that has not spoken yet (a worker waiting for its coordinator): if it stays
    /// silent for `deadline`, it is reported dead without ever having been up.
    public mutating func expect(_ peer: Peer, at now: Duration) {
        if peers[peer] == nil { peers[peer] = State(lastHeard: now, up: false) }
    }

    /// Records traffic from `peer`.
    /// - Returns: `true` if the peer was not up before (first contact, or back after being declared dead).
    public mutating func heard(_ peer: Peer, at now: Duration) -> Bool {
        let wasUp = peers[peer]?.up ?? false
        peers[peer] = State(lastHeard: now, up: true)
        return !wasUp
    }

    /// Stops watching `peer` (it said goodbye).
    public mutating func forget(_ peer: Peer) { peers[peer] = nil }

    /// Removes and returns the peers silent for longer than ``deadline``, with how long each was silent.
    public mutating func expire(at now: Duration) -> [(peer: Peer, silentFor: Duration)] {
        var dead: [(peer: Peer, silentFor: Duration)] = []
        for (peer, state) in peers where now - state.lastHeard > deadline {
            dead.append((peer, now - state.lastHeard))
        }
        for (peer, _) in dead { peers[peer] = nil }
        return dead
    }

    /// The earliest time at which ``expire(at:)`` can report something, or `nil` if nobody is watched.
    public var nextExpiry: Duration? {
        peers.values.map { $0.lastHeard + deadline }.min()
    }

    /// Peers currently up.
    public var alive: [Peer] { peers.filter { $0.value.up }.map(\.key) }
}
