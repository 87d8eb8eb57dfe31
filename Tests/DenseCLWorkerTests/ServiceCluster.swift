import DenseCLCheckpoint
import DenseCLTestSupport
import Foundation
import SafeTensors
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A coordinator and workers started as separate real processes (`.build/release/densecl-coordinator` and
/// `densecl-worker`) on a fixed local port, so that a test can `kill -9` any of them and start them again.
/// Every process's output goes to a log file in the run's directory.
final class ServiceCluster {
    let directory: URL
    let run: URL
    let port: Int
    private let config: URL
    private let settings: [String]
    private(set) var coordinator: Process?
    private(set) var workers: [String: Process] = [:]
    private var coordinatorStarts = 0

    /// The tiny test model (resnet18 on 32-pixel synthetic images, batch 4) with fast failure detection.
    static func settings(steps: Int, extra: [String] = []) -> [String] {
        [
            "train.max_steps=\(steps)", "optim.epochs=100", "model.bn_groups=1", "train.log_every_steps=1",
            "train.checkpoint_every_steps=2", "train.keep_checkpoints=10", "cluster.workers=2",
            "cluster.heartbeat_interval_ms=200", "cluster.heartbeat_liveness=25", "cluster.step_timeout_s=8",
            "cluster.rejoin_timeout_s=30", "cluster.coordinator_timeout_s=30",
        ] + extra
    }

    init(_ name: String, settings: [String]) throws {
        directory = temporaryDirectory(name)
        run = directory.appendingPathComponent("run")
        config = directory.appendingPathComponent("config.yaml")
        try (try tinyTestConfig()).yaml.write(to: config, atomically: true, encoding: .utf8)
        self.settings = settings
        port = try Self.freePort()
    }

    deinit {
        for p in [coordinator].compactMap({ $0 }) + Array(workers.values) where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    var endpoint: String { "tcp://127.0.0.1:\(port)" }
    var checkpoints: CheckpointStore { CheckpointStore(directory: run.appendingPathComponent("checkpoints")) }

    static func binary(_ name: String) throws -> URL {
        let url = Fixtures.repositoryRoot.appendingPathComponent(".build/release/\(name)")
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            XCTFail("\(url.path) is missing: run `swift build -c release` before the tests")
            throw CocoaError(.fileNoSuchFile)
        }
        return url
    }

    /// Starts the coordinator (`--resume` as given); `fileSizeLimitKB` runs it under `ulimit -f`.
    @discardableResult
    func startCoordinator(resume: String, extra: [String] = [], fileSizeLimitKB: Int? = nil) throws -> Process {
        coordinatorStarts += 1
        var arguments = ["--config", config.path, "--run-dir", run.path, "--listen", endpoint, "--resume", resume]
        arguments += (settings + extra).flatMap { ["--set", $0] }
        let process: Process
        if let limit = fileSizeLimitKB {
            process = try start(
                URL(fileURLWithPath: "/bin/sh"),
                ["-c", "ulimit -f \(limit) && exec \"$0\" \"$@\"", try Self.binary("densecl-coordinator").path] + arguments,
                log: "coordinator-\(coordinatorStarts).log")
        } else {
            process = try start(try Self.binary("densecl-coordinator"), arguments, log: "coordinator-\(coordinatorStarts).log")
        }
        coordinator = process
        return process
    }

    @discardableResult
    func startWorker(_ name: String, extra: [String] = []) throws -> Process {
        let process = try start(
            try Self.binary("densecl-worker"),
            ["--coordinator", endpoint, "--name", name, "--threads", "1", "--coordinator-timeout", "30"] + extra,
            log: "\(name).log")
        workers[name] = process
        return process
    }

    private func start(_ executable: URL, _ arguments: [String], log: String) throws -> Process {
        let url = directory.appendingPathComponent(log)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// The combined logs, for failure messages.
    var allLogs: String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".log") }
        return names.sorted().map { "== \($0)\n\(log($0))" }.joined(separator: "\n")
    }

    func kill9(_ process: Process?) {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits until `process` exits; returns its status (or nil after `timeout`, having killed it).
    func waitExit(_ process: Process?, timeout: TimeInterval = 120) -> Int32? {
        guard let process else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// Polls (every 10 ms) until the checkpoint of `step` is committed.
    func waitForCheckpoint(step: Int, timeout: TimeInterval = 120) -> Bool {
        let url = checkpoints.directory.appendingPathComponent(CheckpointStore.fileName(step: step))
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: url.path) { return true }
            usleep(10_000)
        }
        return false
    }

    /// Rows of metrics.csv: step, epoch, loss_single, loss_dense, lr, lambda.
    var metrics: [[Double]] {
        let csv = (try? String(contentsOf: run.appendingPathComponent("metrics.csv"), encoding: .utf8)) ?? ""
        return csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").compactMap { Double($0) } }
    }

    /// A TCP port nobody listens on right now (bound to port 0, read back, released).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { a in
                bind(fd, a, length) == 0 && getsockname(fd, a, &length) == 0
            }
        }
        guard ok else { throw CocoaError(.fileNoSuchFile) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Every tensor of two checkpoint files, byte for byte (names, dtypes, shapes and raw bytes).
func assertIdenticalTensors(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
    let x = try CheckpointStore.load(a), y = try CheckpointStore.load(b)
    XCTAssertEqual(x.tensors.map(\.name).sorted(), y.tensors.map(\.name).sorted(), file: file, line: line)
    var differing: [String] = []
    for info in x.tensors {
        let bytesA = try x.withRawBytes(info.name) { Array($0) }
        let bytesB = try y.withRawBytes(info.name) { Array($0) }
        if bytesA != bytesB || y.tensors.first(where: { $0.name == info.name })?.shape != info.shape {
            differing.append(info.name)
        }
    }
    XCTAssertEqual(differing, [], "tensors that differ between \(a.lastPathComponent) runs", file: file, line: line)
}
