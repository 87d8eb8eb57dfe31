import DenseCLCore

/// Turns one sample (an epoch and a position in its order) into its two views: reads and decodes the image, draws
/// each view's parameters from `(seed, epoch, position, view)` and renders them. One per thread.
///
/// A file that fails (missing, unreadable, empty, not an image, truncated, corrupt) is recorded in the shared
/// `BadFileRegistry` and replaced: attempt `a ≥ 1` tries dataset index
/// `CounterRNG(seed, .replacement, epoch, position, sub: a).nextInt(below: count)`, so the replacement, like every
/// pixel of the views, is the same on any worker. The views keep their own random parameters (drawn for the
/// replacement's size).
public final class SampleLoader {
    /// Consecutive failures before a sample is given up on (with more than half the files bad, 64 failures in a
    /// row has probability below 2^-64).
    public static let maximumAttempts = 64

    public let index: DatasetIndex
    public let sampler: ViewSampler
    public let renderer: ViewRenderer
    public let badFiles: BadFileRegistry
    private let decoder = ImageDecoder()
    private var file = FileBytes()
    private var image = RGBImage()
    private var crops: [CropBox] = []
    /// Synthetic images already rendered by this loader, by dataset index, up to ``syntheticCacheBytes``: a
    /// synthetic image is a pure function of its index, and rendering it (≈ 0.3 ms at 96 px) costs more than
    /// its two views, so a small synthetic set is rendered once per loader thread instead of once per view.
    private var renderedSynthetic: [Int: RGBImage] = [:]
    private var renderedSyntheticBytes = 0

    /// Pixel bytes of rendered synthetic images one loader keeps (64 MiB: 2,000 images of 112 px).
    public static let syntheticCacheBytes = 64 << 20

    public init(index: DatasetIndex, options: AugmentationOptions, seed: UInt64, badFiles: BadFileRegistry) {
        self.index = index
        sampler = ViewSampler(options: options, seed: seed)
        renderer = ViewRenderer(options: options)
        self.badFiles = badFiles
    }

    /// The image behind the sample, after replacement, and whether it was replaced.
    public struct Outcome: Sendable, Equatable {
        public var datasetIndex: Int
        public var replaced: Bool
    }

    /// Writes the query view (view 0) and/or the key view (view 1) of the sample at `position` of `epoch`, whose
    /// image is `datasetIndex` (from the epoch's `EpochOrder`). Each output holds `imageSize² · 3` floats.
    @discardableResult
    public func load(
        epoch: Int, position: Int, datasetIndex: Int, query: UnsafeMutablePointer<Float>?,
        key: UnsafeMutablePointer<Float>?
    ) throws -> Outcome {
        var candidate = datasetIndex
        var lastFailure: BadFile? = nil
        for attempt in 0...Self.maximumAttempts {
            if attempt > 0 {
                var rng = CounterRNG(
                    seed: sampler.seed, domain: .replacement, epoch: epoch, index: position, sub: attempt)
                candidate = rng.nextInt(below: index.count)
            }
            if badFiles.isKnownBad(candidate) { continue }
            do {
                try render(epoch: epoch, position: position, datasetIndex: candidate, query: query, key: key)
                if attempt > 0 { badFiles.countReplacement() }
                return Outcome(datasetIndex: candidate, replaced: attempt > 0)
            } catch {
                let bad = BadFile(index: candidate, path: index.name(of: candidate), error: error)
                badFiles.record(bad)
                lastFailure = bad
            }
        }
        let last = lastFailure ?? badFiles.badFiles.first
        throw DatasetError.noReadableReplacement(
            epoch: epoch, position: position, attempts: Self.maximumAttempts + 1,
            lastPath: last?.path ?? index.name(of: candidate), lastError: last?.error.description ?? "known bad")
    }

    /// Decodes image `datasetIndex` and renders the requested views; throws only `ImageFileError`.
    private func render(
        epoch: Int, position: Int, datasetIndex: Int, query: UnsafeMutablePointer<Float>?,
        key: UnsafeMutablePointer<Float>?
    ) throws(ImageFileError) {
        let width: Int
        let height: Int
        var views: [(Int, UnsafeMutablePointer<Float>)] = []
        if let query { views.append((0, query)) }
        if let key { views.append((1, key)) }
        var cached: RGBImage?
        if case .synthetic(let spec) = index.source {
            cached = renderedSynthetic[datasetIndex]
            if cached == nil {
                SyntheticImages.render(index: datasetIndex, spec: spec, into: &image)
                let bytes = spec.width * spec.height * 3
                if renderedSyntheticBytes + bytes <= Self.syntheticCacheBytes {
                    renderedSynthetic[datasetIndex] = image  // shares storage until the next render copies it
                    renderedSyntheticBytes += bytes
                }
            }
            (width, height) = (spec.width, spec.height)
        } else {
            try file.load(index.path(of: datasetIndex)!)
            let header = try file.withBytes { (bytes) throws(ImageFileError) in try decoder.header(bytes) }
            (width, height) = (header.width, header.height)
        }
        let parameters = views.map {
            sampler.parameters(epoch: epoch, position: position, view: $0.0, imageWidth: width, imageHeight: height)
        }
        if case .synthetic = index.source {
        } else {
            let denominator = renderer.dctDenominator(
                imageWidth: width, imageHeight: height, crops: parameters.map(\.crop))
            _ = try file.withBytes { (bytes) throws(ImageFileError) in
                try decoder.decode(bytes, denominator: denominator, into: &image)
            }
        }
        let source = cached ?? image
        for (view, parameter) in zip(views, parameters) {
            renderer.render(
                source, originalWidth: width, originalHeight: height, parameters: parameter, into: view.1)
        }
    }
}
