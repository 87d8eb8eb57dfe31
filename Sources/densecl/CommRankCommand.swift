import ArgumentParser
import DenseCLComm
import Foundation

/// `densecl comm-rank` (hidden): one rank of a multi-process collectives run on this machine. Spawned by
/// `densecl bench allreduce` and by the comm tests; joins the spawner's control channel, exchanges data
/// endpoints, then runs one scenario and prints `key value` lines on standard output.
struct CommRank: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comm-rank", abstract: "One rank of a multi-process collectives run (internal).",
        shouldDisplay: false)

    enum Scenario: String, ExpressibleByArgument {
        /// All-reduce of rank-encoded buffers of sizes 0, 1, 7, 1000, 100000, checked against the closed form.
        case selftest
        /// Join the ring, then never take part (for timeout tests); exits after `--timeout-ms`.
        case silent
        /// Link probe and timed all-reduces (`densecl bench allreduce`).
        case bench
        /// Join the ring, take part in two barriers, then exit at once without closing anything (a crash, for
        /// the shared-memory transport's dead-peer detection).
        case vanish
        /// Three barriers: the partner of `vanish`, whose third barrier finds the vanished rank gone.
        case survive
    }

    @Option(help: "The spawner's control endpoint.") var coordinator: String
    @Option var rank: Int
    @Option var world: Int
    @Option var runID: UInt64 = 1
    @Option var scenario: Scenario
    @Option(help: "bench: megabytes (10^6 bytes) to all-reduce.") var mb: Double = 100
    @Option(help: "bench: timed all-reduces.") var iterations: Int = 5
    @Option var partBytes: Int = 1 << 20
    @Option var window: Int = 4
    @Option(help: "Bound on every wait, in milliseconds.") var timeoutMs: Int = 30_000
    @Flag(help: "Data inbox on a Unix-domain socket (ipc://) instead of TCP on 127.0.0.1.") var ipc = false
    @Flag(help: "Data plane through POSIX shared memory instead of ZeroMQ.") var shm = false

    func run() throws {
        do {
            try runScenario()
        } catch let error as CommError {
            FileHandle.standardError.write(Data("comm-rank \(rank): \(error)\n".utf8))
            if case .timeout = error { throw ExitCode(3) }
            throw ExitCode.failure
        }
    }

    private func runScenario() throws {
        ReceiveAllocationTuning.keepLargeBlocksInHeap()
        let context = try ZMQContext()
        let control = try ControlChannel.worker(
            context: context, connect: coordinator, identity: PeerID("rank-\(rank)"),
            options: ControlOptions(runID: runID))
        defer { control.close() }
        if shm {
            try run(
                over: SharedMemoryTransport(
                    session: Session(runID: runID, generation: 1), rank: rank, worldSize: world,
                    // Slots: the next power of two of at least 2 x window (half of them are the link capacity).
                    options: SharedMemoryTransportOptions(
                        slotCount: max(8, 1 << (Int.bitWidth - (2 * window - 1).leadingZeroBitCount)),
                        slotBytes: max(1 << 20, partBytes))),
                control: control)
        } else {
            try run(
                over: ZeroMQTransport(
                    context: context, rank: rank, worldSize: world,
                    options: ZeroMQTransportOptions(
                        highWaterMark: max(8, window), binding: ipc ? .ipc : .tcp(host: "127.0.0.1"))),
                control: control)
        }
    }

    private func run<T: ConnectableTransport>(over transport: T, control: ControlChannel) throws {
        defer { transport.close() }
        let endpoints = try Rendezvous.join(
            on: control, rank: rank, endpoint: transport.endpoint, generation: 1, timeout: .seconds(60))
        try transport.connect(to: endpoints)
        let options = CollectiveOptions(partBytes: partBytes, window: window, timeout: .milliseconds(timeoutMs))
        let comm = try Collectives(transport: transport, session: Session(runID: runID, generation: 1), options: options)
        switch scenario {
        case .selftest: try selfTest(transport: transport, options: options)
        case .silent: Thread.sleep(forTimeInterval: Double(timeoutMs) / 1000)
        case .bench: try benchmark(comm)
        case .vanish:
            try comm.barrier()
            try comm.barrier()
            Foundation.exit(0)
        case .survive:
            for _ in 0..<3 { try comm.barrier() }
        }
    }

    /// The all-reduce matrix of the in-process tests, over this process's sockets: one communicator per
    /// (size, part size), each its own generation so that their messages can never be confused.
    private func selfTest<T: Transport>(transport: T, options: CollectiveOptions) throws {
        var generation: UInt32 = 1
        for count in [0, 1, 7, 1000, 100_000] {
            for partBytes in [1 << 20, count >= 100_000 ? 4096 : 64] {
                generation += 1
                var small = options
                small.partBytes = partBytes
                let comm = try Collectives(
                    transport: transport, session: Session(runID: runID, generation: generation), options: small)
                var values = RankPattern.input(rank: rank, count: count)
                try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, operation: .mean) }
                if let bad = RankPattern.firstMismatch(values, worldSize: world) {
                    FileHandle.standardError.write(Data(
                        "comm-rank \(rank): count \(count), parts of \(partBytes) bytes: element \(bad.index) is \(bad.value), expected \(bad.expected)\n".utf8))
                    throw ExitCode.failure
                }
                print("selftest ok count=\(count) part-bytes=\(partBytes)")
            }
        }
        let comm = try Collectives(transport: transport, session: Session(runID: runID, generation: generation + 1))
        let names = try comm.allGather(Array("rank \(rank)".utf8))
        guard names == (0..<world).map({ Array("rank \($0)".utf8) }) else {
            FileHandle.standardError.write(Data("comm-rank \(rank): all-gather returned the wrong blocks\n".utf8))
            throw ExitCode.failure
        }
        print("selftest ok all-gather")
    }

    /// Warm-up, link probe (rank 0 -> 1), then `iterations` all-reduces each started after a barrier.
    private func benchmark<T: Transport>(_ comm: Collectives<T>) throws {
        // Locals: reading an @Option property in a loop costs a generic-metadata lookup per access.
        let (rank, world, iterations) = (self.rank, self.world, self.iterations)
        let count = Int(mb * 1e6) / 4
        // Twice the size: the ring probe streams up to 2(n-1)/n of the buffer from it.
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 2 * count)
        defer { buffer.deallocate() }
        // x_r[i] = (i mod 4096) + r: every partial sum is exact, the mean is (i mod 4096) + (n-1)/2.
        for i in 0..<2 * count { buffer[i] = Float(i % 4096) + Float(rank) }
        let data = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
        let plan = RingAllReducePlan(count: count, worldSize: world, rank: rank, partElements: comm.options.partBytes / 4)
        try comm.allReduce(data, plan: plan)
        let half = Float(world - 1) / 2
        let exact = (0..<count).allSatisfy { data[$0] == Float($0 % 4096) + half }
        print("verify \(exact ? "ok" : "FAILED")")

        if world >= 2 {
            for _ in 0..<2 {
                let seconds = try comm.probeLink(
                    byteCount: count * 4, from: 0, to: 1, source: UnsafeRawBufferPointer(buffer))
                if let seconds { print("link-seconds \(seconds.inSeconds)") }
            }
        }
        // What each rank sends in a ring all-reduce: 2(n-1)/n of the buffer.
        let ringBytes = 2 * (world - 1) * (count / world) * 4
        // CPU time (this process, all threads) tells the cost independently of what else the host runs.
        for _ in 0..<2 {
            let cpu = BenchClock.processCPU.now()
            let seconds = try comm.probeRing(byteCount: ringBytes, source: UnsafeRawBufferPointer(buffer))
            print("ring-seconds \(seconds.inSeconds)")
            print("ring-cpu \(BenchClock.processCPU.now() - cpu)")
        }
        for _ in 0..<iterations {
            try comm.barrier()
            let cpu = BenchClock.processCPU.now()
            let start = ContinuousClock.now
            try comm.allReduce(data, plan: plan)
            print("allreduce-seconds \(start.duration(to: .now).inSeconds)")
            print("allreduce-cpu \(BenchClock.processCPU.now() - cpu)")
        }
        try comm.barrier()
    }
}

/// Rank-encoded inputs with an exact closed-form mean (see the comm tests' `RankEncoded`): rank r holds
/// `i + r·2^17`; all partial sums are integers below 2^24, so the mean is `i + 2^16·(n-1)` up to the one
/// rounding of the final scale by 1/n (allowed: 2^-22 relative).
enum RankPattern {
    static func input(rank: Int, count: Int) -> [Float] {
        (0..<count).map { Float($0) + Float(rank) * 131_072 }
    }

    static func firstMismatch(_ values: [Float], worldSize: Int) -> (index: Int, value: Float, expected: Double)? {
        for (i, value) in values.enumerated() {
            let expected = Double(i) + 65_536 * Double(worldSize - 1)
            if abs(Double(value) - expected) > expected * 0x1p-22 { return (i, value, expected) }
        }
        return nil
    }
}

extension Duration {
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
