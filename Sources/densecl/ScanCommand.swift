import ArgumentParser
import DenseCLData
import Foundation

/// `densecl scan`: counts a dataset's images and classes and lists every file that does not decode.
struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Count a dataset's images and classes; list every file that does not decode, with the reason.",
        discussion: "Exit code 0 when at least one image decodes (bad files are skipped in training), 1 otherwise.")

    @Option(help: "Dataset layout: imagenet, coco, folder, list or synthetic.")
    var dataset: String = "imagenet"

    @Option(help: "Dataset root (the list file for --dataset list).")
    var root: String?

    @Option(help: "Decoding threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        let index: DatasetIndex
        do {
            index = try DatasetIndex.build(try DatasetSource.named(dataset, root: root))
        } catch let error as DatasetError {
            Self.printError("densecl scan: \(error)")
            throw ExitCode.failure
        }
        print("dataset:   \(index.source.kindName) at \(root ?? "-")")
        print("images:    \(index.count)")
        print("classes:   \(index.isLabelled ? String(index.classNames.count) : "unlabelled")")
        let started = ContinuousClock.now
        let total = index.count
        let report = DatasetScanner.scan(index, threads: max(1, threads)) { done in
            Self.printError("scanned \(done)/\(total)")
        }
        let elapsed = (ContinuousClock.now - started).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18
        print("decodable: \(report.decodable)")
        print("bad files: \(report.failures.count)")
        for bad in report.failures { print("  \(bad.path): \(bad.error)") }
        print(
            String(
                format: "scan time: %.1f s (%.0f images/s on %d threads)", seconds, Double(total) / max(seconds, 1e-9),
                threads))
        print("usable:    \(report.isUsable ? "yes" : "no (no image decodes)")")
        if !report.isUsable { throw ExitCode.failure }
    }

    private static func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
