import ArgumentParser
import DenseCLKernels
import DenseCLModel
import DenseCLCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `densecl bench step`: images per second of one whole DenseCL (or MoCo-v2) training step in one process, timed
/// phase by phase; the same step, shapes and JSON fields as `scripts/bench/torch_step.py`, which
/// `scripts/bench/compare.sh` runs in alternation with this.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Images/s of one DenseCL training step (query forward, EMA, key forward, losses, backward, SGD).")

    @Option(help: "resnet18, resnet34, resnet50 or resnet101.") var arch = "resnet18"
    @Option(help: "Square image side.") var imageSize = 96
    @Option(help: "Samples per step (N).") var batch = 32
    @Option(help: "densecl (λ = 0.5) or mocov2 (λ = 0: no dense head).") var mode = "densecl"
    @Option(help: "Threads for BLAS and the kernels' loops.") var threads = 2
    @Option(help: "Timed steps (the median is reported).") var steps = 10
    @Option(help: "Untimed steps first.") var warmup = 2
    @Option(help: "Queue length K.") var queue = 65536
    @Option(help: "Embedding width D.") var featDim = 128
    @Option(help: "Neck hidden width; 0 = the C5 width (512 for ResNet-18/34, 2048 for ResNet-50/101).") var hidDim = 0
    @Option(help: "BatchNorm groups G (shuffle-BN emulation).") var bnGroups = 1
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    struct Report: Encodable {
        var impl = "swift"
        var arch: String, imageSize: Int, batch: Int, mode: String, threads: Int, bnGroups: Int
        var imgPerS: Double, stepS: Double, peakRssMb: Double
        var phasesS: [String: Double]

        enum CodingKeys: String, CodingKey {
            case impl, arch, batch, mode, threads
            case imageSize = "image_size", bnGroups = "bn_groups", imgPerS = "img_per_s", stepS = "step_s"
            case peakRssMb = "peak_rss_mb", phasesS = "phases_s"
        }
    }

    func validate() throws {
        guard ["densecl", "mocov2"].contains(mode) else { throw ValidationError("--mode must be densecl or mocov2") }
        guard steps >= 1, warmup >= 0, batch >= 1, imageSize >= 1 else {
            throw ValidationError("--steps, --batch and --image-size must be positive, --warmup non-negative")
        }
    }

    func run() throws {
        let architecture = try ResNetArchitecture(parsing: arch)
        let context = try ComputeContext(threads: threads)
        let hidden = hidDim > 0 ? hidDim : architecture.configuration.outputChannels
        let state = DenseCLState(
            layout: DenseCLEncoderLayout(architecture: architecture, hidden: hidden, dim: featDim), queueLength: queue)
        state.initialize(seed: 0)
        var configuration = DenseCLStepConfiguration(batch: batch, imageHeight: imageSize, imageWidth: imageSize)
        configuration.lossLambda = mode == "densecl" ? 0.5 : 0
        configuration.bnGroups = bnGroups
        let step = try DenseCLStep(state: state, configuration: configuration, context: context)
        var rng = CounterRNG(seed: 1, domain: .synthetic)
        for i in step.queryImages.indices { step.queryImages[i] = Float(rng.uniform(-2, 2)) }
        for i in step.keyImages.indices { step.keyImages[i] = Float(rng.uniform(-2, 2)) }

        let lambda = configuration.lossLambda
        let phaseNames = ["query_forward", "ema", "key_forward", "losses_backward", "enqueue", "optimizer"]
        var phases = [String: [Double]](), totals: [Double] = []
        for s in 0..<(warmup + steps) {
            var times: [Double] = []
            func timed(_ body: () throws -> Void) rethrows {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
            }
            try timed { try step.forwardQuery(lambda: lambda) }
            timed { step.updateKeyEncoder() }
            try timed { try step.forwardKeys(step: s, seed: 0) }
            timed { _ = step.lossesAndBackward(lambda: lambda) }
            timed { step.enqueueKeys() }
            timed { step.applyUpdate(learningRate: 0.03) }
            guard s >= warmup else { continue }
            for (name, t) in zip(phaseNames, times) { phases[name, default: []].append(t) }
            totals.append(times.reduce(0, +))
        }
        let stepSeconds = median(totals)
        let report = Report(
            arch: arch, imageSize: imageSize, batch: batch, mode: mode, threads: threads, bnGroups: bnGroups,
            imgPerS: Double(batch) / stepSeconds, stepS: stepSeconds, peakRssMb: peakResidentMegabytes(),
            phasesS: phases.mapValues(median))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("densecl \(arch) \(imageSize)px batch \(batch) \(mode) threads \(threads) bn_groups \(bnGroups), median of \(steps) steps")
        print(String(format: "  %.1f img/s, step %.0f ms, peak RSS %.0f MB", report.imgPerS, stepSeconds * 1e3, report.peakRssMb))
        for name in phaseNames {
            print("  " + name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%8.1f ms", report.phasesS[name]! * 1e3))
        }
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// The process's peak resident set (Linux reports `ru_maxrss` in KiB).
    private func peakResidentMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
