import Foundation

/// What `densecl scan` reports: how many images decode, and every one that does not.
public struct ScanReport: Sendable {
    public var source: DatasetSource
    public var images: Int
    public var classes: Int
    /// Every file that failed to decode, by dataset index.
    public var failures: [BadFile]
    public var decodable: Int { images - failures.count }
    /// At least one image decodes; bad files are skipped during training.
    public var isUsable: Bool { decodable > 0 }
}

/// Decodes every image of a dataset (fully, as training would at the largest crop) on `threads` threads.
public enum DatasetScanner {
    /// - Parameter progress: called now and then with the number of images done (from a scanning thread).
    public static func scan(
        _ index: DatasetIndex, threads: Int = 1, progress: (@Sendable (Int) -> Void)? = nil
    ) -> ScanReport {
        let total = index.count
        let results = ScanResults()
        if case .synthetic = index.source {
            return ScanReport(source: index.source, images: total, classes: index.classNames.count, failures: [])
        }
        let workers = max(1, min(threads, total))
        let group = DispatchGroup()
        for t in 0..<workers {
            group.enter()
            let thread = Thread {
                let decoder = ImageDecoder()
                var file = FileBytes()
                var image = RGBImage()
                var i = t
                while i < total {
                    let path = index.path(of: i)!
                    do throws(ImageFileError) {
                        try file.load(path)
                        _ = try file.withBytes { (bytes) throws(ImageFileError) in
                            try decoder.decode(bytes, into: &image)
                        }
                    } catch {
                        results.add(BadFile(index: i, path: path, error: error))
                    }
                    if let progress, results.tick() % 1000 == 0 { progress(results.done) }
                    i += workers
                }
                group.leave()
            }
            thread.name = "densecl-scan-\(t)"
            thread.start()
        }
        group.wait()
        return ScanReport(
            source: index.source, images: total, classes: index.classNames.count,
            failures: results.failures.sorted { $0.index < $1.index })
    }
}

private final class ScanResults: @unchecked Sendable {
    private let lock = NSLock()
    private var found: [BadFile] = []
    private var count = 0

    func add(_ file: BadFile) {
        lock.lock()
        found.append(file)
        lock.unlock()
    }

    /// Counts one image done; returns the new count.
    func tick() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }

    var done: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    var failures: [BadFile] {
        lock.lock()
        defer { lock.unlock() }
        return found
    }
}
