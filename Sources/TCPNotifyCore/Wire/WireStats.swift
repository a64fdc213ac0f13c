extension Wire {
    /// `{"type":"stats",...}`: the counters `watch` prints when it stops (and `serve` logs); a polling run
    /// adds `"mode":"poll"` and its own counts.
    public struct Stats: WireLine, Equatable {
        public static let lineType = "stats"
        public var events: UInt64
        public var established: UInt64
        public var enrolled: UInt64
        public var notifications: UInt64
        public var received: UInt64
        public var ringDrops: UInt64
        public var userDrops: UInt64
        public var enrollFailures: UInt64
        public var wakeups: UInt64
        public var existingEnrolled: UInt64
        public var sweeps: UInt64
        public var sweepChecks: UInt64
        /// Only when nonzero: sweep ticks skipped before the sweep horizon (`SweepHorizon`).
        public var sweepsSkipped: UInt64?
        /// Only when nonzero: existing sockets the tracepoints watch (kernel < 6.12).
        public var viaTracepoints: UInt64?
        /// Only when something is off.
        public var degraded: [Degradation]?
        public var polling: Polling?

        /// `"mode":"poll"` and the poller's counts.
        public struct Polling: Codable, Sendable, Equatable {
            public var polls: UInt64
            public var namespaces: UInt64
            public var namespaceErrors: UInt64
            public var dumpErrors: UInt64
            public var dumpsInterrupted: UInt64
            public var latePolls: UInt64
            public var cgroupUnknown: UInt64

            public init(_ statistics: PollingStatistics) {
                polls = statistics.polls
                namespaces = UInt64(statistics.namespaces)
                namespaceErrors = statistics.namespaceErrors
                dumpErrors = statistics.dumpErrors
                dumpsInterrupted = statistics.dumpsInterrupted
                latePolls = statistics.latePolls
                cgroupUnknown = statistics.cgroupUnknown
            }

            enum CodingKeys: String, CodingKey {
                case mode, polls, namespaces, namespaceErrors = "namespace_errors", dumpErrors = "dump_errors"
                case dumpsInterrupted = "dumps_interrupted", latePolls = "late_polls", cgroupUnknown = "cgroup_unknown"
            }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                polls = try container.decode(UInt64.self, forKey: .polls)
                namespaces = try container.decode(UInt64.self, forKey: .namespaces)
                namespaceErrors = try container.decode(UInt64.self, forKey: .namespaceErrors)
                dumpErrors = try container.decode(UInt64.self, forKey: .dumpErrors)
                dumpsInterrupted = try container.decode(UInt64.self, forKey: .dumpsInterrupted)
                latePolls = try container.decode(UInt64.self, forKey: .latePolls)
                cgroupUnknown = try container.decode(UInt64.self, forKey: .cgroupUnknown)
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode("poll", forKey: .mode)
                try container.encode(polls, forKey: .polls)
                try container.encode(namespaces, forKey: .namespaces)
                try container.encode(namespaceErrors, forKey: .namespaceErrors)
                try container.encode(dumpErrors, forKey: .dumpErrors)
                try container.encode(dumpsInterrupted, forKey: .dumpsInterrupted)
                try container.encode(latePolls, forKey: .latePolls)
                try container.encode(cgroupUnknown, forKey: .cgroupUnknown)
            }
        }

        public init(_ statistics: WatchStatistics, polling: PollingStatistics? = nil) {
            events = statistics.events
            established = statistics.established
            enrolled = statistics.enrolled
            notifications = statistics.notifications
            received = statistics.received
            ringDrops = statistics.ringDrops
            userDrops = statistics.userDrops
            enrollFailures = statistics.enrollFailures
            wakeups = statistics.wakeups
            existingEnrolled = statistics.existingEnrolled
            sweeps = statistics.sweeps
            sweepChecks = statistics.sweepChecks
            sweepsSkipped = statistics.sweepsSkipped > 0 ? statistics.sweepsSkipped : nil
            viaTracepoints = statistics.viaTracepoints > 0 ? statistics.viaTracepoints : nil
            degraded = statistics.degradations.isEmpty ? nil : statistics.degradations
            self.polling = polling.map(Polling.init)
        }

        enum CodingKeys: String, CodingKey {
            case type, events, established, enrolled, notifications, received, ringDrops = "ring_drops"
            case userDrops = "user_drops", enrollFailures = "enroll_failures", wakeups, existingEnrolled = "existing_enrolled"
            case sweeps, sweepChecks = "sweep_checks", sweepsSkipped = "sweeps_skipped", viaTracepoints = "via_tracepoints", degraded, mode
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.lineType, forKey: .type)
            try container.encode(events, forKey: .events)
            try container.encode(established, forKey: .established)
            try container.encode(enrolled, forKey: .enrolled)
            try container.encode(notifications, forKey: .notifications)
            try container.encode(received, forKey: .received)
            try container.encode(ringDrops, forKey: .ringDrops)
            try container.encode(userDrops, forKey: .userDrops)
            try container.encode(enrollFailures, forKey: .enrollFailures)
            try container.encode(wakeups, forKey: .wakeups)
            try container.encode(existingEnrolled, forKey: .existingEnrolled)
            try container.encode(sweeps, forKey: .sweeps)
            try container.encode(sweepChecks, forKey: .sweepChecks)
            try container.encodeIfPresent(sweepsSkipped, forKey: .sweepsSkipped)
            try container.encodeIfPresent(viaTracepoints, forKey: .viaTracepoints)
            try container.encodeIfPresent(degraded, forKey: .degraded)
            try polling?.encode(to: encoder)
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            events = try container.decode(UInt64.self, forKey: .events)
            established = try container.decode(UInt64.self, forKey: .established)
            enrolled = try container.decode(UInt64.self, forKey: .enrolled)
            notifications = try container.decode(UInt64.self, forKey: .notifications)
            received = try container.decode(UInt64.self, forKey: .received)
            ringDrops = try container.decode(UInt64.self, forKey: .ringDrops)
            userDrops = try container.decode(UInt64.self, forKey: .userDrops)
            enrollFailures = try container.decode(UInt64.self, forKey: .enrollFailures)
            wakeups = try container.decode(UInt64.self, forKey: .wakeups)
            existingEnrolled = try container.decode(UInt64.self, forKey: .existingEnrolled)
            sweeps = try container.decode(UInt64.self, forKey: .sweeps)
            sweepChecks = try container.decode(UInt64.self, forKey: .sweepChecks)
            sweepsSkipped = try container.decodeIfPresent(UInt64.self, forKey: .sweepsSkipped)
            viaTracepoints = try container.decodeIfPresent(UInt64.self, forKey: .viaTracepoints)
            degraded = try container.decodeIfPresent([Degradation].self, forKey: .degraded)
            polling = try container.decodeIfPresent(String.self, forKey: .mode) == "poll" ? try Polling(from: decoder) : nil
        }
    }
}
