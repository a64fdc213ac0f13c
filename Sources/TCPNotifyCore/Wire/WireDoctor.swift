extension Wire {
    /// `tcpnotify doctor --format json`: the host report, one object (the command's whole output, so no
    /// `"type"`). Keys in this order: kernel, mode, push, checks, missing_tcp_info_fields, degraded.
    public struct DoctorReport: Codable, Sendable, Equatable {
        /// The kernel release (`uname -r`).
        public var kernel: String
        /// How notifications would reach tcpnotify here: "push", "push, N feature(s) off", "poll (...)", "none: ...".
        public var mode: String
        /// The core program loads and attaches.
        public var push: Bool
        /// Each check's `"without"` only when the host lacks the feature (`"status":"no"`).
        public var checks: [HostCheck]
        /// tcp_info fields this kernel does not report, by kernel name.
        public var missingTCPInfoFields: [String]
        public var degraded: [Degradation]

        /// `mode` says how notifications would arrive here (the caller knows whether polling works).
        public init(_ report: HostReport, mode: String) {
            kernel = report.kernel
            self.mode = mode
            push = report.push
            checks = report.checks.map { check in
                var written = check
                if check.status != .no { written.without = nil }
                return written
            }
            missingTCPInfoFields = report.missingFields.map(\.name)
            degraded = report.degradations
        }

        enum CodingKeys: String, CodingKey {
            case kernel, mode, push, checks, missingTCPInfoFields = "missing_tcp_info_fields", degraded
        }
    }
}
