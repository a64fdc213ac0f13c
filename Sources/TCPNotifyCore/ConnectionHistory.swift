/// `serve`'s memory of connections, keyed by socket cookie: each one's last record and its recent
/// verdicts, within fixed bounds. A value type, not thread-safe (the daemon keeps it behind a lock).
///
/// Bounds: at most `maximumConnections` connections; a new one beyond it evicts the one updated least
/// recently. At most `maximumVerdicts` verdict spans per connection; the oldest goes first. A closed
/// connection is dropped `retentionNanoseconds` after its close record. Evictions and expiries are counted.
public struct ConnectionHistory<Record: Sendable, Verdict: Sendable>: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maximumConnections: Int
        public var maximumVerdicts: Int
        public var retentionNanoseconds: UInt64

        public init(maximumConnections: Int = 4096, maximumVerdicts: Int = 8, retentionNanoseconds: UInt64 = 600_000_000_000) {
            self.maximumConnections = max(maximumConnections, 1)
            self.maximumVerdicts = max(maximumVerdicts, 1)
            self.retentionNanoseconds = retentionNanoseconds
        }
    }

    /// A verdict and how long it held: consecutive equal verdicts make one span.
    public struct VerdictSpan: Sendable {
        public var verdict: Verdict
        public var firstNanoseconds: UInt64
        public var lastNanoseconds: UInt64
        /// Times this verdict was reached in a row (one per judged record).
        public var count: Int
    }

    public struct Entry: Sendable {
        public let cookie: UInt64
        public var lastRecord: Record
        public var firstNanoseconds: UInt64
        public var lastNanoseconds: UInt64
        /// When the close record came; nil while open.
        public var closedNanoseconds: UInt64?
        /// Oldest first.
        public var verdicts: [VerdictSpan] = []
        /// Verdict spans dropped from this connection for `maximumVerdicts`.
        public var droppedVerdicts = 0
        /// Order of first appearance.
        let arrival: UInt64
    }

    public struct Counters: Sendable, Equatable {
        /// Connections evicted (oldest update first) for `maximumConnections`.
        public var evictedConnections: UInt64 = 0
        /// Verdict spans evicted (oldest first) for `maximumVerdicts`.
        public var evictedVerdicts: UInt64 = 0
        /// Closed connections dropped after the retention.
        public var expiredConnections: UInt64 = 0

        public init() {}
    }

    public let limits: Limits
    public private(set) var counters = Counters()
    private var entries: [UInt64: Entry] = [:]
    private var nextArrival: UInt64 = 0

    public init(limits: Limits = Limits()) { self.limits = limits }

    public var count: Int { entries.count }

    /// A connection's newest record (a close record marks it closed); `nowNanoseconds` is when it arrived.
    public mutating func record(_ record: Record, cookie: UInt64, isClose: Bool, nowNanoseconds: UInt64) {
        if entries[cookie] == nil {
            if entries.count >= limits.maximumConnections { evictStalest() }
            entries[cookie] = Entry(
                cookie: cookie, lastRecord: record, firstNanoseconds: nowNanoseconds, lastNanoseconds: nowNanoseconds,
                arrival: nextArrival)
            nextArrival += 1
        }
        entries[cookie]?.lastRecord = record
        entries[cookie]?.lastNanoseconds = nowNanoseconds
        if isClose, entries[cookie]?.closedNanoseconds == nil { entries[cookie]?.closedNanoseconds = nowNanoseconds }
    }

    /// A verdict on a connection already recorded; equal to the previous one (`same`), it extends its span.
    public mutating func verdict(_ verdict: Verdict, cookie: UInt64, nowNanoseconds: UInt64, same: (Verdict, Verdict) -> Bool) {
        guard var entry = entries[cookie] else { return }
        if let last = entry.verdicts.last, same(last.verdict, verdict) {
            entry.verdicts[entry.verdicts.count - 1].verdict = verdict
            entry.verdicts[entry.verdicts.count - 1].lastNanoseconds = nowNanoseconds
            entry.verdicts[entry.verdicts.count - 1].count += 1
        } else {
            entry.verdicts.append(VerdictSpan(verdict: verdict, firstNanoseconds: nowNanoseconds, lastNanoseconds: nowNanoseconds, count: 1))
            if entry.verdicts.count > limits.maximumVerdicts {
                let excess = entry.verdicts.count - limits.maximumVerdicts
                entry.verdicts.removeFirst(excess)
                entry.droppedVerdicts += excess
                counters.evictedVerdicts += UInt64(excess)
            }
        }
        entries[cookie] = entry
    }

    /// Drops the closed connections whose retention has passed.
    public mutating func expire(nowNanoseconds: UInt64) {
        let retention = limits.retentionNanoseconds
        let before = entries.count
        entries = entries.filter { _, entry in
            guard let closed = entry.closedNanoseconds else { return true }
            return nowNanoseconds < closed &+ retention
        }
        counters.expiredConnections += UInt64(before - entries.count)
    }

    public func entry(cookie: UInt64) -> Entry? { entries[cookie] }

    /// Every connection held, in the order they first appeared.
    public var all: [Entry] { entries.values.sorted { $0.arrival < $1.arrival } }

    private mutating func evictStalest() {
        guard let stalest = entries.min(by: { ($0.value.lastNanoseconds, $0.value.arrival) < ($1.value.lastNanoseconds, $1.value.arrival) }) else {
            return
        }
        entries[stalest.key] = nil
        counters.evictedConnections += 1
    }
}
