import ArgumentParser
import DenseCLComm
import DenseCLKernels
import DenseCLWorker
import Foundation

/// `densecl-worker`: joins a coordinator and trains its share of every step until the run ends.
@main
struct WorkerCommand: ParsableCommand {
    /// OpenBLAS's kernel set is chosen when the library loads: relaunch first if this CPU has a faster one.
    static func main() {
        OpenBLASKernelChoice.relaunchWithPreferredKernels()
        main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "densecl-worker", abstract: "A DenseCL training worker (see docs/distributed.md).")

    @Option(help: "The coordinator's control endpoint.")
    var coordinator = "tcp://127.0.0.1:5555"
    @Option(help: "Threads for BLAS and the kernels.")
    var threads = 1
    @Option(help: "This worker's name (unique per run; a restarted worker reuses it).")
    var name = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(
        name: .customLong("data-plane"),
        help: """
            Where this worker's data inbox (all-reduce, shuffle-BN) listens: auto (TCP on this machine's address \
            that routes to the coordinator; loopback when the coordinator is local), ipc (Unix-domain sockets, all \
            workers on this machine), shm (shared memory, all workers on this machine: the fastest), or an address \
            of this machine that every other worker can reach.
            """)
    var dataPlane = "auto"
    @Option(name: .customLong("coordinator-timeout"), help: "Seconds without the coordinator before giving up.")
    var coordinatorTimeout = 10.0
    @Option(name: .customLong("debug-nan-step"), help: .hidden)
    var nanSteps: [Int] = []

    func run() throws {
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        do {
            let binding = try DataPlaneBinding.parse(dataPlane, coordinator: coordinator)
            let service = try WorkerService(
                coordinator: coordinator, name: name, threads: threads, dataPlane: binding,
                coordinatorTimeout: .seconds(coordinatorTimeout), nanSteps: Set(nanSteps), log: log)
            try service.run()
        } catch TrainingError.finished {
            log("\(name): run finished")
        } catch {
            log("\(name): \(error)")
            throw ExitCode(1)
        }
    }
}
