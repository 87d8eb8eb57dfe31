import ArgumentParser
import DenseCLCore
import DenseCLKernels
import DenseCLModel
import Foundation

/// `densecl bench step`: a whole DenseCL (or MoCo-v2) training step on in-memory tensors, timed by phase, with its
/// achieved GFLOP/s next to the best `cblas_sgemm` rate of this machine. `scripts/bench/torch_step.py` runs the same
/// step in PyTorch with the same options and JSON keys; `scripts/bench/compare.sh` alternates the two.
struct BenchStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time a full DenseCL / MoCo-v2 training step (no data loading); GFLOP/s next to the sgemm limit.",
        discussion: """
            The step is the official one at world size 1: query forward, EMA of the key encoder, key forward, \
            global (and dense) InfoNCE against queues of --queue keys, enqueue, backward, SGD. Inputs are random. \
            --workers N measures the distributed runtime instead: densecl-coordinator --local-workers with 1 worker x \
            1 thread, N workers x 1 thread and 1 worker x N threads, one after the other, at the global batch --batch \
            on synthetic data without augmentation, timed from each run's metrics.csv. --no-communication replaces \
            the runtime by N independent processes (an upper bound of data-parallel scaling).
            """)

    @Option(help: "resnet18, resnet34, resnet50 or resnet101.")
    var arch = "resnet18"

    @Option(help: "Square input side in pixels.")
    var imageSize = 96

    @Option(help: "Images per step (with --workers: the global batch, split over the workers; per worker with --per-worker-batch).")
    var batch = 32

    @Option(help: "densecl (λ = 0.5, dense head and dense loss) or mocov2 (λ = 0, no dense branch).")
    var mode = "densecl"

    @Option(help: "Threads for BLAS and the kernels.")
    var threads = 2

    @Option(name: .customLong("steps"), help: "Timed steps (the median is reported); default 10, or 12 with --workers.")
    var stepsOption: Int?

    @Option(name: .customLong("warmup"), help: "Untimed steps first; default 2, or 4 with --workers.")
    var warmupOption: Int?

    /// Timed steps: `--steps`, by default 10 in one process and 12 per run of the distributed runtime.
    var steps: Int { stepsOption ?? (workers > 1 && !noCommunication ? 12 : 10) }

    /// Untimed steps: `--warmup`, by default 2 in one process and 4 per run of the distributed runtime (the first
    /// steps also connect the workers and fill the loaders' prefetch).
    var warmup: Int { warmupOption ?? (workers > 1 && !noCommunication ? 4 : 2) }

    @Option(help: "Queue length K of both negative queues.")
    var queue = 65536

    @Option(help: "Embedding width D.")
    var featDim = 128

    @Option(help: "Hidden width of the neck; 0 = the C5 width (512 for ResNet-18/34, 2048 for ResNet-50/101).")
    var hidDim = 0

    @Option(help: "Workers of 1 thread each (scaling measurement through the distributed runtime); 1 = this process only.")
    var workers = 1

    @Flag(help: "With --workers: N independent bench step processes instead of the runtime (no all-reduce, shuffle-BN or queue traffic; an upper bound).")
    var noCommunication = false

    @Flag(help: "With --workers: --batch images per worker (weak scaling: N workers run a global batch of N x --batch, and so does 1 worker x N threads) instead of a global batch split over the workers.")
    var perWorkerBatch = false

    @Option(help: "With --workers (the runtime): repeat the three runs this many times, alternating, and report the median of each (the ratio of one round moves by a few per cent on a 2-core machine).")
    var rounds = 1

    @Flag(help: "Per-layer time and GFLOP/s of both backbones, by direction.")
    var profile = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(help: "Skip the square sgemm measurement (the GEMM limit).")
    var noSgemm = false

    func validate() throws {
        guard ["densecl", "mocov2"].contains(mode) else { throw ValidationError("--mode must be densecl or mocov2, not '\(mode)'") }
        guard batch >= 1, imageSize >= 1, steps >= 1, warmup >= 0 else {
            throw ValidationError("--batch, --image-size and --steps must be at least 1, --warmup at least 0")
        }
        guard queue >= 1, featDim >= 1, hidDim >= 0 else { throw ValidationError("--queue and --feat-dim must be at least 1") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64") }
        guard !(profile && workers > 1) else { throw ValidationError("--profile runs in one process: drop --workers") }
        guard !noCommunication || workers > 1 else { throw ValidationError("--no-communication needs --workers 2 or more") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard rounds == 1 || (workers > 1 && !noCommunication) else {
            throw ValidationError("--rounds needs --workers 2 or more, without --no-communication")
        }
        guard !perWorkerBatch || (workers > 1 && !noCommunication) else {
            throw ValidationError("--per-worker-batch needs --workers 2 or more, without --no-communication (which already runs --batch per process)")
        }
    }

    func run() throws {
        if workers > 1 {
            try StepScaling(command: self).run()
            return
        }
        let architecture = try ResNetArchitecture(parsing: arch)
        let context = try ComputeContext(threads: threads)
        let measurement = try StepBenchmark.measure(options: self, architecture: architecture, context: context)
        if json {
            print(try measurement.jsonString())
        } else {
            measurement.printTable(options: self)
        }
    }

    /// The arguments that reproduce this run in a child process with another thread count.
    func childArguments(threads: Int) -> [String] {
        [
            "bench", "step", "--arch", arch, "--image-size", "\(imageSize)", "--batch", "\(batch)", "--mode", mode,
            "--threads", "\(threads)", "--steps", "\(steps)", "--warmup", "\(warmup)", "--queue", "\(queue)",
            "--feat-dim", "\(featDim)", "--hid-dim", "\(hidDim)", "--json", "--no-sgemm",
        ]
    }
}
