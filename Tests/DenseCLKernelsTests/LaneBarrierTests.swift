import DenseCLKernels
import Foundation
import XCTest

/// `LaneBarrier`: two threads meet many times in a row; what each wrote before a meeting is what the other reads
/// after it.
final class LaneBarrierTests: XCTestCase {
    /// Two threads that each write their slot, meet, read the other's slot, and meet again before the next write.
    private final class Meetings: @unchecked Sendable {
        let barrier = LaneBarrier()
        let slots = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        /// Per thread, the rounds in which the other's slot held another round's value.
        let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: 2)

        init() {
            slots.initialize(repeating: -1, count: 2)
            mismatches.initialize(repeating: 0, count: 2)
        }

        deinit {
            slots.deallocate()
            mismatches.deallocate()
        }

        func run(_ me: Int, rounds: Int) {
            for round in 0..<rounds {
                slots[me] = round
                barrier.arriveAndWait()
                if slots[1 - me] != round { mismatches[me] += 1 }
                barrier.arriveAndWait()
            }
        }
    }

    func testWritesBeforeAMeetingAreSeenAfterIt() {
        let meetings = Meetings(), rounds = 20_000
        let done = DispatchSemaphore(value: 0)
        let other = Thread {
            meetings.run(1, rounds: rounds)
            done.signal()
        }
        other.start()
        meetings.run(0, rounds: rounds)
        done.wait()
        XCTAssertEqual(meetings.mismatches[0], 0, "thread 0 read a slot from another round")
        XCTAssertEqual(meetings.mismatches[1], 0, "thread 1 read a slot from another round")
    }
}
