import DenseCLComm
import XCTest

/// The liveness rule on a fake clock: times are durations passed in by the test.
final class LivenessMonitorTests: XCTestCase {
    private func ms(_ value: Int) -> Duration { .milliseconds(value) }

    func testSilentPeerExpiresAfterMissedBeatsIntervals() {
        var monitor = LivenessMonitor<String>(interval: ms(1000), missedBeats: 3)
        XCTAssertTrue(monitor.heard("w1", at: ms(0)))
        XCTAssertFalse(monitor.heard("w1", at: ms(500)))  // already up
        XCTAssertEqual(monitor.nextExpiry, ms(3500))
        XCTAssertTrue(monitor.expire(at: ms(3500)).isEmpty, "exactly at the deadline is not yet dead")
        let dead = monitor.expire(at: ms(3501))
        XCTAssertEqual(dead.map(\.peer), ["w1"])
        XCTAssertEqual(dead.first?.silentFor, ms(3001))
        XCTAssertTrue(monitor.expire(at: ms(10_000)).isEmpty, "a dead peer is reported once")
        XCTAssertNil(monitor.nextExpiry)
        XCTAssertTrue(monitor.heard("w1", at: ms(11_000)), "traffic after death brings the peer back up")
    }

    /// Any traffic counts as life: a peer heard every 2.9 s never expires with a 3 s deadline, however long
    /// it goes on, while a peer heard once does.
    func testAnyTrafficKeepsAPeerAlive() {
        var monitor = LivenessMonitor<String>(interval: ms(1000), missedBeats: 3)
        _ = monitor.heard("busy", at: ms(0))
        _ = monitor.heard("quiet", at: ms(0))
        var dead: [String] = []
        for t in stride(from: 2900, through: 29_000, by: 2900) {
            _ = monitor.heard("busy", at: ms(t))
            dead += monitor.expire(at: ms(t + 1)).map(\.peer)
        }
        XCTAssertEqual(dead, ["quiet"])
        XCTAssertEqual(monitor.alive, ["busy"])
    }

    /// A peer that is expected but never speaks (a coordinator that never answers) is reported after the
    /// deadline without ever having been up; a goodbye stops the watch.
    func testExpectedPeerThatNeverSpeaksAndForget() {
        var monitor = LivenessMonitor<String>(interval: ms(100), missedBeats: 5)
        monitor.expect("coordinator", at: ms(0))
        XCTAssertEqual(monitor.alive, [])
        XCTAssertEqual(monitor.expire(at: ms(501)).map(\.peer), ["coordinator"])
        _ = monitor.heard("w", at: ms(600))
        monitor.forget("w")
        XCTAssertTrue(monitor.expire(at: ms(5000)).isEmpty)
    }
}
