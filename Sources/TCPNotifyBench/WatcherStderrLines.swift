import TCPNotifyCore

// Lines of tcpnotify's stderr that the benchmark reads figures from.

/// `tcpnotify: enrolled N existing socket(s) in M network namespace(s) in X.Y ms` on the watcher's stderr.
struct EnrollmentLine {
    let sockets: Int
    let namespaces: Int
    let milliseconds: Double

    init?(stderr: String) {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("enrolled") && $0.contains("existing socket") })
        else { return nil }
        let words = line.split(separator: " ")
        guard let enrolledIndex = words.firstIndex(of: "enrolled"), enrolledIndex + 1 < words.count,
              let sockets = Int(words[enrolledIndex + 1].filter { $0 != "," }),
              let inIndex = words.firstIndex(of: "in"), inIndex + 1 < words.count, let namespaces = Int(words[inIndex + 1].filter { $0 != "," }),
              let msIndex = words.lastIndex(of: "ms"), msIndex > 0, let milliseconds = Double(words[msIndex - 1])
        else { return nil }
        self.sockets = sockets
        self.namespaces = namespaces
        self.milliseconds = milliseconds
    }
}

/// tcpnotify's `ready in N ms since exec (before main A ms, load and verify B ms, attach C ms, enroll D ms)`.
struct ReadyLine {
    let milliseconds: Double
    /// The parenthesised parts, compacted: "main 20, load 190, attach 1, enroll 55".
    let parts: String

    init?(stderr: String) {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("ready in ") && $0.contains("since exec") }),
              let range = line.range(of: "ready in "),
              let milliseconds = Double(line[range.upperBound...].prefix { $0.isNumber })
        else { return nil }
        self.milliseconds = milliseconds
        let inner = line.split(separator: "(", maxSplits: 1).last?.dropLast() ?? ""
        parts = inner.replacingOccurrences(of: " ms", with: "").replacingOccurrences(of: "before main", with: "main")
            .replacingOccurrences(of: "load and verify", with: "load")
    }
}

/// `tcpnotify: sweep: every 3m (last_ack_recv > 1h × 5 %; ...)` or `tcpnotify: sweep: none (...)`.
struct SweepLine {
    /// nil: no sweep.
    let periodSeconds: Double?
    /// What follows `sweep: `.
    let text: String
    /// The first sweep's horizon (`sweep: next after 59m58s (...)`): when the next sweep is needed;
    /// nil when the rules do not allow skipping ticks.
    var horizonSeconds: Double?
    var horizonText: String?

    static let horizonPrefix = "sweep: next after "

    init?(stderr: String) {
        if let line = stderr.split(separator: "\n").first(where: { $0.contains(Self.horizonPrefix) }),
           let range = line.range(of: Self.horizonPrefix) {
            horizonText = String(line[line.index(range.lowerBound, offsetBy: 7)...])
            if let duration = line[range.upperBound...].split(separator: " ").first,
               let span = try? DurationText.parse(String(duration)) {
                horizonSeconds = Double(span.nanoseconds) / 1e9
            }
        }
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("sweep: ") && !$0.contains(Self.horizonPrefix) }),
              let range = line.range(of: "sweep: ")
        else { return nil }
        text = String(line[range.upperBound...])
        if text.hasPrefix("none") {
            periodSeconds = nil
            return
        }
        guard text.hasPrefix("every "), let duration = text.dropFirst(6).split(separator: " ").first,
              let span = try? DurationText.parse(String(duration))
        else { return nil }
        periodSeconds = Double(span.nanoseconds) / 1e9
    }
}
