/// Where the training images come from.
public enum DatasetKind: String, Sendable, Codable, CaseIterable {
    /// ImageNet-1k train split; `data.root` is the directory holding `train/<class>/*.JPEG`.
    case imagenet
    /// COCO train2017; `data.root` holds `train2017/` (and optionally `annotations/instances_train2017.json`,
    /// whose image list is then used).
    case coco
    /// Every image file found under `data.root`, recursively.
    case folder
    /// A text file (`data.root`) listing one image path per line, relative to the file's directory.
    case filelist
    /// Procedurally generated images (`data.synthetic_count` of side `data.synthetic_size`); no files needed.
    case synthetic
}

/// The per-view augmentation pipeline.
public enum AugmentationKind: String, Sendable, Codable, CaseIterable {
    /// MoCo-v2 `--aug-plus`: random resized crop, colour jitter, grayscale, blur, flip, normalisation.
    case mocov2
    /// Resize to `data.image_size` and normalise only (for debugging and parity checks).
    case none
}

/// `data.*`: dataset, decoding and the loader.
public struct DataConfig: Sendable, Equatable, Codable {
    /// `data.dataset`.
    public var dataset: DatasetKind = .imagenet
    /// `data.root`: dataset location (see ``DatasetKind``); required unless the dataset is synthetic.
    public var root: String?
    /// `data.image_size`: side of each square view fed to the encoders (224 in the official recipe).
    public var imageSize = 224
    /// `data.augmentation`.
    public var augmentation: AugmentationKind = .mocov2
    /// `data.synthetic_count`: number of images of the synthetic dataset.
    public var syntheticCount = 4096
    /// `data.synthetic_size`: side of each synthetic source image, before augmentation.
    public var syntheticSize = 256
    /// `data.loader_threads`: decoding and augmentation threads per worker (the official code uses 4 per GPU).
    public var loaderThreads = 4
    /// `data.prefetch_batches`: batches prepared ahead of the training step.
    public var prefetchBatches = 2

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataset, root
        case imageSize = "image_size"
        case augmentation
        case syntheticCount = "synthetic_count"
        case syntheticSize = "synthetic_size"
        case loaderThreads = "loader_threads"
        case prefetchBatches = "prefetch_batches"
    }
}

extension DataConfig {
    init(reading r: SectionReader) throws(ConfigError) {
        let d = DataConfig()
        dataset = try r.choice(CodingKeys.dataset, default: d.dataset)
        root = try r.optionalString(CodingKeys.root, default: d.root)
        imageSize = try r.int(CodingKeys.imageSize, default: d.imageSize)
        augmentation = try r.choice(CodingKeys.augmentation, default: d.augmentation)
        syntheticCount = try r.int(CodingKeys.syntheticCount, default: d.syntheticCount)
        syntheticSize = try r.int(CodingKeys.syntheticSize, default: d.syntheticSize)
        loaderThreads = try r.int(CodingKeys.loaderThreads, default: d.loaderThreads)
        prefetchBatches = try r.int(CodingKeys.prefetchBatches, default: d.prefetchBatches)
    }

    var renderedFields: [(CodingKeys, String)] {
        [
            (.dataset, dataset.rawValue), (.root, root.map(YAMLText.string) ?? YAMLText.null),
            (.imageSize, YAMLText.int(imageSize)), (.augmentation, augmentation.rawValue),
            (.syntheticCount, YAMLText.int(syntheticCount)), (.syntheticSize, YAMLText.int(syntheticSize)),
            (.loaderThreads, YAMLText.int(loaderThreads)), (.prefetchBatches, YAMLText.int(prefetchBatches)),
        ]
    }
}
