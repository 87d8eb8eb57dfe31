import DenseCLKernels
import DenseCLModel
import XCTest

/// SGD and the momentum-encoder EMA on hand-computed values; PyTorch agreement is in ParityTests.
final class ParameterUpdateTests: XCTestCase {
    private func arena(_ values: [Float]) -> Arena {
        var layout = ArenaLayout()
        layout.append("a", shape: [2])
        layout.append("b", shape: [values.count - 2])  // a second slot, so that the alignment padding is crossed
        let arena = Arena(layout: layout)
        _ = arena["a"].update(fromContentsOf: values[0..<2])
        _ = arena["b"].update(fromContentsOf: values[2...])
        return arena
    }

    private func values(_ arena: Arena) -> [Float] { Array(arena["a"]) + Array(arena["b"]) }

    /// torch.optim.SGD: d = g + wd·w, v = μ·v + d, w = w − lr·v. With w = 1, g = 0.5, v = 0.2, wd = 0.1, μ = 0.9,
    /// lr = 0.1: d = 0.6, v = 0.78, w = 0.922. The gradient arena is left as it was; padding stays zero.
    func testSGDStepIsPyTorchsRule() throws {
        let w = arena([1, -2, 1, 0]), g = arena([0.5, 0, 0.5, 0]), v = arena([0.2, 1, 0.2, 0])
        let sgd = try SGD(momentum: 0.9, weightDecay: 0.1)
        for threads in [1, 2] {
            let (w2, v2) = (arena(values(w)), arena(values(v)))
            sgd.step(parameters: w2, gradients: g, velocity: v2, learningRate: 0.1, context: try ComputeContext(threads: threads))
            XCTAssertEqual(values(v2)[0], 0.78, accuracy: 1e-6)
            XCTAssertEqual(values(w2)[0], 0.922, accuracy: 1e-6)
            XCTAssertEqual(values(v2)[1], 0.9 - 0.2, accuracy: 1e-6)  // d = 0 + 0.1·(−2)
            XCTAssertEqual(values(w2)[1], -2 - 0.1 * 0.7, accuracy: 1e-6)
            XCTAssertEqual(values(g), [0.5, 0, 0.5, 0])
            XCTAssertEqual(Set(w2.buffer[2..<w2.layout.slot("b")!.offset]), [0], "padding")
        }
    }

    func testSGDRejectsInvalidHyperparameters() {
        XCTAssertThrowsError(try SGD(momentum: 1, weightDecay: 0))
        XCTAssertThrowsError(try SGD(momentum: 0.9, weightDecay: -1))
    }

    /// θ_k ← m·θ_k + (1 − m)·θ_q; equal encoders stay equal up to float32 rounding.
    func testMomentumEncoderUpdate() throws {
        let key = arena([1, 0, 2, 2]), query = arena([3, 10, 2, -2])
        MomentumEncoderUpdate.apply(key: key, query: query, momentum: 0.75, context: try ComputeContext(threads: 1))
        XCTAssertEqual(values(key), [1.5, 2.5, 2, 1])
        XCTAssertEqual(values(query), [3, 10, 2, -2])
    }
}
