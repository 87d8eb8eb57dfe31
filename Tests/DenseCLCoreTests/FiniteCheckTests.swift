import DenseCLCore
import XCTest

final class FiniteCheckTests: XCTestCase {
    /// Every non-finite kind at every position class (first value, inside the vectorised body, last value of the
    /// body, in the scalar tail, last value), for lengths around the 16-lane width; and large finite values whose
    /// sum would overflow, which must still count as finite.
    func testFindsEveryNonFiniteValueAnywhere() {
        for count in [1, 15, 16, 17, 33, 1000] {
            let finite = (0..<count).map { Float($0 % 7) * 0.25 - 0.5 }
            XCTAssertTrue(check(finite), "length \(count): all finite")
            XCTAssertTrue(check([Float](repeating: .greatestFiniteMagnitude, count: count)), "length \(count): huge but finite")
            let body = count / 16 * 16
            let positions = Set([0, count / 2, max(0, body - 1), body, count - 1].filter { $0 < count })
            for position in positions {
                for bad: Float in [.nan, .infinity, -.infinity, .signalingNaN] {
                    var values = finite
                    values[position] = bad
                    XCTAssertFalse(check(values), "length \(count): \(bad) at \(position)")
                }
            }
        }
        XCTAssertTrue(check([]), "an empty tensor has no non-finite value")
    }

    private func check(_ values: [Float]) -> Bool {
        values.withUnsafeBufferPointer { FiniteCheck.allFinite($0) }
    }
}
