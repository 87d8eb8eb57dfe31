import DenseCLCheckpoint
import DenseCLConfig
import DenseCLCoordinator
import DenseCLModel
import DenseCLWorker
import Foundation
import SafeTensors
import XCTest

/// A configuration small enough for tests: ResNet-18 on 32 px synthetic images (1x1 C5 grid), batch 4 in 2
/// BatchNorm groups, a 16-key queue.
func tinyTestConfig(_ extra: [String] = []) throws -> DenseCLConfig {
    let yaml = """
        model: {arch: resnet18, feat_dim: 16, hid_dim: 32, loss_lambda: 0.5, encoder_momentum: 0.99, queue_len: 16, bn_groups: 2}
        data: {dataset: synthetic, image_size: 32, synthetic_count: 16, synthetic_size: 40, loader_threads: 1, prefetch_batches: 2}
        optim: {lr: 0.03, epochs: 2, batch_size: 4}
        train: {seed: 7, checkpoint_every_steps: 100, log_every_steps: 1, keep_checkpoints: 5, threads: 1}
        cluster: {workers: 1}
        """
    return try DenseCLConfig.parse(yaml: yaml, overrides: extra)
}

func temporaryDirectory(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("densecl-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

final class TrainerResumeTests: XCTestCase {
    /// N steps straight and N/2 steps, a checkpoint, a new trainer resumed from it and N/2 more steps give the same
    /// losses and the same checkpoint, tensor for tensor and bit for bit (no tolerance: every random choice is a
    /// pure function of seed and step and the arithmetic is the same sequence of operations).
    func testResumeIsBitExact() throws {
        let steps = 6
        let config = try tinyTestConfig()
        let straightDir = temporaryDirectory("straight"), splitDir = temporaryDirectory("split")
        defer {
            try? FileManager.default.removeItem(at: straightDir)
            try? FileManager.default.removeItem(at: splitDir)
        }
        var lines: [String] = []
        let straight = try SingleProcessTrainer(config: config, runDirectory: straightDir, resume: .none) { lines.append($0) }
        let straightRecords = try straight.run(stopAfter: steps)
        XCTAssertEqual(straightRecords.count, steps)
        XCTAssertTrue(lines.contains { $0.hasPrefix("step 1/\(steps) epoch 0") && $0.contains("img/s") }, "\(lines)")

        let first = try SingleProcessTrainer(config: config, runDirectory: splitDir, resume: .none) { _ in }
        let firstRecords = try first.run(stopAfter: steps / 2)
        XCTAssertEqual(first.store.list().first?.step, steps / 2)
        let second = try SingleProcessTrainer(config: config, runDirectory: splitDir, resume: .auto) { _ in }
        XCTAssertEqual(second.startStep, steps / 2)
        let secondRecords = try second.run(stopAfter: steps)

        XCTAssertEqual(firstRecords + secondRecords, straightRecords)
        let a = try CheckpointStore.load(try XCTUnwrap(straight.store.list().first).url)
        let b = try CheckpointStore.load(try XCTUnwrap(second.store.list().first).url)
        XCTAssertEqual(a.metadata["step"], String(steps))
        XCTAssertEqual(a.tensors.map(\.name).sorted(), b.tensors.map(\.name).sorted())
        for info in a.tensors {
            let x = try a.withRawBytes(info.name) { Data($0) }, y = try b.withRawBytes(info.name) { Data($0) }
            XCTAssertEqual(x, y, "tensor \(info.name) differs after resume")
        }
    }

    /// The checkpoint holds the official names and the metadata docs/checkpoints.md lists.
    func testCheckpointNamesAndMetadata() throws {
        let dir = temporaryDirectory("names")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = try SingleProcessTrainer(config: try tinyTestConfig(), runDirectory: dir, resume: .none) { _ in }
        try trainer.run(stopAfter: 1)
        let file = try CheckpointStore.load(try XCTUnwrap(trainer.store.list().first).url)
        let names = Set(file.tensors.map(\.name))
        for name in ["queue", "queue_ptr", "queue2", "queue2_ptr", "encoder_q.0.conv1.weight", "encoder_k.1.mlp2.2.bias",
                     "encoder_q.0.bn1.running_mean", "optimizer.momentum_buffer.encoder_q.0.conv1.weight"] {
            XCTAssertTrue(names.contains(name), "missing \(name)")
        }
        XCTAssertEqual(try file.int64s("queue_ptr"), [4])
        let metadata = try CheckpointMetadata(entries: file.metadata)
        XCTAssertEqual(metadata.step, 1)
        XCTAssertEqual(metadata.worldSize, 1)
        XCTAssertEqual(metadata.seed, 7)
        XCTAssertEqual(metadata.dataPosition, 4)
        XCTAssertEqual(try DenseCLConfig.parse(yaml: metadata.configYAML), trainer.setup.config)
        XCTAssertNotNil(file.metadata[CheckpointStore.digestsKey])
    }

    /// A resume path that does not exist is a clear error naming it.
    func testResumeFromMissingFileFails() throws {
        let dir = temporaryDirectory("missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(
            try SingleProcessTrainer(config: try tinyTestConfig(), runDirectory: dir, resume: .path("/nonexistent/x.safetensors")) { _ in }
        ) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/x.safetensors"), "\(error)")
        }
    }
}
