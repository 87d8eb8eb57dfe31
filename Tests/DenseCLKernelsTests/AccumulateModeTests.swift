import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// `GradientUpdate.accumulate` must add exactly what `.overwrite` writes, for every op that stores an input
/// gradient (convolution and batch-norm dInput have their own tests next to their gradient checks).
final class AccumulateModeTests: XCTestCase {
    let context = Kernels.context()

    /// Runs `backward(destination, update)` once over NaN (overwrite) and once over random values (accumulate)
    /// and checks `accumulated = start + overwritten`.
    func assertAccumulates(_ name: String, count: Int, _ backward: (UnsafeMutablePointer<Float>, GradientUpdate) -> Void) {
        var fresh = [Float](repeating: .nan, count: count)
        backward(&fresh, .overwrite)
        let start = GradientCheck.randomValues(count: count, seed: 99, low: -1, high: 1)
        var added = start
        backward(&added, .accumulate)
        let d = Discrepancy(actual: added, expected: zip(start, fresh).map { Double($0) + Double($1) })
        // One Float addition per element of values below ~10: under 1e-6.
        XCTAssertLessThan(d.maxAbs, 1e-6, "\(name): \(d)")
    }

    func testEveryInputGradientAccumulates() throws {
        let p = try MaxPool2dShape(batch: 2, channels: 18, inHeight: 7, inWidth: 6, kernel: 3, stride: 2, padding: 1)
        let x = GradientCheck.randomValues(count: p.inputCount, seed: 1, low: -1, high: 1)
        let dy = GradientCheck.randomValues(count: p.outputCount, seed: 2, low: -1, high: 1)
        var out = [Float](repeating: 0, count: p.outputCount), indices = [Int32](repeating: 0, count: p.outputCount)
        MaxPool2d.forward(p, input: x, output: &out, indices: &indices, context: context)
        assertAccumulates("max pool", count: p.inputCount) {
            MaxPool2d.backward(p, indices: indices, dOutput: dy, dInput: $0, update: $1, context: context)
        }

        let a = try AdaptiveAvgPool2dShape(batch: 2, channels: 5, inHeight: 7, inWidth: 5, outHeight: 3, outWidth: 2)
        let dya = GradientCheck.randomValues(count: a.outputCount, seed: 3, low: -1, high: 1)
        assertAccumulates("adaptive average pool", count: a.inputCount) {
            AdaptiveAvgPool2d.backward(a, dOutput: dya, dInput: $0, update: $1, context: context)
        }

        let y = x.map { max($0, 0) }, dyr = GradientCheck.randomValues(count: x.count, seed: 4, low: -1, high: 1)
        assertAccumulates("ReLU", count: x.count) {
            ReLU.backward(count: x.count, output: y, dOutput: dyr, dInput: $0, update: $1, context: context)
        }

        let rows = 2 * 7 * 6
        var unit = [Float](repeating: 0, count: x.count), norms = [Float](repeating: 0, count: rows)
        L2Normalize.forward(rows: rows, channels: 18, input: x, output: &unit, norms: &norms, context: context)
        assertAccumulates("L2 normalize", count: x.count) {
            L2Normalize.backward(rows: rows, channels: 18, output: unit, norms: norms, dOutput: dyr, dInput: $0, update: $1, context: context)
        }

        let l = try LinearShape(rows: 3, inFeatures: 6, outFeatures: 4)
        let w = GradientCheck.randomValues(count: l.weightCount, seed: 5, low: -1, high: 1)
        let dyl = GradientCheck.randomValues(count: l.outputCount, seed: 6, low: -1, high: 1)
        var dw = [Float](repeating: 0, count: l.weightCount)
        assertAccumulates("linear", count: l.inputCount) {
            Linear.backward(l, input: x, weight: w, dOutput: dyl, dInput: $0, update: $1, dWeight: &dw, dBias: nil, context: context)
        }

        // Batch norm's residual gradient, in both modes.
        let s = try BatchNorm2dShape(batch: 2, channels: 18, height: 7, width: 6, groups: 2)
        let ws = TestWorkspace(s.workspaceSize(context: context))
        let gamma = [Float](repeating: 1.2, count: 18), beta = [Float](repeating: 0.1, count: 18)
        let res = GradientCheck.randomValues(count: s.count, seed: 7, low: -1, high: 1)
        var bnOut = [Float](repeating: 0, count: s.count)
        var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
        var dx = [Float](repeating: 0, count: s.count), dGamma = [Float](repeating: 0, count: 18), dBeta = dGamma
        BatchNorm2d.forwardTraining(s, input: x, gamma: gamma, beta: beta, residual: res, relu: true, output: &bnOut, savedMean: &mean, savedInvStd: &invStd, runningMean: nil, runningVar: nil, workspace: ws.workspace, context: context)
        assertAccumulates("batch norm (training) dResidual", count: s.count) {
            BatchNorm2d.backwardTraining(s, input: x, output: bnOut, dOutput: dyr, gamma: gamma, savedMean: mean, savedInvStd: invStd, relu: true, dResidual: $0, residualUpdate: $1, dInput: &dx, inputUpdate: .overwrite, dGamma: &dGamma, dBeta: &dBeta, workspace: ws.workspace, context: context)
        }
        let runningMean = [Float](repeating: 0.1, count: 18), runningVar = [Float](repeating: 0.9, count: 18)
        BatchNorm2d.forwardInference(s, input: x, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, residual: res, relu: true, output: &bnOut, workspace: ws.workspace, context: context)
        assertAccumulates("batch norm (inference) dResidual", count: s.count) {
            BatchNorm2d.backwardInference(s, input: x, output: bnOut, dOutput: dyr, gamma: gamma, runningMean: runningMean, runningVar: runningVar, relu: true, dResidual: $0, residualUpdate: $1, dInput: &dx, inputUpdate: .overwrite, dGamma: &dGamma, dBeta: &dBeta, workspace: ws.workspace, context: context)
        }
        assertAccumulates("batch norm (inference) dInput", count: s.count) {
            BatchNorm2d.backwardInference(s, input: x, output: bnOut, dOutput: dyr, gamma: gamma, runningMean: runningMean, runningVar: runningVar, relu: true, dResidual: nil, dInput: $0, inputUpdate: $1, dGamma: &dGamma, dBeta: &dBeta, workspace: ws.workspace, context: context)
        }
    }
}
