import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// The training backward in parts (`backwardTrainingSums` per share of rows, `backwardTrainingCoefficients`,
/// `backwardTrainingInput` per share), as two threads run it on the two halves of a batch, against the whole
/// `backwardTraining`.
final class BatchNorm2dPartsTests: XCTestCase {
    typealias Setup = BatchNorm2dTests.Setup

    /// Runs the parts over the row cuts `cuts` (`[0, …, rows]`), each part with its own workspace as a thread would.
    private func backwardInParts(_ t: Setup, cuts: [Int]) -> (dx: [Float], dGamma: [Float], dBeta: [Float], dResidual: [Float]) {
        let s = t.s, c = s.channels, parts = cuts.count - 1
        var out = [Float](repeating: 0, count: s.count)
        var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
        BatchNorm2d.forwardTraining(
            s, input: t.x.pointer, gamma: t.gamma.pointer, beta: t.beta.pointer, residual: t.residual?.pointer,
            relu: t.relu, output: &out, savedMean: &mean, savedInvStd: &invStd, runningMean: nil, runningVar: nil,
            workspace: t.ws.workspace, context: t.context)
        var dx = [Float](repeating: .nan, count: s.count), dResidual = dx
        var dGamma = [Float](repeating: 0, count: c), dBeta = dGamma
        var sums = [Double](repeating: .nan, count: parts * s.groups * 2 * c)
        let workspaces = (0..<parts).map { _ in TestWorkspace(s.workspaceSize(context: t.context)) }
        dResidual.withUnsafeMutableBufferPointer { dr in
            let residual = t.residual == nil ? nil : dr.baseAddress
            sums.withUnsafeMutableBufferPointer { all in
                for p in 0..<parts {
                    BatchNorm2d.backwardTrainingSums(
                        s, rows: cuts[p]..<cuts[p + 1], input: t.x.pointer, output: out, dOutput: t.dy,
                        savedMean: mean, relu: t.relu, dResidual: residual, sums: all.baseAddress! + p * s.groups * 2 * c,
                        workspace: workspaces[p].workspace, context: t.context)
                }
            }
            dGamma.withUnsafeMutableBufferPointer { dg in
                dBeta.withUnsafeMutableBufferPointer { db in
                    for p in 0..<parts {  // the parameter gradients from one part only, as from one thread
                        BatchNorm2d.backwardTrainingCoefficients(
                            s, sums: sums, parts: parts, gamma: t.gamma.pointer, savedInvStd: invStd,
                            dGamma: p == 0 ? dg.baseAddress : nil, dBeta: p == 0 ? db.baseAddress : nil,
                            workspace: workspaces[p].workspace, context: t.context)
                    }
                }
            }
            for p in (0..<parts).reversed() {  // any order: each part only reads its rows and its workspace
                BatchNorm2d.backwardTrainingInput(
                    s, rows: cuts[p]..<cuts[p + 1], input: t.x.pointer, output: out, dOutput: t.dy, savedMean: mean,
                    relu: t.relu, dInput: &dx, inputUpdate: .overwrite, workspace: workspaces[p].workspace,
                    context: t.context)
            }
        }
        return (dx, dGamma, dBeta, dResidual)
    }

    /// One part over every row is the whole pass, operation for operation: the same bits.
    func testOnePartIsTheWholePass() throws {
        for (name, shape, relu, residual, seed) in BatchNorm2dTests.cases where shape.rowsPerGroup >= 2 {
            let t = Setup(shape, relu: relu, residual: residual, seed: seed)
            let whole = t.backward(training: true), parts = backwardInParts(t, cuts: [0, shape.rows])
            XCTAssertEqual(parts.dx, whole.dx, name)
            XCTAssertEqual(parts.dGamma, whole.dGamma, name)
            XCTAssertEqual(parts.dBeta, whole.dBeta, name)
            if residual { XCTAssertEqual(parts.dResidual, whole.dResidual, name) }
        }
    }

    /// Cuts between images, inside an image and inside a group: every row is written once, and the results are
    /// the whole pass's up to the order of the channel sums (Float blocks restart at a cut; O(1) values, a few
    /// float32 ulps: 1e-5 relative).
    func testCutsAnywhereGiveTheWholePass() throws {
        let shapes = [
            (try BatchNorm2dShape(batch: 6, channels: 19, height: 3, width: 2, groups: 3), true, true),
            (try BatchNorm2dShape(batch: 5, channels: 8, height: 2, width: 3), true, false),
            (try BatchNorm2dShape(batch: 2, channels: 3, height: 17, width: 5), false, true),
        ]
        for (index, (shape, relu, residual)) in shapes.enumerated() {
            let t = Setup(shape, relu: relu, residual: residual, seed: 70 + UInt64(index))
            let whole = t.backward(training: true)
            let perImage = shape.height * shape.width
            for cuts in [[0, shape.batch / 2 * perImage, shape.rows], [0, 7, perImage + 3, shape.rows], [0, 0, shape.rows]] {
                let parts = backwardInParts(t, cuts: cuts)
                let what = "shape \(index), cuts \(cuts)"
                XCTAssertFalse(parts.dx.contains { $0.isNaN }, "\(what): a row was not written")
                XCTAssertLessThan(Discrepancy(actual: parts.dx, expected: whole.dx).relativeL2, 1e-5, what)
                XCTAssertLessThan(Discrepancy(actual: parts.dGamma, expected: whole.dGamma).relativeL2, 1e-5, what)
                XCTAssertLessThan(Discrepancy(actual: parts.dBeta, expected: whole.dBeta).relativeL2, 1e-5, what)
                if residual { XCTAssertEqual(parts.dResidual, whole.dResidual, what) }
            }
        }
    }
}
