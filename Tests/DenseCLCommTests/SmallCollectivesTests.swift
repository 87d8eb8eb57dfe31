import DenseCLComm
import Foundation
import XCTest

/// All-gather, all-to-all, broadcast and barrier with threads as ranks, over the in-process transport and
/// over ZeroMQ on loopback and over shared memory.
final class SmallCollectivesTests: XCTestCase {
    static let worldSizes = [1, 2, 3, 5, 8]
    /// 4-byte parts make every block of more than one float a multi-part stream.
    static let partSizes = [4, 1 << 20]

    /// Rank r's all-gather block: `3r` bytes (rank 0's is empty), byte i = r·16 + i.
    static func gatherBlock(rank: Int) -> [UInt8] { (0..<3 * rank).map { UInt8(truncatingIfNeeded: rank * 16 + $0) } }

    /// The block rank s sends to rank d in all-to-all: `(s + 2d) % 5 · 3` bytes, byte i = s·64 + d·8 + i.
    static func exchangeBlock(from s: Int, to d: Int) -> [UInt8] {
        (0..<((s + 2 * d) % 5) * 3).map { UInt8(truncatingIfNeeded: s * 64 + d * 8 + $0) }
    }

    func testInProcess() throws {
        for n in Self.worldSizes {
            for partBytes in Self.partSizes { check(Cluster.inProcess(n), partBytes: partBytes) }
        }
    }

    func testZeroMQThreads() throws {
        for n in Self.worldSizes {
            for partBytes in Self.partSizes { check(try Cluster.zeroMQ(n), partBytes: partBytes) }
        }
    }

    func testSharedMemoryThreads() throws {
        for n in Self.worldSizes {
            for partBytes in Self.partSizes { check(try Cluster.sharedMemory(n), partBytes: partBytes) }
        }
    }

    private func check<T: Transport>(_ transports: [T], partBytes: Int) {
        let n = transports.count
        let context = "world \(n), parts of \(partBytes) bytes, \(T.self)"
        let floatsPerRank = 5
        let errors = runCollectives(
            transports, options: CollectiveOptions(partBytes: partBytes, window: 4, timeout: .seconds(10))
        ) { comm in
            let r = comm.rank
            // Variable-size byte blocks, in rank order.
            let gathered = try Self.gatherBlock(rank: r).withUnsafeBytes { try comm.allGather($0) }
            for origin in 0..<n where gathered[origin] != Self.gatherBlock(rank: origin) {
                throw CommError.invalidArgument("\(context): rank \(r) got a wrong all-gather block from \(origin)")
            }
            // Fixed-size floats into a preallocated output.
            let mine = (0..<floatsPerRank).map { Float(r * 100 + $0) }
            var output = [Float](repeating: -1, count: n * floatsPerRank)
            try mine.withUnsafeBufferPointer { input in
                try output.withUnsafeMutableBufferPointer { try comm.allGather(input, into: $0) }
            }
            let expected = (0..<n).flatMap { s in (0..<floatsPerRank).map { Float(s * 100 + $0) } }
            if output != expected {
                throw CommError.invalidArgument("\(context): rank \(r) got \(output) from the float all-gather")
            }
            // All-to-all with sizes that differ per pair (some empty).
            let outgoing = (0..<n).map { Self.exchangeBlock(from: r, to: $0) }
            let incoming = try Self.withBuffers(outgoing) { try comm.allToAll($0) }
            for s in 0..<n where incoming[s] != Self.exchangeBlock(from: s, to: r) {
                throw CommError.invalidArgument("\(context): rank \(r) got a wrong all-to-all block from \(s)")
            }
            // Broadcast from every root: a fixed-size float buffer and a variable byte block.
            for root in 0..<n {
                var values = r == root ? (0..<9).map { Float(root * 10 + $0) } : [Float](repeating: 0, count: 9)
                try values.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
                if values != (0..<9).map({ Float(root * 10 + $0) }) {
                    throw CommError.invalidArgument("\(context): rank \(r) got \(values) broadcast from \(root)")
                }
                let message = try comm.broadcast(r == root ? Array("from \(root)".utf8) : [], root: root)
                if message != Array("from \(root)".utf8) {
                    throw CommError.invalidArgument("\(context): rank \(r) got a wrong byte broadcast from \(root)")
                }
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [], context)
    }

    /// No rank may leave the barrier before every rank has entered it. Ranks enter at staggered times
    /// (rank r sleeps r·30 ms) and count themselves in before the barrier; after it each checks the count.
    func testBarrierWaitsForEveryRank() {
        let n = 4
        let entered = RankValues<Bool>(n)
        let errors = runCollectives(Cluster.inProcess(n), options: CollectiveOptions(timeout: .seconds(10))) { comm in
            Thread.sleep(forTimeInterval: 0.03 * Double(comm.rank))
            entered[comm.rank] = true
            try comm.barrier()
            let missing = (0..<n).filter { entered[$0] != true }
            if !missing.isEmpty {
                throw CommError.invalidArgument("rank \(comm.rank) left the barrier before ranks \(missing) entered")
            }
        }
        XCTAssertEqual(errors.compactMap { $0 }, [])
    }

    /// Pointers into a copy of `blocks` that stay valid during `body`.
    static func withBuffers<R>(_ blocks: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        let flat = blocks.flatMap { $0 }
        var offsets = [0]
        for block in blocks { offsets.append(offsets.last! + block.count) }
        return try flat.withUnsafeBytes { raw in
            try body((0..<blocks.count).map { UnsafeRawBufferPointer(rebasing: raw[offsets[$0]..<offsets[$0 + 1]]) })
        }
    }
}
