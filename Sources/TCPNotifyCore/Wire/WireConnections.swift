/// `serve --history`'s answers (see `ConnectionQuery`): the connections it remembers, with their last
/// record and their verdicts over time.
extension Wire {
    /// ← `{"type":"connections","held":2,"evicted_connections":0,...,"connections":[...]}`
    public struct Connections: WireLine, Equatable {
        public static let lineType = "connections"
        public var type = LineType<Self>()
        public var held: Int
        public var evictedConnections: UInt64
        public var evictedVerdicts: UInt64
        public var expiredConnections: UInt64
        public var connections: [Connection]

        public init(held: Int, evictedConnections: UInt64, evictedVerdicts: UInt64, expiredConnections: UInt64,
                    connections: [Connection]) {
            self.held = held
            self.evictedConnections = evictedConnections
            self.evictedVerdicts = evictedVerdicts
            self.expiredConnections = expiredConnections
            self.connections = connections
        }

        enum CodingKeys: String, CodingKey {
            case type, held, evictedConnections = "evicted_connections", evictedVerdicts = "evicted_verdicts"
            case expiredConnections = "expired_connections", connections
        }
    }

    /// One remembered connection (`GET /connections/COOKIE`).
    public struct Connection: Codable, Sendable, Equatable {
        public var cookie: UInt64
        public var src: String
        public var dst: String
        public var open: Bool
        public var firstSeen: Timestamp
        public var lastSeen: Timestamp
        public var closed: Timestamp?
        /// As `watch --diagnose` prints it.
        public var lastRecord: Notification
        public var verdicts: [VerdictSpan]
        /// Spans dropped from this connection for the history's verdict cap.
        public var droppedVerdicts: Int

        public init(cookie: UInt64, src: String, dst: String, open: Bool, firstSeen: Timestamp, lastSeen: Timestamp,
                    closed: Timestamp?, lastRecord: Notification, verdicts: [VerdictSpan], droppedVerdicts: Int) {
            self.cookie = cookie
            self.src = src
            self.dst = dst
            self.open = open
            self.firstSeen = firstSeen
            self.lastSeen = lastSeen
            self.closed = closed
            self.lastRecord = lastRecord
            self.verdicts = verdicts
            self.droppedVerdicts = droppedVerdicts
        }

        enum CodingKeys: String, CodingKey {
            case cookie, src, dst, open, firstSeen = "first_seen", lastSeen = "last_seen", closed
            case lastRecord = "last_record", verdicts, droppedVerdicts = "dropped_verdicts"
        }
    }

    /// A verdict that held from `first` to `last` over `count` diagnoses: the verdict's fields inline.
    public struct VerdictSpan: Codable, Sendable, Equatable {
        public var verdict: Verdict
        public var first: Timestamp
        public var last: Timestamp
        public var count: Int

        public init(verdict: Verdict, first: Timestamp, last: Timestamp, count: Int) {
            self.verdict = verdict
            self.first = first
            self.last = last
            self.count = count
        }

        enum CodingKeys: String, CodingKey { case first, last, count }

        public func encode(to encoder: any Encoder) throws {
            try verdict.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(first, forKey: .first)
            try container.encode(last, forKey: .last)
            try container.encode(count, forKey: .count)
        }

        public init(from decoder: any Decoder) throws {
            verdict = try Verdict(from: decoder)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            first = try container.decode(Timestamp.self, forKey: .first)
            last = try container.decode(Timestamp.self, forKey: .last)
            count = try container.decode(Int.self, forKey: .count)
        }
    }
}
