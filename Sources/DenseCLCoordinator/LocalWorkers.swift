import Foundation

/// `--local-workers N`: N `densecl-worker` processes on this machine, connected to the coordinator, stopped with
/// it. Their output goes to `RUN_DIR/worker-<i>.log`.
public final class LocalWorkers: @unchecked Sendable {
    private var processes: [Process] = []
    private let lock = NSLock()

    /// Starts `count` workers running `executable` against `endpoint`, with `densecl-worker --data-plane dataPlane`.
    public init(
        count: Int, executable: URL, endpoint: String, threads: Int, dataPlane: String = "shm", logDirectory: URL
    ) throws(CoordinatorError) {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw .spawnFailed("no densecl-worker executable at \(executable.path)")
        }
        for i in 0..<count {
            let process = Process()
            process.executableURL = executable
            // All on this machine, in one PID namespace: shared memory by default (or Unix-domain sockets).
            process.arguments = [
                "--coordinator", endpoint, "--name", "local-\(i)", "--threads", String(threads), "--data-plane", dataPlane,
            ]
            let logURL = logDirectory.appendingPathComponent("worker-\(i).log")
            _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            if let handle = try? FileHandle(forWritingTo: logURL) {
                process.standardOutput = handle
                process.standardError = handle
            }
            do { try process.run() } catch {
                stop()
                throw .spawnFailed("\(executable.path): \(error)")
            }
            processes.append(process)
            logs.append(logURL)
        }
    }

    /// The names the workers join under.
    public var names: [String] { processes.indices.map { "local-\($0)" } }

    /// Where each worker's output goes.
    private var logs: [URL] = []

    /// When a worker has already exited (a worker never exits before its run ends): which one, its status and the
    /// last lines of its log; nil while all run.
    public func exitedEarly() -> String? {
        lock.lock()
        defer { lock.unlock() }
        guard let i = processes.firstIndex(where: { !$0.isRunning }) else { return nil }
        let text = (try? String(contentsOf: logs[i], encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n").suffix(10).map { "  | " + $0 }.joined(separator: "\n")
        return "local worker \(i) exited with status \(processes[i].terminationStatus) before the run ended; "
            + "the end of \(logs[i].path):\n" + tail
    }

    /// Waits up to `grace` for the workers to exit on their own, then terminates (SIGTERM) and, after another
    /// `grace`, kills (SIGKILL) the ones still running. Safe to call more than once and from a signal handler's queue.
    public func stop(grace: Duration = .seconds(3)) {
        lock.lock()
        defer { lock.unlock() }
        let deadline = ContinuousClock.now + grace
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(20_000) }
        for p in processes where p.isRunning { p.terminate() }
        let killDeadline = ContinuousClock.now + grace
        while processes.contains(where: \.isRunning) && ContinuousClock.now < killDeadline { usleep(20_000) }
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
        processes.removeAll()
    }

    deinit { stop(grace: .milliseconds(200)) }
}
