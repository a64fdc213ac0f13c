/// Asking `serve` about the connections it remembers (`--history`), over the subscriber socket:
///
///     → {"type":"connections"}                 every connection held
///     → {"type":"connections","cookie":4099}   one
///     ← {"type":"connections","held":2,"evicted_connections":0,"evicted_verdicts":0,"expired_connections":0,
///        "connections":[{"cookie":4099,"src":...,"dst":...,"open":true,"first_seen":...,"last_seen":...,
///        "last_record":{...as watch --diagnose prints it...},"verdicts":[{"bottleneck":...,"first":...,
///        "last":...,"count":3,...}],"dropped_verdicts":0}]}
///     ← {"type":"error","message":"no connection with cookie 4099 ..."}
///
/// The same objects answer `GET /connections` and `GET /connections/COOKIE` next to `/metrics`.
public struct ConnectionQuery: WireLine, Equatable {
    public static let lineType = "connections"
    /// One connection; nil: all.
    public var cookie: UInt64?

    public init(cookie: UInt64? = nil) { self.cookie = cookie }

    enum CodingKeys: String, CodingKey { case type, cookie }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.lineType, forKey: .type)
        try container.encodeIfPresent(cookie, forKey: .cookie)
    }

    public init(from decoder: any Decoder) throws {
        try Wire.refuseUnknownKeys(in: decoder, known: ["type", "cookie"], request: "connections")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            cookie = try container.decodeIfPresent(UInt64.self, forKey: .cookie)
        } catch {
            throw Wire.DecodeError("\"cookie\" must be a socket cookie, a whole number from 0 to \(UInt64.max)", isJSON: true)
        }
    }

    /// A cookie as the last component of `/connections/COOKIE`: decimal digits only.
    public static func cookie(fromPath component: Substring) -> UInt64? {
        guard !component.isEmpty, component.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt64(component)
    }
}

/// The history's JSON answers (records as `watch --diagnose` prints them, verdicts as `diagnose` does),
/// built from the wire model.
public struct ConnectionHistoryJSON: Sendable {
    public var formatter: NotificationFormatter

    public init(formatter: NotificationFormatter) { self.formatter = formatter }

    public typealias History = ConnectionHistory<SocketNotification, Diagnosis>

    /// The reply to a query for all connections (`entries`) or for one.
    public func reply(_ entries: [History.Entry], counters: History.Counters, held: Int) -> String {
        Wire.line(Wire.Connections(
            held: held, evictedConnections: counters.evictedConnections, evictedVerdicts: counters.evictedVerdicts,
            expiredConnections: counters.expiredConnections, connections: entries.map(wireConnection)))
    }

    /// One connection as an object.
    public func connection(_ entry: History.Entry) -> String { Wire.line(wireConnection(entry)) }

    public func wireConnection(_ entry: History.Entry) -> Wire.Connection {
        let record = entry.lastRecord
        return Wire.Connection(
            cookie: entry.cookie, src: record.local.description, dst: record.remote.description,
            open: entry.closedNanoseconds == nil, firstSeen: formatter.wallClock(entry.firstNanoseconds),
            lastSeen: formatter.wallClock(entry.lastNanoseconds), closed: entry.closedNanoseconds.map(formatter.wallClock),
            lastRecord: formatter.wireNotification(for: record, diagnosis: entry.verdicts.last?.verdict),
            verdicts: entry.verdicts.map {
                Wire.VerdictSpan(verdict: Wire.Verdict($0.verdict), first: formatter.wallClock($0.firstNanoseconds),
                                 last: formatter.wallClock($0.lastNanoseconds), count: $0.count)
            },
            droppedVerdicts: entry.droppedVerdicts)
    }
}
