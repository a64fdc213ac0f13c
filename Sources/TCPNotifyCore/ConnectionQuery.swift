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

/// The history's JSON answers (records as `watch --diagnose` prints them, verdicts as `diagnose` does).
public struct ConnectionHistoryJSON: Sendable {
    public var formatter: NotificationFormatter

    public init(formatter: NotificationFormatter) { self.formatter = formatter }

    public typealias History = ConnectionHistory<SocketNotification, Diagnosis>

    /// The reply to a query for all connections (`entries`) or for one.
    public func reply(_ entries: [History.Entry], counters: History.Counters, held: Int) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "connections")
        writer.field("held", held)
        writer.field("evicted_connections", counters.evictedConnections)
        writer.field("evicted_verdicts", counters.evictedVerdicts)
        writer.field("expired_connections", counters.expiredConnections)
        writer.beginArray("connections")
        for entry in entries { write(entry, to: &writer) }
        writer.endArray()
        writer.endObject()
        return writer.text
    }

    /// One connection as an object.
    public func connection(_ entry: History.Entry) -> String {
        var writer = JSONWriter()
        write(entry, to: &writer)
        return writer.text
    }

    func write(_ entry: History.Entry, to writer: inout JSONWriter) {
        let record = entry.lastRecord
        writer.beginObject()
        writer.field("cookie", entry.cookie)
        writer.field("src", record.local.description)
        writer.field("dst", record.remote.description)
        writer.field("open", entry.closedNanoseconds == nil)
        writer.rawField("first_seen", formatter.wallClock(entry.firstNanoseconds).jsonLiteral)
        writer.rawField("last_seen", formatter.wallClock(entry.lastNanoseconds).jsonLiteral)
        if let closed = entry.closedNanoseconds { writer.rawField("closed", formatter.wallClock(closed).jsonLiteral) }
        writer.rawField("last_record", formatter.jsonLine(for: record, diagnosis: entry.verdicts.last?.verdict))
        writer.beginArray("verdicts")
        for span in entry.verdicts {
            writer.beginObject()
            let verdict = Wire.Verdict(span.verdict)
            writer.value("end", verdict.end)
            writer.value("bottleneck", verdict.bottleneck)
            writer.value("confidence", Wire.FixedDecimal(verdict.confidence, decimals: 2))
            writer.value("evidence", verdict.evidence)
            writer.value("signals", verdict.signals)
            writer.value("summary", verdict.summary)
            writer.rawField("first", formatter.wallClock(span.firstNanoseconds).jsonLiteral)
            writer.rawField("last", formatter.wallClock(span.lastNanoseconds).jsonLiteral)
            writer.field("count", span.count)
            writer.endObject()
        }
        writer.endArray()
        writer.field("dropped_verdicts", entry.droppedVerdicts)
        writer.endObject()
    }
}
