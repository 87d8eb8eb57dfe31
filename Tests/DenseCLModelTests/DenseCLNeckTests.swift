import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import XCTest

/// The neck's forward against a float64 reference written out here, and its backward against central differences
/// of that reference: every parameter element and sampled C5 elements, with the native grid and with a pooled grid
/// whose bins overlap (3x3 -> 2x2). Objective `L = Σ global · Rg + Σ dense · Rd` with fixed random R.
final class DenseCLNeckTests: XCTestCase {
    /// Float32 forward against the float64 reference: a few float32 roundings of O(1) values (measured ≤ 6e-8).
    static let forwardTolerance = 1e-5
    /// Analytic (float32) against numerical (float64, step 1e-6: truncation and rounding both < 1e-9) gradients,
    /// as a fraction of the tensor's largest entry: float32 accumulation over at most C = 6 or hid = 5 terms
    /// (measured ≤ 1.5e-7). A wrong term is O(1): overwriting instead of adding the dense branch's C5 gradient
    /// gives 0.09.
    static let gradientTolerance = 1e-5

    let (n, c, hid, d, h, w) = (2, 6, 5, 4, 3, 3)

    func testNativeGridMatchesReferenceAndFiniteDifferences() throws {
        try check(grid: nil)
    }

    func testPooledGridMatchesReferenceAndFiniteDifferences() throws {
        try check(grid: 2)
    }

    func testGlobalBranchAloneWithoutDenseBranch() throws {
        try check(grid: nil, dense: false)
    }

    func testGridLargerThanTheMapIsRejected() throws {
        var layout = ArenaLayout()
        let slots = DenseCLNeckSlots.declare(into: &layout, prefix: "", channels: c, hidden: hid, dim: d)
        XCTAssertThrowsError(
            try DenseCLNeck(
                slots: slots, batch: n, inputHeight: h, inputWidth: w, grid: 4, dense: true,
                parameters: Arena(layout: layout), gradients: nil, context: try ComputeContext(threads: 1))
        ) { error in
            XCTAssertEqual(error as? DenseCLError, .invalidGrid(grid: 4, c5Height: 3, c5Width: 3))
        }
    }

    private func check(grid: Int?, dense: Bool = true, file: StaticString = #filePath, line: UInt = #line) throws {
        var layout = ArenaLayout()
        let slots = DenseCLNeckSlots.declare(into: &layout, prefix: "1.", channels: c, hidden: hid, dim: d)
        let parameters = Arena(layout: layout), gradients = Arena(layout: layout)
        for slot in slots.all {  // biases too: the official dense-head biases are not zero
            let values = GradientCheck.randomValues(count: slot.count, seed: 11, sub: slot.ordinal, low: -0.6, high: 0.6)
            _ = parameters.values(slot).update(fromContentsOf: values)
        }
        let neck = try DenseCLNeck(
            slots: slots, batch: n, inputHeight: h, inputWidth: w, grid: grid, dense: dense, parameters: parameters,
            gradients: gradients, context: try ComputeContext(threads: 1))
        let c5 = GradientCheck.randomValues(count: n * h * w * c, seed: 12, low: -1, high: 1)
        let p = neck.positions
        let rGlobal = GradientCheck.objectiveWeights(count: n * d, seed: 13)
        let rDense = GradientCheck.objectiveWeights(count: dense ? n * p * d : 0, seed: 14)

        // Forward against the reference.
        c5.withUnsafeBufferPointer { x in
            neck.forwardGlobal(c5: x.baseAddress!)
            if dense { neck.forwardDense(c5: x.baseAddress!) }
        }
        let reference = ReferenceNeck(neck: neck, parameters: parameters, grid: grid)
        let expected = reference.forward(c5.map(Double.init))
        XCTAssertLessThan(Discrepancy(actual: Array(neck.global), expected: expected.global).maxAbs, Self.forwardTolerance, file: file, line: line)
        if dense {
            XCTAssertLessThan(Discrepancy(actual: Array(neck.dense), expected: expected.dense).maxAbs, Self.forwardTolerance, file: file, line: line)
            XCTAssertLessThan(Discrepancy(actual: Array(neck.pooledDense), expected: expected.pooledDense).maxAbs, Self.forwardTolerance, file: file, line: line)
        }

        // Backward against central differences of the reference objective.
        var dC5 = [Float](repeating: .nan, count: c5.count)  // must be overwritten
        c5.withUnsafeBufferPointer { x in
            rGlobal.withUnsafeBufferPointer { rg in
                rDense.withUnsafeBufferPointer { rd in
                    dC5.withUnsafeMutableBufferPointer {
                        neck.backward(
                            c5: x.baseAddress!, dGlobal: rg.baseAddress!, dDense: dense ? rd.baseAddress! : nil,
                            dC5: $0.baseAddress!)
                    }
                }
            }
        }
        func objective(_ reference: ReferenceNeck, _ x: [Double]) -> Double {
            let out = reference.forward(x)
            return zip(out.global, rGlobal).reduce(0) { $0 + $1.0 * Double($1.1) }
                + zip(out.dense, rDense).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        let x64 = c5.map(Double.init)
        let step = 1e-6
        let numericC5 = x64.indices.map { i -> Double in
            var plus = x64, minus = x64
            plus[i] += step
            minus[i] -= step
            return (objective(reference, plus) - objective(reference, minus)) / (2 * step)
        }
        let report = GradientCheck.compare(analytic: dC5, numeric: numericC5)
        XCTAssertLessThan(report.worstError, Self.gradientTolerance, "dC5: \(report)", file: file, line: line)
        for slot in slots.all where dense || !slot.name.contains("mlp2") {
            let numeric = (0..<slot.count).map { i -> Double in
                var plus = reference, minus = reference
                plus.parameters[slot.name]![i] += step
                minus.parameters[slot.name]![i] -= step
                return (objective(plus, x64) - objective(minus, x64)) / (2 * step)
            }
            let report = GradientCheck.compare(analytic: Array(gradients.values(slot)), numeric: numeric)
            XCTAssertLessThan(report.worstError, Self.gradientTolerance, "\(slot.name): \(report)", file: file, line: line)
        }
        if !dense {
            for slot in [slots.denseHiddenWeight, slots.denseOutputWeight] {
                XCTAssertEqual(Set(gradients.values(slot)), [0], "an absent dense branch gets no gradient", file: file, line: line)
            }
        }
    }
}

/// The DenseCL neck in float64 with plain loops, for one batch (channels-last C5 `[N, h, w, C]`).
struct ReferenceNeck {
    let n: Int, c: Int, hid: Int, d: Int, h: Int, w: Int, grid: Int?
    /// The neck's parameters by slot name, PyTorch layout.
    var parameters: [String: [Double]]
    let names: (w1: String, b1: String, w2: String, b2: String, dw1: String, db1: String, dw2: String, db2: String)

    init(neck: DenseCLNeck, parameters arena: Arena, grid: Int?) {
        let s = neck.slots
        (n, c, hid, d, h, w, self.grid) = (neck.batch, s.channels, s.hidden, s.dim, neck.inputHeight, neck.inputWidth, grid)
        parameters = Dictionary(uniqueKeysWithValues: s.all.map { ($0.name, arena.values($0).map(Double.init)) })
        names = (s.globalHiddenWeight.name, s.globalHiddenBias.name, s.globalOutputWeight.name, s.globalOutputBias.name,
                 s.denseHiddenWeight.name, s.denseHiddenBias.name, s.denseOutputWeight.name, s.denseOutputBias.name)
    }

    /// `rows [r, in]` x `weight [out, in]`ᵀ + bias, optionally through ReLU.
    func linear(_ rows: [Double], _ weight: String, _ bias: String, inputs: Int, outputs: Int, relu: Bool) -> [Double] {
        let (wt, b) = (parameters[weight]!, parameters[bias]!)
        var out = [Double](repeating: 0, count: rows.count / inputs * outputs)
        for r in 0..<(rows.count / inputs) {
            for o in 0..<outputs {
                var sum = b[o]
                for i in 0..<inputs { sum += rows[r * inputs + i] * wt[o * inputs + i] }
                out[r * outputs + o] = relu ? max(sum, 0) : sum
            }
        }
        return out
    }

    /// Adaptive average pooling of `[N, ih, iw, ch]` to `oh x ow` (PyTorch's floor/ceil bins).
    func pool(_ input: [Double], ih: Int, iw: Int, ch: Int, oh: Int, ow: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * oh * ow * ch)
        for b in 0..<n {
            for i in 0..<oh {
                for j in 0..<ow {
                    let rows = (i * ih / oh)..<(((i + 1) * ih + oh - 1) / oh)
                    let cols = (j * iw / ow)..<(((j + 1) * iw + ow - 1) / ow)
                    for k in 0..<ch {
                        var sum = 0.0
                        for y in rows { for x in cols { sum += input[((b * ih + y) * iw + x) * ch + k] } }
                        out[((b * oh + i) * ow + j) * ch + k] = sum / Double(rows.count * cols.count)
                    }
                }
            }
        }
        return out
    }

    func forward(_ c5: [Double]) -> (global: [Double], dense: [Double], pooledDense: [Double]) {
        let pooled = pool(c5, ih: h, iw: w, ch: c, oh: 1, ow: 1)
        let global = linear(
            linear(pooled, names.w1, names.b1, inputs: c, outputs: hid, relu: true), names.w2, names.b2, inputs: hid,
            outputs: d, relu: false)
        let (gh, gw) = grid.map { ($0, $0) } ?? (h, w)
        let features = grid == nil ? c5 : pool(c5, ih: h, iw: w, ch: c, oh: gh, ow: gw)
        let dense = linear(
            linear(features, names.dw1, names.db1, inputs: c, outputs: hid, relu: true), names.dw2, names.db2,
            inputs: hid, outputs: d, relu: false)
        return (global, dense, pool(dense, ih: gh, iw: gw, ch: d, oh: 1, ow: 1))
    }
}
