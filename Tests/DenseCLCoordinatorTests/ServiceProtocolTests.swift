import DenseCLCoordinator
import XCTest

final class ServiceProtocolTests: XCTestCase {
    func testMessagesRoundTrip() throws {
        let plan = StepPlan(step: 7, epoch: 1, positions: [4, 5, 6], permutation: [2, 0, 1], learningRate: 0.03,
                            lambda: 0.5, verifyQueues: true, sendState: false)
        XCTAssertEqual(try StepPlan(decoding: plan.encoded), plan)
        let delta = QueueDelta(keys: [1, 2, 3], denseKeys: [])
        XCTAssertEqual(try QueueDelta(decoding: delta.encoded), delta)
        XCTAssertThrowsError(try StepPlan(decoding: Array(plan.encoded.dropLast())))
    }

    /// The failure-handling fields travel: a report's skip decision and a welcome's membership generation.
    func testSkipFlagAndGenerationRoundTrip() throws {
        let keys: [Float] = [1, 2], none: [Float] = []
        for skipped in [false, true] {
            let bytes = keys.withUnsafeBufferPointer { k in
                none.withUnsafeBufferPointer { d in
                    StepReport.encode(rank: 1, globalLoss: .nan, denseLoss: 0.5, queueChecksum: 9, keys: k, denseKeys: d,
                                      skipped: skipped)
                }
            }
            let report = try StepReport(decoding: bytes)
            XCTAssertEqual(report.skipped, skipped)
            XCTAssertEqual(report.keys, keys)
            XCTAssertTrue(report.globalLoss.isNaN)
        }
        let welcome = Welcome(rank: 0, worldSize: 1, runID: 5, coordinatorTimeoutSeconds: 30, configYAML: "a: 1",
                              initialState: [1, 2, 3], generation: 4)
        XCTAssertEqual(try Welcome(decoding: welcome.encoded), welcome)
        XCTAssertEqual(try Welcome(decoding: welcome.encoded).generation, 4)
    }

    /// Keys land in columns at the pointer, transposed, and the pointer wraps (the official enqueue).
    func testEnqueueWritesColumnsAndWraps() throws {
        var q = try AuthoritativeQueues(dim: 2, length: 4, queue: [Float](repeating: 0, count: 8), queuePointer: 2,
                                        denseQueue: [Float](repeating: 0, count: 8), denseQueuePointer: 0)
        try q.enqueue(keys: [1, 2, 3, 4], denseKeys: nil)
        XCTAssertEqual(q.queue, [0, 0, 1, 3, 0, 0, 2, 4])
        XCTAssertEqual(q.queuePointer, 0)
        XCTAssertEqual(q.denseQueuePointer, 0)
        XCTAssertThrowsError(try q.enqueue(keys: [Float](repeating: 1, count: 10), denseKeys: nil))
    }

    /// π is the identity without shuffle and a permutation of the batch with it.
    func testKeyPermutation() {
        XCTAssertEqual(KeyPermutation.draw(seed: 1, step: 3, count: 5, shuffle: false), [0, 1, 2, 3, 4])
        XCTAssertEqual(KeyPermutation.draw(seed: 1, step: 3, count: 8, shuffle: true).sorted(), Array(0..<8))
    }
}
