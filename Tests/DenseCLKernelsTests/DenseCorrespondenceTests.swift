import DenseCLCore
import DenseCLKernels
import DenseCLTestSupport
import SafeTensors
import XCTest

/// DenseCorrespondence: argmax of per-sample cosine similarities, first index on ties.
final class DenseCorrespondenceTests: XCTestCase {
    private func matches(
        samples: Int, positions: Int, channels: Int, query: [Float], key: [Float], threads: Int = 1
    ) -> [Int32] {
        var out = [Int32](repeating: -1, count: samples * positions)
        let scratch = TestWorkspace(DenseCorrespondence.workspaceSize(samples: samples, positions: positions))
        scratch.workspace.floats.update(repeating: .nan)
        DenseCorrespondence.forward(
            samples: samples, positions: positions, channels: channels, query: query, key: key, matches: &out,
            workspace: scratch.workspace, context: Kernels.context(threads: threads))
        return out
    }

    func testMatchesTheDoubleArgmax() {
        for (n, p, c) in [(1, 1, 1), (2, 4, 3), (3, 9, 16), (2, 49, 64)] {
            var rng = CounterRNG(seed: UInt64(p), domain: .test)
            let q = ContrastiveLossData.unitRows((0..<n * p * c).map { _ in rng.uniform(0, 1) }, width: c)
            let k = ContrastiveLossData.unitRows((0..<n * p * c).map { _ in rng.uniform(0, 1) }, width: c)
            let found = matches(samples: n, positions: p, channels: c, query: q, key: k)
            XCTAssertEqual(matches(samples: n, positions: p, channels: c, query: q, key: k, threads: 2), found,
                           "rows are independent: the thread count cannot change a match")
            for s in 0..<n {
                for i in 0..<p {
                    let sims = (0..<p).map { j in
                        (0..<c).reduce(0.0) { $0 + Double(q[(s * p + i) * c + $1]) * Double(k[(s * p + j) * c + $1]) }
                    }
                    let best = sims.max()!
                    let chosen = Int(found[s * p + i])
                    XCTAssertTrue((0..<p).contains(chosen), "match must be a position of the same sample")
                    // float32 similarities are within ~1e-6 of the Double ones: only a near-tie may pick another
                    // index, and then one whose similarity is within that error of the best.
                    XCTAssertGreaterThanOrEqual(sims[chosen], best - 1e-5, "sample \(s) position \(i)")
                    if sims.filter({ $0 > best - 1e-5 }).count == 1 {
                        XCTAssertEqual(chosen, sims.firstIndex(of: best)!, "sample \(s) position \(i)")
                    }
                }
            }
        }
    }

    func testTiesGoToTheFirstKeyPosition() {
        // One-hot features make every similarity exactly 0 or 1, so ties are exact in any summation order.
        // Sample 0: keys e1, e0, e1, e2 ; sample 1: keys e3, e3, e3, e3.
        func e(_ i: Int) -> [Float] { (0..<4).map { $0 == i ? 1 : 0 } }
        let key = [e(1), e(0), e(1), e(2), e(3), e(3), e(3), e(3)].flatMap { $0 }
        let query = [e(1), e(0), e(3), e(2), e(3), e(0), e(3), e(1)].flatMap { $0 }
        XCTAssertEqual(
            matches(samples: 2, positions: 4, channels: 4, query: query, key: key),
            [0,  // e1: keys 0 and 2 tie at 1 -> the first
             1,  // e0: only key 1
             0,  // e3: no key of sample 0 matches, all four tie at 0 -> the first
             3,  // e2: only key 3
             0, 0, 0, 0])  // sample 1: keys all equal; indices stay within the sample (not 4...7)
    }

    func testNaNSimilarityWinsLikeTorchArgmax() {
        let query: [Float] = [1, 1, 1, 1]  // two positions, two channels
        let key: [Float] = [1, 0, .nan, 1]  // position 1's similarity is NaN for both queries
        XCTAssertEqual(matches(samples: 1, positions: 2, channels: 2, query: query, key: key), [1, 1])
    }

    func testMatchesPyTorch() throws {
        let file = try Fixtures.load("losses/dense.safetensors")
        let shape = try file.int64s("input.shape").map(Int.init)
        let (n, p, c) = (shape[0], shape[1], shape[2])
        let found = matches(
            samples: n, positions: p, channels: c, query: try file.floats("input.qb"), key: try file.floats("input.kb"))
        // The fixture's features have no near-ties (top-2 gap > 1e-4), so the indices must agree exactly.
        XCTAssertEqual(found.map(Int64.init), try file.int64s("out.matches"))
    }
}
