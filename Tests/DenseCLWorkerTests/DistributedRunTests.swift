import DenseCLCheckpoint
import DenseCLConfig
import DenseCLTestSupport
import DenseCLWorker
import Foundation
import SafeTensors
import XCTest

/// Runs the real `densecl-coordinator` (with `--local-workers`) built by `swift build -c release`.
final class DistributedRunTests: XCTestCase {
    private func writeConfig(_ dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("config.yaml")
        try (try tinyTestConfig()).yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// `steps` steps with `workers` worker processes (bn_groups 1 each) against the single-process trainer with
    /// `workers` BatchNorm groups: same per-step losses and same final tensors (parameters, SGD momentum buffers,
    /// BatchNorm running statistics of both encoders, both queues and their pointers).
    ///
    /// Images are 64 px so that C5 is 2x2: at 32 px C5 is 1x1 and a BatchNorm group of layer 4 holds only 2 values
    /// per channel, whose normalised output is ±1 whatever the input, so its backward is rounding noise scaled by
    /// up to 1/sqrt(eps) (a step-0 gradient norm of ~5.7e3 on conv1 instead of ~7.6): no two summation orders agree.
    ///
    /// `workerThreads` is each worker's `train.threads`; the single process runs one thread (the backward's halves
    /// give the same bits at any thread count).
    private func checkEquivalence(
        workers: Int, batch: Int, queue: Int, steps: Int, learningRate: Double?, workerThreads: Int = 1
    ) throws {
        let dir = temporaryDirectory("equivalence-\(workers)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sets = ["optim.batch_size=\(batch)", "model.queue_len=\(queue)", "train.max_steps=\(steps)", "optim.epochs=10",
                    "data.image_size=64", "data.synthetic_size=80"]
            + (learningRate.map { ["optim.lr=\($0)"] } ?? [])
        let single = try SingleProcessTrainer(
            config: try tinyTestConfig(sets + ["model.bn_groups=\(workers)"]), runDirectory: dir.appendingPathComponent("single"),
            resume: .none) { _ in }
        let records = try single.run()
        XCTAssertEqual(records.count, steps)

        let config = try writeConfig(dir)
        let run = dir.appendingPathComponent("dist")
        let result = try runCoordinator(
            ["--config", config.path, "--run-dir", run.path, "--local-workers", String(workers), "--resume", "none"]
                + (sets + ["model.bn_groups=1", "train.threads=\(workerThreads)"]).flatMap { ["--set", $0] })
        XCTAssertEqual(result.status, 0, result.output)

        let csv = try String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").compactMap { Double($0) } }
        XCTAssertEqual(rows.count, steps)
        for (row, record) in zip(rows, records) {
            // Losses: the single process takes each mean over the whole batch in one float32 sum, the workers take
            // it over their share and the coordinator averages the shares: the same terms in another order, ~1e-7
            // relative (measured ≤ 2e-7 over 10 steps). 1e-5 is far below what a wrong key routing, π, enqueue
            // order or data assignment changes (the losses move by ~1e-1 from step to step).
            XCTAssertEqual(row[2], record.globalLoss, accuracy: 1e-5 * max(1, abs(record.globalLoss)), "step \(record.step)")
            XCTAssertEqual(row[3], record.denseLoss, accuracy: 1e-5 * max(1, abs(record.denseLoss)), "step \(record.step)")
        }
        let a = try CheckpointStore.load(try XCTUnwrap(single.store.list().first).url)
        let b = try CheckpointStore.load(try XCTUnwrap(CheckpointStore(directory: run.appendingPathComponent("checkpoints")).list().first).url)
        XCTAssertEqual(Set(a.tensors.map(\.name)), Set(b.tensors.map(\.name)))
        for info in a.tensors where info.dtype == .f32 {
            // Per tensor relative L2 1e-5: gradients all-reduced (mean of per-worker means) and BatchNorm running
            // statistics averaged over workers instead of over groups in one process, float32 reorderings of
            // ~1e-7 each; measured ≤ 2e-6 (the momentum buffers, which sum every step's gradient). Gradient sum
            // instead of mean, a missing BatchNorm all-reduce or another step's data is off by 1e-2 or more.
            let d = Discrepancy(actual: try b.floats(info.name), expected: try a.floats(info.name))
            XCTAssertLessThan(d.relativeL2, 1e-5, "\(info.name): \(d)")
        }
        XCTAssertEqual(try a.int64s("queue_ptr"), try b.int64s("queue_ptr"))
        XCTAssertEqual(try a.int64s("queue2_ptr"), try b.int64s("queue2_ptr"))
    }

    // With a learning rate above 0 the trajectories agree to 1e-5 for one update and then part: a single process
    // whose initial weights move by one ulp parts from itself in the same way, so after the first update the run
    // amplifies rounding rather than exposing a runtime difference. `TrainingEquivalenceTests` compares ten steps of
    // the tiny configuration at its own rate against that self-divergence; here ten steps at lr 0 check everything
    // else exactly (every step's data, π, key routing, enqueue order, gradient averaging through the momentum
    // buffers, BatchNorm statistics), and one step at the configured rate checks the update itself at 1e-5.

    func testTwoWorkersMatchOneProcessWithTwoGroups() throws {
        try checkEquivalence(workers: 2, batch: 4, queue: 16, steps: 10, learningRate: 0)
    }

    func testThreeWorkersMatchOneProcessWithThreeGroups() throws {
        try checkEquivalence(workers: 3, batch: 6, queue: 18, steps: 10, learningRate: 0)
    }

    /// Two workers of two threads each (two lanes per worker, four busy threads on a 2-core machine): the lanes'
    /// meetings under oversubscription, inside the real runtime.
    func testTwoWorkersOfTwoThreadsMatchOneProcessWithTwoGroups() throws {
        try checkEquivalence(workers: 2, batch: 4, queue: 16, steps: 10, learningRate: 0, workerThreads: 2)
    }

    func testTwoWorkersFirstUpdateMatchesOneProcess() throws {
        try checkEquivalence(workers: 2, batch: 4, queue: 16, steps: 1, learningRate: nil)
    }

    /// The real binaries, 20 steps with two local workers: progress lines, a committed checkpoint at step 20
    /// with the run's metadata, and no worker left running.
    func testCoordinatorWithTwoLocalWorkers() throws {
        let dir = temporaryDirectory("integration")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try writeConfig(dir)
        let run = dir.appendingPathComponent("run")
        let result = try runCoordinator(
            ["--config", config.path, "--run-dir", run.path, "--local-workers", "2", "--set", "train.max_steps=20",
             "--set", "optim.epochs=10", "--set", "train.log_every_steps=5", "--set", "train.checkpoint_every_steps=10",
             "--set", "model.bn_groups=1"])
        XCTAssertEqual(result.status, 0, result.output)
        for step in [5, 10, 15, 20] {
            XCTAssertTrue(result.output.contains("step \(step)/20 epoch"), "no progress line for step \(step):\n\(result.output)")
        }
        XCTAssertTrue(result.output.contains("2 workers ready, queues verified"), result.output)
        let store = CheckpointStore(directory: run.appendingPathComponent("checkpoints"))
        XCTAssertEqual(store.list().map(\.step), [20, 10])
        let file = try CheckpointStore.load(try XCTUnwrap(store.list().first).url)
        XCTAssertEqual(file.metadata["step"], "20")
        XCTAssertEqual(file.metadata["world_size"], "2")
        XCTAssertEqual(try file.int64s("queue_ptr"), [Int64(20 * 4 % 16)])
        for i in 0..<2 {
            let log = try String(contentsOf: run.appendingPathComponent("worker-\(i).log"), encoding: .utf8)
            XCTAssertTrue(log.contains("run finished"), "worker \(i): \(log)")
            XCTAssertTrue(log.contains("data plane shared memory"), "worker \(i): \(log)")
        }
    }

    /// `--local-data-plane ipc` starts the local workers on Unix-domain sockets instead of shared memory (for a
    /// small /dev/shm); an unknown choice is refused before anything starts.
    func testLocalWorkersOnUnixDomainSockets() throws {
        let dir = temporaryDirectory("local-ipc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try writeConfig(dir)
        let run = dir.appendingPathComponent("run")
        let result = try runCoordinator(
            ["--config", config.path, "--run-dir", run.path, "--local-workers", "2", "--local-data-plane", "ipc",
             "--set", "train.max_steps=3", "--set", "model.bn_groups=1"])
        XCTAssertEqual(result.status, 0, result.output)
        for i in 0..<2 {
            let log = try String(contentsOf: run.appendingPathComponent("worker-\(i).log"), encoding: .utf8)
            XCTAssertTrue(log.contains("data plane ipc"), "worker \(i): \(log)")
        }
        let refused = try runCoordinator(
            ["--config", config.path, "--run-dir", run.path, "--local-workers", "2", "--local-data-plane", "tcp"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("--local-data-plane must be shm or ipc"), refused.output)
    }
}

/// Runs the real coordinator (listening on a free loopback port) to completion; returns its status and output.
func runCoordinator(_ arguments: [String], timeout: TimeInterval = 170) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = try ServiceCluster.binary("densecl-coordinator")
    process.arguments = arguments + ["--listen", "tcp://127.0.0.1:0"]
    // The workers must run OpenBLAS's kernels of this test process, which cannot relaunch itself with another set
    // (`OpenBLASKernelChoice`): other kernels round differently, and over ten steps an argmax match or a ReLU mask
    // can then flip (measured: momentum buffers 2.5e-3 apart instead of 2e-6 with Haswell workers on Zen 4).
    process.environment = ProcessInfo.processInfo.environment.merging(["DENSECL_KEEP_BLAS_KERNELS": "1"]) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (process.terminationStatus, output)
}
