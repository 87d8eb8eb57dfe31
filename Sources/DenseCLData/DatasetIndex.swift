/// The list of a dataset's images, built once at start-up and identical on every machine that sees the same files:
/// paths are sorted by their bytes, so sample `i` is the same image for every worker.
///
/// Building it checks the layout: a missing root, a wrong layout or an empty dataset is a `DatasetError` here,
/// before training starts. Files are not opened; unreadable ones are found (and replaced) when loaded.
public struct DatasetIndex: Sendable {
    public let source: DatasetSource
    /// Class names in label order; empty for unlabelled datasets.
    public let classNames: [String]
    /// Prefix joined to every stored relative path (ends with "/" unless empty).
    private let base: String
    private let paths: PathTable
    private let labels: [Int32]
    private let syntheticCount: Int

    init(source: DatasetSource, base: String, paths: PathTable, labels: [Int32], classNames: [String]) {
        precondition(labels.isEmpty || labels.count == paths.count, "one label per path")
        self.source = source
        self.base = base.isEmpty || base.hasSuffix("/") ? base : base + "/"
        self.paths = paths
        self.labels = labels
        self.classNames = classNames
        syntheticCount = 0
    }

    init(synthetic spec: SyntheticSpec) {
        source = .synthetic(spec)
        base = ""
        paths = PathTable()
        labels = []
        classNames = SyntheticImages.classNames
        syntheticCount = spec.count
    }

    /// Scans the source's layout. Throws `DatasetError` when the dataset cannot be used at all.
    public static func build(_ source: DatasetSource) throws -> DatasetIndex {
        switch source {
        case .imagenet(let root): return try ImageNetLayout.index(root: root)
        case .coco(let root): return try COCOLayout.index(root: root)
        case .folder(let root): return try FolderLayout.index(root: root)
        case .fileList(let path): return try FileListLayout.index(listPath: path)
        case .synthetic(let spec):
            guard spec.count > 0, spec.width > 0, spec.height > 0 else {
                throw DatasetError.invalidOption("synthetic dataset needs a positive count and size")
            }
            return DatasetIndex(synthetic: spec)
        }
    }

    public var count: Int {
        if case .synthetic = source { return syntheticCount }
        return paths.count
    }

    public var isLabelled: Bool { !classNames.isEmpty }

    /// The file of image `i`; nil for synthetic images.
    public func path(of i: Int) -> String? {
        if case .synthetic = source { return nil }
        return base + paths[i]
    }

    /// A printable name for image `i` (its path, or `synthetic:<i>`).
    public func name(of i: Int) -> String { path(of: i) ?? "synthetic:\(i)" }

    /// The class of image `i`, or nil for unlabelled datasets.
    public func label(of i: Int) -> Int? {
        if case .synthetic(let spec) = source { return SyntheticImages.label(index: i, spec: spec) }
        return labels.isEmpty ? nil : Int(labels[i])
    }

    static func checkDirectory(_ path: String) throws {
        switch DirectoryListing.kind(of: path) {
        case .missing: throw DatasetError.rootNotFound(path)
        case .other: throw DatasetError.notADirectory(path)
        case .directory: return
        }
    }

    /// A short description of what a directory holds, for layout errors.
    static func summary(of path: String) -> String {
        guard let entries = try? DirectoryListing.entries(of: path) else { return "an unreadable directory" }
        if entries.isEmpty { return "an empty directory" }
        var names = entries.map { $0.isDirectory ? $0.name + "/" : $0.name }
        DirectoryListing.sortedByBytes(&names)
        let shown = names.prefix(5).joined(separator: ", ")
        return names.count > 5 ? "\(shown), ... (\(names.count) entries)" : shown
    }
}
