#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One entry of a directory, as `readdir` gives it (with a `stat` only when the file type is not in the entry).
struct DirectoryEntry: Sendable {
    var name: String
    var isDirectory: Bool
}

enum FileKind {
    case missing
    case directory
    case other
}

enum DirectoryListing {
    static func kind(of path: String) -> FileKind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        return (info.st_mode & S_IFMT) == S_IFDIR ? .directory : .other
    }

    /// Entries of `path` except `.`, `..` and hidden names (starting with a dot), in no particular order.
    /// Symbolic links are followed to decide whether an entry is a directory.
    static func entries(of path: String) throws -> [DirectoryEntry] {
        guard let dir = opendir(path) else {
            throw DatasetError.wrongLayout(
                root: path, expected: "a readable directory", found: String(cString: strerror(errno)))
        }
        defer { closedir(dir) }
        var result: [DirectoryEntry] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name.hasPrefix(".") { continue }
            let type = entry.pointee.d_type
            let isDirectory: Bool
            if type == UInt8(DT_DIR) {
                isDirectory = true
            } else if type == UInt8(DT_REG) {
                isDirectory = false
            } else {
                isDirectory = kind(of: path + "/" + name) == .directory
            }
            result.append(DirectoryEntry(name: name, isDirectory: isDirectory))
        }
        return result
    }

    /// The names sorted by their UTF-8 bytes: the same order on every machine and locale.
    static func sortedByBytes(_ names: inout [String]) {
        names.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// File extensions taken as images, compared without case (`.JPEG`, `.jpg`, `.Png`, ...).
    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    static func hasImageExtension(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }
}
