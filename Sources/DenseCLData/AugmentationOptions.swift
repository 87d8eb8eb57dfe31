/// Which view pipeline to run.
public enum AugmentationMode: String, Sendable, CaseIterable {
    /// MoCo-v2 "aug-plus" (DenseCL's pipeline): random resized crop, colour jitter, grayscale, blur, flip.
    case mocoV2 = "mocov2"
    /// Evaluation: resize the shorter side, centre crop, normalise (both views identical).
    case none
}

/// The view pipeline's settings. The defaults are DenseCL's (densecl-spec §4.3); `imageSize` is `data.image_size`.
public struct AugmentationOptions: Sendable, Equatable {
    public var mode: AugmentationMode
    /// Output side in pixels (views are square).
    public var imageSize: Int
    /// RandomResizedCrop area fraction and aspect-ratio range (torchvision defaults except the 0.2 lower scale).
    public var cropScale: ClosedRange<Double> = 0.2...1.0
    public var cropRatio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)
    /// ColorJitter strengths: factors are drawn from [max(0, 1-s), 1+s] (hue: [-s, s]).
    public var brightness = 0.4
    public var contrast = 0.4
    public var saturation = 0.4
    public var hue = 0.1
    public var colorJitterProbability = 0.8
    public var grayscaleProbability = 0.2
    public var blurProbability = 0.5
    public var blurSigma: ClosedRange<Double> = 0.1...2.0
    public var flipProbability = 0.5
    /// Per-channel ImageNet statistics applied after scaling pixels to [0, 1].
    public var mean: (Float, Float, Float) = (0.485, 0.456, 0.406)
    public var std: (Float, Float, Float) = (0.229, 0.224, 0.225)
    /// Let the JPEG decoder shrink by 1/2, 1/4 or 1/8 when both views' crops are at least that much larger than
    /// the output (the crops then still shrink, with antialiasing, from at least `imageSize` pixels).
    public var dctScaling = true
    /// Evaluation mode: shorter side before the centre crop (torchvision's `Resize(256)` for 224).
    public var evaluationResize: Int

    public init(mode: AugmentationMode = .mocoV2, imageSize: Int = 224) {
        self.mode = mode
        self.imageSize = imageSize
        evaluationResize = Int((Double(imageSize) * 256.0 / 224.0).rounded())
    }

    /// Checks ranges; throws `DatasetError.invalidOption` naming the bad setting.
    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw DatasetError.invalidOption(what) } }
        try check(imageSize >= 8 && imageSize <= 4096, "data.image_size must be in 8...4096, got \(imageSize)")
        try check(cropScale.lowerBound > 0 && cropScale.upperBound <= 1, "crop scale must lie in (0, 1]")
        try check(cropRatio.lowerBound > 0, "crop ratio must be positive")
        for (name, v) in [("brightness", brightness), ("contrast", contrast), ("saturation", saturation)] {
            try check(v >= 0, "\(name) jitter must be non-negative")
        }
        try check(hue >= 0 && hue <= 0.5, "hue jitter must be in [0, 0.5]")
        for (name, p) in [
            ("colour jitter", colorJitterProbability), ("grayscale", grayscaleProbability),
            ("blur", blurProbability), ("flip", flipProbability),
        ] {
            try check(p >= 0 && p <= 1, "\(name) probability must be in [0, 1]")
        }
        try check(blurSigma.lowerBound > 0, "blur sigma must be positive")
        try check(std.0 > 0 && std.1 > 0 && std.2 > 0, "normalisation std must be positive")
        try check(evaluationResize >= imageSize, "evaluation resize must be at least the image size")
    }

    public static func == (a: AugmentationOptions, b: AugmentationOptions) -> Bool {
        a.mode == b.mode && a.imageSize == b.imageSize && a.cropScale == b.cropScale && a.cropRatio == b.cropRatio
            && a.brightness == b.brightness && a.contrast == b.contrast && a.saturation == b.saturation
            && a.hue == b.hue && a.colorJitterProbability == b.colorJitterProbability
            && a.grayscaleProbability == b.grayscaleProbability && a.blurProbability == b.blurProbability
            && a.blurSigma == b.blurSigma && a.flipProbability == b.flipProbability && a.mean == b.mean
            && a.std == b.std && a.dctScaling == b.dctScaling && a.evaluationResize == b.evaluationResize
    }
}
