import ArgumentParser
import DenseCLCore
import DenseCLKernels
import Foundation

/// `densecl bench losses`: the contrastive losses at the official per-worker shapes, next to the raw GEMMs they
/// are built on (the softmax, its gradient and the bookkeeping are the difference).
struct BenchLosses: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "losses",
        abstract: "InfoNCE, dense correspondence and dense InfoNCE next to their raw GEMMs.")

    @Option(help: "Samples per worker (N).") var samples = 32
    @Option(help: "Grid positions per sample (S², 49 for a 7x7 grid).") var positions = 49
    @Option(help: "Embedding width (D).") var dim = 128
    @Option(help: "Backbone channels for the correspondence (C).") var channels = 2048
    @Option(help: "Queue length (K).") var negatives = 65536
    @Option(help: "Rows per block of the dense loss.") var blockRows = InfoNCELoss.defaultBlockRows
    @Option(help: "Negatives per tile of the losses' queue sweep.") var negativeTile = InfoNCELoss.defaultNegativeTile
    @Option(help: "Timed repetitions (the median is reported).") var repeats = 5
    @Option(help: "Threads (OpenBLAS and the kernels' loops).") var threads = 1
    @Flag(help: "A short run: K = 8192 and 3 repetitions.") var quick = false
    @Option(help: "Cap on the softmax rows' vector instructions: baseline, avx2 or avx512 (default: the CPU's best).")
    var vectorLevel: String?

    func validate() throws {
        if let vectorLevel, VectorLevel(name: vectorLevel) == nil {
            throw ValidationError("--vector-level must be baseline, avx2 or avx512, not '\(vectorLevel)'")
        }
    }

    func run() throws {
        let context = try ComputeContext(threads: threads, maximumVectorLevel: vectorLevel.flatMap(VectorLevel.init(name:)))
        let k = quick ? 8192 : negatives
        let repeats = quick ? 3 : self.repeats
        let (n, p, d, c) = (samples, positions, dim, channels)
        let rows = n * p
        var rng = CounterRNG(seed: 1, domain: .test)
        func random(_ count: Int) -> [Float] { (0..<count).map { _ in Float(rng.uniform(-0.1, 0.1)) } }
        let queue = random(d * k), qGrid = random(rows * d), kGrid = random(rows * d)
        let qb = random(rows * c), kb = random(rows * c)
        let matches = (0..<rows).map { _ in Int32(rng.nextInt(below: p)) }
        var dq = [Float](repeating: 0, count: rows * d)
        let workspace = Workspace.allocate(
            DenseInfoNCELoss.workspaceSize(rows: rows, dim: d, negatives: k, blockRows: blockRows, negativeTile: negativeTile)
                .union(DenseCorrespondence.workspaceSize(samples: n, positions: p)))
        defer { workspace.deallocate() }
        var matchOut = [Int32](repeating: 0, count: rows)
        print("shapes: N \(n), S² \(p), D \(d), C \(c), K \(k), block \(blockRows) rows, tile \(negativeTile) negatives, \(threads) thread(s), vector level \(context.vectorLevel) (CPU best \(VectorLevel.detected())); median of \(repeats)")

        // The two GEMMs of the dense loss alone, block by block over the whole queue: the floor the fused kernel is
        // measured against.
        let blockLogits = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(blockRows, rows) * k)
        blockLogits.initialize(repeating: 0)
        defer { blockLogits.deallocate() }
        let gemmSeconds = median(repeats) {
            qGrid.withUnsafeBufferPointer { q in
                dq.withUnsafeMutableBufferPointer { out in
                    let logits = blockLogits.baseAddress!
                    var start = 0
                    while start < rows {
                        let m = min(blockRows, rows - start)
                        Gemm.multiply(
                            transposeA: false, transposeB: false, m: m, n: k, k: d, a: q.baseAddress! + start * d,
                            lda: d, b: queue, ldb: k, beta: 0, c: logits, ldc: k)
                        Gemm.multiply(
                            transposeA: false, transposeB: true, m: m, n: d, k: k, a: logits, lda: k, b: queue,
                            ldb: k, beta: 0, c: out.baseAddress! + start * d, ldc: d)
                        start += m
                    }
                }
            }
        }
        let denseSeconds = median(repeats) {
            _ = DenseInfoNCELoss.forwardBackward(
                samples: n, positions: p, dim: d, negatives: k, temperature: 0.2, queryGrid: qGrid, keyGrid: kGrid,
                matches: matches, queue: queue, workspace: workspace, blockRows: blockRows, negativeTile: negativeTile,
                weight: 0.5,
                dQueryGrid: &dq, update: .overwrite, context: context)
        }
        let globalSeconds = median(repeats) {
            _ = InfoNCELoss.forwardBackward(
                rows: n, dim: d, negatives: k, temperature: 0.2, query: qGrid, key: kGrid, queue: queue,
                workspace: workspace, blockRows: blockRows, negativeTile: negativeTile, weight: 0.5, dQuery: &dq,
                update: .overwrite,
                context: context)
        }
        let matchSeconds = median(repeats) {
            DenseCorrespondence.forward(
                samples: n, positions: p, channels: c, query: qb, key: kb, matches: &matchOut,
                workspace: workspace, context: context)
        }
        let gemmFlop = 2.0 * 2.0 * Double(rows) * Double(k) * Double(d)
        // With one thread every FLOP runs on the calling thread: its CPU time is the work's own cost and moves
        // little when other processes share the cores. With more threads only wall time counts them all.
        let rateBasis = threads == 1 ? "cpu" : "wall"
        print("".padding(toLength: 38, withPad: " ", startingAt: 0)
              + "   cpu ms   wall ms   GFLOP/s (GEMM FLOP per \(rateBasis) second)")
        func report(_ name: String, _ time: (cpu: Double, wall: Double), flop: Double) {
            let seconds = threads == 1 ? time.cpu : time.wall
            let columns = String(format: "%9.2f %9.2f %9.1f", time.cpu * 1000, time.wall * 1000, flop / seconds / 1e9)
            print(name.padding(toLength: 38, withPad: " ", startingAt: 0) + columns)
        }
        report("dense GEMMs only (baseline)", gemmSeconds, flop: gemmFlop)
        report("DenseInfoNCELoss.forwardBackward", denseSeconds, flop: gemmFlop)
        let overhead = threads == 1 ? denseSeconds.cpu / gemmSeconds.cpu : denseSeconds.wall / gemmSeconds.wall
        print("  overhead over its GEMMs (softmax, gradient, positives): "
              + String(format: "%.1f %% (\(rateBasis) time)", 100 * (overhead - 1)))
        report("InfoNCELoss.forwardBackward (N rows)", globalSeconds, flop: 4.0 * Double(n) * Double(k) * Double(d))
        report("DenseCorrespondence.forward", matchSeconds, flop: 2.0 * Double(n * p * p * c))
    }

    /// Median over `repeats` runs (after one warm-up run) of the calling thread's CPU time and of the wall time.
    private func median(_ repeats: Int, _ body: () -> Void) -> (cpu: Double, wall: Double) {
        body()  // warm-up: page faults, OpenBLAS buffers
        var cpuTimes: [Double] = [], wallTimes: [Double] = []
        for _ in 0..<max(1, repeats) {
            let (cpu0, wall0) = (BenchClock.threadCPU.now(), BenchClock.wall.now())
            body()
            cpuTimes.append(BenchClock.threadCPU.now() - cpu0)
            wallTimes.append(BenchClock.wall.now() - wall0)
        }
        return (cpuTimes.median, wallTimes.median)
    }
}
