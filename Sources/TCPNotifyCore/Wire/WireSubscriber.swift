/// The messages of `tcpnotify serve`'s subscriber socket (see `SubscriberProtocol`), one type each.
/// Requests are read strictly: an unknown field is refused by name, since a typo would otherwise
/// silently subscribe to something else.
extension Wire {
    /// → `{"type":"subscribe","filter":"dport = :443","rules":["rtt > 50ms"]}`. An empty filter selects
    /// every socket; no rules means the built-in rules.
    public struct Subscribe: WireLine, Equatable {
        public static let lineType = "subscribe"
        public static let maxRules = 64
        static let knownKeys = ["type", "filter", "rules", "cgroup", "unit", "pid"]
        public var filter: String
        public var rules: [String]
        /// `"cgroup"`, `"unit"` or `"pid"`: only that cgroup's, unit's or process's sockets (at most one).
        public var scope: SubscriptionScope

        public init(filter: String = "", rules: [String] = [], scope: SubscriptionScope = SubscriptionScope()) {
            self.filter = filter
            self.rules = rules
            self.scope = scope
        }

        enum CodingKeys: String, CodingKey { case type, filter, rules, cgroup, unit, pid }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.lineType, forKey: .type)
            try container.encode(filter, forKey: .filter)
            try container.encode(rules, forKey: .rules)
            try container.encodeIfPresent(scope.cgroup, forKey: .cgroup)
            try container.encodeIfPresent(scope.unit, forKey: .unit)
            try container.encodeIfPresent(scope.pid, forKey: .pid)
        }

        public init(from decoder: any Decoder) throws {
            try Wire.refuseUnknownKeys(in: decoder, known: Self.knownKeys, request: "subscribe")
            let container = try decoder.container(keyedBy: CodingKeys.self)
            do {
                // Present means a string: null is refused, not taken for "every socket".
                filter = container.contains(.filter) ? try container.decode(String.self, forKey: .filter) : ""
            } catch {
                throw DecodeError("\"filter\" must be a string", isJSON: true)
            }
            do {
                rules = container.contains(.rules) ? try container.decode([String].self, forKey: .rules) : []
            } catch {
                throw DecodeError("\"rules\" must be an array of strings", isJSON: true)
            }
            guard rules.count <= Self.maxRules else { throw DecodeError("more than \(Self.maxRules) rules", isJSON: true) }
            scope = SubscriptionScope()
            do {
                scope.cgroup = try container.decodeIfPresent(String.self, forKey: .cgroup)
                scope.unit = try container.decodeIfPresent(String.self, forKey: .unit)
            } catch {
                throw DecodeError("\"cgroup\" and \"unit\" must be strings", isJSON: true)
            }
            do {
                scope.pid = try container.decodeIfPresent(Int32.self, forKey: .pid)
            } catch {
                throw DecodeError("\"pid\" must be a process id, a whole number", isJSON: true)
            }
            let given = [scope.cgroup != nil, scope.unit != nil, scope.pid != nil].filter { $0 }.count
            guard given <= 1 else { throw DecodeError("give at most one of \"cgroup\", \"unit\" and \"pid\"", isJSON: true) }
        }
    }

    /// → `{"type":"stats"}`: this subscriber's counters, answered with `SubscriberStats`.
    public struct StatsRequest: WireLine, Equatable {
        public static let lineType = "stats"

        public init() {}

        enum CodingKeys: String, CodingKey { case type }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(Self.lineType, forKey: .type)
        }

        public init(from decoder: any Decoder) throws {
            try Wire.refuseUnknownKeys(in: decoder, known: ["type"], request: "stats")
        }
    }

    /// ← `{"type":"subscribed","subscriber":3,"filter":"dport = :443","rules":["rtt > 50ms"],"existing_enrolled":2}`:
    /// the filter as understood (canonical text) and the names the rules notify under.
    public struct Subscribed: WireLine, Equatable {
        public static let lineType = "subscribed"
        public var type = LineType<Self>()
        public var subscriber: Int
        public var filter: String
        public var rules: [String]
        public var existingEnrolled: UInt64

        public init(subscriber: Int, filter: String, rules: [String], existingEnrolled: UInt64) {
            self.subscriber = subscriber
            self.filter = filter
            self.rules = rules
            self.existingEnrolled = existingEnrolled
        }

        enum CodingKeys: String, CodingKey { case type, subscriber, filter, rules, existingEnrolled = "existing_enrolled" }
    }

    /// ← `{"type":"dropped","count":12,"total":12}`: `count` lines were lost here (this subscriber's queue
    /// overflowed); `total` over the subscription.
    public struct Dropped: WireLine, Equatable {
        public static let lineType = "dropped"
        public var type = LineType<Self>()
        public var count: UInt64
        public var total: UInt64

        public init(count: UInt64, total: UInt64) {
            self.count = count
            self.total = total
        }

        enum CodingKeys: String, CodingKey { case type, count, total }
    }

    /// ← `{"type":"stats","subscriber":3,"delivered":120,"dropped":12,"queued_bytes":0}`
    public struct SubscriberStats: WireLine, Equatable {
        public static let lineType = "stats"
        public var type = LineType<Self>()
        public var subscriber: Int?
        public var delivered: UInt64
        public var dropped: UInt64
        public var queuedBytes: Int

        public init(subscriber: Int?, delivered: UInt64, dropped: UInt64, queuedBytes: Int) {
            self.subscriber = subscriber
            self.delivered = delivered
            self.dropped = dropped
            self.queuedBytes = queuedBytes
        }

        enum CodingKeys: String, CodingKey { case type, subscriber, delivered, dropped, queuedBytes = "queued_bytes" }
    }

    /// ← `{"type":"end","reason":"...","delivered":120,"dropped":0}`: the daemon is stopping; the last line.
    public struct End: WireLine, Equatable {
        public static let lineType = "end"
        public var type = LineType<Self>()
        public var reason: String
        public var delivered: UInt64
        public var dropped: UInt64

        public init(reason: String, delivered: UInt64, dropped: UInt64) {
            self.reason = reason
            self.delivered = delivered
            self.dropped = dropped
        }

        enum CodingKeys: String, CodingKey { case type, reason, delivered, dropped }
    }

    /// ← `{"type":"error","message":"..."}`: a request that cannot be served.
    public struct ErrorReply: WireLine, Equatable {
        public static let lineType = "error"
        public var type = LineType<Self>()
        public var message: String

        public init(message: String) { self.message = message }

        enum CodingKeys: String, CodingKey { case type, message }
    }

    /// Refuses a request with a field it does not know, suggesting the nearest known name.
    static func refuseUnknownKeys(in decoder: any Decoder, known: [String], request: String) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        guard let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) else { return }
        let fields = known.filter { $0 != "type" }
        let listed = fields.isEmpty ? "" : " (known: \(fields.joined(separator: ", ")))"
        let suggestion = NameSuggestion.nearest(to: unknown, among: known, name: { $0 }).map { "; did you mean '\($0)'?" } ?? ""
        throw DecodeError("unknown field '\(unknown)' in \(request)\(listed)\(suggestion)", isJSON: true)
    }
}
