import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// The memory-bound kernels split their loops over `ComputeContext.threads` chunks (per-chunk partial sums in
/// batch norm, images in pooling backward). Two threads must give the one-thread result up to the order of
/// the partial sums; shapes are large enough that every loop really is split.
final class ThreadConsistencyTests: XCTestCase {
    override func tearDown() {
        Kernels.context(threads: 1).activate()
    }

    func testBatchNormTrainingIsThreadIndependent() throws {
        let s = try BatchNorm2dShape(batch: 4, channels: 24, height: 9, width: 8, groups: 2)
        func run(_ threads: Int) -> [[Float]] {
            let context = Kernels.context(threads: threads)
            let ws = TestWorkspace(s.workspaceSize(context: context))
            let x = GradientCheck.randomValues(count: s.count, seed: 1, low: -1, high: 3)
            let res = GradientCheck.randomValues(count: s.count, seed: 2, low: -1, high: 1)
            let dy = GradientCheck.randomValues(count: s.count, seed: 3, low: -1, high: 1)
            let gamma = GradientCheck.randomValues(count: 24, seed: 4, low: 0.5, high: 1.5)
            let beta = GradientCheck.randomValues(count: 24, seed: 5, low: -0.5, high: 0.5)
            var y = [Float](repeating: 0, count: s.count), dx = y, dres = y
            var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
            var rm = [Float](repeating: 0, count: 24), rv = [Float](repeating: 1, count: 24)
            var dGamma = [Float](repeating: 0, count: 24), dBeta = dGamma
            BatchNorm2d.forwardTraining(s, input: x, gamma: gamma, beta: beta, residual: res, relu: true, output: &y, savedMean: &mean, savedInvStd: &invStd, runningMean: &rm, runningVar: &rv, workspace: ws.workspace, context: context)
            BatchNorm2d.backwardTraining(s, input: x, output: y, dOutput: dy, gamma: gamma, savedMean: mean, savedInvStd: invStd, relu: true, dResidual: &dres, dInput: &dx, inputUpdate: .overwrite, dGamma: &dGamma, dBeta: &dBeta, workspace: ws.workspace, context: context)
            return [y, dx, dres, dGamma, dBeta, rm, rv, mean, invStd]
        }
        let one = run(1), two = run(2)
        for (i, name) in ["y", "dx", "dResidual", "dGamma", "dBeta", "runningMean", "runningVar", "mean", "invStd"].enumerated() {
            let d = Discrepancy(actual: two[i], expected: one[i])
            // Same arithmetic except the order in which per-chunk Double sums are added: a few Float ulps of the
            // statistics, propagated to O(10) values: 1e-5 relative L2.
            XCTAssertLessThan(d.relativeL2, 1e-5, "\(name): \(d)")
        }
    }

    func testPoolingAndNormalizationAreThreadIndependent() throws {
        let p = try MaxPool2dShape(batch: 3, channels: 20, inHeight: 11, inWidth: 10, kernel: 3, stride: 2, padding: 1)
        let a = try AdaptiveAvgPool2dShape(batch: 3, channels: 20, inHeight: 11, inWidth: 10, outHeight: 3, outWidth: 3)
        let x = GradientCheck.randomValues(count: p.inputCount, seed: 6, low: -1, high: 1)
        let dyMax = GradientCheck.randomValues(count: p.outputCount, seed: 7, low: -1, high: 1)
        let dyAvg = GradientCheck.randomValues(count: a.outputCount, seed: 8, low: -1, high: 1)
        let rows = 3 * 11 * 10
        func run(_ threads: Int) -> [[Float]] {
            let context = Kernels.context(threads: threads)
            var out = [Float](repeating: 0, count: p.outputCount), indices = [Int32](repeating: 0, count: p.outputCount)
            var dx = [Float](repeating: 0, count: p.inputCount)
            MaxPool2d.forward(p, input: x, output: &out, indices: &indices, context: context)
            MaxPool2d.backward(p, indices: indices, dOutput: dyMax, dInput: &dx, update: .overwrite, context: context)
            var avg = [Float](repeating: 0, count: a.outputCount), dxAvg = [Float](repeating: 0, count: a.inputCount)
            AdaptiveAvgPool2d.forward(a, input: x, output: &avg, context: context)
            AdaptiveAvgPool2d.backward(a, dOutput: dyAvg, dInput: &dxAvg, update: .overwrite, context: context)
            var unit = [Float](repeating: 0, count: x.count), norms = [Float](repeating: 0, count: rows)
            var dxUnit = unit
            L2Normalize.forward(rows: rows, channels: 20, input: x, output: &unit, norms: &norms, context: context)
            L2Normalize.backward(rows: rows, channels: 20, output: unit, norms: norms, dOutput: x, dInput: &dxUnit, update: .overwrite, context: context)
            return [out, dx, avg, dxAvg, unit, dxUnit, indices.map(Float.init)]
        }
        let one = run(1), two = run(2)
        // These loops split whole images or rows, never a sum: results are bitwise identical.
        for i in 0..<one.count { XCTAssertEqual(two[i], one[i], "output \(i)") }
    }
}
