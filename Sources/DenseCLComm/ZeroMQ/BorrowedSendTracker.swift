import Foundation

/// Counts zero-copy sends that ZeroMQ has not released yet. Released from ZeroMQ's I/O thread.
final class BorrowedSendTracker: @unchecked Sendable {
    private let condition = NSCondition()
    private var outstanding = 0  // guarded by `condition`

    func started() {
        condition.lock()
        outstanding += 1
        condition.unlock()
    }

    func released() {
        condition.lock()
        outstanding -= 1
        if outstanding == 0 { condition.broadcast() }
        condition.unlock()
    }

    func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while outstanding > 0 {
            if !condition.wait(until: deadline) { return outstanding == 0 }
        }
        return true
    }
}
