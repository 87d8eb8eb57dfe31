#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads whole files into one reusable buffer (one per loader thread), so that reading allocates only when a file
/// is larger than every file before it.
struct FileBytes {
    /// Files above this size are refused: no JPEG or PNG in a training set is a gigabyte.
    static let maximumSize = 1 << 30

    private(set) var buffer: [UInt8] = [0]
    private(set) var count = 0

    /// Replaces the contents with the file at `path`.
    mutating func load(_ path: String) throws(ImageFileError) {
        count = 0
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw .missing }
            throw .unreadable(Self.message(code))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(Self.message(errno)) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw .unreadable("is a directory") }
        let size = Int(info.st_size)
        guard size <= Self.maximumSize else { throw .unsupported("file of \(size) bytes exceeds the 1 GiB limit") }
        if buffer.count < size + 1 { buffer = [UInt8](repeating: 0, count: size + 1) }
        // Read until end of file rather than trusting st_size (the file may change under us).
        var total = 0
        var failure: ImageFileError?
        buffer.withUnsafeMutableBytes { raw in
            while total < size {
                let n = read(fd, raw.baseAddress! + total, size - total)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = .unreadable(Self.message(errno))
                    return
                }
                if n == 0 { break }
                total += n
            }
        }
        if let failure { throw failure }
        count = total
        if total == 0 { throw .empty }
    }

    /// Copies `bytes` in (for tests and in-memory benchmarks).
    mutating func set(_ bytes: [UInt8]) {
        if buffer.count < bytes.count + 1 { buffer = [UInt8](repeating: 0, count: bytes.count + 1) }
        buffer.replaceSubrange(0..<bytes.count, with: bytes)
        count = bytes.count
    }

    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = buffer.withUnsafeBytes { raw in
            Result { () throws(E) in try body(UnsafeRawBufferPointer(rebasing: raw[0..<count])) }
        }
        return try result.get()
    }

    private static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}

/// Image container formats recognised from their first bytes (never from the file name: ImageNet holds a PNG
/// named `.JPEG`).
enum ImageFormat: Sendable {
    case jpeg
    case png

    /// Classifies `bytes` by signature; throws `.empty` or `.notAnImage` otherwise.
    static func sniff(_ bytes: UnsafeRawBufferPointer) throws(ImageFileError) -> ImageFormat {
        if bytes.isEmpty { throw .empty }
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF { return .jpeg }
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8 && (0..<8).allSatisfy({ bytes[$0] == pngSignature[$0] }) { return .png }
        let head = bytes.prefix(8).map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }
        throw .notAnImage(firstBytes: head.joined(separator: " "))
    }
}

/// Writes `bytes` to `path`, replacing any file there.
public func writeFile(_ bytes: [UInt8], to path: String) throws {
    guard let file = fopen(path, "wb") else {
        throw ImageEncodingError.invalidInput("cannot open \(path) for writing: \(String(cString: strerror(errno)))")
    }
    defer { fclose(file) }
    let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
    guard written == bytes.count else { throw ImageEncodingError.invalidInput("short write to \(path)") }
}
