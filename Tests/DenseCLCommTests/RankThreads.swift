import DenseCLComm
import Foundation
import XCTest

/// Runs `body(rank)` on `worldSize` dedicated threads (ranks block on each other, so a thread pool with fewer
/// threads than ranks could deadlock) and returns each rank's error, or `nil` for success.
///
/// Fails the calling test if the ranks have not all returned within `limit`: collectives bound every wait,
/// so a rank still running after that is a hang.
func runRanks(
    _ worldSize: Int, limit: Duration = .seconds(30), file: StaticString = #filePath, line: UInt = #line,
    _ body: @escaping @Sendable (Int) throws -> Void
) -> [CommError?] {
    let results = RankValues<CommError>(worldSize)
    let finished = DispatchSemaphore(value: 0)
    for rank in 0..<worldSize {
        let thread = Thread {
            do {
                try body(rank)
            } catch let error as CommError {
                results[rank] = error
            } catch {
                results[rank] = .invalidArgument("non-comm error \(error)")
            }
            finished.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    let deadline = DispatchTime.now() + limit.seconds
    for _ in 0..<worldSize {
        if finished.wait(timeout: deadline) == .timedOut {
            XCTFail("ranks still running after \(limit): a collective hung", file: file, line: line)
            break
        }
    }
    return (0..<worldSize).map { results[$0] }
}

/// Per-rank values written from several threads (test outputs).
final class RankValues<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Value?]

    init(_ count: Int) { values = Array(repeating: nil, count: count) }

    subscript(rank: Int) -> Value? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return values[rank]
        }
        set {
            lock.lock()
            values[rank] = newValue
            lock.unlock()
        }
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}

/// Rank-encoded all-reduce inputs whose sum has a closed form that Float32 represents exactly.
///
/// Rank r holds `x_r[i] = i + r·2^17`. For i < 2^17 and n <= 8 every partial sum is an integer below
/// 2^24, so the ring's additions are exact in any order, and
///     sum_r x_r[i] = n·i + 2^17·n(n-1)/2,    mean = i + 2^16·(n-1).
/// A misplaced chunk shifts i, a missing or doubled contribution shifts the 2^17 multiple: both are far
/// outside the tolerance.
enum RankEncoded {
    static func input(rank: Int, count: Int) -> [Float] {
        precondition(count <= 1 << 17)
        return (0..<count).map { Float($0) + Float(rank) * 131_072 }
    }

    static func sum(index: Int, worldSize n: Int) -> Double {
        Double(n * index) + 131_072 * Double(n * (n - 1) / 2)
    }

    static func mean(index: Int, worldSize n: Int) -> Double {
        Double(index) + 65_536 * Double(n - 1)
    }
}

/// Checks an all-reduce output against ``RankEncoded``.
///
/// Tolerance: the sums are exact (see ``RankEncoded``), so a sum must match exactly; a mean is the exact sum
/// times fl(1/n): two roundings of half an ulp each, so |error| <= 2^-23·|mean|; we allow 2^-22 for slack.
/// A real fault (a missing rank, a shifted chunk) is off by at least 1/n.
func assertClosedForm(
    _ values: [Float], count: Int, worldSize: Int, mean: Bool, context: String, file: StaticString = #filePath,
    line: UInt = #line
) {
    XCTAssertEqual(values.count, count, context, file: file, line: line)
    var worst = 0.0
    var worstIndex = -1
    for (i, value) in values.enumerated() {
        let expected =
            mean ? RankEncoded.mean(index: i, worldSize: worldSize) : RankEncoded.sum(index: i, worldSize: worldSize)
        let excess = abs(Double(value) - expected) - (mean ? expected * 0x1p-22 : 0)
        if excess > worst {
            worst = excess
            worstIndex = i
        }
    }
    XCTAssertEqual(
        worstIndex, -1, "\(context), \(mean ? "mean" : "sum"): element \(worstIndex) off by \(worst) beyond tolerance",
        file: file, line: line)
}
