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
        return DatasetIndex(
            source: .folder(root: root), base: root, paths: PathTable(found), labels: [], classNames: [])
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
