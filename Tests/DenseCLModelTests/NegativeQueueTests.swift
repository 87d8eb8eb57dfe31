import DenseCLModel
import XCTest

final class NegativeQueueTests: XCTestCase {
    func testInitialQueueHasUnitColumnsAndDiffersPerIndex() {
        let queue = NegativeQueue(dim: 16, length: 64), queue2 = NegativeQueue(dim: 16, length: 64)
        queue.initialize(seed: 3, index: 0)
        queue2.initialize(seed: 3, index: 1)
        for column in 0..<64 {
            let norm = (0..<16).reduce(0.0) { $0 + Double(queue.values[$1 * 64 + column]) * Double(queue.values[$1 * 64 + column]) }
            XCTAssertEqual(norm, 1, accuracy: 1e-6, "column \(column)")  // 16 float32 roundings of the squares
        }
        XCTAssertNotEqual(Array(queue.values), Array(queue2.values))
        XCTAssertEqual(queue.pointer, 0)
        let again = NegativeQueue(dim: 16, length: 64)
        again.initialize(seed: 3, index: 0)
        XCTAssertEqual(Array(again.values), Array(queue.values))
    }

    /// Keys `[B, D]` land transposed in columns `ptr ..< ptr + B`; the pointer wraps to 0 at K.
    func testEnqueueWritesColumnsAndWraps() throws {
        let queue = NegativeQueue(dim: 2, length: 6)
        try queue.setPointer(4)
        let keys: [Float] = [1, 2, 3, 4]  // two keys of dimension 2: (1, 2) and (3, 4)
        keys.withUnsafeBufferPointer { queue.enqueue(keys: $0.baseAddress!, count: 2) }
        XCTAssertEqual(Array(queue.values), [0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 2, 4])
        XCTAssertEqual(queue.pointer, 0)
        keys.withUnsafeBufferPointer { queue.enqueue(keys: $0.baseAddress!, count: 2) }
        XCTAssertEqual(Array(queue.values), [1, 3, 0, 0, 1, 3, 2, 4, 0, 0, 2, 4])
        XCTAssertEqual(queue.pointer, 2)
    }

    func testPointerOutsideTheQueueIsRejected() {
        let queue = NegativeQueue(dim: 2, length: 6)
        XCTAssertThrowsError(try queue.setPointer(6, name: "queue2_ptr")) { error in
            XCTAssertEqual(error as? DenseCLError, .invalidQueuePointer(name: "queue2_ptr", value: 6, queueLength: 6))
        }
        XCTAssertThrowsError(try queue.setPointer(-1))
    }
}
