#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The meeting point of two threads that share out one pass: ``arriveAndWait()`` returns on each thread once both
/// have arrived, and whatever either thread wrote before arriving is visible to both afterwards.
///
/// Meetings are short and frequent (one per batch norm of a backward pass, a few microseconds apart when the
/// threads have equal shares), so a waiting thread spins instead of sleeping; after a few checks it yields its
/// core at each check, so that the process's other threads (loader, communication) still run when the cores are
/// few. Reusable: the threads may meet any number of times, always both of them.
public final class LaneBarrier: @unchecked Sendable {
    /// Threads that have arrived at the current meeting.
    private let arrived = Atomic<Int>(0)
    /// Meetings completed; a waiting thread leaves when it changes.
    private let meetings = Atomic<Int>(0)
    /// Checks before a waiting thread starts yielding its core.
    private let spinsBeforeYield = 64

    public init() {}

    public func arriveAndWait() {
        let meeting = meetings.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
            arrived.store(0, ordering: .relaxed)
            meetings.add(1, ordering: .releasing)
            return
        }
        var checks = 0
        while meetings.load(ordering: .acquiring) == meeting {
            checks += 1
            if checks > spinsBeforeYield { sched_yield() }
        }
    }
}
