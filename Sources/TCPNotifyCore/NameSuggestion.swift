/// "Did you mean" lookups for field names, keywords, services, states, units and presets.
enum NameSuggestion {
    /// The candidate closest to `word` by edit distance (adjacent swaps count once), or nil when no
    /// candidate is close enough to be a plausible typo. Falls back to the one candidate containing `word`.
    static func nearest<Candidate>(to word: String, among candidates: [Candidate],
                                   name: (Candidate) -> String) -> Candidate? {
        nearestIndex(to: word, among: candidates.map { key(name($0)) }).map { candidates[$0] }
    }

    /// A name as `nearestIndex` compares it; callers with a fixed list keep these.
    static func key(_ name: String) -> [UInt8] { Array(name.lowercased().utf8) }

    /// The index of the nearest of `keys` (see `nearest`).
    static func nearestIndex(to word: String, among keys: [[UInt8]]) -> Int? {
        let key = Self.key(word)
        guard !key.isEmpty, key.count <= 64 else { return nil }
        let allowed = key.count <= 4 ? 1 : key.count <= 8 ? 2 : 3
        var best: (index: Int, distance: Int)?
        for (index, other) in keys.enumerated() {
            // The distance is at least the difference in length: skip hopeless candidates cheaply.
            let limit = min(allowed, (best?.distance ?? .max) - 1)
            guard abs(other.count - key.count) <= limit else { continue }
            let distance = editDistance(key, other, limit: limit)
            if distance <= limit { best = (index, distance) }
        }
        if let best { return best.index }
        guard key.count >= 3 else { return nil }
        let containing = keys.indices.filter { contains(keys[$0], key) }
        return containing.count == 1 ? containing.first : nil
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
    static func editDistance(_ a: String, _ b: String) -> Int {
        editDistance(Array(a.utf8), Array(b.utf8), limit: .max)
    }

    /// The distance, or some value above `limit` as soon as it is certain to exceed it (every cell of
    /// a row above the limit means the end cannot come back under it).
    static func editDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        // Three rows of the table; plain loops, as this runs for every candidate name.
        let width = b.count + 1
        var previous2 = [Int](repeating: 0, count: width)
        var previous = [Int](repeating: 0, count: width)
        var current = [Int](repeating: 0, count: width)
        var j = 0
        while j < width {
            previous[j] = j
            j += 1
        }
        var previousMinimum = 0
        var i = 1
        while i <= a.count {
            current[0] = i
            var rowMinimum = i
            j = 1
            while j < width {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
                rowMinimum = min(rowMinimum, value)
                j += 1
            }
            // A swap reaches back two rows: once two rows in a row are over the limit, so is the end.
            if rowMinimum > limit, previousMinimum > limit { return limit &+ 1 }
            previousMinimum = rowMinimum
            (previous2, previous, current) = (previous, current, previous2)
            i += 1
        }
        return previous[b.count]
    }

    /// Whether `needle` occurs in `haystack` (bytes; names are short).
    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }
}
