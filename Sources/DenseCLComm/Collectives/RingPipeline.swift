/// The message schedule shared by the ring collectives.
///
/// Each rank sends one stream of messages to a destination (its right neighbour, or in all-to-all the peer of
/// the current round) and receives one stream from a source. The outgoing stream is this rank's own parts
/// first, then, in arrival order, the received messages it forwards (after accumulating into them, for the
/// all-reduce). A rank keeps at most `window` messages sent beyond those it has received:
///
///     sent <= received + window
///
/// Why this cannot deadlock when every link holds at least `window` messages (`window <= linkCapacity`):
/// - Suppose rank r waits in `receive` for message j from its source s. Then s has sent exactly j messages and
///   stopped: either its window is closed (it has received at most j - window) or it has nothing left to send
///   (it only forwards what it received, so it has received at most j - ownParts(s)). Either way s is itself
///   waiting for an earlier message from its own source. Around the ring the awaited index drops by at least
///   one at every rank with own parts, and at least one rank has some (all-gather and all-to-all send an
///   empty block as one empty part; a non-empty all-reduce has a non-empty chunk; broadcast has its root).
///   So the chain of waits cannot close into a cycle.
/// - Not every rank can wait in `send` at once: a send waits only on a link already holding at least
///   `window` unreceived messages, so n blocked ranks would need n * (window + 1) messages in flight counting
///   the ones being sent, while `sent <= received + window` allows at most n * window in total.
/// All-to-all runs one such stream per round (a shift by k); a rank in the lowest blocked round only waits on
/// ranks of the same round, so the argument applies round by round.
/// The counting argument is gloo's "localized barrier" idea without explicit credit messages: ZeroMQ's
/// high-water mark provides the back-pressure.
///
/// A rank with no more input (the broadcast root, or any rank after its last receive) flushes the rest of its
/// stream unconditionally; the receiver is draining it, so those sends only wait for link capacity.
extension Collectives {
    /// - Parameters:
    ///   - ownParts: number of messages this rank originates; `sendOwn(k)` sends the k-th.
    ///   - moreInput: whether another message is expected from the source.
    ///   - receiveNext: receives and processes the next message; returns it (header already rewritten) when it
    ///     must be forwarded to `destination`.
    func runPipeline(
        to destination: Int,
        ownParts: Int,
        sendOwn: (Int) throws(CommError) -> Void,
        moreInput: () -> Bool,
        receiveNext: () throws(CommError) -> (header: FrameHeader, payload: T.Payload)?,
        what: @autoclosure () -> String
    ) throws(CommError) {
        pending.removeAll()
        var sent = 0
        var received = 0
        var ownSent = 0

        // Sends the next messages of the outgoing stream while the window allows (or all, when `flush`).
        func pump(flush: Bool) throws(CommError) {
            while flush || sent < received + options.window {
                if ownSent < ownParts {
                    try sendOwn(ownSent)
                    ownSent += 1
                } else if let (header, payload) = pending.popFirst() {
                    try send(header, payload: payload, to: destination, what: what())
                } else {
                    return
                }
                sent += 1
            }
        }

        while moreInput() {
            try pump(flush: false)
            if let forward = try receiveNext() { pending.append(forward) }
            received += 1
        }
        try pump(flush: true)
    }
}

/// FIFO of received messages waiting to be forwarded; keeps its storage between collectives.
struct ForwardQueue<Payload> {
    private var items: [(header: FrameHeader, payload: Payload)?] = []
    private var head = 0

    mutating func append(_ item: (header: FrameHeader, payload: Payload)) { items.append(item) }

    mutating func popFirst() -> (header: FrameHeader, payload: Payload)? {
        guard head < items.count else { return nil }
        defer {
            items[head] = nil
            head += 1
            if head == items.count { removeAll() }
        }
        return items[head]
    }

    mutating func removeAll() {
        items.removeAll(keepingCapacity: true)
        head = 0
    }
}
