/// Procedural images made on the fly: the no-download fallback and the test dataset.
public struct SyntheticSpec: Sendable, Equatable {
    public var count: Int
    public var width: Int
    public var height: Int
    /// Seeds the images themselves (not the training run), so that one synthetic dataset is the same for every run.
    public var seed: UInt64

    public init(count: Int, width: Int = 256, height: Int = 256, seed: UInt64 = 0) {
        self.count = count
        self.width = width
        self.height = height
        self.seed = seed
    }
}

/// Where the images come from, and in which layout.
public enum DatasetSource: Sendable, Equatable {
    /// `ROOT/train/<class>/*.JPEG` (any case of the extension; `.jpg` and `.png` too). Classes are the sorted
    /// subdirectory names; labels are their indices (torchvision's `ImageFolder` numbering).
    case imagenet(root: String)
    /// `ROOT/train2017/*.jpg`; the image list of `ROOT/annotations/instances_train2017.json` when that file exists.
    case coco(root: String)
    /// Every image file under `root`, recursively.
    case folder(root: String)
    /// One path per line (relative paths are relative to the list's directory), optionally followed by an
    /// integer label; blank lines and lines starting with `#` are skipped.
    case fileList(path: String)
    case synthetic(SyntheticSpec)

    /// The kinds accepted on the command line and in the configuration.
    public static let kindNames = ["imagenet", "coco", "folder", "list", "synthetic"]

    /// Parses a kind name with its root (`--dataset imagenet --root DIR`); `synthetic` ignores the root.
    public static func named(_ kind: String, root: String?, synthetic: SyntheticSpec = SyntheticSpec(count: 1024))
        throws -> DatasetSource
    {
        let needsRoot = kind != "synthetic"
        guard !needsRoot || (root.map { !$0.isEmpty } ?? false) else {
            throw DatasetError.invalidOption("dataset '\(kind)' needs a root (--root DIR)")
        }
        let path = root ?? ""
        switch kind.lowercased() {
        case "imagenet": return .imagenet(root: path)
        case "coco": return .coco(root: path)
        case "folder": return .folder(root: path)
        case "list", "filelist", "file-list": return .fileList(path: path)
        case "synthetic":
            guard synthetic.count > 0, synthetic.width > 0, synthetic.height > 0 else {
                throw DatasetError.invalidOption("synthetic dataset needs a positive count and size")
            }
            return .synthetic(synthetic)
        default: throw DatasetError.unknownDataset(kind)
        }
    }

    public var kindName: String {
        switch self {
        case .imagenet: return "imagenet"
        case .coco: return "coco"
        case .folder: return "folder"
        case .fileList: return "list"
        case .synthetic: return "synthetic"
        }
    }
}
