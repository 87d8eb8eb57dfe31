import CDenseCLSharedMemory
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The payload type of ``SharedMemoryTransport``: either a received message read in place from its slot of the
/// inbox (the slot goes back to the sender when the payload is released), or a heap buffer.
public final class SharedMemoryPayload: TransportPayload {
    public let bytes: UnsafeMutableRawBufferPointer
    private let reader: InboxReader?
    private let slot: Int

    /// A heap payload of `byteCount` bytes.
    init(byteCount: Int) {
        bytes = .allocate(payload: byteCount)
        reader = nil
        slot = 0
    }

    /// The message in `slot` of `reader`'s link, read in place.
    init(slot: Int, bytes: UnsafeMutableRawBufferPointer, reader: InboxReader) {
        self.bytes = bytes
        self.reader = reader
        self.slot = slot
        reader.keepInPlace()
    }

    deinit {
        if let reader { reader.release(slot, inPlace: true) } else { bytes.deallocate() }
    }
}

extension UnsafeMutableRawBufferPointer {
    /// `allocate(byteCount: max(n, 1))` trimmed back to `n` bytes (an empty payload still owns an allocation).
    fileprivate static func allocate(payload count: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    }
}

/// The words at the start of one link (see ``SharedInbox``): the source's publish counter, the owner's free
/// counter, a state word per slot (1 while the slot holds a message the owner has not given back) and the
/// order ring (`order[m % slotCount]` is the slot of message m).
struct LinkWords {
    let written: UnsafeMutablePointer<UInt32>
    let freed: UnsafeMutablePointer<UInt32>
    let state: UnsafeMutablePointer<UInt32>
    let order: UnsafeMutablePointer<UInt32>

    init(inbox: SharedInbox, source: Int) {
        let link = inbox.link(from: source)
        written = link.assumingMemoryBound(to: UInt32.self)
        freed = (link + 64).assumingMemoryBound(to: UInt32.self)
        state = (link + 128).assumingMemoryBound(to: UInt32.self)
        order = (link + 128 + 4 * inbox.slotCount).assumingMemoryBound(to: UInt32.self)
    }

    /// Bytes of these words, rounded up to whole cache lines.
    static func byteCount(slotCount: Int) -> Int { 128 + (8 * slotCount + 63) / 64 * 64 }
}

/// The reading side of one link: messages from `source` in this rank's inbox.
///
/// Messages are read in the order they were published, but their slots may be given back in any order: a
/// slot is free again as soon as its payload is released, whatever older payloads are still held.
final class InboxReader {
    let inbox: SharedInbox
    let source: Int
    let words: LinkWords
    /// Messages taken from the link.
    private(set) var received: UInt32 = 0
    /// Payloads read in place and not yet released.
    private(set) var heldInPlace = 0

    init(inbox: SharedInbox, source: Int) {
        self.inbox = inbox
        self.source = source
        words = LinkWords(inbox: inbox, source: source)
    }

    /// Whether a message is waiting, and the `written` value that says so (for a futex wait on it).
    func poll() -> (ready: Bool, written: UInt32) {
        let value = densecl_load_acquire(words.written)
        return (value != received, value)
    }

    /// Takes the next message; `poll()` must have said one is ready.
    /// - Throws: ``CommError/protocolMismatch(peer:detail:)`` if the order ring names no slot of this link.
    func take() throws(CommError) -> (header: UnsafeRawBufferPointer, payload: UnsafeMutableRawPointer, slot: Int) {
        let slot = Int(words.order[Int(received % UInt32(inbox.slotCount))])
        guard slot < inbox.slotCount else {
            throw .protocolMismatch(peer: source, detail: "message \(received) names slot \(slot) of \(inbox.slotCount)")
        }
        received &+= 1
        let start = inbox.slot(slot, from: source)
        return (UnsafeRawBufferPointer(start: start, count: FrameHeader.byteCount), start + FrameHeader.byteCount, slot)
    }

    /// Counts a payload that will be read in place (given back through ``release(_:inPlace:)``).
    func keepInPlace() { heldInPlace += 1 }

    /// Gives `slot` back to the source.
    func release(_ slot: Int, inPlace: Bool) {
        if inPlace { heldInPlace -= 1 }
        densecl_store_release(words.state + slot, 0)
        _ = densecl_fetch_add(words.freed, 1)
        densecl_futex_wake_all(words.freed)
    }
}

/// The writing side of one link: this rank's slots in `peer`'s inbox.
final class OutboxWriter {
    let inbox: SharedInbox
    let words: LinkWords
    let source: Int
    /// Messages published so far; each took a slot, and the owner's `freed` counts the slots given back.
    private var written: UInt32
    /// Where the search for a free slot starts.
    private var hint = 0

    init(peerInbox inbox: SharedInbox, source: Int) {
        self.inbox = inbox
        self.source = source
        words = LinkWords(inbox: inbox, source: source)
        written = densecl_load_acquire(words.written)
    }

    /// Whether a slot is free, and the `freed` value that says so (for a futex wait on it).
    func poll() -> (ready: Bool, freed: UInt32) {
        let value = densecl_load_acquire(words.freed)
        return (written &- value < UInt32(inbox.slotCount), value)
    }

    /// Copies `header` and `payload` into a free slot and publishes it; `poll()` must have said one is free.
    func publish(_ header: FrameHeader, payload: UnsafeRawBufferPointer) {
        let count = inbox.slotCount
        var slot = hint
        // `freed` was loaded with acquire ordering after the owner cleared the slot's state, so the free slot
        // the count promises is visible here.
        while densecl_load_acquire(words.state + slot) != 0 { slot = (slot + 1) % count }
        hint = (slot + 1) % count
        words.state[slot] = 1
        let start = inbox.slot(slot, from: source)
        header.encode(into: UnsafeMutableRawBufferPointer(start: start, count: FrameHeader.byteCount))
        if let from = payload.baseAddress, !payload.isEmpty {
            (start + FrameHeader.byteCount).copyMemory(from: from, byteCount: payload.count)
        }
        words.order[Int(written % UInt32(count))] = UInt32(slot)
        written &+= 1
        densecl_store_release(words.written, written)
        densecl_futex_wake_all(words.written)
    }
}

/// Sleeps on a shared word until `ready` says so, for at most `timeout`, in slices short enough to notice
/// that the peer's process has gone or has closed its transport.
///
/// - Parameters:
///   - ready: reads the word and says whether the wait is over, returning the value it read.
/// - Returns: `false` when `timeout` passed.
/// - Throws: ``CommError/peerLost(peer:detail:)`` when the peer's process no longer exists or its transport
///   is closed.
func waitOnSharedWord(
    _ word: UnsafeMutablePointer<UInt32>, peer: Int, peerInbox: SharedInbox, timeout: Duration,
    ready: () -> (Bool, UInt32)
) throws(CommError) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    let slice = Duration.milliseconds(100)
    while true {
        let (done, value) = ready()
        if done { return true }
        if peerInbox.isClosed { throw .peerLost(peer: peer, detail: "its shared-memory transport is closed") }
        let remaining = clock.now.duration(to: deadline)
        if remaining <= .zero { return false }
        let wait = min(remaining, slice)
        let (seconds, attoseconds) = wait.components
        let status = densecl_futex_wait(word, value, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        if status == ETIMEDOUT, kill(peerInbox.ownerPID, 0) != 0, errno == ESRCH {
            throw .peerLost(peer: peer, detail: "its process \(peerInbox.ownerPID) has exited")
        }
    }
}
