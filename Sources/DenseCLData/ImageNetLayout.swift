/// `ROOT/train/<class>/<image>`: torchvision `ImageFolder` on `ROOT/train`.
enum ImageNetLayout {
    static let expected = "ROOT/train/<class>/*.JPEG"

    static func index(root: String) throws -> DatasetIndex {
        try DatasetIndex.checkDirectory(root)
        let train = root + "/train"
        guard DirectoryListing.kind(of: train) == .directory else {
            throw DatasetError.wrongLayout(
                root: root, expected: expected,
                found: "no train/ directory; the root holds \(DatasetIndex.summary(of: root))")
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
        return DatasetIndex(
            source: .imagenet(root: root), base: train, paths: paths, labels: labels, classNames: classes)
    }
}
