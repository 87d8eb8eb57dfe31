/// A picture of what the augmentation does to a dataset: one row per sample, its query view and key view side by
/// side, on a white background. `densecl preview` writes it as a PNG.
public enum PreviewGrid {
    public static let gap = 4

    /// Renders the first `count` samples of epoch 0's order (bad files are replaced as in training).
    public static func render(
        index: DatasetIndex, options: AugmentationOptions, seed: UInt64, count: Int,
        badFiles: BadFileRegistry = BadFileRegistry()
    ) throws -> RGBImage {
        try options.validate()
        let rows = min(count, index.count)
        guard rows > 0 else { throw DatasetError.invalidOption("preview needs a positive count") }
        let size = options.imageSize
        let loader = SampleLoader(index: index, options: options, seed: seed, badFiles: badFiles)
        let order = EpochOrder(seed: seed, epoch: 0, count: index.count)
        let width = 2 * size + 3 * gap
        let height = rows * size + (rows + 1) * gap
        var grid = RGBImage(
            width: width, height: height, pixels: [UInt8](repeating: 255, count: width * height * 3))
        var views = [Float](repeating: 0, count: 2 * size * size * 3)
        for row in 0..<rows {
            try views.withUnsafeMutableBufferPointer { buffer in
                let base = buffer.baseAddress!
                try loader.load(
                    epoch: 0, position: row, datasetIndex: order[row], query: base, key: base + size * size * 3)
            }
            for view in 0..<2 {
                let top = gap + row * (size + gap)
                let left = gap + view * (size + gap)
                paste(
                    views, offset: view * size * size * 3, size: size, options: options, into: &grid, left: left,
                    top: top)
            }
        }
        return grid
    }

    /// Undoes the normalisation (`x·std + mean`, ×255, rounded, clamped) into the grid.
    static func paste(
        _ view: [Float], offset: Int, size: Int, options: AugmentationOptions, into grid: inout RGBImage, left: Int,
        top: Int
    ) {
        let mean = [options.mean.0, options.mean.1, options.mean.2]
        let std = [options.std.0, options.std.1, options.std.2]
        for y in 0..<size {
            for x in 0..<size {
                for c in 0..<3 {
                    let v = (view[offset + (y * size + x) * 3 + c] * std[c] + mean[c]) * 255
                    grid[left + x, top + y, c] = UInt8(min(max(v.rounded(), 0), 255))
                }
            }
        }
    }
}
