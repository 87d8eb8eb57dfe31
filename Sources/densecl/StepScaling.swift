import Foundation

/// `densecl bench step --workers N`: data-parallel scaling on one machine. Runs, one after the other,
/// 1 worker x 1 thread, N workers x 1 thread and 1 worker x N threads, and reports the N-worker throughput against
/// N times the one-worker one and against one worker of N threads.
///
/// By default each configuration is the real distributed runtime (``DistributedStepRun``: `densecl-coordinator
/// --local-workers` with its `densecl-worker` processes, all-reduce, shuffle-BN and queue traffic over ZeroMQ) at
/// the same global batch, timed from the run's `metrics.csv`. With `--no-communication` each configuration is
/// instead N child `densecl bench step --json` processes that do not communicate (batch per process): an upper
/// bound of what the runtime can reach.
struct StepScaling {
    let command: BenchStep

    /// The three throughputs (img/s) of one scaling measurement.
    struct Result {
        var single: Double
        var workers: Double
        var threads: Double
    }

    func run() throws {
        let n = command.workers
        let rounds = command.noCommunication ? [try measureWithoutCommunication()] : try measureRuntime()
        // With several rounds each configuration's figure is its median over the rounds.
        let result = Result(
            single: DistributedStepRun.median(rounds.map(\.single)),
            workers: DistributedStepRun.median(rounds.map(\.workers)),
            threads: DistributedStepRun.median(rounds.map(\.threads)))
        let efficiency = result.workers / (Double(n) * result.single)
        let efficiencies = rounds.map { $0.workers / (Double(n) * $0.single) }
        if command.json {
            let report: [String: Double] = [
                "workers": Double(n), "per_worker_batch": command.perWorkerBatch ? 1 : 0, "single_img_per_s": result.single, "workers_img_per_s": result.workers,
                "threads_img_per_s": result.threads, "scaling_efficiency": efficiency,
                "workers_over_threads": result.workers / result.threads, "rounds": Double(rounds.count),
                "scaling_efficiency_min": efficiencies.min()!, "scaling_efficiency_max": efficiencies.max()!,
            ]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        // Independent processes in --no-communication mode, workers of the runtime otherwise.
        let (one, many) = command.noCommunication ? ("process  ", "processes") : ("worker ", "workers")
        if rounds.count > 1 {
            for (k, round) in rounds.enumerated() {
                print(String(
                    format: "  round %d: 1 x 1 %.2f, %d x 1 %.2f (%.0f%%), 1 x %d %.2f img/s", k + 1, round.single, n,
                    round.workers, 100 * efficiencies[k], n, round.threads))
            }
            print("  medians of the \(rounds.count) rounds:")
        }
        print(String(format: "  1 %@ x 1 thread : %8.2f img/s", one, result.single))
        print(String(format: "  %d %@ x 1 thread : %8.2f img/s, %.0f%% of %d x (1 x 1)", n, many, result.workers, 100 * efficiency, n))
        print(String(format: "  1 %@ x %d threads: %8.2f img/s", one, n, result.threads))
        print(String(format: "  %d %@ x 1 thread / 1 x %d threads: %.2fx", n, many, n, result.workers / result.threads))
    }

    // MARK: - The distributed runtime

    /// The three runs once per round (1 x 1, N x 1, 1 x N, then again), so that slow drifts of the machine touch
    /// every configuration alike.
    private func measureRuntime() throws -> [Result] {
        let n = command.workers
        // Strong scaling: the same global batch in all three runs. Weak scaling (--per-worker-batch): the N-worker
        // run and the N-thread run process N x --batch images per step, the one-worker one-thread run --batch.
        let weak = command.perWorkerBatch
        let runs = [(1, 1), (n, 1), (1, n)].map { workers, threads in
            DistributedStepRun(
                workers: workers, threads: threads, arch: command.arch, imageSize: command.imageSize,
                batch: weak && workers * threads > 1 ? n * command.batch : command.batch,
                mode: command.mode, queue: command.queue, featDim: command.featDim, hidDim: command.hidDim,
                warmup: command.warmup, steps: command.steps)
        }
        for run in runs { _ = try run.validatedConfig() }
        let coordinator = try binary("densecl-coordinator")
        _ = try binary("densecl-worker")
        if !command.json {
            if weak {
                print("\(command.arch) \(command.imageSize)px, \(command.batch) images per worker (weak scaling: global batch \(n * command.batch) for \(n) workers and for 1 worker x \(n) threads), \(command.mode), K \(command.queue)")
            } else {
                print("\(command.arch) \(command.imageSize)px, global batch \(command.batch) split over the workers, \(command.mode), K \(command.queue)")
            }
            print("  the real runtime (densecl-coordinator --local-workers): all-reduce, shuffle-BN and queue traffic included")
            print("  data: synthetic \(command.imageSize) px images, augmentation none, 1 loader thread per worker (the cheapest loading)")
            print("  img/s = global batch / median step time of \(command.steps) steps after \(command.warmup) warm-up steps (metrics.csv)")
        }
        if !command.json && command.rounds > 1 {
            print("  \(command.rounds) rounds, alternating; each figure is the median of its configuration's rounds")
        }
        return try (0..<command.rounds).map { _ in
            let rates = try runs.map { try throughput(of: $0, coordinator: coordinator) }
            return Result(single: rates[0], workers: rates[1], threads: rates[2])
        }
    }

    /// Runs one configuration in a fresh temporary directory (removed afterwards) and returns its img/s.
    private func throughput(of run: DistributedStepRun, coordinator: URL) throws -> Double {
        let label = "\(run.workers) worker(s) x \(run.threads) thread(s)"
        FileHandle.standardError.write(Data("bench step: running \(label) for \(run.totalSteps) steps\n".utf8))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("densecl-bench-scaling-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("config.yaml")
        let runDirectory = directory.appendingPathComponent("run")
        let log = directory.appendingPathComponent("coordinator.log")
        try run.configYAML().write(to: config, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = coordinator
        process.arguments = run.coordinatorArguments(config: config, runDirectory: runDirectory)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let logs = [log] + (0..<run.workers).map { runDirectory.appendingPathComponent("worker-\($0).log") }
            throw StepScalingError.runFailed(run: label, status: process.terminationStatus, logTail: logs.map(Self.tail).joined())
        }
        let csv = try String(contentsOf: runDirectory.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let gaps = try run.timedStepSeconds(metricsCSV: csv)
        let seconds = DistributedStepRun.median(gaps)
        FileHandle.standardError.write(Data(String(
            format: "bench step: %@: median %.3f s/step (%.3f-%.3f over %d steps)\n", label, seconds, gaps.min()!, gaps.max()!,
            gaps.count).utf8))
        return Double(run.batch) / seconds
    }

    /// The last lines of a log file, headed by its name.
    private static func tail(_ url: URL) -> String {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? "(no log)"
        return "== \(url.lastPathComponent)\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(15).joined(separator: "\n") + "\n"
    }

    /// The executable `name` next to this `densecl` executable (SwiftPM builds all products into one directory).
    private func binary(_ name: String) throws -> URL {
        let url = try selfExecutable().deletingLastPathComponent().appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else { throw StepScalingError.missingExecutable(url.path) }
        return url
    }

    // MARK: - Without communication (upper bound)

    struct Child: Decodable {
        var img_per_s: Double
        var step_s: Double
        var cpu_s: Double
        var peak_rss_mb: Double
    }

    private func measureWithoutCommunication() throws -> Result {
        let n = command.workers
        let single = try launch(processes: 1, threads: 1)[0]
        let parallel = try launch(processes: n, threads: 1)
        let threaded = try launch(processes: 1, threads: n)[0]
        if !command.json {
            print("\(command.arch) \(command.imageSize)px batch \(command.batch) per process, \(command.mode); median of \(command.steps) steps per process")
            print("  --no-communication: the \(n) processes do not communicate, an upper bound of data-parallel scaling")
            print("  processes x 1 thread: " + parallel.map { String(format: "%.2f", $0.img_per_s) }.joined(separator: " + ") + " img/s")
        }
        return Result(single: single.img_per_s, workers: parallel.reduce(0) { $0 + $1.img_per_s }, threads: threaded.img_per_s)
    }

    /// Runs `processes` children at once with `threads` threads each and returns their results.
    private func launch(processes: Int, threads: Int) throws -> [Child] {
        let executable = try selfExecutable()
        var children: [(Process, Pipe)] = []
        for _ in 0..<processes {
            let process = Process()
            process.executableURL = executable
            process.arguments = command.childArguments(threads: threads)
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            children.append((process, output))
        }
        defer { for (process, _) in children where process.isRunning { process.terminate() } }
        return try children.enumerated().map { index, child in
            let data = child.1.fileHandleForReading.readDataToEndOfFile()
            child.0.waitUntilExit()
            guard child.0.terminationStatus == 0 else {
                throw StepScalingError.runFailed(run: "no-communication child \(index)", status: child.0.terminationStatus, logTail: "")
            }
            do {
                return try JSONDecoder().decode(Child.self, from: data)
            } catch {
                throw StepScalingError.badResult("bench step child \(index) printed no result: \(error)")
            }
        }
    }
}
