/// A feature this host does not give tcpnotify, and what tcpnotify does without it. Reported once, at
/// start (stderr), in the final stats line and by `tcpnotify doctor`.
public struct Degradation: Sendable, Equatable, Hashable, Codable {
    /// What is off, in a user's words ("sweep over enrolled sockets (sk_storage map iterator)").
    public var feature: String
    /// The program or kernel facility that was refused, e.g. "sweep_enrolled".
    public var program: String
    /// Why, as the kernel said it: program, errno, the verifier's last line.
    public var reason: String
    /// What is lost, e.g. "stall rules see only the namespaces found at start".
    public var lost: String
    /// What replaces it, if anything.
    public var replacement: String?
    /// The first Linux version known to have the feature, where that is known.
    public var minimumKernel: String?

    public init(
        feature: String, program: String, reason: String, lost: String, replacement: String? = nil,
        minimumKernel: String? = nil
    ) {
        self.feature = feature
        self.program = program
        self.reason = reason
        self.lost = lost
        self.replacement = replacement
        self.minimumKernel = minimumKernel
    }

    /// One line for stderr.
    public var message: String {
        var text = "\(feature) is off: \(reason)"
        text += replacement.map { "; instead: \($0)" } ?? ""
        text += lost.isEmpty ? "" : "; lost: \(lost)"
        text += minimumKernel.map { " (needs Linux \($0) or later, where this host allows it)" } ?? ""
        return text
    }

    /// `{"feature":...,"program":...,"reason":...,"lost":...,"replacement":...,"minimum_kernel":...}` in the
    /// stats line's `"degraded"` and `doctor --format json`.
    enum CodingKeys: String, CodingKey {
        case feature, program, reason, lost, replacement, minimumKernel = "minimum_kernel"
    }
}
