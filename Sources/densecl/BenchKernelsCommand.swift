import ArgumentParser
import DenseCLKernels
import Foundation

/// `densecl bench kernels`: GFLOP/s of convolution forward, backward-data and backward-weight at ResNet-50
/// shapes, each next to the rate of the raw `cblas_sgemm` call with the same sizes and transposes.
struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Convolution GFLOP/s at ResNet-50 shapes next to the raw sgemm rate of the same GEMM.")

    @Option(help: "Threads for BLAS and the kernels' own loops.")
    var threads = 1

    @Option(help: "Batch size (ResNet-50 at 224x224 input).")
    var batch = 32

    @Flag(help: "A short run: four representative layers, one timed repetition.")
    var quick = false

    @Option(help: "Timed repetitions per measurement (the median is reported).")
    var repetitions = 3

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "im2col rows per chunk (a tuning knob; default: the kernels' own policy).")
    var chunkRows: Int?

    @Option(help: "Only the layers (and memory-bound kernels) whose name contains this text.")
    var layer: String?

    @Flag(help: "Time by process CPU time instead of wall-clock time: steadier on a shared machine with --threads 1 (with more threads it sums over them).")
    var cpuTime = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        let context: ComputeContext
        do { context = try ComputeContext(threads: threads) } catch { throw ValidationError(error.description) }
        let layers = (quick ? ConvBenchmark.quickLayers : ConvBenchmark.resnet50Layers).filter {
            layer.map($0.name.contains) ?? true
        }
        let reps = quick ? 1 : repetitions
        let clock: BenchClock = cpuTime ? .processCPU : .wall
        if !json {
            let timing = cpuTime ? "process CPU time" : "wall time"
            print("conv2d at ResNet-50 shapes, batch \(batch), \(threads) thread(s); GFLOP/s = 2·M·N·K / \(timing), median of \(reps)")
            print(ConvBenchmark.Result.header)
        }
        var results: [ConvBenchmark.Result] = []
        for layer in layers {
            let measured = try ConvBenchmark.measure(layer, batch: batch, chunkRows: chunkRows, repetitions: reps, clock: clock, context: context)
            if !json { measured.forEach { print($0.row) } }
            results += measured
        }
        let memoryBound = try MemoryBoundBenchmark.measure(
            batch: batch, repetitions: reps, clock: clock, only: layer, context: context)
        if !json {
            print("\nmemory-bound kernels, batch \(batch); GB/s = tensor bytes read and written by the minimal passes / time")
            print(MemoryBoundBenchmark.Result.header)
            memoryBound.forEach { print($0.row) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let report = ConvBenchmark.Report(
                threads: threads, batch: batch, repetitions: reps, clock: cpuTime ? "process CPU time" : "wall time",
                results: results, memoryBound: memoryBound)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
    }
}

/// The measurements behind `densecl bench kernels`.
enum ConvBenchmark {
    /// One convolution of ResNet-50 (224x224 input).
    struct Layer: Sendable {
        var name: String
        var inChannels: Int
        var outChannels: Int
        var size: Int
        var kernel: Int
        var stride: Int
        var padding: Int { kernel / 2 }
    }

    /// Every distinct convolution geometry of ResNet-50.
    static let resnet50Layers: [Layer] = [
        Layer(name: "conv1", inChannels: 3, outChannels: 64, size: 224, kernel: 7, stride: 2),
        Layer(name: "layer1 1x1 reduce", inChannels: 256, outChannels: 64, size: 56, kernel: 1, stride: 1),
        Layer(name: "layer1 3x3", inChannels: 64, outChannels: 64, size: 56, kernel: 3, stride: 1),
        Layer(name: "layer1 1x1 expand", inChannels: 64, outChannels: 256, size: 56, kernel: 1, stride: 1),
        Layer(name: "layer2 3x3/2", inChannels: 128, outChannels: 128, size: 56, kernel: 3, stride: 2),
        Layer(name: "layer2 downsample", inChannels: 256, outChannels: 512, size: 56, kernel: 1, stride: 2),
        Layer(name: "layer2 3x3", inChannels: 128, outChannels: 128, size: 28, kernel: 3, stride: 1),
        Layer(name: "layer2 1x1 reduce", inChannels: 512, outChannels: 128, size: 28, kernel: 1, stride: 1),
        Layer(name: "layer3 3x3", inChannels: 256, outChannels: 256, size: 14, kernel: 3, stride: 1),
        Layer(name: "layer3 1x1 expand", inChannels: 256, outChannels: 1024, size: 14, kernel: 1, stride: 1),
        Layer(name: "layer4 3x3/2", inChannels: 512, outChannels: 512, size: 14, kernel: 3, stride: 2),
        Layer(name: "layer4 3x3", inChannels: 512, outChannels: 512, size: 7, kernel: 3, stride: 1),
        Layer(name: "layer4 1x1 reduce", inChannels: 2048, outChannels: 512, size: 7, kernel: 1, stride: 1),
        Layer(name: "layer4 downsample", inChannels: 1024, outChannels: 2048, size: 14, kernel: 1, stride: 2),
    ]

    static let quickLayers: [Layer] = resnet50Layers.filter {
        ["layer1 3x3", "layer1 1x1 expand", "layer3 3x3", "layer4 downsample"].contains($0.name)
    }

    enum Direction: String, Encodable, CaseIterable, Sendable {
        case forward, backwardData = "backward-data", backwardWeight = "backward-weight"
    }

    struct Result: Encodable, Sendable {
        var layer: String
        var direction: Direction
        var m: Int, n: Int, k: Int
        var convSeconds: Double
        var convGFLOPS: Double
        var sgemmGFLOPS: Double
        var ratio: Double { convGFLOPS / sgemmGFLOPS }

        static let header = "layer                direction        GEMM M x N x K              conv ms  conv GFLOP/s  sgemm GFLOP/s  conv/sgemm"

        var row: String {
            func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
            func num(_ x: Double, _ w: Int, _ decimals: Int) -> String {
                let s = String(format: "%.\(decimals)f", x)
                return String(repeating: " ", count: max(0, w - s.count)) + s
            }
            return pad(layer, 21) + pad(direction.rawValue, 17) + pad("\(m) x \(n) x \(k)", 24)
                + num(convSeconds * 1000, 11, 1) + num(convGFLOPS, 14, 1) + num(sgemmGFLOPS, 15, 1)
                + num(ratio * 100, 11, 0) + "%"
        }

        enum CodingKeys: String, CodingKey { case layer, direction, m, n, k, convSeconds, convGFLOPS, sgemmGFLOPS, ratio }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(layer, forKey: .layer)
            try c.encode(direction, forKey: .direction)
            try c.encode(m, forKey: .m)
            try c.encode(n, forKey: .n)
            try c.encode(k, forKey: .k)
            try c.encode(convSeconds, forKey: .convSeconds)
            try c.encode(convGFLOPS, forKey: .convGFLOPS)
            try c.encode(sgemmGFLOPS, forKey: .sgemmGFLOPS)
            try c.encode(ratio, forKey: .ratio)
        }
    }

    struct Report: Encodable, Sendable {
        var threads: Int
        var batch: Int
        var repetitions: Int
        var clock: String
        var results: [Result]
        var memoryBound: [MemoryBoundBenchmark.Result]
    }

    /// A buffer filled with small values (no denormals), released on deinit.
    final class Buffer {
        let pointer: UnsafeMutablePointer<Float>
        init(_ count: Int) {
            pointer = .allocate(capacity: max(count, 1))
            for i in 0..<max(count, 1) { pointer[i] = Float((i &* 7919) % 2001) / 2000 - 0.5 }
        }
        deinit { pointer.deallocate() }
    }

    /// Median time of `repetitions` calls of `body`, after one untimed warm-up call.
    static func medianSeconds(_ repetitions: Int, clock: BenchClock, _ body: () -> Void) -> Double {
        body()
        return (0..<repetitions).map { _ in
            let start = clock.now()
            body()
            return clock.now() - start
        }.median
    }

    static func measure(
        _ layer: Layer, batch: Int, chunkRows: Int?, repetitions: Int, clock: BenchClock, context: ComputeContext
    ) throws -> [Result] {
        let s = try Conv2dShape(
            batch: batch, inChannels: layer.inChannels, outChannels: layer.outChannels, inHeight: layer.size,
            inWidth: layer.size, kernel: layer.kernel, stride: layer.stride, padding: layer.padding,
            chunkRows: chunkRows)
        let m = s.outputPositions, n = s.outChannels, k = s.patchSize
        let x = Buffer(s.inputCount), w = Buffer(s.weightCount), out = Buffer(s.outputCount)
        let dx = Buffer(s.inputCount), dw = Buffer(s.weightCount)
        let workspace = Workspace.allocate(s.workspaceSize)
        defer { workspace.deallocate() }
        // The equivalent GEMMs, on buffers of the full (unchunked) sizes.
        let big = Buffer(m * k), small = Buffer(m * n), c = Buffer(max(m * k, m * n))
        var results: [Result] = []
        for direction in Direction.allCases {
            let conv: () -> Void
            let gemm: () -> Void
            switch direction {
            case .forward:
                conv = { Conv2d.forward(s, input: x.pointer, weight: w.pointer, bias: nil, output: out.pointer, workspace: workspace, context: context) }
                gemm = { Gemm.multiply(transposeA: false, transposeB: true, m: m, n: n, k: k, a: big.pointer, lda: k, b: w.pointer, ldb: k, beta: 0, c: c.pointer, ldc: n) }
            case .backwardData:
                conv = { Conv2d.backwardData(s, weight: w.pointer, dOutput: out.pointer, dInput: dx.pointer, update: .overwrite, workspace: workspace, context: context) }
                gemm = { Gemm.multiply(transposeA: false, transposeB: false, m: m, n: k, k: n, a: small.pointer, lda: n, b: w.pointer, ldb: k, beta: 0, c: c.pointer, ldc: k) }
            case .backwardWeight:
                conv = { Conv2d.backwardWeight(s, input: x.pointer, dOutput: out.pointer, dWeight: dw.pointer, dBias: nil, workspace: workspace, context: context) }
                gemm = { Gemm.multiply(transposeA: true, transposeB: false, m: n, n: k, k: m, a: small.pointer, lda: n, b: big.pointer, ldb: k, beta: 1, c: dw.pointer, ldc: k) }
            }
            // Alternate the two measurements so that both see the same share of a noisy machine.
            var convTimes: [Double] = [], gemmTimes: [Double] = []
            for _ in 0..<max(1, repetitions) {
                convTimes.append(medianSeconds(1, clock: clock, conv))
                gemmTimes.append(medianSeconds(1, clock: clock, gemm))
            }
            let convSeconds = convTimes.median
            let gemmSeconds = gemmTimes.median
            results.append(Result(
                layer: layer.name, direction: direction, m: direction == .backwardWeight ? n : m,
                n: direction == .backwardData ? k : (direction == .forward ? n : k),
                k: direction == .forward ? k : (direction == .backwardData ? n : m),
                convSeconds: convSeconds, convGFLOPS: s.flops / convSeconds / 1e9, sgemmGFLOPS: s.flops / gemmSeconds / 1e9))
        }
        return results
    }
}

/// Batch norm (fused epilogues) and max pooling at ResNet-50 shapes: memory-bound, so reported in GB/s.
enum MemoryBoundBenchmark {
    struct Result: Encodable, Sendable {
        var kernel: String
        var shape: String
        var milliseconds: Double
        var gigabytesPerSecond: Double

        static let header = "kernel                                       shape (NHWC)            ms      GB/s"
        var row: String {
            let name = kernel.padding(toLength: 45, withPad: " ", startingAt: 0)
            let dims = shape.padding(toLength: 18, withPad: " ", startingAt: 0)
            return name + dims + String(format: "%9.1f %9.1f", milliseconds, gigabytesPerSecond)
        }
    }

    static func measure(
        batch: Int, repetitions: Int, clock: BenchClock, only filter: String?, context: ComputeContext
    ) throws -> [Result] {
        var results: [Result] = []
        func record(_ kernel: String, _ shape: String, tensorBytes: Double, _ body: () -> Void) {
            if let filter, !kernel.contains(filter) { return }
            let seconds = ConvBenchmark.medianSeconds(repetitions, clock: clock, body)
            results.append(Result(kernel: kernel, shape: shape, milliseconds: seconds * 1000, gigabytesPerSecond: tensorBytes / seconds / 1e9))
        }
        // End of a layer1 block (residual + ReLU, 256 channels) and inside one (ReLU, 64 channels).
        for (channels, residual) in [(256, true), (64, false)] {
            let s = try BatchNorm2dShape(batch: batch, channels: channels, height: 56, width: 56)
            let bytes = Double(s.count * 4)
            let x = ConvBenchmark.Buffer(s.count), y = ConvBenchmark.Buffer(s.count), dy = ConvBenchmark.Buffer(s.count)
            let dx = ConvBenchmark.Buffer(s.count), res = ConvBenchmark.Buffer(s.count), dres = ConvBenchmark.Buffer(s.count)
            let gamma = ConvBenchmark.Buffer(channels), beta = ConvBenchmark.Buffer(channels)
            let dGamma = ConvBenchmark.Buffer(channels), dBeta = ConvBenchmark.Buffer(channels)
            let mean = ConvBenchmark.Buffer(channels), invStd = ConvBenchmark.Buffer(channels)
            let workspace = Workspace.allocate(s.workspaceSize(context: context))
            defer { workspace.deallocate() }
            let shape = "\(batch)x56x56x\(channels)"
            let epilogue = residual ? "+ residual + ReLU" : "+ ReLU"
            // Forward: statistics pass reads x; normalising pass reads x (and the residual), writes y.
            record("batch norm train forward \(epilogue)", shape, tensorBytes: bytes * (residual ? 4 : 3)) {
                BatchNorm2d.forwardTraining(
                    s, input: x.pointer, gamma: gamma.pointer, beta: beta.pointer, residual: residual ? res.pointer : nil,
                    relu: true, output: y.pointer, savedMean: mean.pointer, savedInvStd: invStd.pointer,
                    runningMean: nil, runningVar: nil, workspace: workspace, context: context)
            }
            // Backward: the sums pass reads x, y, dy (and writes dResidual); the second reads them again, writes dx.
            record("batch norm train backward \(epilogue)", shape, tensorBytes: bytes * (residual ? 8 : 7)) {
                BatchNorm2d.backwardTraining(
                    s, input: x.pointer, output: y.pointer, dOutput: dy.pointer, gamma: gamma.pointer,
                    savedMean: mean.pointer, savedInvStd: invStd.pointer, relu: true,
                    dResidual: residual ? dres.pointer : nil, dInput: dx.pointer, inputUpdate: .overwrite,
                    dGamma: dGamma.pointer, dBeta: dBeta.pointer, workspace: workspace, context: context)
            }
        }
        // The stem's max pool.
        let p = try MaxPool2dShape(batch: batch, channels: 64, inHeight: 112, inWidth: 112, kernel: 3, stride: 2, padding: 1)
        let px = ConvBenchmark.Buffer(p.inputCount), py = ConvBenchmark.Buffer(p.outputCount), pdx = ConvBenchmark.Buffer(p.inputCount)
        let indices = UnsafeMutablePointer<Int32>.allocate(capacity: p.outputCount)
        defer { indices.deallocate() }
        let shape = "\(batch)x112x112x64"
        record("max pool 3x3/2 forward", shape, tensorBytes: Double(p.inputCount * 4 + p.outputCount * 8)) {
            MaxPool2d.forward(p, input: px.pointer, output: py.pointer, indices: indices, context: context)
        }
        record("max pool 3x3/2 backward", shape, tensorBytes: Double(p.inputCount * 4 + p.outputCount * 8)) {
            MaxPool2d.backward(p, indices: indices, dOutput: py.pointer, dInput: pdx.pointer, update: .overwrite, context: context)
        }
        return results
    }
}
