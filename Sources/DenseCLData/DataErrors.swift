/// Why one image file could not be turned into pixels. Such a file is skipped (and replaced) during training and
/// listed by `densecl scan`; it never stops a run.
public enum ImageFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path does not exist (for example a COCO annotation names a file that is not in `train2017/`).
    case missing
    /// The file exists but cannot be read (permissions, a directory named like an image, an I/O error).
    case unreadable(String)
    /// The file has zero bytes.
    case empty
    /// The first bytes are neither a JPEG nor a PNG signature (a text file named `.JPEG`, say).
    case notAnImage(firstBytes: String)
    /// The file ends before the image data does.
    case truncated(String)
    /// The decoder rejected the data.
    case corrupt(String)
    /// A valid image of a kind this pipeline does not handle (a JPEG colour space other than gray, YCbCr, RGB,
    /// CMYK or YCCK; dimensions beyond the limit).
    case unsupported(String)

    public var description: String {
        switch self {
        case .missing: return "file not found"
        case .unreadable(let why): return "unreadable: \(why)"
        case .empty: return "zero-byte file"
        case .notAnImage(let head): return "not a JPEG or PNG (first bytes \(head))"
        case .truncated(let why): return "truncated: \(why)"
        case .corrupt(let why): return "corrupt: \(why)"
        case .unsupported(let why): return "unsupported: \(why)"
        }
    }
}

/// A dataset that cannot be used at all: reported when the index is built, before any training starts.
public enum DatasetError: Error, Equatable, Sendable, CustomStringConvertible {
    case rootNotFound(String)
    case notADirectory(String)
    /// The root exists but does not have the expected layout; `expected` says what was looked for.
    case wrongLayout(root: String, expected: String, found: String)
    /// The layout is right but holds no image files.
    case empty(root: String, layout: String)
    case fileListUnreadable(path: String, reason: String)
    case fileListMalformed(path: String, line: Int, reason: String)
    case annotationsUnreadable(path: String, reason: String)
    /// Every replacement tried for a sample was unreadable too.
    case noReadableReplacement(epoch: Int, position: Int, attempts: Int, lastPath: String, lastError: String)
    /// A dataset smaller than one global batch cannot make a single step under drop_last.
    case smallerThanBatch(images: Int, globalBatch: Int)
    case invalidOption(String)
    case unknownDataset(String)

    public var description: String {
        switch self {
        case .rootNotFound(let path): return "dataset root not found: \(path)"
        case .notADirectory(let path): return "not a directory: \(path)"
        case .wrongLayout(let root, let expected, let found):
            return "wrong dataset layout under \(root): expected \(expected); found \(found)"
        case .empty(let root, let layout): return "no images found in \(layout) dataset at \(root)"
        case .fileListUnreadable(let path, let reason): return "cannot read file list \(path): \(reason)"
        case .fileListMalformed(let path, let line, let reason): return "file list \(path), line \(line): \(reason)"
        case .annotationsUnreadable(let path, let reason): return "cannot read annotations \(path): \(reason)"
        case .noReadableReplacement(let epoch, let position, let attempts, let lastPath, let lastError):
            return "epoch \(epoch) sample \(position): \(attempts) files in a row failed to decode "
                + "(last \(lastPath): \(lastError)); is most of the dataset unreadable?"
        case .smallerThanBatch(let images, let batch):
            return "the dataset has \(images) images, fewer than one global batch of \(batch)"
        case .invalidOption(let why): return "invalid data option: \(why)"
        case .unknownDataset(let name):
            return "unknown dataset kind '\(name)' (expected imagenet, coco, folder, list or synthetic)"
        }
    }
}
