/// Many relative paths packed into one byte array: an ImageNet index (1.28 M paths) then costs ~40 MB instead of a
/// heap object per path.
struct PathTable: Sendable, Equatable {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []

    init() {}

    init(_ paths: [String]) {
        bytes.reserveCapacity(paths.reduce(0) { $0 + $1.utf8.count })
        ends.reserveCapacity(paths.count)
        for path in paths { append(path) }
    }

    var count: Int { ends.count }

    mutating func append(_ path: String) {
        bytes.append(contentsOf: path.utf8)
        ends.append(bytes.count)
    }

    subscript(i: Int) -> String {
        let start = i == 0 ? 0 : ends[i - 1]
        return String(decoding: bytes[start..<ends[i]], as: UTF8.self)
    }
}
