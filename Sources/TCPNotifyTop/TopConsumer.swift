import Glibc
import Synchronization
import TCPNotifyCore
import TCPNotifyRuntime

/// `top`'s session consumer: records go to the `TopModel`, ticks judge silent flows; once the source has
/// started, the display (screen or batch printer) starts on its own thread. The display asks to end the
/// session (q, or --iterations done) through `finish()`.
public final class TopConsumer: SessionConsumer {
    public let model: TopModel
    private let finished = Atomic<Bool>(false)
    private let kind = Mutex<SourceKind?>(nil)
    private let onStart: @Sendable (SourceKind) -> Void

    public init(model: TopModel, onStart: @escaping @Sendable (SourceKind) -> Void) {
        self.model = model
        self.onStart = onStart
    }

    public func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        model.record(batch) { ruleNames.names(generation: $0) }
    }

    public func started(kind: SourceKind) {
        self.kind.withLock { $0 = kind }
        onStart(kind)
    }

    public func tick(nowMonotonicNanoseconds now: UInt64) { model.tick(nowMonotonicNanoseconds: now) }

    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Ends the session (from any thread).
    public func finish() {
        finished.store(true, ordering: .releasing)
        StopSignals.wake()
    }

    /// The source's kind once it started.
    public var sourceKind: SourceKind? { kind.withLock { $0 } }
}

/// The header's numbers, from the session's statistics: notifications per second between two frames,
/// drops, the mode and what is degraded; and the session's latest event.
public final class TopStatusSampler: Sendable {
    private let startNanoseconds: UInt64
    private let state = Mutex(State())

    private struct State {
        var previous: (nanoseconds: UInt64, notifications: UInt64)?
        var rate = 0.0
        var events: [String] = []
    }

    /// Session messages kept at most (the screen prints them once it has given the terminal back).
    static let maximumEvents = 20

    public init(startMonotonicNanoseconds: UInt64) { startNanoseconds = startMonotonicNanoseconds }

    /// A session event, kept while the screen owns the terminal (stderr would tear the frame).
    public func note(_ event: SessionEvent) {
        state.withLock { state in
            if state.events.count < Self.maximumEvents { state.events += event.lines }
        }
    }

    /// The session's messages so far.
    public var events: [String] { state.withLock { $0.events } }

    public func sample(statistics: SourceStatistics?, kind: SourceKind?, records: UInt64, now: UInt64) -> TopStatus {
        var status = TopStatus()
        let counters = statistics?.statistics
        let notifications = counters?.notifications ?? records
        status.mode = kind == .poll ? "poll" : (counters?.viaTracepoints ?? 0) > 0 ? "hybrid" : "push"
        status.ringDrops = counters?.ringDrops ?? 0
        status.userDrops = counters?.userDrops ?? 0
        status.degraded = counters?.degradations.map(\.feature) ?? []
        status.uptimeNanoseconds = now > startNanoseconds ? now - startNanoseconds : 0
        var clock = time(nil)
        var parts = tm()
        localtime_r(&clock, &parts)
        status.secondsOfDay = Int(parts.tm_hour) * 3600 + Int(parts.tm_min) * 60 + Int(parts.tm_sec)
        state.withLock { state in
            // A rate needs half a second at least; in between, the last one stays.
            if let previous = state.previous, now > previous.nanoseconds + 500_000_000 {
                let count = notifications >= previous.notifications ? notifications - previous.notifications : 0
                state.rate = Double(count) * 1e9 / Double(now - previous.nanoseconds)
                state.previous = (now, notifications)
            } else if state.previous == nil {
                state.previous = (now, notifications)
            }
            status.notificationsPerSecond = state.rate
        }
        return status
    }
}
