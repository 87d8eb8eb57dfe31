import DenseCLCore

/// One colour-jitter operation (torchvision `ColorJitter` applies the four in a random order).
public enum ColorJitterOperation: Int, Sendable, CaseIterable {
    case brightness = 0
    case contrast, saturation, hue
}

/// ColorJitter factors and order, as torchvision's `ColorJitter.get_params` returns them.
public struct ColorJitterParameters: Sendable, Equatable {
    public var order: [ColorJitterOperation]
    public var brightness: Float
    public var contrast: Float
    public var saturation: Float
    public var hue: Float

    public init(order: [ColorJitterOperation], brightness: Float, contrast: Float, saturation: Float, hue: Float) {
        self.order = order
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
    }
}

/// Everything random about one view; applying it (`ViewRenderer`) is deterministic.
public struct ViewParameters: Sendable, Equatable {
    /// The crop in the original image's pixels (for `.none` mode: the whole image).
    public var crop: CropBox
    /// nil when colour jitter is skipped (probability 1 − 0.8).
    public var colorJitter: ColorJitterParameters?
    public var grayscale: Bool
    /// PIL GaussianBlur radius (its sigma); nil when no blur.
    public var blurSigma: Float?
    public var flip: Bool

    public init(crop: CropBox, colorJitter: ColorJitterParameters?, grayscale: Bool, blurSigma: Float?, flip: Bool) {
        self.crop = crop
        self.colorJitter = colorJitter
        self.grayscale = grayscale
        self.blurSigma = blurSigma
        self.flip = flip
    }
}

/// Draws view parameters as a pure function of `(seed, epoch, position, view)`.
///
/// Two counter-based streams per view: `sub = 2·view` for the crop (its number of draws depends on the image
/// size) and `sub = 2·view + 1` for everything else, drawn in a fixed order: jitter gate, order, the four factors
/// (always drawn), grayscale gate, blur gate, sigma, flip gate. A parameter therefore never shifts because
/// another one changed.
public struct ViewSampler: Sendable {
    public let options: AugmentationOptions
    public let seed: UInt64

    public init(options: AugmentationOptions, seed: UInt64) {
        self.options = options
        self.seed = seed
    }

    public func parameters(epoch: Int, position: Int, view: Int, imageWidth: Int, imageHeight: Int) -> ViewParameters {
        if options.mode == .none {
            return ViewParameters(
                crop: CropBox(top: 0, left: 0, height: imageHeight, width: imageWidth), colorJitter: nil,
                grayscale: false, blurSigma: nil, flip: false)
        }
        var cropRandom = CounterRNG(seed: seed, domain: .augmentation, epoch: epoch, index: position, sub: 2 * view)
        let crop = sampleResizedCrop(
            width: imageWidth, height: imageHeight, scale: options.cropScale, ratio: options.cropRatio,
            random: &cropRandom)
        var rng = CounterRNG(seed: seed, domain: .augmentation, epoch: epoch, index: position, sub: 2 * view + 1)
        let jitterGate = rng.nextDouble()
        let order = rng.permutation(4).map { ColorJitterOperation(rawValue: $0)! }
        // torch.empty(1).uniform_(lo, hi) yields a float32.
        func factor(_ strength: Double) -> Float {
            Float(rng.uniform(max(0, 1 - strength), 1 + strength))
        }
        let brightness = factor(options.brightness)
        let contrast = factor(options.contrast)
        let saturation = factor(options.saturation)
        let hue = Float(rng.uniform(-options.hue, options.hue))
        let grayscale = rng.nextDouble() < options.grayscaleProbability
        let blurGate = rng.nextDouble()
        let sigma = Float(rng.uniform(options.blurSigma.lowerBound, options.blurSigma.upperBound))
        let flip = rng.nextDouble() < options.flipProbability
        let jitter =
            jitterGate < options.colorJitterProbability
            ? ColorJitterParameters(
                order: order, brightness: brightness, contrast: contrast, saturation: saturation, hue: hue)
            : nil
        return ViewParameters(
            crop: crop, colorJitter: jitter, grayscale: grayscale,
            blurSigma: blurGate < options.blurProbability ? sigma : nil, flip: flip)
    }
}
