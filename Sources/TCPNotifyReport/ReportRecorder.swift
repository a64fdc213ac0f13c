import Synchronization
import TCPNotifyCore

/// Collects what a run saw for `--report`: every record's numbers per flow, and the flows' verdicts
/// (from `diagnose`'s timeline, or from its own when `judging`: `watch`). Safe from any thread; memory
/// is bounded by `limits` (points and verdicts per flow, number of flows; flows beyond are counted).
public final class ReportRecorder: Sendable {
    public let limits: ReportLimits
    /// CLOCK_MONOTONIC when the command started: the charts' time zero.
    public let startNanoseconds: UInt64
    /// `watch --report`: verdicts judged here on the records watch gets.
    private let timeline: DiagnosisTimeline?
    private let state = Mutex(State())

    private struct State {
        var flows: [UInt64: FlowRecording] = [:]
        var order: [UInt64] = []
        /// Cookies of flows left out (counted once each, up to `omittedTracked`).
        var omitted = Set<UInt64>()
        /// More were left out than `omittedTracked`: the count is a lower bound.
        var omittedUntracked = false
        var newestNanoseconds: UInt64 = 0
    }

    static let omittedTracked = 65_536

    public init(limits: ReportLimits = ReportLimits(), startMonotonicNanoseconds: UInt64, judging: Bool = false,
                configuration: DiagnosisConfiguration = DiagnosisConfiguration()) {
        self.limits = limits
        startNanoseconds = startMonotonicNanoseconds
        timeline = judging ? DiagnosisTimeline(configuration: configuration, startMonotonicNanoseconds: startMonotonicNanoseconds) : nil
    }

    /// Records a batch (and, when judging, the verdicts it causes).
    public func record(_ batch: [SocketNotification]) {
        // Only charted flows are judged: the timeline's memory stays within the flow cap too.
        let charted = state.withLock { state -> [SocketNotification] in
            var charted: [SocketNotification] = []
            for notification in batch {
                let cookie = notification.cookie
                if state.flows[cookie] == nil {
                    guard state.flows.count < limits.flows else {
                        if state.omitted.count < Self.omittedTracked { state.omitted.insert(cookie) } else if !state.omitted.contains(cookie) {
                            state.omittedUntracked = true
                        }
                        continue
                    }
                    state.flows[cookie] = FlowRecording(
                        cookie: cookie, local: notification.local, remote: notification.remote,
                        cgroupID: notification.cgroupID, limits: limits)
                    state.order.append(cookie)
                }
                state.flows[cookie]?.append(ReportPoint(monotonicNanoseconds: notification.monotonicNanoseconds, info: notification.info),
                                            isClose: notification.trigger == .close)
                state.newestNanoseconds = max(state.newestNanoseconds, notification.monotonicNanoseconds)
                if timeline != nil { charted.append(notification) }
            }
            return charted
        }
        if let timeline, !charted.isEmpty { record(timeline.record(charted)) }
    }

    /// Records verdicts (`diagnose` passes its timeline's outputs).
    public func record(_ outputs: [DiagnosisTimeline.Output]) {
        guard !outputs.isEmpty else { return }
        state.withLock { state in
            for output in outputs {
                switch output {
                case .verdict(let update): state.flows[update.report.cookie]?.observe(update, startNanoseconds: startNanoseconds)
                case .closed(let report, let summary): state.flows[report.cookie]?.close(report, summary: summary)
                }
            }
        }
    }

    /// When judging: silent flows are judged on their silence (call with the session's tick).
    public func tick(nowMonotonicNanoseconds now: UInt64) {
        if let timeline { record(timeline.tick(nowMonotonicNanoseconds: now, interval: false)) }
    }

    /// The report as it stands at `now`: open flows get their life up to now (when judging; `diagnose`
    /// passes the reports of its own `finish` through `record` first).
    public func document(nowMonotonicNanoseconds now: UInt64, title: String, context: [String] = [],
                         cgroupPath: (UInt64) -> String? = { _ in nil }) -> ReportDocument {
        if let timeline { record(timeline.finish(nowMonotonicNanoseconds: now).map { DiagnosisTimeline.Output.closed($0.0, $0.1) }) }
        return state.withLock { state in
            let flows = state.order.compactMap { cookie -> FlowRecording? in
                guard var flow = state.flows[cookie] else { return nil }
                flow.cgroupPath = cgroupPath(flow.cgroupID)
                return flow
            }
            return ReportDocument(
                title: title, context: context, startNanoseconds: startNanoseconds,
                endNanoseconds: max(now, state.newestNanoseconds, startNanoseconds), flows: flows,
                omittedFlows: state.omitted.count, omittedFlowsIsLowerBound: state.omittedUntracked, limits: limits)
        }
    }
}

/// Everything the page shows: built by `ReportRecorder.document`, rendered by `ReportPage`.
public struct ReportDocument: Sendable {
    public var title: String
    /// Lines under the title (the command, when it ran); escaped when rendered.
    public var context: [String]
    /// The shared time axis: from the command's start to the report's end (CLOCK_MONOTONIC).
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var flows: [FlowRecording]
    /// Flows seen beyond `limits.flows`, not charted.
    public var omittedFlows: Int
    /// More flows were left out than could be counted one by one.
    public var omittedFlowsIsLowerBound: Bool
    public var limits: ReportLimits

    public init(title: String, context: [String], startNanoseconds: UInt64, endNanoseconds: UInt64,
                flows: [FlowRecording], omittedFlows: Int, omittedFlowsIsLowerBound: Bool = false, limits: ReportLimits) {
        self.title = title
        self.context = context
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = max(endNanoseconds, startNanoseconds)
        self.flows = flows
        self.omittedFlows = omittedFlows
        self.omittedFlowsIsLowerBound = omittedFlowsIsLowerBound
        self.limits = limits
    }
}
