import ArgumentParser
import Foundation

/// `densecl bench step --workers N`: data-parallel scaling on one machine. Runs, one after the other,
/// 1 process x 1 thread, N processes x 1 thread at once, and 1 process x N threads, each a child `densecl bench
/// step --json` of this executable, and reports the N-process throughput against N times the single-process one.
///
/// The N processes do not communicate (no all-reduce, shuffle-BN or queue traffic): the figure is an upper bound
/// of what the distributed runtime can reach on this machine.
struct StepScaling {
    let command: BenchStep

    struct Child: Decodable {
        var img_per_s: Double
        var step_s: Double
        var cpu_s: Double
        var peak_rss_mb: Double
    }

    func run() throws {
        let n = command.workers
        let single = try launch(processes: 1, threads: 1)[0]
        let parallel = try launch(processes: n, threads: 1)
        let threaded = try launch(processes: 1, threads: n)[0]
        let total = parallel.reduce(0) { $0 + $1.img_per_s }
        let efficiency = total / (Double(n) * single.img_per_s)
        if command.json {
            let report: [String: Double] = [
                "workers": Double(n), "single_img_per_s": single.img_per_s, "workers_img_per_s": total,
                "threads_img_per_s": threaded.img_per_s, "scaling_efficiency": efficiency,
                "workers_over_threads": total / threaded.img_per_s,
            ]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("\(command.arch) \(command.imageSize)px batch \(command.batch) per process, \(command.mode); median of \(command.steps) steps per process")
        print("  (the \(n) processes do not communicate: an upper bound of data-parallel scaling)")
        print(String(format: "  1 process  x 1 thread : %8.2f img/s", single.img_per_s))
        let each = parallel.map { String(format: "%.2f", $0.img_per_s) }.joined(separator: " + ")
        print(String(format: "  %d processes x 1 thread : %8.2f img/s ", n, total) + "(\(each)), " + String(format: "%.0f%% of %d x 1 process", 100 * efficiency, n))
        print(String(format: "  1 process  x %d threads: %8.2f img/s; %d processes / 1 process of %d threads: %.2fx", n, threaded.img_per_s, n, n, total / threaded.img_per_s))
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
                throw ValidationError("bench step child \(index) exited with status \(child.0.terminationStatus)")
            }
            do {
                return try JSONDecoder().decode(Child.self, from: data)
            } catch {
                throw ValidationError("bench step child \(index) printed no result: \(error)")
            }
        }
    }
}
