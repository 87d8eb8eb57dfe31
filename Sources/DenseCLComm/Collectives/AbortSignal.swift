import Foundation

/// A flag that makes a communicator's pending and future waits fail with the stored reason.
///
/// Thread-safe: `abort(_:)` is called from another thread (control plane, signal handler) while the
/// communication thread is blocked; waits notice within ``pollSlice``.
public final class AbortSignal: @unchecked Sendable {
    /// How often a blocked wait looks at the flag.
    public static let pollSlice: Duration = .milliseconds(50)

    private let lock = NSLock()
    private var storedReason: CommError?  // guarded by `lock`

    public init() {}

    /// Requests cancellation; the first reason wins.
    public func abort(_ reason: CommError) {
        lock.lock()
        if storedReason == nil { storedReason = reason }
        lock.unlock()
    }

    public var reason: CommError? {
        lock.lock()
        defer { lock.unlock() }
        return storedReason
    }
}
