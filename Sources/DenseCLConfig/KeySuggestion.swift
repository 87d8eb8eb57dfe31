/// "Did you mean ...?" for unknown configuration keys.
enum KeySuggestion {
    /// The known key path closest to `typed`: the same key name in another section if there is one (`model.lr`
    /// suggests `optim.lr`), otherwise the path within a small edit distance, otherwise `nil`.
    static func closest(to typed: String, among known: [String]) -> String? {
        let leaf = typed.split(separator: ".").last.map(String.init) ?? typed
        if let sameLeaf = known.first(where: { $0.split(separator: ".").last.map(String.init) == leaf }) {
            return sameLeaf
        }
        // Allow two edits (one swapped pair), more for long names, at most three: "feat_dm" and "modle" are typos,
        // "learning_rate" versus "lr" is not.
        let limit = min(3, max(2, typed.count / 3))
        let scored = known.map { (path: $0, distance: editDistance(typed, $0)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= limit else { return nil }
        return best.path
    }

    /// Levenshtein distance (insertions, deletions and substitutions of characters, each costing 1).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)  // distances from a[..<i-1] to every prefix of b
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
