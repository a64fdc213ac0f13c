/// The protocol of `tcpnotify serve`'s Unix socket: newline-delimited JSON, one object per line.
///
///     → {"type":"subscribe","filter":"dport = :443","rules":["rtt > 50ms"]}
///     ← {"type":"subscribed","subscriber":3,"filter":"dport = :443","rules":["rtt > 50ms"],"existing_enrolled":2}
///     ← {"type":"notification",...}          exactly as `tcpnotify watch --format json` prints it
///     ← {"type":"dropped","count":12,"total":12}   this subscriber's queue overflowed
///     → {"type":"stats"}
///     ← {"type":"stats","subscriber":3,"delivered":120,"dropped":12,"queued_bytes":0}
///     ← {"type":"error","message":"..."}    and the connection stays open, unless the line was not
///                                           JSON or longer than `maxRequestBytes`
public enum SubscriberProtocol {
    /// A request line longer than this closes the connection.
    public static let maxRequestBytes = 64 * 1024
    /// Where `tcpnotify serve` listens unless told otherwise.
    public static let defaultSocketPath = "/run/tcpnotify/tcpnotify.sock"

    public enum Request: Sendable, Equatable {
        /// An empty filter selects every socket; no rules means the built-in rules.
        case subscribe(filter: String, rules: [String])
        case stats
        /// `serve --history`: the connections it remembers (see `ConnectionQuery`).
        case connections(ConnectionQuery)
    }

    /// A request that cannot be served. `closesConnection`: the peer is not speaking this protocol
    /// (not JSON, not an object, too long), so the daemon replies and hangs up.
    public struct RequestError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public let closesConnection: Bool

        public init(_ message: String, closesConnection: Bool = false) {
            self.message = message
            self.closesConnection = closesConnection
        }

        public var description: String { message }
    }

    private static let subscribeKeys: Set<String> = ["type", "filter", "rules"]
    private static let maxRules = 64

    /// Parses one request line (without its newline).
    public static func parse(_ line: [UInt8]) -> Result<Request, RequestError> {
        guard line.count <= maxRequestBytes else {
            return .failure(RequestError("request longer than \(maxRequestBytes) bytes", closesConnection: true))
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes: line)
        } catch {
            return .failure(RequestError("not a JSON object: \(error)", closesConnection: true))
        }
        guard let members = value.objectMembers else {
            return .failure(RequestError("not a JSON object: expected {\"type\":...}", closesConnection: true))
        }
        guard let type = value["type"]?.stringValue else {
            return .failure(RequestError("missing \"type\" (subscribe or stats)"))
        }
        switch type {
        case "subscribe":
            if let unknown = members.map(\.0).first(where: { !subscribeKeys.contains($0) }) {
                let suggestion = NameSuggestion.nearest(to: unknown, among: subscribeKeys.sorted(), name: { $0 }).map { "; did you mean '\($0)'?" } ?? ""
                return .failure(RequestError("unknown field '\(unknown)' in subscribe (known: filter, rules)\(suggestion)"))
            }
            var filter = ""
            if let given = value["filter"] {
                guard let text = given.stringValue else { return .failure(RequestError("\"filter\" must be a string")) }
                filter = text
            }
            var rules: [String] = []
            if let given = value["rules"] {
                guard let list = given.arrayValue else { return .failure(RequestError("\"rules\" must be an array of strings")) }
                guard list.count <= maxRules else { return .failure(RequestError("more than \(maxRules) rules")) }
                for item in list {
                    guard let text = item.stringValue else { return .failure(RequestError("\"rules\" must be an array of strings")) }
                    rules.append(text)
                }
            }
            return .success(.subscribe(filter: filter, rules: rules))
        case "stats":
            if let unknown = members.map(\.0).first(where: { $0 != "type" }) {
                return .failure(RequestError("unknown field '\(unknown)' in stats"))
            }
            return .success(.stats)
        case "connections":
            return ConnectionQuery.parse(value).map { .connections($0) }
        default:
            return .failure(RequestError("unknown request type '\(type)' (subscribe or stats)"))
        }
    }

    public static func subscribeLine(filter: String, rules: [String]) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "subscribe")
        writer.field("filter", filter)
        writer.beginArray("rules")
        for rule in rules { writer.field(nil, rule) }
        writer.endArray()
        writer.endObject()
        return writer.text
    }

    public static func subscribedLine(subscriber: Int, filter: String, rules: [String], existingEnrolled: UInt64) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "subscribed")
        writer.field("subscriber", subscriber)
        writer.field("filter", filter)
        writer.beginArray("rules")
        for rule in rules { writer.field(nil, rule) }
        writer.endArray()
        writer.field("existing_enrolled", existingEnrolled)
        writer.endObject()
        return writer.text
    }

    public static func errorLine(_ message: String) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "error")
        writer.field("message", message)
        writer.endObject()
        return writer.text
    }

    /// `count` lines were dropped here (since the last report); `total` over the subscription.
    public static func droppedLine(count: UInt64, total: UInt64) -> String {
        "{\"type\":\"dropped\",\"count\":\(count),\"total\":\(total)}"
    }

    public static func statsLine(subscriber: Int?, delivered: UInt64, dropped: UInt64, queuedBytes: Int) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "stats")
        if let subscriber { writer.field("subscriber", subscriber) }
        writer.field("delivered", delivered)
        writer.field("dropped", dropped)
        writer.field("queued_bytes", queuedBytes)
        writer.endObject()
        return writer.text
    }

    /// The daemon is stopping: the last line a subscriber gets.
    public static func endLine(reason: String, delivered: UInt64, dropped: UInt64) -> String {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("type", "end")
        writer.field("reason", reason)
        writer.field("delivered", delivered)
        writer.field("dropped", dropped)
        writer.endObject()
        return writer.text
    }
}

/// One subscriber's bounded outgoing queue. The kernel reader offers lines and never waits: when the
/// queue holds `capacityBytes`, new lines are dropped and counted, and the subscriber later reads a
/// `dropped` line at the place where they went missing.
public struct SubscriberQueue: Sendable {
    private enum Entry {
        case line(String)
        case dropped(UInt64)
    }

    public let capacityBytes: Int
    private var entries: [Entry] = []
    private var head = 0
    public private(set) var queuedBytes = 0
    /// Lines accepted, and lines dropped because the queue was full, over the queue's life.
    public private(set) var acceptedTotal: UInt64 = 0
    public private(set) var droppedTotal: UInt64 = 0

    public init(capacityBytes: Int) {
        self.capacityBytes = max(capacityBytes, 1)
    }

    public var isEmpty: Bool { head == entries.count }

    /// Full: the next line will be dropped whatever its size (so the producer can skip formatting it).
    public var isFull: Bool { queuedBytes >= capacityBytes }

    /// Counts a line dropped without being offered (the queue was full).
    public mutating func drop() {
        droppedTotal += 1
        if head < entries.count, case .dropped(let count) = entries[entries.count - 1] {
            entries[entries.count - 1] = .dropped(count + 1)
        } else {
            entries.append(.dropped(1))
        }
    }

    /// Queues a line (without its newline), or drops it when the queue is full; returns whether queued.
    @discardableResult
    public mutating func offer(_ line: String) -> Bool {
        let size = line.utf8.count + 1
        if queuedBytes + size > capacityBytes && !isEmpty {
            drop()
            return false
        }
        entries.append(.line(line))
        queuedBytes += size
        acceptedTotal += 1
        return true
    }

    /// Queues a line even when the queue is full (the daemon's last words to a subscriber).
    public mutating func append(_ line: String) {
        entries.append(.line(line))
        queuedBytes += line.utf8.count + 1
    }

    /// Removes and returns lines (dropped reports included) up to about `maxBytes`, at least one.
    public mutating func take(maxBytes: Int) -> [String] {
        var out: [String] = []
        var bytes = 0
        while head < entries.count && (out.isEmpty || bytes < maxBytes) {
            switch entries[head] {
            case .line(let line):
                out.append(line)
                let size = line.utf8.count + 1
                bytes += size
                queuedBytes -= size
            case .dropped(let count):
                out.append(SubscriberProtocol.droppedLine(count: count, total: droppedTotal))
            }
            head += 1
        }
        // Reclaim the consumed prefix once it dominates.
        if head == entries.count {
            entries.removeAll(keepingCapacity: entries.count < 4096)
            head = 0
        } else if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return out
    }
}
