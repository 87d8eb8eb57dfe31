import DenseCLKernels
import DenseCLTestSupport
import XCTest

/// Finite-difference checks of `Conv2d` for every kernel/stride/padding ResNet uses, on small odd shapes, plus
/// a direct-convolution forward oracle, chunking, the accumulate mode and thread-count independence.
final class Conv2dTests: XCTestCase {
    /// Every ResNet configuration on odd sizes and batch 1, degenerate inputs (1x1 and 2x2 images), and im2col
    /// chunks that end mid-image. Input gradients start as NaN, so any element backward forgets to write fails.
    static let cases: [(name: String, shape: Conv2dShape, bias: Bool)] = [
        ("7x7/2 pad 3", try! Conv2dShape(batch: 2, inChannels: 3, outChannels: 4, inHeight: 11, inWidth: 9, kernel: 7, stride: 2, padding: 3), false),
        ("3x3/1 pad 1, batch 1, bias", try! Conv2dShape(batch: 1, inChannels: 3, outChannels: 2, inHeight: 5, inWidth: 6, kernel: 3, stride: 1, padding: 1), true),
        ("3x3/2 pad 1, odd", try! Conv2dShape(batch: 2, inChannels: 2, outChannels: 3, inHeight: 7, inWidth: 5, kernel: 3, stride: 2, padding: 1), false),
        ("3x3/2 pad 1, 2x2 image", try! Conv2dShape(batch: 2, inChannels: 3, outChannels: 2, inHeight: 2, inWidth: 2, kernel: 3, stride: 2, padding: 1), false),
        ("3x3/1 pad 1, 1x1 image", try! Conv2dShape(batch: 3, inChannels: 2, outChannels: 2, inHeight: 1, inWidth: 1, kernel: 3, stride: 1, padding: 1), true),
        ("1x1/1, bias", try! Conv2dShape(batch: 2, inChannels: 5, outChannels: 3, inHeight: 3, inWidth: 4, kernel: 1), true),
        ("1x1/2, odd", try! Conv2dShape(batch: 1, inChannels: 4, outChannels: 3, inHeight: 5, inWidth: 7, kernel: 1, stride: 2), false),
        ("1x1/2, chunks of 4 rows (rows no window reads)", try! Conv2dShape(batch: 2, inChannels: 3, outChannels: 2, inHeight: 5, inWidth: 5, kernel: 1, stride: 2, chunkRows: 4), false),
        ("3x3/2 pad 1, chunks of 3 rows", try! Conv2dShape(batch: 2, inChannels: 2, outChannels: 3, inHeight: 6, inWidth: 5, kernel: 3, stride: 2, padding: 1, chunkRows: 3), true),
        ("3x3/1 pad 1, chunks of 7 rows (mid-image)", try! Conv2dShape(batch: 3, inChannels: 2, outChannels: 3, inHeight: 4, inWidth: 5, kernel: 3, stride: 1, padding: 1, chunkRows: 7), true),
    ]

    /// Everything the checks need for one configuration.
    struct Setup {
        let s: Conv2dShape
        let x: TestTensor, w: TestTensor, b: TestTensor?
        let dy: [Float]
        let ws: TestWorkspace
        let context = Kernels.context()

        init(_ s: Conv2dShape, bias: Bool, seed: UInt64) {
            self.s = s
            x = TestTensor(random: s.inputCount, seed: seed, sub: 1)
            w = TestTensor(random: s.weightCount, seed: seed, sub: 2)
            b = bias ? TestTensor(random: s.outChannels, seed: seed, sub: 3) : nil
            dy = GradientCheck.objectiveWeights(count: s.outputCount, seed: seed)
            ws = TestWorkspace(s.workspaceSize)
        }

        func forward() -> [Float] {
            var out = [Float](repeating: .nan, count: s.outputCount)
            Conv2d.forward(s, input: x.pointer, weight: w.pointer, bias: b?.pointer, output: &out, workspace: ws.workspace, context: context)
            return out
        }

        func objective() -> Double { GradientCheck.weightedSum(forward(), dy) }

        /// Analytic gradients of the objective, dInput stored with `update` over `initialInput`.
        func backward(update: GradientUpdate = .overwrite, initialInput: [Float]? = nil) -> (dx: [Float], dw: [Float], db: [Float]) {
            var dx = initialInput ?? [Float](repeating: .nan, count: s.inputCount)
            var dw = [Float](repeating: 0, count: s.weightCount), db = [Float](repeating: 0, count: s.outChannels)
            db.withUnsafeMutableBufferPointer { dbias in
                Conv2d.backward(
                    s, input: x.pointer, weight: w.pointer, dOutput: dy, dInput: &dx, update: update, dWeight: &dw,
                    dBias: b == nil ? nil : dbias.baseAddress, workspace: ws.workspace, context: context)
            }
            return (dx, dw, db)
        }
    }

    // Tolerance for all conv checks, as a fraction of the gradient's largest entry. The objective is linear in
    // x, W and b, so central differences with step 0.5 have no truncation error; what remains is the Float
    // rounding of the two forward passes, √K · 2^-24 ≈ 7e-7 relative per output for K ≤ 147 terms (random
    // signs), divided by the step 2h = 1. 1e-5 leaves a margin over that; a wrong term moves an entry by
    // O(scale), and GradientCheckTests shows a 1 % error in one entry is caught.
    static let tolerance = 1e-5

    func testGradientsMatchFiniteDifferences() {
        for (i, c) in Self.cases.enumerated() {
            let t = Setup(c.shape, bias: c.bias, seed: UInt64(100 + i))
            let g = t.backward()
            let rx = check(t.x, analytic: g.dx, step: 0.5, objective: t.objective)
            let rw = check(t.w, analytic: g.dw, step: 0.5, objective: t.objective)
            XCTAssertLessThan(rx.worstError, Self.tolerance, "\(c.name) dInput: \(rx)")
            XCTAssertLessThan(rw.worstError, Self.tolerance, "\(c.name) dWeight: \(rw)")
            if let b = t.b {
                let rb = check(b, analytic: g.db, step: 0.5, objective: t.objective)
                XCTAssertLessThan(rb.worstError, Self.tolerance, "\(c.name) dBias: \(rb)")
            }
        }
    }

    func testForwardMatchesDirectConvolution() {
        for (i, c) in Self.cases.enumerated() {
            let t = Setup(c.shape, bias: c.bias, seed: UInt64(200 + i))
            let s = c.shape
            XCTAssertEqual(s.kernelHeight, s.kernelWidth)
            let expected = ReferenceOps.conv2d(
                input: t.x.values, weight: t.w.values, bias: t.b?.values, batch: s.batch, inChannels: s.inChannels,
                outChannels: s.outChannels, height: s.inHeight, width: s.inWidth, kernel: s.kernelHeight,
                stride: s.strideHeight, padding: s.paddingHeight)
            let d = Discrepancy(actual: t.forward(), expected: expected)
            // Float sums of at most 147 products of values in [-1, 1): error ≤ 147 · 147 · 2^-24 ≈ 1.3e-3 in the
            // worst case, ~1e-5 typically; 1e-4 absolute is far below the O(1) size of any indexing error.
            XCTAssertLessThan(d.maxAbs, 1e-4, "\(c.name): \(d)")
        }
    }

    func testAccumulateModeAddsToInputGradient() {
        let c = Self.cases[2]
        let t = Setup(c.shape, bias: c.bias, seed: 300)
        let start = GradientCheck.randomValues(count: c.shape.inputCount, seed: 301, low: -1, high: 1)
        let fresh = t.backward().dx
        let added = t.backward(update: .accumulate, initialInput: start).dx
        let d = Discrepancy(actual: added, expected: zip(start, fresh).map { Double($0) + Double($1) })
        // One Float addition per element: ≤ 1 ulp of values below 4, i.e. < 5e-7.
        XCTAssertLessThan(d.maxAbs, 5e-7, "\(d)")
    }

    func testParameterGradientsAccumulate() {
        let c = Self.cases[1]
        let t = Setup(c.shape, bias: true, seed: 310)
        let once = t.backward()
        var dx = [Float](repeating: 0, count: c.shape.inputCount)
        var dw = once.dw, db = once.db
        Conv2d.backward(c.shape, input: t.x.pointer, weight: t.w.pointer, dOutput: t.dy, dInput: &dx, update: .overwrite, dWeight: &dw, dBias: &db, workspace: t.ws.workspace, context: t.context)
        // Adding a Float to itself is exact.
        XCTAssertEqual(dw, once.dw.map { 2 * $0 })
        XCTAssertEqual(db, once.db.map { 2 * $0 })
    }

    /// With two threads OpenBLAS splits the GEMMs (im2col and col2im stay on the calling thread); the result
    /// must not depend on it beyond summation order.
    func testTwoThreadsMatchOneThread() throws {
        let s = try Conv2dShape(batch: 2, inChannels: 32, outChannels: 8, inHeight: 16, inWidth: 15, kernel: 3, stride: 1, padding: 1, chunkRows: 200)
        let one = Setup(s, bias: true, seed: 320)
        let two = Setup(s, bias: true, seed: 320)
        let context2 = Kernels.context(threads: 2)
        defer { Kernels.context(threads: 1).activate() }
        var out2 = [Float](repeating: 0, count: s.outputCount)
        var dx2 = [Float](repeating: 0, count: s.inputCount), dw2 = [Float](repeating: 0, count: s.weightCount), db2 = [Float](repeating: 0, count: 8)
        Conv2d.forward(s, input: two.x.pointer, weight: two.w.pointer, bias: two.b!.pointer, output: &out2, workspace: two.ws.workspace, context: context2)
        Conv2d.backward(s, input: two.x.pointer, weight: two.w.pointer, dOutput: two.dy, dInput: &dx2, update: .overwrite, dWeight: &dw2, dBias: &db2, workspace: two.ws.workspace, context: context2)
        Kernels.context(threads: 1).activate()
        let g = one.backward()
        // Same products, possibly summed in another order by BLAS: a few ulps of O(10) values.
        for (name, a, e) in [("out", out2, one.forward()), ("dx", dx2, g.dx), ("dw", dw2, g.dw), ("db", db2, g.db)] {
            let d = Discrepancy(actual: a, expected: e)
            XCTAssertLessThan(d.maxAbs, 1e-5, "\(name): \(d)")
        }
    }

    func testInvalidGeometryIsATypedError() {
        XCTAssertThrowsError(try Conv2dShape(batch: 1, inChannels: 3, outChannels: 4, inHeight: 2, inWidth: 2, kernel: 7, stride: 2, padding: 1)) {
            XCTAssertEqual($0 as? KernelError, .emptyOutput(op: "conv2d", input: 2, padding: 1, kernel: 7))
        }
        XCTAssertThrowsError(try Conv2dShape(batch: 0, inChannels: 3, outChannels: 4, inHeight: 8, inWidth: 8, kernel: 3)) {
            XCTAssertEqual($0 as? KernelError, .invalidDimension(op: "conv2d", name: "batch", value: 0))
        }
        XCTAssertThrowsError(try Conv2dShape(batch: 1, inChannels: 3, outChannels: 4, inHeight: 8, inWidth: 8, kernel: 3, padding: -1))
    }
}
