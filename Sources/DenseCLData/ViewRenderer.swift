#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Applies view parameters to a decoded image: the deterministic half of the augmentation. Holds the per-thread
/// workspace (filter tables, intermediate rows, blur buffers), so one renderer belongs to one thread; after the
/// first few images it allocates nothing.
///
/// Order (densecl-spec §4.3): resized crop (antialiased bilinear) → colour jitter → grayscale → Gaussian blur →
/// horizontal flip → `(x − mean) / std`. The output is Float32 channels-last `[size, size, 3]`.
public final class ViewRenderer {
    public let options: AugmentationOptions
    private var resampler = Resampler()
    private var blur = GaussianBlur()
    private var work: [Float]

    public init(options: AugmentationOptions) {
        self.options = options
        work = [Float](repeating: 0, count: options.imageSize * options.imageSize * 3)
    }

    /// The DCT-domain shrink (1, 2, 4 or 8) that still leaves every crop at least `imageSize` pixels on each side,
    /// so the crops are still shrunk with antialiasing afterwards. 1 unless `options.dctScaling`.
    public func dctDenominator(imageWidth: Int, imageHeight: Int, crops: [CropBox]) -> Int {
        guard options.dctScaling else { return 1 }
        if options.mode == .none {
            let geometry = CenterCropGeometry(
                width: imageWidth, height: imageHeight, resize: options.evaluationResize, size: options.imageSize)
            // The shrunk image must still be at least as large as the resized one.
            for d in [8, 4, 2]
            where imageWidth / d >= geometry.resizedWidth && imageHeight / d >= geometry.resizedHeight {
                return d
            }
            return 1
        }
        let smallest = crops.map { min($0.width, $0.height) }.min() ?? 0
        for d in [8, 4, 2] where smallest / d >= options.imageSize { return d }
        return 1
    }

    /// Renders one view of `image` into `output` (`imageSize² · 3` floats).
    ///
    /// - Parameters:
    ///   - image: the decoded pixels, possibly shrunk in the DCT domain from `originalWidth × originalHeight`.
    ///   - parameters: drawn by `ViewSampler` for the original size; the crop is mapped onto the decoded pixels.
    public func render(
        _ image: RGBImage, originalWidth: Int, originalHeight: Int, parameters: ViewParameters,
        into output: UnsafeMutablePointer<Float>
    ) {
        let size = options.imageSize
        let sx = Double(image.width) / Double(originalWidth)
        let sy = Double(image.height) / Double(originalHeight)
        if options.mode == .none {
            let geometry = CenterCropGeometry(
                width: originalWidth, height: originalHeight, resize: options.evaluationResize, size: size)
            resampler.horizontal.compute(
                inStart: 0, inLength: Double(image.width), clamp: 0..<image.width, outFull: geometry.resizedWidth,
                outOffset: geometry.left, outCount: size)
            resampler.vertical.compute(
                inStart: 0, inLength: Double(image.height), clamp: 0..<image.height,
                outFull: geometry.resizedHeight, outOffset: geometry.top, outCount: size)
        } else {
            let crop = parameters.crop
            resampler.horizontal.compute(
                inStart: Double(crop.left) * sx, inLength: Double(crop.width) * sx,
                clamp: Self.pixelRange(Double(crop.left) * sx, Double(crop.left + crop.width) * sx, limit: image.width),
                outFull: size, outCount: size)
            resampler.vertical.compute(
                inStart: Double(crop.top) * sy, inLength: Double(crop.height) * sy,
                clamp: Self.pixelRange(Double(crop.top) * sy, Double(crop.top + crop.height) * sy, limit: image.height),
                outFull: size, outCount: size)
        }
        work.withUnsafeMutableBufferPointer { buffer in
            let x = buffer.baseAddress!
            image.withPixels { source in
                resampler.run(source: source, sourceWidth: image.width, outWidth: size, outHeight: size, into: x)
            }
            let pixels = size * size
            if let jitter = parameters.colorJitter { ColorOps.jitter(x, pixels: pixels, parameters: jitter) }
            if parameters.grayscale { ColorOps.grayscale(x, pixels: pixels) }
            if let sigma = parameters.blurSigma { blur.apply(x, width: size, height: size, sigma: sigma) }
            Self.normalize(x, size: size, flip: parameters.flip, mean: options.mean, std: options.std, into: output)
        }
    }

    /// The source pixels a (possibly fractional) interval may read: whole pixels it overlaps, within the image.
    static func pixelRange(_ start: Double, _ end: Double, limit: Int) -> Range<Int> {
        // A hair of tolerance so that exact integers stay exact after scaling by 1/denominator.
        let lo = max(0, Int((start + 1e-9).rounded(.down)))
        let hi = min(limit, max(lo + 1, Int((end - 1e-9).rounded(.up))))
        return lo..<hi
    }

    /// torchvision `hflip` then `Normalize(mean, std)`: `(x − mean) / std` per channel, mirrored when `flip`.
    static func normalize(
        _ x: UnsafePointer<Float>, size: Int, flip: Bool, mean: (Float, Float, Float), std: (Float, Float, Float),
        into output: UnsafeMutablePointer<Float>
    ) {
        for y in 0..<size {
            let row = x + y * size * 3
            let out = output + y * size * 3
            for col in 0..<size {
                let src = row + (flip ? size - 1 - col : col) * 3
                out[3 * col] = (src[0] - mean.0) / std.0
                out[3 * col + 1] = (src[1] - mean.1) / std.1
                out[3 * col + 2] = (src[2] - mean.2) / std.2
            }
        }
    }
}
