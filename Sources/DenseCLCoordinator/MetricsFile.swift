import Foundation

/// `RUN_DIR/metrics.csv`: one line per step, written by the coordinator once every worker has reported the step.
///
/// Columns: `step, epoch, loss_single, loss_dense, lr, lambda, unix_time_s`. The losses are at full precision, for
/// curves and for comparing runs; `unix_time_s` is the wall-clock time (seconds since 1970, microsecond digits) at
/// which the row was written, so the difference of two consecutive rows is the wall time of the later step,
/// collectives and queue traffic included (`densecl bench step --workers N` takes its median).
final class MetricsFile {
    /// The header line; new columns are only ever appended at the end.
    static let header = "step,epoch,loss_single,loss_dense,lr,lambda,unix_time_s\n"

    private let handle: FileHandle?

    init(url: URL, append: Bool) {
        if !append || !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: Data(Self.header.utf8))
        }
        handle = try? FileHandle(forWritingTo: url)
        _ = try? handle?.seekToEnd()
    }

    deinit { try? handle?.close() }

    func append(step: Int, epoch: Int, globalLoss: Double, denseLoss: Double, learningRate: Double, lambda: Double) {
        let time = String(format: "%.6f", Date().timeIntervalSince1970)
        let line = "\(step),\(epoch),\(globalLoss),\(denseLoss),\(learningRate),\(lambda),\(time)\n"
        try? handle?.write(contentsOf: Data(line.utf8))
    }
}
