import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// Finite-difference checks of `BatchNorm2d` in training and inference mode, with and without the fused
/// residual add and ReLU, with one and several groups; running statistics against their definition.
final class BatchNorm2dTests: XCTestCase {
    struct Setup {
        let s: BatchNorm2dShape
        let relu: Bool
        let x: TestTensor, gamma: TestTensor, beta: TestTensor, residual: TestTensor?
        let runningMean: TestTensor, runningVar: TestTensor
        var dy: [Float]
        let ws: TestWorkspace
        let context = Kernels.context()

        init(_ s: BatchNorm2dShape, relu: Bool, residual: Bool, seed: UInt64) {
            self.s = s
            self.relu = relu
            x = TestTensor(random: s.count, seed: seed, sub: 1, low: -2, high: 2)
            gamma = TestTensor(random: s.channels, seed: seed, sub: 2, low: 0.5, high: 1.5)
            beta = TestTensor(random: s.channels, seed: seed, sub: 3, low: -0.5, high: 0.5)
            self.residual = residual ? TestTensor(random: s.count, seed: seed, sub: 4) : nil
            runningMean = TestTensor(random: s.channels, seed: seed, sub: 5, low: -0.5, high: 0.5)
            runningVar = TestTensor(random: s.channels, seed: seed, sub: 6, low: 0.5, high: 2)
            dy = GradientCheck.objectiveWeights(count: s.count, seed: seed)
            ws = TestWorkspace(s.workspaceSize(context: context))
        }

        /// Forward output; `relu` overrides the setup's epilogue (to look at pre-activations).
        func forward(training: Bool, relu: Bool? = nil) -> [Float] {
            var out = [Float](repeating: .nan, count: s.count)
            var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
            if training {
                BatchNorm2d.forwardTraining(
                    s, input: x.pointer, gamma: gamma.pointer, beta: beta.pointer, residual: residual?.pointer,
                    relu: relu ?? self.relu, output: &out, savedMean: &mean, savedInvStd: &invStd, runningMean: nil,
                    runningVar: nil, workspace: ws.workspace, context: context)
            } else {
                BatchNorm2d.forwardInference(
                    s, input: x.pointer, gamma: gamma.pointer, beta: beta.pointer, runningMean: runningMean.pointer,
                    runningVar: runningVar.pointer, residual: residual?.pointer, relu: relu ?? self.relu, output: &out,
                    workspace: ws.workspace, context: context)
            }
            return out
        }

        func objective(training: Bool) -> Double { GradientCheck.weightedSum(forward(training: training), dy) }

        /// Analytic gradients: (dx, dGamma, dBeta, dResidual).
        func backward(training: Bool, update: GradientUpdate = .overwrite, initialInput: [Float]? = nil)
            -> (dx: [Float], dGamma: [Float], dBeta: [Float], dResidual: [Float])
        {
            var out = [Float](repeating: 0, count: s.count)
            var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
            var dx = initialInput ?? [Float](repeating: .nan, count: s.count)
            var dGamma = [Float](repeating: 0, count: s.channels), dBeta = dGamma
            var dRes = [Float](repeating: .nan, count: s.count)
            dRes.withUnsafeMutableBufferPointer { dr in
                let dResidual = residual == nil ? nil : dr.baseAddress
                if training {
                    BatchNorm2d.forwardTraining(
                        s, input: x.pointer, gamma: gamma.pointer, beta: beta.pointer, residual: residual?.pointer,
                        relu: relu, output: &out, savedMean: &mean, savedInvStd: &invStd, runningMean: nil,
                        runningVar: nil, workspace: ws.workspace, context: context)
                    BatchNorm2d.backwardTraining(
                        s, input: x.pointer, output: out, dOutput: dy, gamma: gamma.pointer, savedMean: mean,
                        savedInvStd: invStd, relu: relu, dResidual: dResidual, dInput: &dx, inputUpdate: update,
                        dGamma: &dGamma, dBeta: &dBeta, workspace: ws.workspace, context: context)
                } else {
                    out = forward(training: false)
                    BatchNorm2d.backwardInference(
                        s, input: x.pointer, output: out, dOutput: dy, gamma: gamma.pointer,
                        runningMean: runningMean.pointer, runningVar: runningVar.pointer, relu: relu,
                        dResidual: dResidual, dInput: &dx, inputUpdate: update, dGamma: &dGamma, dBeta: &dBeta,
                        workspace: ws.workspace, context: context)
                }
            }
            return (dx, dGamma, dBeta, dRes)
        }

        /// Smallest |pre-activation|: with ReLU, finite differences are only valid if no perturbation crosses
        /// zero. A change of 2h = 0.02 in one input moves its own pre-activation by at most
        /// 0.02 · gamma / std ≤ 0.03 here (gamma ≤ 1.5, std ≈ 1.15), and the others by ~1/n of that.
        func reluMargin(training: Bool) -> Float {
            forward(training: training, relu: false).reduce(Float.infinity) { min($0, abs($1)) }
        }

        /// Data whose pre-activations all lie at least 0.05 from the ReLU kink (data selection only: the gradients
        /// play no part in the choice). With a residual input, the residual is chosen so that every
        /// pre-activation is ±[0.2, 1]; otherwise the first seed of `seed, seed + 1000, …` that qualifies is used.
        static func awayFromKink(_ s: BatchNorm2dShape, relu: Bool, residual: Bool, seed: UInt64, training: Bool) -> Self {
            var candidate = Self(s, relu: relu, residual: residual, seed: seed)
            if relu, let r = candidate.residual {
                r.fill(0)
                let normalized = candidate.forward(training: training, relu: false)
                let magnitude = GradientCheck.randomValues(count: s.count, seed: seed, sub: 8, low: 0.2, high: 1)
                for i in 0..<s.count {
                    r.buffer[i] = (i % 3 == 0 ? -magnitude[i] : magnitude[i]) - normalized[i]
                }
                return candidate
            }
            var tries = 0
            while relu && candidate.reluMargin(training: training) <= 0.05 && tries < 200 {
                tries += 1
                candidate = Self(s, relu: relu, residual: residual, seed: seed + 1000 * UInt64(tries))
            }
            return candidate
        }
    }

    static let cases: [(name: String, shape: BatchNorm2dShape, relu: Bool, residual: Bool, seed: UInt64)] = [
        ("plain", try! BatchNorm2dShape(batch: 2, channels: 3, height: 3, width: 2), false, false, 1),
        ("relu, batch 1, odd", try! BatchNorm2dShape(batch: 1, channels: 5, height: 3, width: 5), true, false, 2),
        ("residual + relu", try! BatchNorm2dShape(batch: 2, channels: 4, height: 2, width: 3), true, true, 3),
        ("residual, no relu", try! BatchNorm2dShape(batch: 3, channels: 2, height: 1, width: 3), false, true, 4),
        ("2 groups, relu", try! BatchNorm2dShape(batch: 4, channels: 3, height: 2, width: 2, groups: 2), true, false, 5),
        ("4 groups of 1 image, 1x3, residual + relu", try! BatchNorm2dShape(batch: 4, channels: 3, height: 1, width: 3, groups: 4), true, true, 6),
        // 19 channels: two 8-wide vector blocks and a scalar tail.
        ("19 channels, 2 groups, residual + relu", try! BatchNorm2dShape(batch: 2, channels: 19, height: 2, width: 3, groups: 2), true, true, 7),
    ]

    func testTrainingGradientsMatchFiniteDifferences() {
        for c in Self.cases {
            let t = Setup.awayFromKink(c.shape, relu: c.relu, residual: c.residual, seed: c.seed, training: true)
            if c.relu {
                // 0.05 > the 0.03 a perturbation can move a pre-activation (see reluMargin).
                XCTAssertGreaterThan(t.reluMargin(training: true), 0.05, "\(c.name): test data too close to the ReLU kink; pick another seed")
            }
            let g = t.backward(training: true)
            let objective = { t.objective(training: true) }
            // Tolerance 2e-4 of the gradient's scale: the four-point stencil's truncation error at h = 0.01 is
            // O(h⁴) ≈ 1e-8; the Float forward pass rounds every output by ~2^-24 and those roundings change
            // at random between the perturbed runs, ≈ √n · 6e-8 / (2h) ≈ 2e-5 for n ≤ 75 outputs. A missing
            // term of the batch-norm gradient (mean or variance path) is O(1/√n) ≈ 0.1 of the scale.
            let tol = 2e-4
            let rx = check(t.x, analytic: g.dx, step: 0.01, stencil: .fourPoint, objective: objective)
            XCTAssertLessThan(rx.worstError, tol, "\(c.name) dInput: \(rx)")
            let rg = check(t.gamma, analytic: g.dGamma, step: 0.01, stencil: .fourPoint, objective: objective)
            XCTAssertLessThan(rg.worstError, tol, "\(c.name) dGamma: \(rg)")
            let rb = check(t.beta, analytic: g.dBeta, step: 0.01, stencil: .fourPoint, objective: objective)
            XCTAssertLessThan(rb.worstError, tol, "\(c.name) dBeta: \(rb)")
            if let r = t.residual {
                let rr = check(r, analytic: g.dResidual, step: 0.01, stencil: .fourPoint, objective: objective)
                XCTAssertLessThan(rr.worstError, tol, "\(c.name) dResidual: \(rr)")
            }
        }
    }

    func testInferenceGradientsMatchFiniteDifferences() {
        for c in Self.cases {
            let t = Setup.awayFromKink(c.shape, relu: c.relu, residual: c.residual, seed: c.seed + 50, training: false)
            if c.relu {
                XCTAssertGreaterThan(t.reluMargin(training: false), 0.05, "\(c.name): test data too close to the ReLU kink; pick another seed")
            }
            let g = t.backward(training: false)
            let objective = { t.objective(training: false) }
            // Inference BN is affine in x, gamma, beta and the residual: the four-point stencil (needed only so
            // that ReLU margins stay as in training) has no truncation error; Float rounding as in training.
            let tol = 2e-4
            for (name, tensor, analytic) in [("dInput", t.x, g.dx), ("dGamma", t.gamma, g.dGamma), ("dBeta", t.beta, g.dBeta)] {
                let r = check(tensor, analytic: analytic, step: 0.01, stencil: .fourPoint, objective: objective)
                XCTAssertLessThan(r.worstError, tol, "\(c.name) \(name): \(r)")
            }
            if let res = t.residual {
                let r = check(res, analytic: g.dResidual, step: 0.01, stencil: .fourPoint, objective: objective)
                XCTAssertLessThan(r.worstError, tol, "\(c.name) dResidual: \(r)")
            }
        }
    }

    /// G groups behave exactly like G separate batch norms over the G slices of the batch.
    func testGroupsAreIndependentBatchNorms() throws {
        let whole = Setup(try BatchNorm2dShape(batch: 4, channels: 3, height: 2, width: 3, groups: 2), relu: true, residual: true, seed: 40)
        let g = whole.backward(training: true)
        let out = whole.forward(training: true)
        let half = try BatchNorm2dShape(batch: 2, channels: 3, height: 2, width: 3)
        let n = half.count
        for part in 0..<2 {
            let t = Setup(half, relu: true, residual: true, seed: 40)
            _ = t.x.elements.update(fromContentsOf: whole.x.values[(part * n)..<((part + 1) * n)])
            _ = t.residual!.elements.update(fromContentsOf: whole.residual!.values[(part * n)..<((part + 1) * n)])
            _ = t.gamma.elements.update(fromContentsOf: whole.gamma.values)
            _ = t.beta.elements.update(fromContentsOf: whole.beta.values)
            // Same upstream gradient slice.
            let sub = Setup.withGradient(t, Array(whole.dy[(part * n)..<((part + 1) * n)]))
            let gp = sub.backward(training: true)
            // Identical arithmetic on identical data, except that dGamma/dBeta of the whole are sums over both
            // halves (checked below), so outputs and input gradients must agree to rounding of the statistics'
            // Double sums (their order differs): 1e-6 absolute on O(1) values.
            XCTAssertLessThan(Discrepancy(actual: Array(out[(part * n)..<((part + 1) * n)]), expected: sub.forward(training: true)).maxAbs, 1e-6)
            XCTAssertLessThan(Discrepancy(actual: Array(g.dx[(part * n)..<((part + 1) * n)]), expected: gp.dx).maxAbs, 1e-6)
        }
    }

    /// Running statistics follow PyTorch's rule, applied as the mean over groups of the groups' updates.
    func testRunningStatisticsUpdate() throws {
        let s = try BatchNorm2dShape(batch: 6, channels: 2, height: 2, width: 3, groups: 3)
        let t = Setup(s, relu: false, residual: false, seed: 60)
        let x = t.x.values
        var mean = t.runningMean.values, variance = t.runningVar.values
        var out = [Float](repeating: 0, count: s.count)
        var saved = [Float](repeating: 0, count: s.statisticsCount), savedInv = saved
        BatchNorm2d.forwardTraining(
            s, input: x, gamma: t.gamma.pointer, beta: t.beta.pointer, residual: nil, relu: false, output: &out,
            savedMean: &saved, savedInvStd: &savedInv, runningMean: &mean, runningVar: &variance, momentum: 0.1,
            workspace: t.ws.workspace, context: t.context)
        let n = s.rowsPerGroup
        for c in 0..<2 {
            var meanOfMeans = 0.0, meanOfVars = 0.0
            for g in 0..<3 {
                let values = (0..<n).map { Double(x[(g * n + $0) * 2 + c]) }
                let m = values.reduce(0, +) / Double(n)
                let unbiased = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)
                meanOfMeans += m / 3
                meanOfVars += unbiased / 3
                // Saved statistics: the group's mean and 1/sqrt(biased var + eps), rounded to Float.
                XCTAssertEqual(Double(saved[g * 2 + c]), m, accuracy: 1e-6)
                XCTAssertEqual(Double(savedInv[g * 2 + c]), 1 / (unbiased * Double(n - 1) / Double(n) + 1e-5).squareRoot(), accuracy: 1e-6)
            }
            // One Float rounding of values of size ~1: 1e-6 absolute.
            XCTAssertEqual(Double(mean[c]), 0.9 * Double(t.runningMean.values[c]) + 0.1 * meanOfMeans, accuracy: 1e-6)
            XCTAssertEqual(Double(variance[c]), 0.9 * Double(t.runningVar.values[c]) + 0.1 * meanOfVars, accuracy: 1e-6)
        }
    }

    func testAccumulateModeAddsToInputGradient() {
        let c = Self.cases[2]
        let t = Setup(c.shape, relu: c.relu, residual: c.residual, seed: 70)
        let start = GradientCheck.randomValues(count: c.shape.count, seed: 71, low: -1, high: 1)
        let fresh = t.backward(training: true).dx
        let added = t.backward(training: true, update: .accumulate, initialInput: start).dx
        // One Float addition per element of values below 8: < 1e-6.
        XCTAssertLessThan(Discrepancy(actual: added, expected: zip(start, fresh).map { Double($0) + Double($1) }).maxAbs, 1e-6)
    }

    func testInvalidShapesAreTypedErrors() {
        XCTAssertThrowsError(try BatchNorm2dShape(batch: 6, channels: 2, height: 2, width: 2, groups: 4)) {
            XCTAssertEqual($0 as? KernelError, .batchNotDivisibleIntoGroups(batch: 6, groups: 4))
        }
        XCTAssertThrowsError(try BatchNorm2dShape(batch: 2, channels: 2, height: 1, width: 1, groups: 2).validateForTraining()) {
            XCTAssertEqual($0 as? KernelError, .tooFewValuesPerGroup(count: 1))
        }
    }
}

extension BatchNorm2dTests.Setup {
    /// The same setup with another upstream gradient.
    static func withGradient(_ t: Self, _ dy: [Float]) -> Self {
        var copy = t
        copy.dy = dy
        return copy
    }
}
