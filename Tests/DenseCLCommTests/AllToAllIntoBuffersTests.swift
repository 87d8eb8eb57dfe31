import DenseCLComm
import Foundation
import XCTest

/// The all-to-all between preallocated float buffers (`all_to_all_single` with split sizes), the key exchange's
/// collective: every block lands at its source's offset, sizes differ per pair (some empty), and ranks that
/// disagree on a split size get a typed error instead of misplaced data.
final class AllToAllIntoBuffersTests: XCTestCase {
    /// Floats rank s sends to rank d: `(2s + d) % 4 · 3` (0, 3, 6 or 9; some pairs empty, rank 0 sends itself
    /// nothing), value k = s·1000 + d·100 + k, distinct for every position of every block.
    static func count(from s: Int, to d: Int) -> Int { (2 * s + d) % 4 * 3 }
    static func value(from s: Int, to d: Int, _ k: Int) -> Float { Float(s * 1000 + d * 100 + k) }

    func testInProcess() {
        for n in [1, 2, 3, 5] {
            // 4-byte parts: every block of two floats or more is a multi-part stream.
            for partBytes in [4, 1 << 20] { check(Cluster.inProcess(n), partBytes: partBytes) }
        }
    }

    func testZeroMQThreads() throws {
        for n in [2, 3] {
            for partBytes in [8, 1 << 20] { check(try Cluster.zeroMQ(n), partBytes: partBytes) }
        }
    }

    private func check<T: Transport>(_ transports: [T], partBytes: Int) {
        let n = transports.count
        let context = "world \(n), parts of \(partBytes) bytes, \(T.self)"
        let errors = runCollectives(
            transports, options: CollectiveOptions(partBytes: partBytes, timeout: .seconds(10))
        ) { comm in
            let r = comm.rank
            let sends = (0..<n).map { Self.count(from: r, to: $0) }
            let receives = (0..<n).map { Self.count(from: $0, to: r) }
            let input = (0..<n).flatMap { d in (0..<sends[d]).map { Self.value(from: r, to: d, $0) } }
            // Two rounds through the same buffers: the second must overwrite the first's values (NaN-filled).
            var output = [Float](repeating: .nan, count: receives.reduce(0, +))
            for _ in 0..<2 {
                try input.withUnsafeBufferPointer { source in
                    try output.withUnsafeMutableBufferPointer {
                        try comm.allToAll(source, sendCounts: sends, into: $0, receiveCounts: receives)
                    }
                }
                let expected = (0..<n).flatMap { s in (0..<receives[s]).map { Self.value(from: s, to: r, $0) } }
                if output != expected {
                    throw CommError.invalidArgument("\(context): rank \(r) received \(output), expected \(expected)")
                }
                for i in output.indices { output[i] = .nan }
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [], context)
    }

    /// Rank 1 expects one float more from rank 0 than rank 0 sends: rank 1 fails with `protocolMismatch` naming
    /// the split sizes, before writing anything.
    func testDisagreeingSplitSizesAreAProtocolMismatch() {
        let outcome = RankValues<[Float]>(2)
        let errors = runCollectives(Cluster.inProcess(2), options: CollectiveOptions(timeout: .seconds(2))) { comm in
            let r = comm.rank
            let sends = r == 0 ? [1, 2] : [2, 1]
            let receives = r == 0 ? [1, 2] : [3, 1]  // rank 0 sends 2, rank 1 expects 3
            let input = [Float](repeating: Float(r + 1), count: 3)
            var output = [Float](repeating: -1, count: receives.reduce(0, +))
            defer { outcome[r] = output }
            try input.withUnsafeBufferPointer { source in
                try output.withUnsafeMutableBufferPointer {
                    try comm.allToAll(source, sendCounts: sends, into: $0, receiveCounts: receives)
                }
            }
        }
        guard case .protocolMismatch(let peer, let detail)? = errors[1] else {
            return XCTFail("rank 1: expected protocolMismatch, got \(String(describing: errors[1]))")
        }
        XCTAssertEqual(peer, 0)
        XCTAssertTrue(detail.contains("split sizes"), detail)
        XCTAssertEqual(outcome[1]?.prefix(3), [-1, -1, -1], "rank 1 wrote a block of the wrong size")
    }

    /// Argument errors are reported before anything is sent, with what is wrong.
    func testBadCountsAreRejected() throws {
        let comm = try Collectives(transport: Cluster.inProcess(1)[0], session: Session(runID: 1, generation: 1))
        let input: [Float] = [1, 2]
        var output: [Float] = [0, 0]
        func attempt(_ sends: [Int], _ receives: [Int]) -> String {
            do {
                try input.withUnsafeBufferPointer { source in
                    try output.withUnsafeMutableBufferPointer {
                        try comm.allToAll(source, sendCounts: sends, into: $0, receiveCounts: receives)
                    }
                }
                return "no error"
            } catch CommError.invalidArgument(let detail) {
                return detail
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(attempt([2, 0], [2]).contains("needs 1 non-negative send counts"))
        XCTAssertTrue(attempt([3], [2]).contains("send counts sum to 3"))
        XCTAssertTrue(attempt([2], [-2]).contains("non-negative receive counts"))
        XCTAssertEqual(attempt([2], [2]), "no error")
        XCTAssertEqual(output, [1, 2])
    }
}
