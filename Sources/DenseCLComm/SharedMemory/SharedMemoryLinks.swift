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
    private let sequence: UInt32

    /// A heap payload of `byteCount` bytes.
    init(byteCount: Int) {
        bytes = .allocate(payload: byteCount)
        reader = nil
        sequence = 0
    }

    /// Message `sequence` of `reader`'s link, in its slot.
    init(slot bytes: UnsafeMutableRawBufferPointer, reader: InboxReader, sequence: UInt32) {
        self.bytes = bytes
        self.reader = reader
        self.sequence = sequence
    }

    deinit {
        if let reader { reader.release(sequence) } else { bytes.deallocate() }
    }
}

extension UnsafeMutableRawBufferPointer {
    /// `allocate(byteCount: max(n, 1))` trimmed back to `n` bytes (an empty payload still owns an allocation).
    fileprivate static func allocate(payload count: Int) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(count, 1), alignment: 64)
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    }
}

/// The reading side of one link: messages from `source` in this rank's inbox.
///
/// Slots may be given back out of order (a payload can outlive later ones); `released` advances over the
/// contiguous run of given-back slots only, so the source never overwrites a slot still being read.
final class InboxReader {
    let inbox: SharedInbox
    let source: Int
    private let written: UnsafeMutablePointer<UInt32>
    private let releasedWord: UnsafeMutablePointer<UInt32>
    /// Messages taken from the link.
    private(set) var received: UInt32 = 0
    /// Slots given back (published in `releasedWord`).
    private(set) var released: UInt32 = 0
    /// `done[m % slotCount]`: message m's payload has been released but an earlier one has not.
    private var done: [Bool]

    init(inbox: SharedInbox, source: Int) {
        self.inbox = inbox
        self.source = source
        written = inbox.word(at: inbox.link(from: source) - inbox.base)
        releasedWord = inbox.word(at: inbox.link(from: source) - inbox.base + 64)
        done = Array(repeating: false, count: inbox.slotCount)
    }

    /// Slots received and not yet given back.
    var held: Int { Int(received &- released) }

    /// Whether a message is waiting, and the `written` value that says so (for a futex wait on it).
    func poll() -> (ready: Bool, written: UInt32) {
        let value = densecl_load_acquire(written)
        return (value != received, value)
    }

    var writtenWord: UnsafeMutablePointer<UInt32> { written }

    /// Takes the next message; `poll()` must have said one is ready.
    func take() -> (header: UnsafeRawBufferPointer, payload: UnsafeMutableRawPointer, sequence: UInt32) {
        let sequence = received
        received &+= 1
        let slot = inbox.slot(Int(sequence % UInt32(inbox.slotCount)), from: source)
        return (UnsafeRawBufferPointer(start: slot, count: FrameHeader.byteCount), slot + FrameHeader.byteCount, sequence)
    }

    /// Gives message `sequence`'s slot back (with every earlier one already given back).
    func release(_ sequence: UInt32) {
        let count = UInt32(inbox.slotCount)
        done[Int(sequence % count)] = true
        var advanced = false
        while released != received, done[Int(released % count)] {
            done[Int(released % count)] = false
            released &+= 1
            advanced = true
        }
        if advanced {
            densecl_store_release(releasedWord, released)
            densecl_futex_wake_all(releasedWord)
        }
    }
}

/// The writing side of one link: this rank's ring of slots in `peer`'s inbox.
final class OutboxWriter {
    let inbox: SharedInbox
    let source: Int
    private let writtenWord: UnsafeMutablePointer<UInt32>
    let releasedWord: UnsafeMutablePointer<UInt32>
    private var written: UInt32

    init(peerInbox inbox: SharedInbox, source: Int) {
        self.inbox = inbox
        self.source = source
        writtenWord = inbox.word(at: inbox.link(from: source) - inbox.base)
        releasedWord = inbox.word(at: inbox.link(from: source) - inbox.base + 64)
        written = densecl_load_acquire(writtenWord)
    }

    /// Whether a slot is free, and the `released` value that says so (for a futex wait on it).
    func poll() -> (ready: Bool, released: UInt32) {
        let value = densecl_load_acquire(releasedWord)
        return (written &- value < UInt32(inbox.slotCount), value)
    }

    /// Copies `header` and `payload` into the next slot and publishes it; `poll()` must have said one is free.
    func publish(_ header: FrameHeader, payload: UnsafeRawBufferPointer) {
        let slot = inbox.slot(Int(written % UInt32(inbox.slotCount)), from: source)
        header.encode(into: UnsafeMutableRawBufferPointer(start: slot, count: FrameHeader.byteCount))
        if let from = payload.baseAddress, !payload.isEmpty {
            (slot + FrameHeader.byteCount).copyMemory(from: from, byteCount: payload.count)
        }
        written &+= 1
        densecl_store_release(writtenWord, written)
        densecl_futex_wake_all(writtenWord)
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
