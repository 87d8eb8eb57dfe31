/// A text file listing one image path per line, optionally followed by whitespace and an integer label.
enum FileListLayout {
    static func index(listPath: String) throws -> DatasetIndex {
        var file = FileBytes()
        do {
            try file.load(listPath)
        } catch .missing {
            throw DatasetError.rootNotFound(listPath)
        } catch .empty {
            throw DatasetError.empty(root: listPath, layout: "list")
        } catch {
            throw DatasetError.fileListUnreadable(path: listPath, reason: error.description)
        }
        let text = file.withBytes { String(decoding: $0, as: UTF8.self) }
        let directory = listPath.contains("/") ? String(listPath[..<listPath.lastIndex(of: "/")!]) : "."
        var paths = PathTable()
        var labels: [Int32] = []
        var unlabelledLines = 0
        var lineNumber = 0
        // `isNewline` also matches "\r\n", which Swift treats as one Character.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            var path = Substring(line)
            var label: Int32? = nil
            if let space = line.lastIndex(where: { $0 == " " || $0 == "\t" }),
                let value = Int32(line[line.index(after: space)...])
            {
                let rest = line[..<space].trimmingWhitespace()
                if !rest.isEmpty {
                    path = Substring(rest)
                    label = value
                }
            }
            guard label.map({ $0 >= 0 }) ?? true else {
                throw DatasetError.fileListMalformed(path: listPath, line: lineNumber, reason: "negative label")
            }
            if let label {
                labels.append(label)
            } else {
                unlabelledLines += 1
            }
            guard labels.isEmpty || unlabelledLines == 0 else {
                throw DatasetError.fileListMalformed(
                    path: listPath, line: lineNumber, reason: "some lines have a label and some do not")
            }
            paths.append(path.hasPrefix("/") ? String(path) : directory + "/" + path)
        }
        guard paths.count > 0 else { throw DatasetError.empty(root: listPath, layout: "list") }
        let classCount = Int(labels.max() ?? -1) + 1
        return DatasetIndex(
            source: .fileList(path: listPath), base: "", paths: paths, labels: labels,
            classNames: (0..<classCount).map(String.init))
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
