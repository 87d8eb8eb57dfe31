import COpenBLAS
import DenseCLCore
import DenseCLKernels
import DenseCLModel
import Foundation

/// The measurement behind `densecl bench step`: builds the step, runs warm-up and timed steps phase by phase, and
/// collects times, FLOPs, the sgemm limit and the peak RSS.
struct StepBenchmark: Encodable {
    var impl = "densecl-swift"
    var arch: String
    var imageSize: Int
    var batch: Int
    var mode: String
    var threads: Int
    var layout = "channels_last"
    /// The kernel set OpenBLAS picked (`openblas_get_corename`; `OPENBLAS_CORETYPE` overrides it).
    var blasCore = String(cString: openblas_get_corename())
    /// The vector width the losses' softmax rows ran at (`ComputeContext.vectorLevel`).
    var vectorLevel: String
    var imgPerS: Double
    var stepS: Double
    /// Median process CPU time per step (all threads): steadier than wall time on a shared machine.
    var cpuS: Double
    var gflops: Double
    var stepGflop: Double
    var peakRssMb: Double
    /// Best square `cblas_sgemm` rate with the same thread count (0 when skipped).
    var sgemmGflops: Double
    var phasesS: [String: Double]
    var phaseGflop: [String: Double]
    var loss: Double
    var layers: [Layer]?

    struct Layer: Encodable {
        var name: String
        var direction: String
        var ms: Double
        var gflops: Double
        var gemm: String?
    }

    enum CodingKeys: String, CodingKey {
        case impl, arch, imageSize = "image_size", batch, mode, threads, layout, blasCore = "blas_core"
        case vectorLevel = "vector_level"
        case imgPerS = "img_per_s"
        case stepS = "step_s", cpuS = "cpu_s", gflops, stepGflop = "step_gflop", peakRssMb = "peak_rss_mb"
        case sgemmGflops = "sgemm_gflops", phasesS = "phases_s", phaseGflop = "phase_gflop", loss, layers
    }

    /// The phases in the order a step runs them (the order of `scripts/bench/torch_step.py`).
    static let phases = ["query_forward", "ema", "key_forward", "losses", "enqueue", "backward", "optimizer"]
    /// The same with two lanes, where the query forward runs beside the EMA and the key forward.
    static let lanePhases = ["forward", "losses", "enqueue", "backward", "optimizer"]

    static func measure(options o: BenchStep, architecture: ResNetArchitecture, context: ComputeContext) throws -> StepBenchmark {
        let dense = o.mode == "densecl"
        let channels = architecture.configuration.outputChannels
        let layout = DenseCLEncoderLayout(architecture: architecture, hidden: o.hidDim == 0 ? channels : o.hidDim, dim: o.featDim)
        let state = DenseCLState(layout: layout, queueLength: o.queue)
        state.initialize(seed: 0)
        var configuration = DenseCLStepConfiguration(batch: o.batch, imageHeight: o.imageSize, imageWidth: o.imageSize)
        configuration.lossLambda = dense ? 0.5 : 0
        configuration.temperature = 0.2
        configuration.encoderMomentum = 0.999
        let step = try DenseCLStep(state: state, configuration: configuration, context: context)
        var rng = CounterRNG(seed: 0, domain: .synthetic)
        for i in step.queryImages.indices { step.queryImages[i] = Float(rng.normal()) }
        for i in step.keyImages.indices { step.keyImages[i] = Float(rng.normal()) }

        let lambda = configuration.lossLambda
        // Two lanes (query forward beside EMA + key forward) unless a per-layer profile asks for one at a time.
        let lanes = context.allowsTwoLanes && !o.profile
        let phases = lanes ? lanePhases : phases
        var phaseTimes = Dictionary(uniqueKeysWithValues: phases.map { ($0, [Double]()) })
        var stepTimes: [Double] = [], cpuTimes: [Double] = []
        var loss = 0.0
        // One step, phase by phase, in the order of the PyTorch script (enqueue before backward, which does not
        // read the queues).
        func runStep(_ index: Int, record: Bool) throws {
            var marks = [BenchClock.wall.now()]
            let cpuStart = BenchClock.processCPU.now()
            if lanes {
                try step.forwardEncoders(lambda: lambda, shuffle: (index, 0))
                marks.append(BenchClock.wall.now())
            } else {
                try step.forwardQuery(lambda: lambda)
                marks.append(BenchClock.wall.now())
                step.updateKeyEncoder()
                marks.append(BenchClock.wall.now())
                try step.forwardKeys(step: index, seed: 0)
                marks.append(BenchClock.wall.now())
            }
            loss = step.computeLosses(lambda: lambda).total
            marks.append(BenchClock.wall.now())
            step.enqueueKeys()
            marks.append(BenchClock.wall.now())
            step.backward(lambda: lambda)
            marks.append(BenchClock.wall.now())
            step.applyUpdate(learningRate: 0.03)
            marks.append(BenchClock.wall.now())
            guard record else { return }
            cpuTimes.append(BenchClock.processCPU.now() - cpuStart)
            stepTimes.append(marks[marks.count - 1] - marks[0])
            for (i, name) in phases.enumerated() { phaseTimes[name]!.append(marks[i + 1] - marks[i]) }
        }

        for i in 0..<o.warmup { try runStep(i, record: false) }
        var profiles: [(String, LayerProfile)] = []
        if o.profile {
            profiles = [("query", LayerProfile(step.query.backbone)), ("key", LayerProfile(step.key.backbone))]
            step.query.backbone.profile = profiles[0].1
            step.key.backbone.profile = profiles[1].1
        }
        for i in 0..<o.steps { try runStep(o.warmup + i, record: true) }
        step.query.backbone.profile = nil
        step.key.backbone.profile = nil

        let flops = step.flopCount
        let stepS = stepTimes.median
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let layers = profiles.flatMap { encoder, profile in
            profile.rows.map { row in
                let seconds = row.seconds / Double(row.calls)
                return Layer(
                    name: "\(encoder) \(row.name)", direction: row.direction.rawValue, ms: seconds * 1e3,
                    gflops: row.flops / seconds / 1e9, gemm: row.gemm)
            }
        }
        return StepBenchmark(
            arch: architecture.rawValue, imageSize: o.imageSize, batch: o.batch, mode: o.mode, threads: context.threads,
            vectorLevel: context.vectorLevel.description, imgPerS: Double(o.batch) / stepS, stepS: stepS, cpuS: cpuTimes.median, gflops: flops.total / stepS / 1e9,
            stepGflop: flops.total / 1e9, peakRssMb: Double(usage.ru_maxrss) / 1024,
            sgemmGflops: o.noSgemm ? 0 : bestSquareSgemm(context: context),
            phasesS: phaseTimes.mapValues(\.median),
            phaseGflop: [
                "query_forward": flops.queryForward / 1e9, "key_forward": flops.keyForward / 1e9,
                "forward": (flops.queryForward + flops.keyForward) / 1e9,
                "losses": flops.losses / 1e9, "backward": flops.backward / 1e9,
            ],
            loss: loss, layers: o.profile ? layers : nil)
    }

    /// The best of three square 2048 sgemm calls, in GFLOP/s: the GEMM limit of this machine and thread count.
    static func bestSquareSgemm(context: ComputeContext) -> Double {
        let n = 2048
        let a = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3 * n * n)
        defer { a.deallocate() }
        a.initialize(repeating: 0.5)
        context.activate()
        var best = Double.infinity
        for _ in 0..<4 {
            let start = BenchClock.wall.now()
            Gemm.multiply(
                transposeA: false, transposeB: false, m: n, n: n, k: n, a: a.baseAddress!, lda: n,
                b: a.baseAddress! + n * n, ldb: n, beta: 0, c: a.baseAddress! + 2 * n * n, ldc: n)
            best = min(best, BenchClock.wall.now() - start)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func printTable(options o: BenchStep) {
        print("densecl (Swift) \(arch) \(imageSize)px batch \(batch) \(mode), \(threads) thread(s), K \(o.queue), D \(o.featDim); median of \(o.steps) steps; OpenBLAS \(blasCore) kernels; losses at \(vectorLevel)")
        let limit = sgemmGflops > 0 ? String(format: " = %.0f%% of the sgemm limit %.0f GFLOP/s", 100 * gflops / sgemmGflops, sgemmGflops) : ""
        print(String(format: "  %.1f img/s, step %.0f ms (CPU %.0f ms), %.2f GFLOP/step, %.1f GFLOP/s", imgPerS, stepS * 1e3, cpuS * 1e3, stepGflop, gflops) + limit)
        print(String(format: "  peak RSS %.0f MB; loss %.4f", peakRssMb, loss))
        print("  phase               ms    GFLOP   GFLOP/s")
        for name in phasesS["forward"] == nil ? Self.phases : Self.lanePhases {
            let seconds = phasesS[name] ?? 0, flop = phaseGflop[name] ?? 0
            let rate = flop > 0 ? String(format: "%9.1f", flop / seconds) : ""
            print("  " + name.padded(15) + String(format: " %8.1f %8.2f", seconds * 1e3, flop) + rate)
        }
        guard let layers else { return }
        print("\n  per layer (mean per step)                ms   GFLOP/s   GEMM M x N x K")
        for layer in layers {
            let rate = layer.gflops > 0 ? String(format: "%9.1f", layer.gflops) : "         "
            print("  " + layer.name.padded(28) + " " + layer.direction.padded(8) + String(format: " %7.2f", layer.ms) + rate + "   " + (layer.gemm ?? ""))
        }
        let total = layers.reduce(0) { $0 + $1.ms }
        print(String(format: "  sum of backbone layers: %.1f ms of a %.1f ms step", total, stepS * 1e3))
    }
}

extension String {
    /// The string left-aligned in a field of `width` characters.
    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
