import CDenseCLSharedMemory
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One rank's inbox in POSIX shared memory: a ring of message slots per source rank, which the sources write
/// and this rank reads in place.
///
/// Layout (every offset a multiple of 64 bytes, so that the counters the two sides write sit on cache lines of
/// their own):
///
///     0    header: magic, layout version, world size, owner rank, slots per link, slot payload bytes, owner pid
///     64   mapped: how many other ranks have mapped the inbox (the owner removes the name when all have)
///     68   closed: set by the owner when it closes its transport
///     128  the links of the other ranks in rank order (`linkStride` bytes each)
///
/// A link: `written` (messages the source has published, at +0), `freed` (slots the owner has given back, at
/// +64), a state word per slot (1 while it holds a message not yet given back), the order ring (`order[m %
/// slotCount]` is the slot of message m), then `slotCount` slots of `slotStride` bytes: the 64-byte
/// ``FrameHeader`` followed by up to `slotBytes` payload bytes. Both counters only grow (modulo 2³²). The
/// source writes only while `written - freed < slotCount`, into a slot whose state is 0, and publishes it by
/// storing `written + 1` with release ordering; the owner reads messages in order after loading `written`
/// with acquire ordering, and gives each slot back, in any order, by clearing its state and incrementing
/// `freed`. Waits on either counter are futex waits on the shared word, woken by the other side after each
/// change.
final class SharedInbox {
    static let magic: UInt64 = 0x3130_4D48_534C_4344  // "DCLSHM01" little-endian
    static let layoutVersion: UInt32 = 1
    static let headerBytes = 128
    /// Offsets of the two shared words of the header.
    private static let mappedOffset = 64, closedOffset = 68

    /// The fields at the start of the header, which an opening rank checks against what it expects.
    private struct Header: Equatable {
        var magic: UInt64 = SharedInbox.magic
        var version: UInt32 = SharedInbox.layoutVersion
        var worldSize: Int
        var owner: Int
        var slotCount: Int
        var slotBytes: Int

        init(worldSize: Int, owner: Int, slotCount: Int, slotBytes: Int) {
            self.worldSize = worldSize
            self.owner = owner
            self.slotCount = slotCount
            self.slotBytes = slotBytes
        }

        init(loading base: UnsafeRawPointer) {
            magic = UInt64(littleEndian: base.load(fromByteOffset: 0, as: UInt64.self))
            version = UInt32(littleEndian: base.load(fromByteOffset: 8, as: UInt32.self))
            worldSize = Int(UInt32(littleEndian: base.load(fromByteOffset: 12, as: UInt32.self)))
            owner = Int(UInt32(littleEndian: base.load(fromByteOffset: 16, as: UInt32.self)))
            slotCount = Int(UInt32(littleEndian: base.load(fromByteOffset: 20, as: UInt32.self)))
            slotBytes = Int(UInt64(littleEndian: base.load(fromByteOffset: 24, as: UInt64.self)))
        }

        func store(to base: UnsafeMutableRawPointer) {
            base.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt64.self)
            base.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt32.self)
            base.storeBytes(of: UInt32(worldSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            base.storeBytes(of: UInt32(owner).littleEndian, toByteOffset: 16, as: UInt32.self)
            base.storeBytes(of: UInt32(slotCount).littleEndian, toByteOffset: 20, as: UInt32.self)
            base.storeBytes(of: UInt64(slotBytes).littleEndian, toByteOffset: 24, as: UInt64.self)
        }

        /// The process that created the inbox, after the fields above.
        static let ownerPIDOffset = 32
    }

    let name: String
    let worldSize: Int
    let owner: Int
    let slotCount: Int
    let slotBytes: Int
    let slotStride: Int
    let linkStride: Int
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    /// The process that created the inbox (to tell a dead peer from a slow one).
    let ownerPID: pid_t

    private var unlinked: Bool

    static func byteCount(worldSize: Int, slotCount: Int, slotBytes: Int) -> Int {
        headerBytes + (worldSize - 1) * linkStride(slotCount: slotCount, slotBytes: slotBytes)
    }

    static func slotStride(slotBytes: Int) -> Int { FrameHeader.byteCount + (slotBytes + 63) / 64 * 64 }

    static func linkStride(slotCount: Int, slotBytes: Int) -> Int {
        LinkWords.byteCount(slotCount: slotCount) + slotCount * slotStride(slotBytes: slotBytes)
    }

    private init(
        name: String, worldSize: Int, owner: Int, slotCount: Int, slotBytes: Int, base: UnsafeMutableRawPointer,
        ownerPID: pid_t, isOwner: Bool
    ) {
        self.name = name
        self.worldSize = worldSize
        self.owner = owner
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        slotStride = Self.slotStride(slotBytes: slotBytes)
        linkStride = Self.linkStride(slotCount: slotCount, slotBytes: slotBytes)
        self.base = base
        byteCount = Self.byteCount(worldSize: worldSize, slotCount: slotCount, slotBytes: slotBytes)
        self.ownerPID = ownerPID
        unlinked = !isOwner  // only the owner removes the name
    }

    /// Creates and maps a new inbox named `name` (a POSIX shared-memory name, `/` then no other slash).
    static func create(name: String, worldSize: Int, owner: Int, slotCount: Int, slotBytes: Int) throws(CommError)
        -> SharedInbox
    {
        let size = Self.byteCount(worldSize: worldSize, slotCount: slotCount, slotBytes: slotBytes)
        var fd = densecl_shm_open(name, 1)
        if fd < 0, errno == EEXIST {
            // The name carries this process's id: it was left by a crashed process that had the same id (ids are
            // reused), in the same run, generation and rank. Nobody else can be using it.
            _ = densecl_shm_unlink(name)
            fd = densecl_shm_open(name, 1)
        }
        guard fd >= 0 else { throw Self.failure("shm_open(\(name), create)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let error = Self.failure("ftruncate(\(name), \(size) bytes)")
            _ = densecl_shm_unlink(name)
            throw error
        }
        // Reserve every page now: a full tmpfs then fails here, with a message, instead of killing the process
        // with SIGBUS at the first write to a page it cannot back.
        #if os(Linux)
        let reserved = posix_fallocate(fd, 0, off_t(size))
        #else
        let reserved: Int32 = 0
        #endif
        guard reserved == 0 else {
            _ = densecl_shm_unlink(name)
            if reserved == ENOSPC {
                throw .system(
                    call: "posix_fallocate(\(name), \(size) bytes)", errno: reserved,
                    message: "the shared-memory file system (/dev/shm) has no room for \(size >> 20) MiB: enlarge it "
                        + "(containers: --shm-size) or use --data-plane ipc")
            }
            throw .system(call: "posix_fallocate(\(name))", errno: reserved, message: String(cString: strerror(reserved)))
        }
        let base: UnsafeMutableRawPointer
        do throws(CommError) { base = try Self.map(fd: fd, size: size, name: name) } catch {
            _ = densecl_shm_unlink(name)
            throw error
        }
        let inbox = SharedInbox(
            name: name, worldSize: worldSize, owner: owner, slotCount: slotCount, slotBytes: slotBytes, base: base,
            ownerPID: getpid(), isOwner: true)
        // A fresh object reads as zeros: the counters, `mapped` and `closed` start at 0.
        Header(worldSize: worldSize, owner: owner, slotCount: slotCount, slotBytes: slotBytes).store(to: base)
        base.storeBytes(of: Int32(inbox.ownerPID).littleEndian, toByteOffset: Header.ownerPIDOffset, as: Int32.self)
        return inbox
    }

    /// Maps the inbox another rank created and checks that it is the one expected.
    static func open(name: String, worldSize: Int, owner: Int, slotCount: Int, slotBytes: Int) throws(CommError)
        -> SharedInbox
    {
        let fd = densecl_shm_open(name, 0)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT {
                throw .invalidArgument(
                    "rank \(owner)'s shared-memory inbox \(name) does not exist on this machine: the shared-memory "
                        + "data plane needs every worker on one machine (use --data-plane ipc or a TCP address otherwise)")
            }
            throw .system(call: "shm_open(\(name))", errno: code, message: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Self.failure("fstat(\(name))") }
        let size = Self.byteCount(worldSize: worldSize, slotCount: slotCount, slotBytes: slotBytes)
        guard Int(status.st_size) == size else {
            throw .protocolMismatch(
                peer: owner,
                detail: "shared-memory inbox \(name) has \(status.st_size) bytes, expected \(size) for \(worldSize) "
                    + "ranks x \(slotCount) slots of \(slotBytes) bytes (ranks must use the same transport options)")
        }
        let mapped = try Self.map(fd: fd, size: size, name: name)
        // From here on the inbox object unmaps the memory when it goes, also when the check below fails.
        let inbox = SharedInbox(
            name: name, worldSize: worldSize, owner: owner, slotCount: slotCount, slotBytes: slotBytes, base: mapped,
            ownerPID: pid_t(Int32(littleEndian: mapped.load(fromByteOffset: Header.ownerPIDOffset, as: Int32.self))),
            isOwner: false)
        let found = Header(loading: mapped)
        guard found == Header(worldSize: worldSize, owner: owner, slotCount: slotCount, slotBytes: slotBytes) else {
            throw .protocolMismatch(
                peer: owner,
                detail: "shared-memory inbox \(name) is not rank \(owner)'s inbox of this layout (magic \(found.magic), "
                    + "version \(found.version), world \(found.worldSize), owner \(found.owner), \(found.slotCount) "
                    + "slots of \(found.slotBytes) bytes)")
        }
        _ = densecl_fetch_add(inbox.word(at: Self.mappedOffset), 1)
        return inbox
    }

    deinit {
        removeName()
        munmap(base, byteCount)
    }

    /// Removes the name once every other rank has mapped the inbox (owner only; the memory lives on until the
    /// last mapping goes, and a crashed run leaves no name behind from then on).
    func removeNameIfAllMapped() {
        guard !unlinked, densecl_load_acquire(word(at: Self.mappedOffset)) >= UInt32(worldSize - 1) else { return }
        removeName()
    }

    /// Removes the name now (owner only; idempotent).
    func removeName() {
        guard !unlinked else { return }
        unlinked = true
        _ = densecl_shm_unlink(name)
    }

    /// Whether the owner has closed its transport.
    var isClosed: Bool { densecl_load_acquire(word(at: Self.closedOffset)) != 0 }

    func markClosed() { densecl_store_release(word(at: Self.closedOffset), 1) }

    /// The shared 32-bit word at `offset`.
    func word(at offset: Int) -> UnsafeMutablePointer<UInt32> {
        (base + offset).assumingMemoryBound(to: UInt32.self)
    }

    /// Start of the link that `source` (not the owner) writes.
    func link(from source: Int) -> UnsafeMutableRawPointer {
        precondition(source != owner && (0..<worldSize).contains(source), "no link from rank \(source) in rank \(owner)'s inbox")
        return base + Self.headerBytes + (source < owner ? source : source - 1) * linkStride
    }

    /// Start of slot `index` (header, then payload) of the link that `source` writes.
    func slot(_ index: Int, from source: Int) -> UnsafeMutableRawPointer {
        link(from: source) + LinkWords.byteCount(slotCount: slotCount) + index * slotStride
    }

    private static func map(fd: Int32, size: Int, name: String) throws(CommError) -> UnsafeMutableRawPointer {
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw failure("mmap(\(name), \(size) bytes)")
        }
        return mapped
    }

    private static func failure(_ call: String) -> CommError {
        let code = errno
        return .system(call: call, errno: code, message: String(cString: strerror(code)))
    }
}
