import DenseCLComm
import Foundation
import XCTest

/// Collectives between separate processes over ZeroMQ on 127.0.0.1: each rank is a `densecl comm-rank`
/// process (the hidden helper subcommand), rendezvousing through a ``ControlChannel`` owned by the test.
/// Needs the `densecl` executable next to the test bundle (`swift build -c release` builds it).
final class MultiProcessTests: XCTestCase {
    struct RankOutcome {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// World sizes 1 through 8: every rank all-reduces rank-encoded buffers of 0, 1, 7, 1000 and 100000
    /// floats with large and small parts and checks the closed-form mean (see `RankPattern` in
    /// `CommRankCommand.swift`, the same formula as ``RankEncoded``), then an all-gather.
    func testAllReduceAcrossProcessesForWorldSizes1To8() throws {
        try checkSelfTest(worldSizes: 1...8, extra: [])
    }

    /// Every rank of each world runs the `selftest` scenario (with `extra` arguments) and passes its 11 checks.
    private func checkSelfTest(worldSizes: ClosedRange<Int>, extra: [String]) throws {
        for worldSize in worldSizes {
            let outcomes = try runRanks(worldSize: worldSize) { _ in ["--scenario", "selftest", "--timeout-ms", "20000"] + extra }
            for (rank, outcome) in outcomes.enumerated() {
                XCTAssertEqual(outcome.status, 0, "world \(worldSize) rank \(rank) \(extra): \(outcome.stderr)")
                let passed = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("selftest ok") }
                XCTAssertEqual(passed.count, 11, "world \(worldSize) rank \(rank) \(extra) passed only:\n\(outcome.stdout)")
            }
        }
    }

    /// Rank 2 of 3 joins the ring and then stays silent; ranks 0 and 1 must exit with a timeout error
    /// (status 3) within a few of their 300 ms timeouts instead of hanging.
    func testSilentNeighbourProcessBecomesTimeout() throws {
        let start = ContinuousClock.now
        let outcomes = try runRanks(worldSize: 3, waitFor: [0, 1]) { rank in
            rank == 2
                ? ["--scenario", "silent", "--timeout-ms", "10000"]
                : ["--scenario", "selftest", "--timeout-ms", "300"]
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(8))
        for rank in 0..<2 {
            XCTAssertEqual(outcomes[rank].status, 3, "rank \(rank): \(outcomes[rank].stderr)")
            XCTAssertTrue(outcomes[rank].stderr.contains("timeout"), outcomes[rank].stderr)
        }
    }

    /// The all-reduce matrix across processes over shared memory, world sizes 2 through 4.
    func testAllReduceAcrossProcessesOverSharedMemory() throws {
        try checkSelfTest(worldSizes: 2...4, extra: ["--shm"])
    }

    /// Over shared memory, a rank whose process exits without closing anything is reported as lost by its
    /// neighbours within a fraction of their 20 s timeout, not after it.
    func testExitedProcessIsLostOverSharedMemory() throws {
        let start = ContinuousClock.now
        let outcomes = try runRanks(worldSize: 3) { rank in
            (rank == 2 ? ["--scenario", "vanish"] : ["--scenario", "survive"]) + ["--timeout-ms", "20000", "--shm"]
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(15))
        XCTAssertEqual(outcomes[2].status, 0, outcomes[2].stderr)
        for rank in 0..<2 {
            XCTAssertEqual(outcomes[rank].status, 1, "rank \(rank): \(outcomes[rank].stderr)")
            XCTAssertTrue(outcomes[rank].stderr.contains("lost"), "rank \(rank): \(outcomes[rank].stderr)")
        }
    }

    /// Spawns `worldSize` rank processes, runs the rendezvous, waits (at most 60 s) for the ranks in
    /// `waitFor` (all by default) and terminates the others.
    private func runRanks(
        worldSize: Int, waitFor: [Int]? = nil, arguments: (Int) -> [String]
    ) throws -> [RankOutcome] {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("densecl")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            XCTFail("\(executable.path) is missing: build the package first (swift build -c release)")
            return []
        }
        let runID = UInt64.random(in: 1...UInt64(UInt32.max))
        let context = try ZMQContext()
        let control = try ControlChannel.coordinator(context: context, options: ControlOptions(runID: runID))
        defer { control.close() }

        var ranks: [(process: Process, stdout: Pipe, stderr: Pipe)] = []
        defer { for rank in ranks where rank.process.isRunning { rank.process.terminate() } }
        for rank in 0..<worldSize {
            let process = Process()
            process.executableURL = executable
            process.arguments = [
                "comm-rank", "--coordinator", control.endpoint, "--rank", "\(rank)", "--world", "\(worldSize)",
                "--run-id", "\(runID)",
            ] + arguments(rank)
            let stdout = Pipe()
            let stderr = Pipe()
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            ranks.append((process, stdout, stderr))
        }
        try Rendezvous.gatherAddressBook(on: control, worldSize: worldSize, generation: 1, timeout: .seconds(30))

        let deadline = ContinuousClock.now + .seconds(60)
        let awaited = waitFor ?? Array(0..<worldSize)
        while awaited.contains(where: { ranks[$0].process.isRunning }) {
            guard ContinuousClock.now < deadline else {
                XCTFail("rank processes still running after 60 s: a collective hung")
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        for rank in ranks where rank.process.isRunning {
            rank.process.terminate()
            rank.process.waitUntilExit()
        }
        return ranks.map { rank in
            RankOutcome(
                status: rank.process.terminationStatus,
                stdout: String(decoding: rank.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                stderr: String(decoding: rank.stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
    }
}
