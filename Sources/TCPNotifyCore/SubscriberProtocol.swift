/// The protocol of `tcpnotify serve`'s Unix socket: newline-delimited JSON, one object per line, each
/// message a `Wire` type (`Wire.Subscribe`, `Wire.Subscribed`, ...).
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
        case subscribe(filter: String, rules: [String], scope: SubscriptionScope = SubscriptionScope())
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

    /// Parses one request line (without its newline).
    public static func parse(_ line: [UInt8]) -> Result<Request, RequestError> {
        guard line.count <= maxRequestBytes else {
            return .failure(RequestError("request longer than \(maxRequestBytes) bytes", closesConnection: true))
        }
        let type: String
        do {
            type = try Wire.lineType(of: line)
        } catch {
            return .failure(error.isJSON
                ? RequestError("missing \"type\" (subscribe or stats)")
                : RequestError(error.message, closesConnection: true))
        }
        do {
            switch type {
            case Wire.Subscribe.lineType:
                let request = try Wire.decodeValue(Wire.Subscribe.self, from: line)
                return .success(.subscribe(filter: request.filter, rules: request.rules, scope: request.scope))
            case Wire.StatsRequest.lineType:
                _ = try Wire.decodeValue(Wire.StatsRequest.self, from: line)
                return .success(.stats)
            case ConnectionQuery.lineType:
                return .success(.connections(try Wire.decodeValue(ConnectionQuery.self, from: line)))
            default:
                return .failure(RequestError("unknown request type '\(type)' (subscribe, stats or connections)"))
            }
        } catch {
            return .failure(RequestError(error.message, closesConnection: !error.isJSON))
        }
    }

    public static func subscribeLine(filter: String, rules: [String], scope: SubscriptionScope = SubscriptionScope()) -> String {
        Wire.line(Wire.Subscribe(filter: filter, rules: rules, scope: scope))
    }

    public static func subscribedLine(subscriber: Int, filter: String, rules: [String], existingEnrolled: UInt64) -> String {
        Wire.line(Wire.Subscribed(subscriber: subscriber, filter: filter, rules: rules, existingEnrolled: existingEnrolled))
    }

    public static func errorLine(_ message: String) -> String { Wire.line(Wire.ErrorReply(message: message)) }

    /// `count` lines were dropped here (since the last report); `total` over the subscription.
    public static func droppedLine(count: UInt64, total: UInt64) -> String { Wire.line(Wire.Dropped(count: count, total: total)) }

    public static func statsLine(subscriber: Int?, delivered: UInt64, dropped: UInt64, queuedBytes: Int) -> String {
        Wire.line(Wire.SubscriberStats(subscriber: subscriber, delivered: delivered, dropped: dropped, queuedBytes: queuedBytes))
    }

    /// The daemon is stopping: the last line a subscriber gets.
    public static func endLine(reason: String, delivered: UInt64, dropped: UInt64) -> String {
        Wire.line(Wire.End(reason: reason, delivered: delivered, dropped: dropped))
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
