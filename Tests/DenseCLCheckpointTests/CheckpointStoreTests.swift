import DenseCLCheckpoint
import Foundation
import SafeTensors
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class CheckpointStoreTests: XCTestCase {
    private var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID())")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    private func state(_ step: Int) -> SafeTensorsWriter {
        var w = SafeTensorsWriter(metadata: ["step": String(step)])
        w.add("encoder_q.0.conv1.weight", floats: (0..<64).map { Float($0 + step) }, shape: [4, 16])
        w.add("queue_ptr", int64s: [Int64(step * 8)], shape: [1])
        return w
    }

    func testSaveLoadAndLatest() throws {
        let store = CheckpointStore(directory: root)
        let url = try store.save(step: 12, writer: state(12))
        XCTAssertEqual(url.lastPathComponent, "step-00000012.safetensors")
        XCTAssertEqual(store.latestPointer(), "step-00000012.safetensors")
        let file = try CheckpointStore.load(url)
        XCTAssertEqual(file.metadata["step"], "12")
        XCTAssertEqual(try file.floats("encoder_q.0.conv1.weight").first, 12)
        XCTAssertNotNil(file.metadata[CheckpointStore.digestsKey])
        // Nothing temporary is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(),
                       ["latest", "step-00000012.safetensors"])
    }

    func testRetentionKeepsLastAndEveryNth() throws {
        let store = CheckpointStore(directory: root, retention: RetentionPolicy(keepLast: 2, keepEverySteps: 20))
        for step in stride(from: 5, through: 45, by: 5) { try store.save(step: step, writer: state(step)) }
        XCTAssertEqual(store.list().map(\.step), [45, 40, 20])
    }

    func testTruncatedAndCorruptNewestAreSkipped() throws {
        let store = CheckpointStore(directory: root)
        try store.save(step: 1, writer: state(1))
        let second = try store.save(step: 2, writer: state(2))
        let third = try store.save(step: 3, writer: state(3))
        // Newest: truncated mid-file (a torn write that somehow got its final name).
        let bytes = try Data(contentsOf: third)
        try bytes.prefix(bytes.count - 10).write(to: third)
        // Second newest: one data byte flipped (silent corruption); the header still parses.
        var flipped = try Data(contentsOf: second)
        flipped[flipped.count - 1] ^= 0x40
        try flipped.write(to: second)

        let found = try XCTUnwrap(store.newestValid())
        XCTAssertEqual(found.entry.step, 1)
        XCTAssertEqual(found.skipped.map(\.0.step), [3, 2])
        XCTAssertTrue(found.skipped[0].1.contains("truncated"), found.skipped[0].1)
        XCTAssertTrue(found.skipped[1].1.contains("digest mismatch"), found.skipped[1].1)
        XCTAssertThrowsError(try CheckpointStore.load(second))
    }

    func testLeftoverTemporaryFilesAreRemovedAndIgnored() throws {
        let store = CheckpointStore(directory: root)
        try store.save(step: 4, writer: state(4))
        let junk = root.appendingPathComponent(".tmp-999-step-00000008.safetensors")
        try Data(repeating: 1, count: 100).write(to: junk)
        XCTAssertEqual(store.list().map(\.step), [4])
        try store.prepare()
        XCTAssertFalse(FileManager.default.fileExists(atPath: junk.path))
    }

    /// A save that fails part-way (here: the file-size limit makes write() fail with EFBIG, as a full disk fails
    /// with ENOSPC) reports an I/O error and leaves the previous checkpoint and `latest` untouched.
    func testFailedSaveKeepsThePreviousCheckpoint() throws {
        let store = CheckpointStore(directory: root)
        try store.save(step: 10, writer: state(10))
        var big = SafeTensorsWriter()
        big.add("huge", floats: [Float](repeating: 1, count: 1 << 20), shape: [1 << 20])

        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        var limited = old
        limited.rlim_cur = 64 * 1024
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        XCTAssertThrowsError(try store.save(step: 20, writer: big)) { error in
            guard case .io = error as? CheckpointError else { return XCTFail("expected an I/O error, got \(error)") }
        }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        signal(SIGXFSZ, previousHandler)

        XCTAssertEqual(store.list().map(\.step), [10])
        XCTAssertEqual(store.latestPointer(), "step-00000010.safetensors")
        XCTAssertNoThrow(try CheckpointStore.load(store.list()[0].url))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix(".tmp") }, [])
    }

    /// A checkpoint directory that cannot be created (its path is a regular file) is a clear I/O error.
    func testUnwritableDirectoryIsAnError() throws {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let blocker = root.appendingPathComponent("checkpoints")
        try Data("not a directory".utf8).write(to: blocker)
        let store = CheckpointStore(directory: blocker)
        XCTAssertThrowsError(try store.save(step: 1, writer: state(1))) { error in
            XCTAssertTrue("\(error)".contains(blocker.path), "\(error)")
        }
    }
}
