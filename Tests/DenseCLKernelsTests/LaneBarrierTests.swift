import DenseCLKernels
import Foundation
import XCTest

/// `LaneBarrier`: two threads meet many times in a row; what each wrote before a meeting is what the other reads
/// after it.
final class LaneBarrierTests: XCTestCase {
    /// Two threads that each write their slot, meet, read the other's slot, and meet again before the next write.
    private final class Meetings: @unchecked Sendable {
        let barrier: LaneBarrier
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        /// Per thread, the rounds in which the other's slot held another round's value.
        let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: 2)

        init(_ barrier: LaneBarrier) {
            self.barrier = barrier
            slots.initialize(repeating: -1, count: 2)
            mismatches.initialize(repeating: 0, count: 2)
        }

        deinit {
            slots.deallocate()
            mismatches.deallocate()
        }

        /// - Parameter late: microseconds this thread lets pass before each meeting, so that the other waits.
        func run(_ me: Int, rounds: Int, late: UInt32 = 0) {
            for round in 0..<rounds {
                slots[me] = round
                if late > 0 { usleep(late) }
                barrier.arriveAndWait()
                if slots[1 - me] != round { mismatches[me] += 1 }
                barrier.arriveAndWait()
            }
        }
    }

    /// Spinning meetings (the usual case: equal shares, a few microseconds apart).
    func testWritesBeforeAMeetingAreSeenAfterIt() {
        assertMeetings(LaneBarrier(), rounds: 20_000)
    }

    /// Meetings where one thread is always late, so the other goes to sleep (no spinning allowed): every sleeper
    /// must be woken.
    func testSleepingWaitersAreWoken() {
        assertMeetings(LaneBarrier(spinLimit: .zero), rounds: 1_000, late: 200)
    }

    /// Three pairs of threads on two cores, with uneven work between meetings and no spinning: threads are
    /// preempted anywhere, also between deciding to sleep and sleeping, and every meeting must still end. A
    /// semaphore in place of the condition lost wake-ups (the waking thread, asleep at the next meeting, took back
    /// its own signal; two 2-thread workers on two cores hung within 30 steps). This test is statistical: it
    /// caught that version in 1 run of 4 on a 2-core machine; the fixed one passed every run.
    func testOversubscribedMeetingsAllEnd() {
        final class Pair: @unchecked Sendable {
            let barrier = LaneBarrier(spinLimit: .zero)
            /// Each thread's arithmetic result, kept so that the work is not optimised away (one slot per thread).
            let results = UnsafeMutablePointer<Double>.allocate(capacity: 2)
            init() { results.initialize(repeating: 0, count: 2) }
            deinit { results.deallocate() }
        }
        let pairs = (0..<3).map { _ in Pair() }, rounds = 40_000
        let done = DispatchSemaphore(value: 0)
        for pair in pairs {
            for me in 0..<2 {
                Thread {
                    var x = 0.0
                    for round in 0..<rounds {
                        // 0 to ~100 µs of dependent arithmetic, a different amount on each thread and round.
                        for _ in 0..<((round &* 7919 &+ me &* 104_729) % 30_000) { x = x * 1.000_000_1 + 1 }
                        pair.barrier.arriveAndWait()
                    }
                    pair.results[me] = x
                    done.signal()
                }.start()
            }
        }
        for finished in 0..<(2 * pairs.count) {
            guard done.wait(timeout: .now() + 60) == .success else {
                return XCTFail("meetings stopped: \(finished) of \(2 * pairs.count) threads finished")
            }
        }
    }

    /// Runs the two threads on threads of their own, so that a lost wake-up fails the test instead of hanging it.
    private func assertMeetings(_ barrier: LaneBarrier, rounds: Int, late: UInt32 = 0, line: UInt = #line) {
        let meetings = Meetings(barrier)
        let done = DispatchSemaphore(value: 0)
        for me in 0..<2 {
            Thread {
                meetings.run(me, rounds: rounds, late: me == 1 ? late : 0)
                done.signal()
            }.start()
        }
        for _ in 0..<2 {
            guard done.wait(timeout: .now() + 60) == .success else {
                return XCTFail("a thread was never woken from a meeting", line: line)
            }
        }
        XCTAssertEqual(meetings.mismatches[0], 0, "thread 0 read a slot from another round", line: line)
        XCTAssertEqual(meetings.mismatches[1], 0, "thread 1 read a slot from another round", line: line)
    }
}
