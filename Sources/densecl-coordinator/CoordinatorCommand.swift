import ArgumentParser
import DenseCLConfig
import DenseCLCoordinator
import Foundation

/// `densecl-coordinator`: runs a distributed DenseCL training job (see docs/distributed.md).
@main
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "densecl-coordinator", abstract: "Coordinate a distributed DenseCL run.")

    @Option(help: "The YAML configuration.")
    var config: String
    @Option(name: .customLong("run-dir"), help: "Where checkpoints, metrics.csv and worker logs go.")
    var runDirectory = "runs/densecl"
    @Option(help: "Control endpoint to bind (default: cluster.listen, tcp://127.0.0.1:5555).")
    var listen: String?
    @Option(help: "Workers to wait for (default: cluster.workers, or --local-workers).")
    var workers: Int?
    @Option(name: .customLong("local-workers"), help: "Spawn this many densecl-worker processes on this machine.")
    var localWorkers = 0
    @Option(
        name: .customLong("local-data-plane"),
        help: "How the --local-workers exchange gradients: shm (shared memory, the fastest) or ipc (Unix-domain sockets; for a /dev/shm too small for 8 MiB per pair of workers, as in containers).")
    var localDataPlane = "shm"
    @Option(help: "auto, none or a checkpoint path.")
    var resume = "auto"
    @Option(name: .customLong("set"), help: "Override a configuration key: section.key=value (repeatable).")
    var overrides: [String] = []

    func validate() throws {
        guard ["shm", "ipc"].contains(localDataPlane) else {
            throw ValidationError("--local-data-plane must be shm or ipc, not '\(localDataPlane)'")
        }
    }

    func run() throws {
        let log: (String) -> Void = { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        var sets = overrides
        if let workers { sets.append("cluster.workers=\(workers)") } else if localWorkers > 0 {
            sets.append("cluster.workers=\(localWorkers)")
        }
        let run = URL(fileURLWithPath: runDirectory)
        // A file-size limit (RLIMIT_FSIZE) makes a checkpoint write fail with EFBIG, reported like a full disk,
        // instead of killing the process.
        signal(SIGXFSZ, SIG_IGN)
        var local: LocalWorkers?
        do {
            let configuration = try DenseCLConfig.load(path: config, overrides: sets)
            try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
            let coordinator = try Coordinator(
                config: configuration, runDirectory: run, listen: listen ?? configuration.cluster.listen, resume: resume,
                log: log)
            if localWorkers > 0 {
                let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                let workerBinary = me.deletingLastPathComponent().appendingPathComponent("densecl-worker")
                local = try LocalWorkers(
                    count: localWorkers, executable: workerBinary, endpoint: coordinator.endpoint,
                    threads: configuration.train.threads, dataPlane: localDataPlane, logDirectory: run)
                let spawned = local!
                coordinator.admissionCheck = { spawned.exitedEarly() }
                signal(SIGINT, SIG_IGN)
                signal(SIGTERM, SIG_IGN)
                let queue = DispatchQueue(label: "densecl-coordinator-signals")
                for sig in [SIGINT, SIGTERM] {
                    let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                    source.setEventHandler {
                        log("interrupted: stopping the local workers")
                        spawned.stop(grace: .milliseconds(500))
                        Foundation.exit(130)
                    }
                    source.resume()
                    Self.signalSources.append(source)
                }
            }
            try coordinator.run()
            local?.stop()
            log("done: checkpoints in \(coordinator.store.directory.path), metrics in \(run.appendingPathComponent("metrics.csv").path)")
        } catch {
            local?.stop(grace: .seconds(1))
            log("densecl-coordinator: \(error)")
            throw ExitCode(1)
        }
    }

    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []
}
