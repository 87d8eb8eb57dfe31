import DenseCLKernels
import DenseCLTestSupport
import Foundation
import SafeTensors
import XCTest

/// Forward outputs, input gradients and parameter gradients of every kernel against PyTorch
/// (fixtures from scripts/reference/make_kernel_fixtures.py, NCHW; converted here).
///
/// Tolerance, for every tensor: relative L2 distance to PyTorch's float64 result at most
/// `10 · err32 + 1e-6`, where `err32` is PyTorch's own float32 error on the same case (stored in the fixture).
/// We compute in float32 too but sum in another order (BLAS blocking, im2col chunks, Double statistics), so our
/// error should be of the same order as PyTorch's; the factor 10 allows for that, and the 1e-6 floor (≈ 17 ulps)
/// covers tensors that PyTorch's float32 happens to get exactly (ReLU, pooling gradients).
final class PyTorchFixtureTests: XCTestCase {
    let context = Kernels.context()

    struct Case {
        let name: String
        let meta: [String: Any]
        let file: SafeTensorsFile

        func input(_ k: String) throws -> [Float] { try file.floats("\(name).in.\(k)") }
        func shape(_ k: String) throws -> [Int] { try file.require("\(name).in.\(k)").shape }
        func has(_ k: String) -> Bool { file.info("\(name).in.\(k)") != nil }
        func int(_ k: String) -> Int { (meta[k] as! NSNumber).intValue }
        func bool(_ k: String) -> Bool { (meta[k] as! NSNumber).boolValue }

        /// Asserts `actual` (PyTorch layout) is within tolerance of the expectation `k`.
        func expect(_ k: String, _ actual: [Float], file: StaticString = #filePath, line: UInt = #line) throws {
            let expected = try self.file.doubles("\(name).\(k)")
            let err32 = try self.file.doubles("\(name).err32.\(k)")[0]
            let d = Discrepancy(actual: actual, expected: expected)
            let tolerance = 10 * err32 + 1e-6
            XCTAssertLessThanOrEqual(d.relativeL2, tolerance, "\(name).\(k): \(d); torch float32 error \(err32)", file: file, line: line)
        }
    }

    func cases(_ fixture: String) throws -> [Case] {
        let file = try Fixtures.load("kernels/\(fixture)")
        let json = try XCTUnwrap(file.metadata["cases"])
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        return list.map { Case(name: $0["name"] as! String, meta: $0, file: file) }
    }

    func nhwc(_ v: [Float], _ shape: [Int]) throws -> [Float] {
        try LayoutConversion.nchwToNHWC(v, batch: shape[0], channels: shape[1], height: shape[2], width: shape[3])
    }

    func nchw(_ v: [Float], _ shape: [Int]) throws -> [Float] {
        try LayoutConversion.nhwcToNCHW(v, batch: shape[0], channels: shape[1], height: shape[2], width: shape[3])
    }

    func testConv2dMatchesPyTorch() throws {
        let all = try cases("conv2d.safetensors")
        XCTAssertEqual(all.count, 5)
        for c in all {
            let xs = try c.shape("x"), ws = try c.shape("weight"), ys = try c.shape("dy")
            let s = try Conv2dShape(batch: xs[0], inChannels: xs[1], outChannels: ws[0], inHeight: xs[2], inWidth: xs[3], kernel: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding"))
            XCTAssertEqual([s.batch, s.outChannels, s.outHeight, s.outWidth], ys)
            let x = try nhwc(c.input("x"), xs), dy = try nhwc(c.input("dy"), ys)
            let w = try nhwc(c.input("weight"), ws)  // [Cout, Cin, kh, kw] → [Cout, kh, kw, Cin]
            let bias = c.bool("bias") ? try c.input("bias") : nil
            let workspace = TestWorkspace(s.workspaceSize)
            var out = [Float](repeating: 0, count: s.outputCount)
            var dx = [Float](repeating: 0, count: s.inputCount), dw = [Float](repeating: 0, count: s.weightCount)
            var db = [Float](repeating: 0, count: s.outChannels)
            bias.withUnsafeBufferPointerIfPresent { b in
                Conv2d.forward(s, input: x, weight: w, bias: b, output: &out, workspace: workspace.workspace, context: context)
            }
            db.withUnsafeMutableBufferPointer { dbias in
                Conv2d.backward(s, input: x, weight: w, dOutput: dy, dInput: &dx, update: .overwrite, dWeight: &dw, dBias: bias == nil ? nil : dbias.baseAddress, workspace: workspace.workspace, context: context)
            }
            try c.expect("out", nchw(out, ys))
            try c.expect("dx", nchw(dx, xs))
            try c.expect("dweight", nchw(dw, ws))
            if bias != nil { try c.expect("dbias", db) }
        }
    }

    func testBatchNorm2dMatchesPyTorch() throws {
        let all = try cases("batchnorm2d.safetensors")
        XCTAssertEqual(all.count, 5)
        for c in all {
            let xs = try c.shape("x")
            let s = try BatchNorm2dShape(batch: xs[0], channels: xs[1], height: xs[2], width: xs[3], groups: c.int("groups"))
            let relu = c.bool("relu"), training = c.bool("training")
            let x = try nhwc(c.input("x"), xs), dy = try nhwc(c.input("dy"), xs)
            let residual = c.bool("residual") ? try nhwc(c.input("residual"), xs) : nil
            let gamma = try c.input("gamma"), beta = try c.input("beta")
            var runningMean = try c.input("rs_mean"), runningVar = try c.input("rs_var")
            let workspace = TestWorkspace(s.workspaceSize(context: context))
            var out = [Float](repeating: 0, count: s.count), dx = out, dRes = out
            var mean = [Float](repeating: 0, count: s.statisticsCount), invStd = mean
            var dGamma = [Float](repeating: 0, count: s.channels), dBeta = dGamma
            residual.withUnsafeBufferPointerIfPresent { res in
                dRes.withUnsafeMutableBufferPointer { dr in
                    let dResidual = res == nil ? nil : dr.baseAddress
                    if training {
                        BatchNorm2d.forwardTraining(s, input: x, gamma: gamma, beta: beta, residual: res, relu: relu, output: &out, savedMean: &mean, savedInvStd: &invStd, runningMean: &runningMean, runningVar: &runningVar, workspace: workspace.workspace, context: context)
                        BatchNorm2d.backwardTraining(s, input: x, output: out, dOutput: dy, gamma: gamma, savedMean: mean, savedInvStd: invStd, relu: relu, dResidual: dResidual, dInput: &dx, inputUpdate: .overwrite, dGamma: &dGamma, dBeta: &dBeta, workspace: workspace.workspace, context: context)
                    } else {
                        BatchNorm2d.forwardInference(s, input: x, gamma: gamma, beta: beta, runningMean: runningMean, runningVar: runningVar, residual: res, relu: relu, output: &out, workspace: workspace.workspace, context: context)
                        BatchNorm2d.backwardInference(s, input: x, output: out, dOutput: dy, gamma: gamma, runningMean: runningMean, runningVar: runningVar, relu: relu, dResidual: dResidual, dInput: &dx, inputUpdate: .overwrite, dGamma: &dGamma, dBeta: &dBeta, workspace: workspace.workspace, context: context)
                    }
                }
            }
            try c.expect("out", nchw(out, xs))
            try c.expect("dx", nchw(dx, xs))
            try c.expect("dgamma", dGamma)
            try c.expect("dbeta", dBeta)
            try c.expect("running_mean", runningMean)
            try c.expect("running_var", runningVar)
            if residual != nil { try c.expect("dresidual", nchw(dRes, xs)) }
        }
    }

    func testPoolingMatchesPyTorch() throws {
        let all = try cases("pooling.safetensors")
        XCTAssertEqual(all.count, 4)
        for c in all {
            let xs = try c.shape("x"), ys = try c.shape("dy")
            let x = try nhwc(c.input("x"), xs), dy = try nhwc(c.input("dy"), ys)
            var out = [Float](repeating: 0, count: ys.reduce(1, *)), dx = [Float](repeating: 0, count: x.count)
            if c.name.hasPrefix("maxpool") {
                let s = try MaxPool2dShape(batch: xs[0], channels: xs[1], inHeight: xs[2], inWidth: xs[3], kernel: c.int("kernel"), stride: c.int("stride"), padding: c.int("padding"))
                var indices = [Int32](repeating: 0, count: s.outputCount)
                MaxPool2d.forward(s, input: x, output: &out, indices: &indices, context: context)
                MaxPool2d.backward(s, indices: indices, dOutput: dy, dInput: &dx, update: .overwrite, context: context)
            } else {
                let s = try AdaptiveAvgPool2dShape(batch: xs[0], channels: xs[1], inHeight: xs[2], inWidth: xs[3], outHeight: c.int("out"), outWidth: c.int("out"))
                AdaptiveAvgPool2d.forward(s, input: x, output: &out, context: context)
                AdaptiveAvgPool2d.backward(s, dOutput: dy, dInput: &dx, update: .overwrite, context: context)
            }
            try c.expect("out", nchw(out, ys))
            try c.expect("dx", nchw(dx, xs))
        }
    }

    func testDenseOpsMatchPyTorch() throws {
        let all = try cases("dense.safetensors")
        XCTAssertEqual(all.map(\.name), ["linear_bias", "relu", "residual_add", "l2normalize_channels"])
        // Linear: PyTorch layout throughout.
        let lin = all[0]
        let s = try LinearShape(rows: lin.shape("x")[0], inFeatures: lin.shape("x")[1], outFeatures: lin.shape("weight")[0])
        let (x, w, b, dy) = (try lin.input("x"), try lin.input("weight"), try lin.input("bias"), try lin.input("dy"))
        var out = [Float](repeating: 0, count: s.outputCount), dx = [Float](repeating: 0, count: s.inputCount)
        var dw = [Float](repeating: 0, count: s.weightCount), db = [Float](repeating: 0, count: s.outFeatures)
        Linear.forward(s, input: x, weight: w, bias: b, output: &out, context: context)
        Linear.backward(s, input: x, weight: w, dOutput: dy, dInput: &dx, update: .overwrite, dWeight: &dw, dBias: &db, context: context)
        try lin.expect("out", out)
        try lin.expect("dx", dx)
        try lin.expect("dweight", dw)
        try lin.expect("dbias", db)

        // ReLU and residual add are layout-agnostic.
        let relu = all[1]
        let rx = try relu.input("x"), rdy = try relu.input("dy")
        var ry = [Float](repeating: 0, count: rx.count), rdx = ry
        ReLU.forward(count: rx.count, input: rx, output: &ry, context: context)
        ReLU.backward(count: rx.count, output: ry, dOutput: rdy, dInput: &rdx, update: .overwrite, context: context)
        try relu.expect("out", ry)
        try relu.expect("dx", rdx)

        let add = all[2]
        let ax = try add.input("x"), ao = try add.input("other"), ady = try add.input("dy")
        var ay = [Float](repeating: 0, count: ax.count), dA = ay, dB = ay
        ResidualAdd.forward(count: ax.count, a: ax, b: ao, output: &ay, context: context)
        ResidualAdd.backward(count: ax.count, dOutput: ady, dA: &dA, aUpdate: .overwrite, dB: &dB, bUpdate: .overwrite, context: context)
        try add.expect("out", ay)
        try add.expect("dx", dA)
        try add.expect("dother", dB)

        // L2 normalisation along channels: dim 1 of NCHW is one row per position in NHWC.
        let l2 = all[3]
        let ls = try l2.shape("x")
        let lx = try nhwc(l2.input("x"), ls), ldy = try nhwc(l2.input("dy"), ls)
        let rows = ls[0] * ls[2] * ls[3]
        var ly = [Float](repeating: 0, count: lx.count), ldx = ly, norms = [Float](repeating: 0, count: rows)
        L2Normalize.forward(rows: rows, channels: ls[1], input: lx, output: &ly, norms: &norms, context: context)
        L2Normalize.backward(rows: rows, channels: ls[1], output: ly, norms: norms, dOutput: ldy, dInput: &ldx, update: .overwrite, context: context)
        try l2.expect("out", nchw(ly, ls))
        try l2.expect("dx", nchw(ldx, ls))
    }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with the array's base address, or nil.
    func withUnsafeBufferPointerIfPresent<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
        switch self {
        case .some(let array): try array.withUnsafeBufferPointer { try body($0.baseAddress) }
        case .none: try body(nil)
        }
    }
}
