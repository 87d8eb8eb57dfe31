import DenseCLCoordinator
import Foundation
import XCTest

/// A fresh run whose workers can no longer come (spawned local workers that exited) fails at once with the reason,
/// not after the two-minute join timeout.
final class AdmissionCheckTests: XCTestCase {
    func testAFailedAdmissionCheckEndsTheWaitWithItsReason() throws {
        let dir = temporaryDirectory("admission")
        defer { try? FileManager.default.removeItem(at: dir) }
        let coordinator = try Coordinator(
            config: try tinyTestConfig(["cluster.workers=2", "optim.batch_size=4"]), runDirectory: dir,
            listen: "tcp://127.0.0.1:0", resume: "none") { _ in }
        var calls = 0
        coordinator.admissionCheck = {
            calls += 1
            return calls >= 2 ? "local worker 1 exited with status 3" : nil
        }
        let started = ContinuousClock.now
        XCTAssertThrowsError(try coordinator.run(joinTimeout: .seconds(60))) { error in
            XCTAssertEqual("\(error)", "\(CoordinatorError.invalidSetup("local worker 1 exited with status 3"))")
        }
        // Checked about once a second: the second check comes after ~2 s, far from the 60 s timeout.
        XCTAssertLessThan(started.duration(to: .now), .seconds(10))
    }
}
