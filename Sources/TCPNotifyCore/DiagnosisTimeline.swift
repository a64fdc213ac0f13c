import Synchronization

/// A verdict line of `tcpnotify diagnose`: a flow's first verdict, a change of verdict, or the periodic
/// line of `--interval`.
public struct VerdictUpdate: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case first
        case change
        case interval
    }

    public var kind: Kind
    public var report: DiagnosisReport
    /// When it was judged, in ns since the command started (on the first line: the time to the verdict).
    public var elapsedNanoseconds: UInt64
    /// `change`: the verdict before, and how long it held.
    public var previous: Bottleneck?
    public var previousHeldNanoseconds: UInt64?
    /// `interval`: how long the current verdict has held.
    public var heldNanoseconds: UInt64?

    public init(kind: Kind, report: DiagnosisReport, elapsedNanoseconds: UInt64, previous: Bottleneck? = nil,
                previousHeldNanoseconds: UInt64? = nil, heldNanoseconds: UInt64? = nil) {
        self.kind = kind
        self.report = report
        self.elapsedNanoseconds = elapsedNanoseconds
        self.previous = previous
        self.previousHeldNanoseconds = previousHeldNanoseconds
        self.heldNanoseconds = heldNanoseconds
    }
}

/// Flows' verdicts over time, on top of a `DiagnosisTracker` (which keeps each flow's recent samples):
/// every record is judged at once, a line comes when a flow gets its first verdict and when its verdict
/// changes, and a flow's close (or the end) brings its summary. A flow's first sample is the baseline of
/// its cumulative counters, so a connection that existed before the start is judged on what it does from
/// then on. Safe to use from any thread.
public final class DiagnosisTimeline: Sendable {
    public enum Output: Sendable, Equatable {
        case verdict(VerdictUpdate)
        /// A flow closed: its last verdict and its life.
        case closed(DiagnosisReport, FlowSummary)
    }

    public let tracker: DiagnosisTracker
    /// CLOCK_MONOTONIC when the command started: elapsed times count from it.
    public let startNanoseconds: UInt64
    private let flows = Mutex<[UInt64: FlowTimeline]>([:])

    public init(configuration: DiagnosisConfiguration = DiagnosisConfiguration(), startMonotonicNanoseconds: UInt64) {
        tracker = DiagnosisTracker(configuration: configuration)
        startNanoseconds = startMonotonicNanoseconds
    }

    /// Feeds records; returns the lines they cause, in order.
    public func record(_ batch: [SocketNotification]) -> [Output] {
        var outputs: [Output] = []
        for notification in batch {
            let cookie = notification.cookie, isClose = notification.trigger == .close
            let sample = DiagnosisSample(notification)
            tracker.record(notification)
            let report = tracker.report(cookie: cookie)
            let change = flows.withLock { flows -> (FlowTimeline.Change?, FlowTimeline?) in
                var flow = flows[cookie] ?? FlowTimeline(first: sample, local: notification.local, remote: notification.remote)
                flow.observe(sample, isClose: isClose)
                let change = report.flatMap { flow.judge($0.diagnosis.bottleneck, at: sample.monotonicNanoseconds) }
                if isClose { flows[cookie] = nil } else { flows[cookie] = flow }
                return (change, flow)
            }
            guard let report, let flow = change.1 else { continue }
            if isClose {
                tracker.forget(cookie: cookie)
                outputs.append(.closed(report, flow.summary(startNanoseconds: startNanoseconds)))
            } else if let update = update(change.0, report: report, at: sample.monotonicNanoseconds) {
                outputs.append(.verdict(update))
            }
        }
        return outputs
    }

    private func update(_ change: FlowTimeline.Change?, report: DiagnosisReport, at time: UInt64) -> VerdictUpdate? {
        let elapsed = time > startNanoseconds ? time - startNanoseconds : 0
        switch change {
        case .first: return VerdictUpdate(kind: .first, report: report, elapsedNanoseconds: elapsed)
        case .changed(let previous, let held):
            return VerdictUpdate(kind: .change, report: report, elapsedNanoseconds: elapsed, previous: previous,
                                 previousHeldNanoseconds: held)
        case nil: return nil
        }
    }

    /// Periodically: flows silent for longer than the window are judged on that silence (records come
    /// only with events and sweeps); with `interval`, every flow with a verdict that moved data since its
    /// last interval line gets one.
    public func tick(nowMonotonicNanoseconds now: UInt64, interval: Bool) -> [Output] {
        let window = tracker.classifier.configuration.windowNanoseconds
        let snapshot = flows.withLock { $0 }
        var outputs: [Output] = []
        for (cookie, flow) in snapshot.sorted(by: { $0.value.first.monotonicNanoseconds < $1.value.first.monotonicNanoseconds }) {
            let silent = now > flow.last.monotonicNanoseconds &+ window
            // (a flow without a verdict yet has nothing to say)
            let moved = flow.verdict != nil && FlowTimeline.bytesMoved(flow.last.info) != flow.bytesAtLastInterval
            guard silent || (interval && moved) else { continue }
            guard let report = tracker.report(cookie: cookie, nowMonotonicNanoseconds: now) else { continue }
            let result = flows.withLock { flows -> (FlowTimeline.Change?, FlowTimeline)? in
                guard var flow = flows[cookie] else { return nil }
                let change = silent ? flow.judge(report.diagnosis.bottleneck, at: now) : nil
                if interval && moved { flow.bytesAtLastInterval = FlowTimeline.bytesMoved(flow.last.info) }
                flows[cookie] = flow
                return (change, flow)
            }
            guard let (change, updated) = result else { continue }
            if let verdict = update(change, report: report, at: now) { outputs.append(.verdict(verdict)) }
            if interval && moved {
                outputs.append(.verdict(VerdictUpdate(
                    kind: .interval, report: report, elapsedNanoseconds: now > startNanoseconds ? now - startNanoseconds : 0,
                    heldNanoseconds: now - min(updated.verdictSince, now))))
            }
        }
        return outputs
    }

    /// Flows open now, oldest first.
    public var openFlows: [UInt64] {
        flows.withLock { $0 }.sorted { $0.value.first.monotonicNanoseconds < $1.value.first.monotonicNanoseconds }.map(\.key)
    }

    /// The verdict shown for a flow (nil before its first, or for a flow not held).
    public func verdict(cookie: UInt64) -> Bottleneck? { flows.withLock { $0[cookie]?.verdict } }

    /// The verdict shown for a flow and since when (CLOCK_MONOTONIC ns): `tcpnotify top`'s "held" column.
    public func verdictSince(cookie: UInt64) -> (Bottleneck, UInt64)? {
        flows.withLock { flows in flows[cookie].flatMap { flow in flow.verdict.map { ($0, flow.verdictSince) } } }
    }

    /// A live flow's report now and its life up to now.
    public func current(cookie: UInt64, nowMonotonicNanoseconds now: UInt64) -> (DiagnosisReport, FlowSummary)? {
        guard let flow = flows.withLock({ $0[cookie] }),
              let report = tracker.report(cookie: cookie, nowMonotonicNanoseconds: now) else { return nil }
        return (report, flow.summary(startNanoseconds: startNanoseconds, end: now))
    }

    /// Every open flow's report and life when the command ends, oldest first.
    public func finish(nowMonotonicNanoseconds now: UInt64) -> [(DiagnosisReport, FlowSummary)] {
        openFlows.compactMap { current(cookie: $0, nowMonotonicNanoseconds: now) }
    }
}
