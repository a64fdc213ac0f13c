import Synchronization

/// Everything `tcpnotify top` shows, fed by the session's records: each connection's latest tcp_info,
/// rates and rule (`TopFlow`), and its verdict from a `DiagnosisTimeline` (the tracker `diagnose` uses).
/// Records come from the kernel (at TCP events and from the sweep), never from polling each socket.
/// Safe to use from any thread: records arrive on the reader's thread, ticks on the session's, frames are
/// drawn on the screen's.
public final class TopModel: Sendable {
    /// A closed connection stays in the table this long (marked CLOSED) before it goes.
    public static let closedRetentionNanoseconds: UInt64 = 5_000_000_000
    /// Connections held at most; beyond it the least recently heard of go first.
    public static let maximumFlows = 65_536
    /// The rule `top` adds to sample every flow; its firings are not "the rule last fired".
    public static let samplingRuleName = "diagnose_sample"

    public let timeline: DiagnosisTimeline
    private let ownerName: @Sendable (UInt64) -> String?
    private let state = Mutex(State())

    private struct State {
        var flows: [UInt64: TopFlow] = [:]
        /// The verdict of flows the timeline has let go of (closed): kept while their row shows.
        var finalVerdicts: [UInt64: (Bottleneck, UInt64)] = [:]
        var records: UInt64 = 0
    }

    /// `ownerName` names a cgroup id (the last component of its path); nil when unknown.
    public init(configuration: DiagnosisConfiguration = DiagnosisConfiguration(), startMonotonicNanoseconds: UInt64,
                ownerName: @escaping @Sendable (UInt64) -> String? = { _ in nil }) {
        timeline = DiagnosisTimeline(configuration: configuration, startMonotonicNanoseconds: startMonotonicNanoseconds)
        self.ownerName = ownerName
    }

    /// Records delivered so far.
    public var recordCount: UInt64 { state.withLock { $0.records } }

    /// Takes a batch of records; `ruleNames` names the rules of a rule-table generation.
    public func record(_ batch: [SocketNotification], ruleNames: (UInt32) -> [String]) {
        let outputs = timeline.record(batch)
        var names: [UInt32: [String]] = [:]
        for notification in batch where names[notification.ruleGeneration] == nil {
            names[notification.ruleGeneration] = ruleNames(notification.ruleGeneration)
        }
        let newOwners = state.withLock { state -> [UInt64] in
            state.records += UInt64(batch.count)
            var unnamed: [UInt64] = []
            for notification in batch {
                let ruleNames = names[notification.ruleGeneration] ?? []
                let fired = notification.firedRuleIndices.compactMap { $0 < ruleNames.count ? ruleNames[$0] : nil }
                    .filter { $0 != Self.samplingRuleName }
                if state.flows[notification.cookie] == nil {
                    state.flows[notification.cookie] = TopFlow(notification)
                    unnamed.append(notification.cookie)
                }
                state.flows[notification.cookie]?.observe(notification, firedRules: fired)
            }
            if state.flows.count > Self.maximumFlows { Self.dropStalest(&state) }
            return unnamed
        }
        apply(outputs)
        nameOwners(newOwners)
    }

    /// Periodically: flows silent for longer than the window are judged on that silence, and closed flows
    /// shown long enough go.
    public func tick(nowMonotonicNanoseconds now: UInt64) {
        apply(timeline.tick(nowMonotonicNanoseconds: now, interval: false))
        state.withLock { state in
            for (cookie, flow) in state.flows {
                guard let closed = flow.closedAtNanoseconds, now > closed &+ Self.closedRetentionNanoseconds else { continue }
                state.flows[cookie] = nil
                state.finalVerdicts[cookie] = nil
            }
        }
    }

    /// Every connection (or those `filter` matches, and how many there are in all), unsorted.
    public func rows(nowMonotonicNanoseconds now: UInt64, filter: CompiledFilter? = nil) -> (rows: [TopRow], total: Int) {
        let (flows, finals) = state.withLock { ($0.flows, $0.finalVerdicts) }
        var rows: [TopRow] = []
        rows.reserveCapacity(flows.count)
        for (cookie, flow) in flows {
            if let filter, !filter.matchAll, !filter.matches(
                localAddress: flow.local.address, localPort: flow.local.port,
                remoteAddress: flow.remote.address, remotePort: flow.remote.port) { continue }
            let verdict = timeline.verdictSince(cookie: cookie) ?? finals[cookie]
            rows.append(flow.row(cookie: cookie, verdict: verdict, nowNanoseconds: now))
        }
        return (rows, flows.count)
    }

    /// One connection in full, for the detail view; nil once it has gone.
    public func detail(cookie: UInt64, nowMonotonicNanoseconds now: UInt64) -> TopDetail? {
        guard let (flow, final) = state.withLock({ state in state.flows[cookie].map { ($0, state.finalVerdicts[cookie]) } })
        else { return nil }
        let verdict = timeline.verdictSince(cookie: cookie) ?? final
        let current = timeline.current(cookie: cookie, nowMonotonicNanoseconds: now)
        return TopDetail(
            row: flow.row(cookie: cookie, verdict: verdict, nowNanoseconds: now), info: flow.info, trigger: flow.trigger,
            ageNanoseconds: now > flow.lastSeenNanoseconds ? now - flow.lastSeenNanoseconds : 0, records: flow.records,
            cgroupID: flow.cgroupID, report: current?.0, summary: current?.1, history: flow.history)
    }

    private func apply(_ outputs: [DiagnosisTimeline.Output]) {
        guard !outputs.isEmpty else { return }
        let start = timeline.startNanoseconds
        state.withLock { state in
            for output in outputs {
                switch output {
                case .verdict(let update):
                    let cookie = update.report.cookie
                    let at = start &+ update.elapsedNanoseconds
                    switch update.kind {
                    case .first:
                        state.flows[cookie]?.judged(TopVerdictChange(bottleneck: update.report.diagnosis.bottleneck, monotonicNanoseconds: at))
                    case .change:
                        // Shown from its first judgement on, when the previous one stopped holding.
                        let since = timeline.verdictSince(cookie: cookie)?.1 ?? at
                        state.flows[cookie]?.judged(TopVerdictChange(
                            bottleneck: update.report.diagnosis.bottleneck, monotonicNanoseconds: since,
                            previousHeldNanoseconds: update.previousHeldNanoseconds))
                    case .interval:
                        break
                    }
                case .closed(let report, _):
                    guard var flow = state.flows[report.cookie] else { continue }
                    flow.closedAtNanoseconds = flow.lastSeenNanoseconds
                    state.flows[report.cookie] = flow
                    if let last = flow.history.last { state.finalVerdicts[report.cookie] = (last.bottleneck, last.monotonicNanoseconds) }
                }
            }
        }
    }

    /// Resolves new flows' cgroups outside the lock (it may walk the cgroup tree).
    private func nameOwners(_ cookies: [UInt64]) {
        guard !cookies.isEmpty else { return }
        let ids = state.withLock { state in cookies.compactMap { state.flows[$0].map { ($0.cgroupID) } } }
        var names: [UInt64: String] = [:]
        for id in Set(ids) { names[id] = ownerName(id) }
        state.withLock { state in
            for cookie in cookies {
                guard let id = state.flows[cookie]?.cgroupID, let name = names[id] else { continue }
                state.flows[cookie]?.owner = name
            }
        }
    }

    private static func dropStalest(_ state: inout State) {
        let excess = state.flows.count - maximumFlows
        let stalest = state.flows.sorted { $0.value.lastSeenNanoseconds < $1.value.lastSeenNanoseconds }.prefix(excess)
        for (cookie, _) in stalest {
            state.flows[cookie] = nil
            state.finalVerdicts[cookie] = nil
        }
    }
}

/// One connection in full: the detail view's content.
public struct TopDetail: Sendable {
    public var row: TopRow
    public var info: TCPInfo
    /// The event of its latest record.
    public var trigger: Trigger
    /// Since its latest record.
    public var ageNanoseconds: UInt64
    public var records: UInt64
    public var cgroupID: UInt64
    /// The verdict's evidence now and the flow's life (nil before a verdict is possible, or once closed).
    public var report: DiagnosisReport?
    public var summary: FlowSummary?
    public var history: [TopVerdictChange]
}
