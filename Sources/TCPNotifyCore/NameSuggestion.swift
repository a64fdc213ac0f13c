/// "Did you mean" lookups for field names, keywords, services and states.
enum NameSuggestion {
    /// The candidate closest to `word` by edit distance (adjacent swaps count once), or nil when no
    /// candidate is close enough to be a plausible typo. Falls back to the one candidate containing `word`.
    static func nearest<Candidate>(to word: String, among candidates: [Candidate],
                                   name: (Candidate) -> String) -> Candidate? {
        let key = word.lowercased()
        guard !key.isEmpty, key.count <= 64 else { return nil }
        let allowed = key.count <= 4 ? 1 : key.count <= 8 ? 2 : 3
        var best: (candidate: Candidate, distance: Int)?
        for candidate in candidates {
            let other = name(candidate).lowercased()
            // The distance is at least the difference in length: skip hopeless candidates cheaply.
            guard abs(other.utf8.count - key.utf8.count) <= allowed else { continue }
            let distance = editDistance(key, other)
            if distance <= allowed, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        if let best { return best.candidate }
        let containing = candidates.filter { name($0).lowercased().contains(key) }
        return key.count >= 3 && containing.count == 1 ? containing.first : nil
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
