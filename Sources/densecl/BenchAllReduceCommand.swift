import ArgumentParser
import DenseCLComm
import Foundation

/// `densecl bench allreduce`: ring all-reduce bandwidth of N local rank processes over ZeroMQ/TCP on
/// 127.0.0.1 (or Unix-domain sockets with `--ipc`, or POSIX shared memory with `--shm`, as `--local-workers`
/// runs use), printed next to the raw throughput of one link measured in the same run.
///
/// Bus bandwidth follows nccl-tests: `busbw = 2(n-1)/n · bytes / time`, the rate at which each rank's
/// link carries data; a perfect ring reaches the single-link rate.
struct BenchAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Ring all-reduce between local processes: bus bandwidth vs one raw link.")

    @Option(help: "Rank processes to spawn.") var workers: Int = 4
    @Option(help: "Megabytes (10^6 bytes) of float32 to all-reduce.") var mb: Double = 100
    @Option(help: "Timed all-reduces (the median is reported).") var iterations: Int = 5
    @Option(help: "Message part size in KiB.") var partKB: Int = 1024
    @Option(help: "Messages in flight per link.") var window: Int = 4
    @Flag(help: "Data plane over Unix-domain sockets (ipc://) instead of TCP on 127.0.0.1.")
    var ipc = false
    @Flag(help: "Data plane through POSIX shared memory, as the workers of --local-workers use.")
    var shm = false

    func validate() throws {
        guard workers >= 2 else { throw ValidationError("--workers must be at least 2") }
        guard !(ipc && shm) else { throw ValidationError("--ipc and --shm exclude each other") }
        guard mb > 0, iterations >= 1, partKB >= 1, window >= 1 else {
            throw ValidationError("--mb, --iterations, --part-kb and --window must be positive")
        }
    }

    func run() throws {
        let runID = UInt64(ProcessInfo.processInfo.processIdentifier)
        let context = try ZMQContext()
        let control = try ControlChannel.coordinator(context: context, options: ControlOptions(runID: runID))
        defer { control.close() }
        let executable = try selfExecutable()
        var ranks: [(process: Process, output: Pipe)] = []
        for rank in 0..<workers {
            let process = Process()
            process.executableURL = executable
            process.arguments = [
                "comm-rank", "--coordinator", control.endpoint, "--rank", "\(rank)", "--world", "\(workers)",
                "--run-id", "\(runID)", "--scenario", "bench", "--mb", "\(mb)", "--iterations", "\(iterations)",
                "--part-bytes", "\(partKB * 1024)", "--window", "\(window)", "--timeout-ms", "60000",
            ] + (ipc ? ["--ipc"] : []) + (shm ? ["--shm"] : [])
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            ranks.append((process, output))
        }
        defer { for (process, _) in ranks where process.isRunning { process.terminate() } }
        try Rendezvous.gatherAddressBook(on: control, worldSize: workers, generation: 1, timeout: .seconds(60))

        // Every wait of a rank is bounded (60 s), so a healthy run ends well within this limit.
        let deadline = Date(timeIntervalSinceNow: 600)
        while ranks.contains(where: { $0.process.isRunning }) {
            guard Date() < deadline else { throw ValidationError("rank processes still running after 600 s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        var lines: [[String]] = []
        for (rank, (process, output)) in ranks.enumerated() {
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            guard process.terminationStatus == 0 else {
                throw ValidationError("rank \(rank) exited with status \(process.terminationStatus)")
            }
            lines.append(text.split(separator: "\n").map(String.init))
        }
        report(lines)
    }

    private func report(_ lines: [[String]]) {
        func values(_ key: String, _ rankLines: [String]) -> [Double] {
            rankLines.compactMap { line in
                let fields = line.split(separator: " ")
                return fields.count == 2 && fields[0] == key ? Double(fields[1]) : nil
            }
        }
        let bytes = Double(Int(mb * 1e6) / 4 * 4)
        let n = Double(workers)
        // An all-reduce ends when its slowest rank does: per iteration, the maximum over ranks.
        let perRank = lines.map { values("allreduce-seconds", $0) }
        let times = (0..<iterations).map { i in perRank.map { $0.indices.contains(i) ? $0[i] : .infinity }.max()! }
        let median = times.median
        let best = times.min()!
        let link = values("link-seconds", lines[1]).min() ?? .nan
        let linkRate = bytes / link / 1e9
        let busRate = 2 * (n - 1) / n * bytes / median / 1e9
        let verified = lines.allSatisfy { $0.contains("verify ok") }
        // The ring probe ends when its slowest rank does; best of its two runs.
        let ringRuns = lines.map { values("ring-seconds", $0) }
        let ring = (0..<2).map { i in ringRuns.map { $0.indices.contains(i) ? $0[i] : .infinity }.max()! }.min()!
        let ringRate = 2 * (n - 1) / n * bytes / ring / 1e9

        print("all-reduce (mean), \(workers) rank processes, \(format(bytes / 1e6)) MB float32, parts of \(partKB) KiB, window \(window)")
        row("raw ZeroMQ link, rank 0 -> 1 (best of 2)", "\(format(link * 1e3)) ms   \(format(linkRate)) GB/s")
        row("all \(workers) ring links at once, no arithmetic", "\(format(ring * 1e3)) ms   \(format(ringRate)) GB/s per link")
        row("all-reduce, median of \(iterations) (best)", "\(format(median * 1e3)) ms (\(format(best * 1e3)))")
        row("algorithm bandwidth, bytes / time", "\(format(bytes / median / 1e9)) GB/s")
        row(
            "bus bandwidth, 2(n-1)/n * bytes / time",
            "\(format(busRate)) GB/s = \(format(100 * busRate / linkRate))% of one raw link (target >= 70%), "
                + "\(format(100 * busRate / ringRate))% of the loaded ring links")
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let allReduceCPU = lines.flatMap { values("allreduce-cpu", $0) }.median
        let ringCPU = lines.flatMap { values("ring-cpu", $0) }.median
        row("CPU per rank (all threads), median", "all-reduce \(format(allReduceCPU * 1e3)) ms, ring probe \(format(ringCPU * 1e3)) ms")
        row("CPU-bound floor here, n * CPU / \(cores) cores", "\(format(n * allReduceCPU / Double(cores) * 1e3)) ms")
        row("result check (closed form, every rank)", verified ? "ok" : "FAILED")
    }

    private func row(_ label: String, _ value: String) {
        print("  " + label + String(repeating: " ", count: max(1, 48 - label.count)) + value)
    }

    private func format(_ value: Double) -> String { String(format: "%.2f", value) }
}
