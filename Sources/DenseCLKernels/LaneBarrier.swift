#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// The meeting point of two threads that share out one pass: ``arriveAndWait()`` returns on each thread once both
/// have arrived, and whatever either thread wrote before arriving is visible to both afterwards.
///
/// Meetings are short and frequent (one per batch norm of a backward pass, microseconds apart when the threads
/// have equal shares), so a waiting thread first spins, yielding its core at each check after the first few so
/// that the process's other threads (loader, communication) still run. After ``spinLimit`` it sleeps until the
/// other thread arrives: when there are more busy threads than cores (two 2-thread workers on two cores, say),
/// the thread it waits for may need this very core. Reusable: the threads may meet any number of times, always
/// both of them.
public final class LaneBarrier: @unchecked Sendable {
    /// Threads that have arrived at the current meeting.
    private let arrived = Atomic<Int>(0)
    /// Meetings completed; a waiting thread leaves when it changes.
    private let meetings = Atomic<Int>(0)
    /// Threads asleep (or about to be) on `sleeping`.
    private let sleepers = Atomic<Int>(0)
    /// Where a thread that has spun long enough sleeps. A condition, not a semaphore: a wake-up is not a count
    /// that the thread which sent it could take back by sleeping at the next meeting before the sleeper woke.
    private let sleeping = NSCondition()
    /// Checks before a waiting thread starts yielding its core.
    private let checksBeforeYield = 64
    /// How long a waiting thread spins before it sleeps.
    public let spinLimit: Duration

    public init(spinLimit: Duration = .milliseconds(1)) {
        self.spinLimit = spinLimit
    }

    public func arriveAndWait() {
        let meeting = meetings.load(ordering: .acquiring)
        if arrived.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
            arrived.store(0, ordering: .relaxed)
            // Sequentially consistent with the sleeper's count below: either the sleeper sees this meeting end,
            // or this thread sees the sleeper and wakes it.
            meetings.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                // The sleeper holds the lock from its count until it waits, so this broadcast cannot fall between.
                sleeping.lock()
                sleeping.broadcast()
                sleeping.unlock()
            }
            return
        }
        let clock = ContinuousClock(), deadline = clock.now.advanced(by: spinLimit)
        var checks = 0
        while meetings.load(ordering: .acquiring) == meeting {
            checks += 1
            if checks <= checksBeforeYield { continue }
            sched_yield()
            if checks % 64 == 0 && clock.now >= deadline {
                sleep(until: meeting)
                return
            }
        }
    }

    /// Sleeps until meeting `meeting` has ended.
    private func sleep(until meeting: Int) {
        sleeping.lock()
        sleepers.add(1, ordering: .sequentiallyConsistent)
        while meetings.load(ordering: .sequentiallyConsistent) == meeting { sleeping.wait() }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        sleeping.unlock()
    }
}
