import DenseCLKernels
import DenseCLTestSupport
import DenseCLCore
import XCTest

/// Finite-difference checks of `MaxPool2d` and `AdaptiveAvgPool2d`, and PyTorch's index and tie conventions.
final class PoolingTests: XCTestCase {
    let context = Kernels.context()

    /// Values 0.05 apart in a random order: no two window elements are within 2 · step = 0.02 of each other,
    /// so the winner never changes under a perturbation and the check is exact (max pool is piecewise linear).
    func spacedValues(_ count: Int, seed: UInt64) -> [Float] {
        var rng = CounterRNG(seed: seed, domain: .test)
        return rng.permutation(count).map { Float($0) * 0.05 - Float(count) * 0.025 }
    }

    func testMaxPoolGradients() throws {
        let shapes = [
            try MaxPool2dShape(batch: 2, channels: 3, inHeight: 7, inWidth: 6, kernel: 3, stride: 2, padding: 1),
            try MaxPool2dShape(batch: 1, channels: 2, inHeight: 2, inWidth: 3, kernel: 3, stride: 2, padding: 1),
            try MaxPool2dShape(batch: 1, channels: 1, inHeight: 1, inWidth: 1, kernel: 3, stride: 2, padding: 1),
            try MaxPool2dShape(batch: 2, channels: 2, inHeight: 5, inWidth: 5, kernel: 2, stride: 2, padding: 0),
            // 18 channels: one 16-wide vector block and a scalar tail.
            try MaxPool2dShape(batch: 1, channels: 18, inHeight: 5, inWidth: 4, kernel: 3, stride: 2, padding: 1),
        ]
        for (i, s) in shapes.enumerated() {
            let x = TestTensor(spacedValues(s.inputCount, seed: UInt64(i)))
            let dy = GradientCheck.objectiveWeights(count: s.outputCount, seed: UInt64(10 + i))
            var indices = [Int32](repeating: -1, count: s.outputCount)
            func objective() -> Double {
                var out = [Float](repeating: .nan, count: s.outputCount)
                MaxPool2d.forward(s, input: x.pointer, output: &out, indices: &indices, context: context)
                return GradientCheck.weightedSum(out, dy)
            }
            _ = objective()
            var dx = [Float](repeating: .nan, count: s.inputCount)
            MaxPool2d.backward(s, indices: indices, dOutput: dy, dInput: &dx, update: .overwrite, context: context)
            let r = check(x, analytic: dx, step: 0.01, objective: objective)
            // Exact up to the Double objective's rounding (~1e-16 / 0.02): 1e-6 of the scale.
            XCTAssertLessThan(r.worstError, 1e-6, "shape \(i): \(r)")
        }
    }

    func testMaxPoolTiesAndIndicesFollowPyTorch() throws {
        // 17 channels so that both the 16-wide vector path (channels 0...15) and the scalar tail (16) are seen.
        let c = 17
        let s = try MaxPool2dShape(batch: 1, channels: c, inHeight: 4, inWidth: 4, kernel: 3, stride: 2, padding: 1)
        // All values 1 (every window a tie: the first valid position wins), except a NaN at (1, 1) in channel 1
        // (vector path) and channel 16 (scalar tail).
        var x = [Float](repeating: 1, count: s.inputCount)
        x[(1 * 4 + 1) * c + 1] = .nan
        x[(1 * 4 + 1) * c + 16] = .nan
        var out = [Float](repeating: 0, count: s.outputCount), indices = [Int32](repeating: -1, count: s.outputCount)
        MaxPool2d.forward(s, input: x, output: &out, indices: &indices, context: context)
        // Output 2x2; the window of (oy, ox) starts at (2oy − 1, 2ox − 1) clamped to 0.
        XCTAssertEqual((0..<4).map { indices[$0 * c] }, [0, 1, 4, 5])
        for channel in [1, 16] {
            XCTAssertEqual(indices[channel], 5, "channel \(channel): the NaN at (1, 1) wins window (0, 0)")
            XCTAssertTrue(out[channel].isNaN)
            XCTAssertEqual(indices[3 * c + channel], 5, "channel \(channel): and window (1, 1)")
        }
        XCTAssertEqual(out[0], 1)
    }

    func testAdaptiveAveragePoolGradients() throws {
        let shapes = [
            try AdaptiveAvgPool2dShape(batch: 2, channels: 3, inHeight: 7, inWidth: 7, outHeight: 1, outWidth: 1),
            try AdaptiveAvgPool2dShape(batch: 1, channels: 2, inHeight: 5, inWidth: 5, outHeight: 2, outWidth: 2),
            try AdaptiveAvgPool2dShape(batch: 2, channels: 2, inHeight: 7, inWidth: 5, outHeight: 3, outWidth: 3),
            try AdaptiveAvgPool2dShape(batch: 1, channels: 3, inHeight: 1, inWidth: 1, outHeight: 2, outWidth: 2),
        ]
        for (i, s) in shapes.enumerated() {
            let x = TestTensor(random: s.inputCount, seed: UInt64(20 + i))
            let dy = GradientCheck.objectiveWeights(count: s.outputCount, seed: UInt64(30 + i))
            func forward() -> [Float] {
                var out = [Float](repeating: .nan, count: s.outputCount)
                AdaptiveAvgPool2d.forward(s, input: x.pointer, output: &out, context: context)
                return out
            }
            var dx = [Float](repeating: .nan, count: s.inputCount)
            AdaptiveAvgPool2d.backward(s, dOutput: dy, dInput: &dx, update: .overwrite, context: context)
            let r = check(x, analytic: dx, step: 0.5) { GradientCheck.weightedSum(forward(), dy) }
            // Linear op, step 0.5: only Float rounding of ≤ 49-term means, ~√49 · 2^-24: 1e-5 of the scale.
            XCTAssertLessThan(r.worstError, 1e-5, "shape \(i): \(r)")

            // Forward against the definition (PyTorch's bins), in Double.
            let out = forward()
            for n in 0..<s.batch {
                for oy in 0..<s.outHeight {
                    for ox in 0..<s.outWidth {
                        let y0 = oy * s.inHeight / s.outHeight, y1 = ((oy + 1) * s.inHeight + s.outHeight - 1) / s.outHeight
                        let x0 = ox * s.inWidth / s.outWidth, x1 = ((ox + 1) * s.inWidth + s.outWidth - 1) / s.outWidth
                        for c in 0..<s.channels {
                            var sum = 0.0
                            for yy in y0..<y1 { for xx in x0..<x1 { sum += Double(x.values[((n * s.inHeight + yy) * s.inWidth + xx) * s.channels + c]) } }
                            let expected = sum / Double((y1 - y0) * (x1 - x0))
                            // Float mean of ≤ 49 values in [-1, 1): ≤ 49 · 2^-24 ≈ 3e-6.
                            XCTAssertEqual(Double(out[((n * s.outHeight + oy) * s.outWidth + ox) * s.channels + c]), expected, accuracy: 3e-6)
                        }
                    }
                }
            }
        }
    }

    func testInvalidPoolingShapesAreTypedErrors() {
        XCTAssertThrowsError(try MaxPool2dShape(batch: 1, channels: 1, inHeight: 4, inWidth: 4, kernel: 3, stride: 2, padding: 2)) {
            XCTAssertEqual($0 as? KernelError, .paddingTooLarge(op: "max pool", padding: 2, kernel: 3))
        }
        XCTAssertThrowsError(try AdaptiveAvgPool2dShape(batch: 1, channels: 1, inHeight: 4, inWidth: 4, outHeight: 0, outWidth: 1)) {
            XCTAssertEqual($0 as? KernelError, .invalidDimension(op: "adaptive average pool", name: "outHeight", value: 0))
        }
    }
}
