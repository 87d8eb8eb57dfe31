/// `ROOT/train/<class>/<image>`: torchvision `ImageFolder` on `ROOT/train`.
enum ImageNetLayout {
    static let expected = "ROOT/train/<class>/*.JPEG"

    static func index(root: String) throws -> DatasetIndex {
        try DatasetIndex.checkDirectory(root)
        let train = root + "/train"
        guard DirectoryListing.kind(of: train) == .directory else {
            throw DatasetError.wrongLayout(
                root: root, expected: expected, found: "no train/ directory; the root holds \(DatasetIndex.summary(of: root))")
        }
        var classes = try DirectoryListing.entries(of: train).filter(\.isDirectory).map(\.name)
        guard !classes.isEmpty else {
            throw DatasetError.wrongLayout(
                root: root, expected: expected,
                found: "no class directories in train/, which holds \(DatasetIndex.summary(of: train))")
        }
        DirectoryListing.sortedByBytes(&classes)
        var paths = PathTable()
        var labels: [Int32] = []
        for (label, name) in classes.enumerated() {
            var files = try DirectoryListing.entries(of: train + "/" + name)
                .filter { !$0.isDirectory && DirectoryListing.hasImageExtension($0.name) }.map(\.name)
            DirectoryListing.sortedByBytes(&files)
            for file in files {
                paths.append(name + "/" + file)
                labels.append(Int32(label))
            }
        }
        guard paths.count > 0 else { throw DatasetError.empty(root: root, layout: "imagenet (\(expected))") }
        return DatasetIndex(source: .imagenet(root: root), base: train, paths: paths, labels: labels, classNames: classes)
    }
}

/// Every image file under a directory, recursively, unlabelled.
enum FolderLayout {
    /// Deeper trees are not walked (a guard against symbolic-link cycles).
    static let maximumDepth = 32

    static func index(root: String) throws -> DatasetIndex {
        try DatasetIndex.checkDirectory(root)
        var found: [String] = []
        try walk(root, relative: "", depth: 0, into: &found)
        guard !found.isEmpty else { throw DatasetError.empty(root: root, layout: "folder") }
        DirectoryListing.sortedByBytes(&found)
        return DatasetIndex(source: .folder(root: root), base: root, paths: PathTable(found), labels: [], classNames: [])
    }

    private static func walk(_ directory: String, relative: String, depth: Int, into found: inout [String]) throws {
        guard depth < maximumDepth else { return }
        for entry in try DirectoryListing.entries(of: directory) {
            let name = relative.isEmpty ? entry.name : relative + "/" + entry.name
            if entry.isDirectory {
                try walk(directory + "/" + entry.name, relative: name, depth: depth + 1, into: &found)
            } else if DirectoryListing.hasImageExtension(entry.name) {
                found.append(name)
            }
        }
    }
}
