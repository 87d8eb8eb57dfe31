import ArgumentParser
import DenseCLData
import Foundation

/// `densecl preview`: a PNG grid of augmented view pairs, to check a dataset and the augmentations by eye.
struct Preview: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a PNG grid of augmented view pairs (query | key), one sample per row.")

    @Option(help: "Dataset layout: imagenet, coco, folder, list or synthetic.")
    var dataset: String = "imagenet"

    @Option(help: "Dataset root (the list file for --dataset list).")
    var root: String?

    @Option(help: "Output PNG file.")
    var out: String

    @Option(help: "Number of samples (rows).")
    var count: Int = 8

    @Option(name: .customLong("image-size"), help: "View size in pixels (data.image_size).")
    var imageSize: Int = 224

    @Option(help: "Augmentation: mocov2 or none (resize + centre crop).")
    var augmentation: String = "mocov2"

    @Option(help: "Run seed (views are a function of seed, epoch, sample and view).")
    var seed: UInt64 = 0

    func run() throws {
        guard let mode = AugmentationMode(rawValue: augmentation) else {
            Self.printError("densecl preview: unknown augmentation '\(augmentation)' (mocov2 or none)")
            throw ExitCode.validationFailure
        }
        do {
            let index = try DatasetIndex.build(try DatasetSource.named(dataset, root: root))
            let badFiles = BadFileRegistry { Self.printError("skipping \($0.path): \($0.error)") }
            let grid = try PreviewGrid.render(
                index: index, options: AugmentationOptions(mode: mode, imageSize: imageSize), seed: seed,
                count: count, badFiles: badFiles)
            try PNGEncoder.write(grid, to: out)
            print("wrote \(out): \(grid.width)x\(grid.height), \(min(count, index.count)) view pairs")
        } catch let error as DatasetError {
            Self.printError("densecl preview: \(error)")
            throw ExitCode.failure
        }
    }

    private static func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}
