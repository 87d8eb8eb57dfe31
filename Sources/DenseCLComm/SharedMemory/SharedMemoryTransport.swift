import CDenseCLSharedMemory
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sizes of a ``SharedMemoryTransport``'s inbox; every rank of a world must use the same.
public struct SharedMemoryTransportOptions: Sendable, Equatable {
    /// Slots per link, a power of two. Half of them are the link capacity the collectives see; the other half is room for
    /// received payloads that are still being read in place (beyond that, a receive copies the message out so
    /// that the sender always finds the capacity it was promised).
    /// The default, 8, gives the collectives' default window of 4.
    public var slotCount: Int = 8
    /// Largest payload of one message: at least the collectives' ``CollectiveOptions/partBytes``. An inbox
    /// takes `(worldSize - 1) · slotCount · slotBytes` of shared memory, reserved when it is created (8 MiB per
    /// peer with the defaults).
    public var slotBytes: Int = 1 << 20

    public init(slotCount: Int = 8, slotBytes: Int = 1 << 20) {
        self.slotCount = slotCount
        self.slotBytes = slotBytes
    }
}

/// The data plane through POSIX shared memory, for ranks that all run on one machine (the workers
/// `densecl-coordinator --local-workers` starts, or one worker per core group of a node).
///
/// Every rank creates one inbox (``SharedInbox``) and maps every peer's inbox: a message is one copy by the
/// sender into a slot of the receiver's inbox, read there in place by the receiver and accumulated into in
/// place by the ring collectives. Compared with ZeroMQ over IPC there is no I/O thread, no system call per
/// message besides a futex wake, and one copy per hop instead of the kernel's two.
///
/// Waits are futex waits on the link's counters, bounded by the caller's timeout; a peer whose process has
/// exited or whose transport is closed makes them fail with ``CommError/peerLost(peer:detail:)`` within
/// 100 ms. The inbox's name is removed as soon as every peer has mapped it (and at the latest when the
/// transport closes), so a crash after the ring formed leaves nothing in `/dev/shm`.
///
/// One transport serves one membership generation (its name carries the run, generation, rank and process).
/// Thread confinement: see ``Transport``; payloads must be released on the transport's thread too.
public final class SharedMemoryTransport: ConnectableTransport {
    public let rank: Int
    public let worldSize: Int
    public let options: SharedMemoryTransportOptions
    /// `shm:<name>`: the endpoint to publish to the other ranks.
    public let endpoint: String
    public var linkCapacity: Int { options.slotCount / 2 }
    public var maxPayloadBytes: Int { options.slotBytes }

    private let inbox: SharedInbox
    private var readers: [InboxReader?]
    /// `writers[peer]` writes into `peer`'s inbox (its `inbox`), mapped by ``connect(to:)``.
    private var writers: [OutboxWriter?]
    private var closed = false

    /// The prefix of ``endpoint``.
    public static let scheme = "shm:"

    /// Creates this rank's inbox. Call ``connect(to:)`` with every rank's endpoint before the first collective.
    public init(session: Session, rank: Int, worldSize: Int, options: SharedMemoryTransportOptions = .init())
        throws(CommError)
    {
        guard worldSize >= 1, (0..<worldSize).contains(rank) else {
            throw .invalidArgument("rank \(rank) outside a world of \(worldSize)")
        }
        // A power of two, so that `counter % slotCount` stays continuous when the 32-bit counters wrap.
        guard options.slotCount >= 2, options.slotCount & (options.slotCount - 1) == 0, options.slotBytes >= 4 else {
            throw .invalidArgument(
                "shared-memory transport: \(options.slotCount) slots of \(options.slotBytes) bytes (need a power of two "
                    + "of at least 2 slots and at least 4 bytes per slot)")
        }
        self.rank = rank
        self.worldSize = worldSize
        self.options = options
        let name = "/densecl-\(String(session.runID, radix: 16))-g\(session.generation)-r\(rank)-p\(getpid())"
        inbox = try SharedInbox.create(
            name: name, worldSize: worldSize, owner: rank, slotCount: options.slotCount, slotBytes: options.slotBytes)
        endpoint = Self.scheme + name
        readers = (0..<worldSize).map { [inbox] source in source == rank ? nil : InboxReader(inbox: inbox, source: source) }
        writers = Array(repeating: nil, count: worldSize)
        inbox.removeNameIfAllMapped()  // alone in its world, nobody will map it
    }

    deinit { close() }

    /// Maps every other rank's inbox. `endpoints[r]` is rank `r`'s ``endpoint``; this rank's own entry is ignored.
    public func connect(to endpoints: [String]) throws(CommError) {
        guard endpoints.count == worldSize else {
            throw .invalidArgument("\(endpoints.count) endpoints for a world of \(worldSize)")
        }
        for peer in 0..<worldSize where peer != rank && writers[peer] == nil {
            let endpoint = endpoints[peer]
            guard endpoint.hasPrefix(Self.scheme) else {
                throw .invalidArgument(
                    "rank \(peer) publishes '\(endpoint)', not a shared-memory inbox: every rank must use the same data plane")
            }
            let peerInbox = try SharedInbox.open(
                name: String(endpoint.dropFirst(Self.scheme.count)), worldSize: worldSize, owner: peer,
                slotCount: options.slotCount, slotBytes: options.slotBytes)
            writers[peer] = OutboxWriter(peerInbox: peerInbox, source: rank)
        }
        inbox.removeNameIfAllMapped()
    }

    /// Marks the inbox closed (peers waiting on this rank fail within 100 ms) and removes its name. The memory
    /// stays mapped until the last payload read from it is released.
    public func close() {
        guard !closed else { return }
        closed = true
        inbox.markClosed()
        inbox.removeName()
    }

    public func makePayload(byteCount: Int) throws(CommError) -> SharedMemoryPayload {
        SharedMemoryPayload(byteCount: byteCount)
    }

    public func send(_ header: FrameHeader, payload: SharedMemoryPayload, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        try send(header, borrowing: UnsafeRawBufferPointer(payload.bytes), to: peer, timeout: timeout)
    }

    /// Copies `bytes` into the peer's inbox before returning, so nothing stays borrowed.
    public func send(_ header: FrameHeader, borrowing bytes: UnsafeRawBufferPointer, to peer: Int, timeout: Duration)
        throws(CommError) -> Bool
    {
        let writer = try outbox(peer)
        guard bytes.count <= options.slotBytes else {
            throw .invalidArgument(
                "message of \(bytes.count) bytes for rank \(peer) exceeds the \(options.slotBytes)-byte shared-memory slot")
        }
        inbox.removeNameIfAllMapped()
        let free = try waitOnSharedWord(writer.words.freed, peer: peer, peerInbox: writer.inbox, timeout: timeout) {
            writer.poll()
        }
        guard free else { return false }
        var header = header
        header.frames = 1
        header.payloadBytes = UInt64(bytes.count)
        writer.publish(header, payload: bytes)
        return true
    }

    public func waitForBorrowedSends(timeout: Duration) throws(CommError) -> Bool { true }

    public func receive(from peer: Int, timeout: Duration) throws(CommError)
        -> (header: FrameHeader, payload: SharedMemoryPayload)?
    {
        guard (0..<worldSize).contains(peer), peer != rank, let reader = readers[peer] else {
            throw .invalidArgument("peer \(peer) is not another rank of a world of \(worldSize)")
        }
        guard let peerInbox = writers[peer]?.inbox else {
            throw .invalidArgument("rank \(rank) has no link to rank \(peer): call connect(to:) first")
        }
        if closed { throw .closed }
        inbox.removeNameIfAllMapped()
        let arrived = try waitOnSharedWord(reader.words.written, peer: peer, peerInbox: peerInbox, timeout: timeout) {
            reader.poll()
        }
        guard arrived else { return nil }
        let (headerBytes, payloadStart, slot) = try reader.take()
        let header: FrameHeader
        do throws(CommError) { header = try FrameHeader.decode(headerBytes) } catch {
            reader.release(slot, inPlace: false)
            throw error
        }
        guard Int(header.source) == peer, header.frames == 1, header.payloadBytes <= UInt64(options.slotBytes) else {
            reader.release(slot, inPlace: false)
            throw .protocolMismatch(
                peer: peer,
                detail: "slot holds a message from rank \(header.source) with \(header.frames) frame(s) of "
                    + "\(header.payloadBytes) bytes")
        }
        let bytes = UnsafeMutableRawBufferPointer(start: payloadStart, count: Int(header.payloadBytes))
        // Read in place while that leaves the sender its promised capacity; otherwise copy out and give the slot
        // back at once.
        if reader.heldInPlace < options.slotCount - linkCapacity {
            return (header, SharedMemoryPayload(slot: slot, bytes: bytes, reader: reader))
        }
        let copy = SharedMemoryPayload(byteCount: bytes.count)
        if let from = bytes.baseAddress, !bytes.isEmpty { copy.bytes.baseAddress!.copyMemory(from: from, byteCount: bytes.count) }
        reader.release(slot, inPlace: false)
        return (header, copy)
    }

    private func outbox(_ peer: Int) throws(CommError) -> OutboxWriter {
        guard (0..<worldSize).contains(peer), peer != rank else {
            throw .invalidArgument("peer \(peer) is not another rank of a world of \(worldSize)")
        }
        if closed { throw .closed }
        guard let writer = writers[peer] else {
            throw .invalidArgument("rank \(rank) has no link to rank \(peer): call connect(to:) first")
        }
        return writer
    }
}
