/// One line of `tcpnotify doctor`: a feature, whether this host gives it, and what tcpnotify does without it.
public struct HostCheck: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case yes, no
        /// Facts rather than features (the kernel release, CONFIG_HZ).
        case info
    }

    public var name: String
    public var status: Status
    /// What was found, or the kernel's reason for refusing it.
    public var detail: String
    /// What tcpnotify does without it (for `no`).
    public var without: String?
    public var minimumKernel: String?

    public init(name: String, status: Status, detail: String, without: String? = nil, minimumKernel: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.without = without
        self.minimumKernel = minimumKernel
    }

    enum CodingKeys: String, CodingKey { case name, status, detail, without, minimumKernel = "minimum_kernel" }
}

/// What this host gives tcpnotify, as `HostProbe` finds it by asking the kernel: libbpf's type probes, loading each real
/// program, and a real connection through the core program. Nothing is left attached.
public struct HostReport: Sendable {
    public var kernel: String
    public var checks: [HostCheck] = []
    /// The core program loads and attaches: notifications are pushed.
    public var push = false
    /// Features off and what replaces them (as `watch` reports them).
    public var degradations: [Degradation] = []
    /// tcp_info fields this kernel does not report.
    public var missingFields: [TCPInfoField] = []

    public init(kernel: String) { self.kernel = kernel }

    /// "push", "push (N features off)" or "none" (the caller adds polling).
    public var pushSummary: String {
        guard push else { return "none" }
        return degradations.isEmpty ? "push" : "push, \(degradations.count) feature(s) off"
    }
}
