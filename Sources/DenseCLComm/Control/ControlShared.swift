import Foundation

/// State shared by callers and the I/O thread, guarded by `condition`.
final class ControlShared: @unchecked Sendable {
    let wake: WakePipe
    private let condition = NSCondition()
    private var outbox: [OutgoingControl] = []
    private var events: [ControlEvent] = []
    private var eventHead = 0
    private var stopRequested = false
    private var stopped = false

    init(wake: WakePipe) { self.wake = wake }

    func enqueue(_ message: OutgoingControl) throws(CommError) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopRequested else { throw .closed }
        outbox.append(message)
        wake.signal()
    }

    /// Called by the I/O thread.
    func takeOutbox() -> (messages: [OutgoingControl], stop: Bool) {
        condition.lock()
        defer { condition.unlock() }
        let messages = outbox
        outbox.removeAll()
        return (messages, stopRequested)
    }

    /// Called by the I/O thread.
    func post(_ event: ControlEvent) {
        condition.lock()
        events.append(event)
        condition.broadcast()
        condition.unlock()
    }

    /// Called by the I/O thread as its last action.
    func markStopped() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    func nextEvent(timeout: Duration) -> ControlEvent? {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while eventHead == events.count && !stopped {
            if !condition.wait(until: deadline) { break }
        }
        guard eventHead < events.count else { return nil }
        let event = events[eventHead]
        eventHead += 1
        if eventHead == events.count {
            events.removeAll(keepingCapacity: true)
            eventHead = 0
        }
        return event
    }

    func stopAndJoin() {
        condition.lock()
        defer { condition.unlock() }
        stopRequested = true
        wake.signal()
        while !stopped { condition.wait() }
    }
}
