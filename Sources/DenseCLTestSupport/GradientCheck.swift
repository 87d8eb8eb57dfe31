import DenseCLCore

/// Finite-difference gradient checks of Float kernels, with the scalar objective accumulated in Double.
///
/// Recipe: pick fixed random weights `w` for the kernel's output and define `L = Σ out[i] · w[i]` (computed in
/// Double by ``weightedSum(_:_:)``). The analytic gradient of `L` is what backward returns when it is fed
/// `dOut = w`; ``numericalGradient(of:at:step:stencil:objective:)`` estimates the same thing by re-running the
/// forward pass with one input element moved by `±step`, and ``compare(analytic:numeric:at:)`` measures the
/// difference relative to the gradient's scale.
///
/// Choosing the step: for ops that are linear in the checked input (convolution, linear, pooling, sums)
/// central differences are exact up to rounding, so a large step (≈ 0.5) makes the rounding of the Float
/// forward pass negligible. For smooth non-linear ops (batch norm, L2 normalisation) use a small step
/// (≈ 1e-2) and the four-point stencil, whose truncation error is O(step⁴). For piecewise-linear ops (ReLU,
/// max pool) keep every input farther than `2 · step` from a kink (zero, or a tie between window elements).
public enum GradientCheck {
    /// Central-difference formula.
    public enum Stencil: Sendable {
        /// `(L(x+h) − L(x−h)) / 2h` with the steps actually taken in Float: exact for linear objectives.
        case twoPoint
        /// `(8(L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h` (as a Richardson extrapolation of two-point
        /// differences): truncation error O(h⁴).
        case fourPoint
    }

    /// How far an analytic gradient is from the numerical one.
    public struct Report: CustomStringConvertible, Sendable {
        /// max |analytic − numeric| and friends, over the checked elements.
        public var discrepancy: Discrepancy
        /// The gradient's scale: max |numeric| over the checked elements.
        public var scale: Double
        /// Number of checked elements.
        public var checked: Int

        /// `maxAbs / scale`: the worst error as a fraction of the largest gradient entry. This is the figure
        /// tolerances are stated in; unlike an elementwise relative error it is not inflated by entries that
        /// happen to be near zero, and unlike relative L2 it still sees a single wrong entry.
        public var worstError: Double { discrepancy.maxAbs / max(scale, 1e-30) }

        public var description: String {
            "worst error \(worstError) of scale \(scale) over \(checked) elements (\(discrepancy))"
        }
    }

    /// `count` weights uniform in [-1, 1), exactly representable in Float (so the same values can be fed to a
    /// Float backward pass), from a `CounterRNG` test stream.
    public static func objectiveWeights(count: Int, seed: UInt64) -> [Float] {
        randomValues(count: count, seed: seed, low: -1, high: 1)
    }

    /// `count` Floats uniform in [low, high) from the test stream `(seed, sub)`.
    public static func randomValues(count: Int, seed: UInt64, sub: Int = 0, low: Double, high: Double) -> [Float] {
        var rng = CounterRNG(seed: seed, domain: .test, sub: sub)
        return (0..<count).map { _ in Float(rng.uniform(low, high)) }
    }

    /// `Σ values[i] · weights[i]` in Double.
    public static func weightedSum(_ values: UnsafeBufferPointer<Float>, _ weights: [Float]) -> Double {
        precondition(values.count == weights.count, "objective weights (\(weights.count)) do not match the output (\(values.count))")
        var total = 0.0
        for i in 0..<values.count { total += Double(values[i]) * Double(weights[i]) }
        return total
    }

    public static func weightedSum(_ values: [Float], _ weights: [Float]) -> Double {
        values.withUnsafeBufferPointer { weightedSum($0, weights) }
    }

    /// At most `limit` indices of `0..<count`: all of them when they fit, otherwise the first, the last and a
    /// deterministic random sample (sorted, without repeats).
    public static func sampleIndices(count: Int, limit: Int, seed: UInt64) -> [Int] {
        if count <= limit { return Array(0..<count) }
        var rng = CounterRNG(seed: seed, domain: .test, sub: 7)
        var chosen = Set([0, count - 1])
        while chosen.count < limit { chosen.insert(rng.nextInt(below: count)) }
        return chosen.sorted()
    }

    /// dL/dx[i] for each `i` in `indices`, by moving `x[i]` (Float storage) and calling `objective` (which must
    /// read `x` afresh). `x` is restored exactly afterwards.
    public static func numericalGradient(
        of x: UnsafeMutableBufferPointer<Float>, at indices: [Int], step: Double, stencil: Stencil = .twoPoint,
        objective: () -> Double
    ) -> [Double] {
        indices.map { i in
            let original = x[i]
            func value(at offset: Double) -> (Double, Double) {
                x[i] = Float(Double(original) + offset)
                let taken = Double(x[i]) - Double(original)
                let l = objective()
                x[i] = original
                return (l, taken)
            }
            // A two-point difference over the steps actually taken (x ± h rounds to Float): dividing by the real
            // distance keeps the estimate exact for linear objectives.
            func difference(_ h: Double) -> Double {
                let (plus, hPlus) = value(at: h)
                let (minus, hMinus) = value(at: -h)
                return (plus - minus) / (hPlus - hMinus)
            }
            switch stencil {
            case .twoPoint:
                return difference(step)
            case .fourPoint:
                // Richardson extrapolation D(h) + (D(h) − D(2h)) / 3 cancels the h² term: this is the four-point
                // stencil, written with per-pair real steps.
                let d1 = difference(step), d2 = difference(2 * step)
                return (4 * d1 - d2) / 3
            }
        }
    }

    /// Array convenience of ``numericalGradient(of:at:step:stencil:objective:)``; `objective` gets the
    /// perturbed values.
    public static func numericalGradient(
        of x: inout [Float], at indices: [Int]? = nil, step: Double, stencil: Stencil = .twoPoint,
        objective: (UnsafeMutableBufferPointer<Float>) -> Double
    ) -> [Double] {
        let chosen = indices ?? Array(0..<x.count)
        return x.withUnsafeMutableBufferPointer { buffer in
            numericalGradient(of: buffer, at: chosen, step: step, stencil: stencil) { objective(buffer) }
        }
    }

    /// Compares the analytic gradient (all elements) with numerical estimates taken at `indices`.
    public static func compare(analytic: [Float], numeric: [Double], at indices: [Int]? = nil) -> Report {
        let chosen = indices ?? Array(0..<analytic.count)
        precondition(chosen.count == numeric.count, "\(numeric.count) numerical values for \(chosen.count) indices")
        let picked = chosen.map { analytic[$0] }
        let scale = numeric.reduce(0) { max($0, abs($1)) }
        return Report(discrepancy: Discrepancy(actual: picked, expected: numeric), scale: scale, checked: chosen.count)
    }
}
