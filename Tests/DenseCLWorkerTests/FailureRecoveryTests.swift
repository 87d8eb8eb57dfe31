import DenseCLCheckpoint
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The failure model of docs/failures.md on the real binaries: a coordinator and two workers as separate processes
/// (resnet18, 32-pixel synthetic images, global batch 4, a checkpoint every 2 steps).
final class FailureRecoveryTests: XCTestCase {
    private static let steps = 8
    /// The final checkpoint of an uninterrupted run of `steps` steps, shared by the tests that compare with it.
    nonisolated(unsafe) private static var straight: (cluster: ServiceCluster, final: URL)?

    override class func tearDown() {
        straight = nil
        super.tearDown()
    }

    private func straightRun() throws -> URL {
        if let s = Self.straight { return s.final }
        let cluster = try ServiceCluster("straight", settings: ServiceCluster.settings(steps: Self.steps))
        let coordinator = try cluster.startCoordinator(resume: "none")
        try cluster.startWorker("w0")
        try cluster.startWorker("w1")
        XCTAssertEqual(cluster.waitExit(coordinator), 0, cluster.allLogs)
        let final = cluster.checkpoints.directory.appendingPathComponent(CheckpointStore.fileName(step: Self.steps))
        XCTAssertTrue(FileManager.default.fileExists(atPath: final.path), cluster.allLogs)
        Self.straight = (cluster, final)
        return final
    }

    /// `kill -9` of the coordinator and both workers once a checkpoint is committed, the newest checkpoint truncated,
    /// then all restarted with `--resume auto`: the truncated file is reported by name and skipped, and the final
    /// checkpoint equals the uninterrupted run's tensor for tensor, bit for bit (no tolerance: every random choice
    /// is a function of seed and step, the all-reduce is bit-identical on all ranks, and nothing else is carried
    /// across steps outside the checkpoint).
    func testKillEverythingThenResumeIsBitExact() throws {
        let expected = try straightRun()
        let cluster = try ServiceCluster("kill9", settings: ServiceCluster.settings(steps: Self.steps))
        try cluster.startCoordinator(resume: "none")
        try cluster.startWorker("w0")
        try cluster.startWorker("w1")
        XCTAssertTrue(cluster.waitForCheckpoint(step: 4), cluster.allLogs)
        for p in [cluster.coordinator] + Array(cluster.workers.values) { cluster.kill9(p) }
        let committed = cluster.checkpoints.list()
        XCTAssertFalse(committed.contains { $0.step == Self.steps }, "the run finished before the kill:\n\(cluster.allLogs)")
        let newest = try XCTUnwrap(committed.first)
        XCTAssertGreaterThanOrEqual(committed.count, 2, "need an older checkpoint to fall back to")
        let handle = try FileHandle(forWritingTo: newest.url)
        try handle.truncate(atOffset: try handle.seekToEnd() / 2)
        try handle.close()

        let coordinator = try cluster.startCoordinator(resume: "auto")
        try cluster.startWorker("w0")
        try cluster.startWorker("w1")
        XCTAssertEqual(cluster.waitExit(coordinator), 0, cluster.allLogs)
        let output = cluster.log("coordinator-2.log")
        XCTAssertTrue(output.contains("skipping checkpoint \(newest.url.lastPathComponent)"), output)
        XCTAssertTrue(output.contains("at step \(committed[1].step)"), output)
        try assertIdenticalTensors(
            expected, cluster.checkpoints.directory.appendingPathComponent(CheckpointStore.fileName(step: Self.steps)))
    }

    /// The coordinator alone is killed and started again on the same endpoint with `--resume auto`: the workers
    /// notice, retry with back-off, rejoin, and the run ends with the same final checkpoint as the straight run.
    func testCoordinatorKilledAndRestarted() throws {
        let expected = try straightRun()
        let cluster = try ServiceCluster("coordinator", settings: ServiceCluster.settings(steps: Self.steps))
        try cluster.startCoordinator(resume: "none")
        let w0 = try cluster.startWorker("w0")
        let w1 = try cluster.startWorker("w1")
        XCTAssertTrue(cluster.waitForCheckpoint(step: 2), cluster.allLogs)
        cluster.kill9(cluster.coordinator)
        usleep(500_000)
        let coordinator = try cluster.startCoordinator(resume: "auto")
        XCTAssertEqual(cluster.waitExit(coordinator), 0, cluster.allLogs)
        XCTAssertEqual(cluster.waitExit(w0, timeout: 20), 0, cluster.allLogs)
        XCTAssertEqual(cluster.waitExit(w1, timeout: 20), 0, cluster.allLogs)
        XCTAssertTrue(cluster.log("w0.log").contains("coordinator missing"), cluster.log("w0.log"))
        try assertIdenticalTensors(
            expected, cluster.checkpoints.directory.appendingPathComponent(CheckpointStore.fileName(step: Self.steps)))
    }

    /// One worker is killed mid-run: the coordinator sees it go silent, tells the other to rejoin, restores the last
    /// checkpoint and finishes with one worker (global batch 4 kept, 4 samples per worker); the loss curve goes on
    /// to the last step with finite losses.
    func testWorkerKilledRunContinuesWithTheOthers() throws {
        try checkWorkerKilled(dataPlane: "auto")
    }

    /// The same over the shared-memory data plane; the killed worker leaves no inbox name behind.
    func testWorkerKilledOverSharedMemory() throws {
        try checkWorkerKilled(dataPlane: "shm")
    }

    private func checkWorkerKilled(dataPlane: String) throws {
        let cluster = try ServiceCluster(
            "worker-\(dataPlane)", settings: ServiceCluster.settings(steps: Self.steps, extra: ["cluster.max_restarts=1"]))
        let coordinator = try cluster.startCoordinator(resume: "none")
        let w0 = try cluster.startWorker("w0", extra: ["--data-plane", dataPlane])
        let w1 = try cluster.startWorker("w1", extra: ["--data-plane", dataPlane])
        XCTAssertTrue(cluster.waitForCheckpoint(step: 2), cluster.allLogs)
        cluster.kill9(cluster.workers["w1"])
        if dataPlane == "shm" {
            let left = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
            XCTAssertEqual(left.filter { $0.hasSuffix("-p\(w1.processIdentifier)") }, [], "inbox names of the killed worker")
        }
        XCTAssertEqual(cluster.waitExit(coordinator), 0, cluster.allLogs)
        XCTAssertEqual(cluster.waitExit(w0, timeout: 20), 0, cluster.allLogs)
        let output = cluster.log("coordinator-1.log")
        XCTAssertTrue(output.contains("worker 'w1'"), output)
        XCTAssertTrue(output.contains("restart 1 of 1"), output)
        XCTAssertTrue(output.contains("generation 2: 1 workers ready"), output)
        let rows = cluster.metrics
        XCTAssertEqual(rows.last?.first, Double(Self.steps - 1), output)
        XCTAssertTrue(rows.allSatisfy { $0[2].isFinite && $0[3].isFinite }, "\(rows)")
        let final = try CheckpointStore.load(try XCTUnwrap(cluster.checkpoints.list().first).url)
        XCTAssertEqual(final.metadata["step"], String(Self.steps))
        XCTAssertEqual(final.metadata["world_size"], "1")
    }

    /// A NaN injected into one worker's gradient at step index 1 is skipped on both workers (the all-reduced
    /// gradient carries it), the run goes on; NaNs at step indices 3 and 4 make two skips in a row, and with
    /// `train.max_skipped_steps=2` the run stops with an error naming the last good checkpoint.
    func testNaNInOneWorkerIsSkippedEverywhere() throws {
        let cluster = try ServiceCluster("nan", settings: ServiceCluster.settings(steps: Self.steps, extra: ["train.max_skipped_steps=2"]))
        let coordinator = try cluster.startCoordinator(resume: "none")
        let w0 = try cluster.startWorker("w0")
        let w1 = try cluster.startWorker("w1", extra: ["--debug-nan-step", "1", "--debug-nan-step", "3", "--debug-nan-step", "4"])
        XCTAssertEqual(cluster.waitExit(coordinator), 1, cluster.allLogs)
        _ = cluster.waitExit(w0, timeout: 20)
        _ = cluster.waitExit(w1, timeout: 20)
        let output = cluster.log("coordinator-1.log")
        XCTAssertTrue(output.contains("step 2/\(Self.steps): skipped on all 2 workers"), output)
        XCTAssertTrue(output.contains("step 3/\(Self.steps) epoch"), "the run must go on after one skip:\n\(output)")
        XCTAssertTrue(output.contains("step 5/\(Self.steps): skipped on all 2 workers"), output)
        XCTAssertTrue(output.contains("2 steps in a row with a non-finite loss or gradient"), output)
        XCTAssertTrue(output.contains("last good checkpoint: \(cluster.checkpoints.directory.path)/step-00000004.safetensors"), output)
        for name in ["w0.log", "w1.log"] {
            let log = cluster.log(name)
            XCTAssertTrue(log.contains("step 2: non-finite gradient, update skipped"), "\(name): \(log)")
            XCTAssertTrue(log.contains("step 5: non-finite gradient, update skipped"), "\(name): \(log)")
        }
        let file = try CheckpointStore.load(try XCTUnwrap(cluster.checkpoints.list().first).url)
        for info in file.tensors where info.dtype == .f32 {
            XCTAssertTrue(try file.floats(info.name).allSatisfy(\.isFinite), "\(info.name) holds non-finite values")
        }
    }

    /// Saves into a directory the coordinator cannot write (a 1 MiB file-size limit, which root does not bypass):
    /// each failure is reported and training goes on, the failed final save stops the run with an error naming the
    /// previous checkpoint, which still verifies, and no temporary file is left.
    func testFailedSavesAreReportedAndKeepThePreviousCheckpoint() throws {
        let cluster = try ServiceCluster("save", settings: ServiceCluster.settings(steps: 2))
        let first = try cluster.startCoordinator(resume: "none")
        try cluster.startWorker("w0")
        try cluster.startWorker("w1")
        XCTAssertEqual(cluster.waitExit(first), 0, cluster.allLogs)
        let previous = cluster.checkpoints.directory.appendingPathComponent(CheckpointStore.fileName(step: 2))

        let second = try cluster.startCoordinator(resume: "auto", extra: ["train.max_steps=6"], fileSizeLimitKB: 1024)
        try cluster.startWorker("w0")
        try cluster.startWorker("w1")
        XCTAssertEqual(cluster.waitExit(second), 1, cluster.allLogs)
        let output = cluster.log("coordinator-2.log")
        XCTAssertTrue(output.contains("checkpoint save at step 4 failed (1 in a row)"), output)
        XCTAssertTrue(output.contains("step 6/6 epoch"), "training must go on after a failed save:\n\(output)")
        XCTAssertTrue(output.contains("checkpoint of step 6 not saved"), output)
        XCTAssertTrue(output.contains("last committed checkpoint: \(previous.path)"), output)
        XCTAssertEqual(cluster.checkpoints.list().map(\.step), [2])
        XCTAssertNoThrow(try CheckpointStore.load(previous))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: cluster.checkpoints.directory.path)
        XCTAssertFalse(leftovers.contains { $0.hasPrefix(".tmp-") }, "\(leftovers)")
    }
}
