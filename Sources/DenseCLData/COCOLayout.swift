#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ROOT/train2017/*.jpg`, or the images listed by `ROOT/annotations/instances_train2017.json` when it exists.
enum COCOLayout {
    static let expected = "ROOT/train2017/*.jpg (and optionally ROOT/annotations/instances_train2017.json)"

    static func index(root: String) throws -> DatasetIndex {
        try DatasetIndex.checkDirectory(root)
        let images = root + "/train2017"
        guard DirectoryListing.kind(of: images) == .directory else {
            throw DatasetError.wrongLayout(
                root: root, expected: expected,
                found: "no train2017/ directory; the root holds \(DatasetIndex.summary(of: root))")
        }
        let annotations = root + "/annotations/instances_train2017.json"
        var names: [String]
        if DirectoryListing.kind(of: annotations) == .other {
            names = try annotatedFileNames(annotations)
        } else {
            names = try DirectoryListing.entries(of: images)
                .filter { !$0.isDirectory && DirectoryListing.hasImageExtension($0.name) }.map(\.name)
        }
        DirectoryListing.sortedByBytes(&names)
        // An annotation file may list an image twice; keep one.
        var unique: [String] = []
        unique.reserveCapacity(names.count)
        for name in names where unique.last != name { unique.append(name) }
        guard !unique.isEmpty else { throw DatasetError.empty(root: root, layout: "coco (\(expected))") }
        return DatasetIndex(
            source: .coco(root: root), base: images, paths: PathTable(unique), labels: [], classNames: [])
    }

    /// The `file_name` values of the annotation file, found by a byte scan of the memory-mapped file:
    /// instances_train2017.json is ~450 MB, and `file_name` occurs only in its `images` array.
    static func annotatedFileNames(_ path: String) throws -> [String] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw DatasetError.annotationsUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw DatasetError.annotationsUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let size = Int(info.st_size)
        guard size > 0 else { throw DatasetError.annotationsUnreadable(path: path, reason: "empty file") }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw DatasetError.annotationsUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { munmap(mapped, size) }
        do {
            return try fileNames(inJSON: UnsafeRawBufferPointer(start: mapped, count: size))
        } catch let error as JSONStringError {
            throw DatasetError.annotationsUnreadable(path: path, reason: error.reason)
        }
    }

    struct JSONStringError: Error { var reason: String }

    /// Every string value of a `"file_name"` key in `json`.
    static func fileNames(inJSON json: UnsafeRawBufferPointer) throws -> [String] {
        let key = Array("\"file_name\"".utf8)
        let bytes = json.bindMemory(to: UInt8.self)
        var names: [String] = []
        var i = 0
        let n = bytes.count
        while i + key.count <= n {
            // Cheap first-byte test, then the whole key.
            guard bytes[i] == UInt8(ascii: "\""), bytes[i + 1] == UInt8(ascii: "f") else {
                i += 1
                continue
            }
            var matches = true
            for k in 2..<key.count where bytes[i + k] != key[k] {
                matches = false
                break
            }
            guard matches else {
                i += 1
                continue
            }
            i += key.count
            while i < n, isSpace(bytes[i]) { i += 1 }
            // A "file_name" not followed by ':' is a value, not a key.
            guard i < n, bytes[i] == UInt8(ascii: ":") else { continue }
            i += 1
            while i < n, isSpace(bytes[i]) { i += 1 }
            guard i < n, bytes[i] == UInt8(ascii: "\"") else {
                throw JSONStringError(reason: "a file_name value is not a string (byte \(i))")
            }
            let (name, next) = try readString(bytes, from: i)
            names.append(name)
            i = next
        }
        return names
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    /// Reads the JSON string starting at the quote at `start`; returns it and the index after its closing quote.
    private static func readString(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws -> (String, Int) {
        var out: [UInt8] = []
        var i = start + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") { return (String(decoding: out, as: UTF8.self), i + 1) }
            if b == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { break }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 <= bytes.count,
                        let code = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { throw JSONStringError(reason: "bad \\u escape at byte \(i)") }
                    out.append(contentsOf: Array(String(Character(scalar)).utf8))
                    i += 4
                default: out.append(e)  // \" \\ \/
                }
                continue
            }
            out.append(b)
            i += 1
        }
        throw JSONStringError(reason: "unterminated string at byte \(start)")
    }
}
