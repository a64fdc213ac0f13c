import Synchronization

/// Keeps a short history of `tcp_info` samples per flow (keyed by socket cookie) and diagnoses each flow on
/// its recent window. Feed it every record of the flows of interest; it is safe to use from any thread.
///
/// Memory stays bounded: a flow keeps only the samples its window needs (at most one per
/// `minimumSampleSpacingNanoseconds`), closed flows are dropped `closedFlowRetentionNanoseconds` after
/// their close record, and beyond `maximumFlows` the least recently updated flows go first (counted:
/// `evictedFlowCount`).
public final class DiagnosisTracker: Sendable {
    public let classifier: BottleneckClassifier
    public let minimumSampleSpacingNanoseconds: UInt64
    public let closedFlowRetentionNanoseconds: UInt64
    public let maximumFlows: Int
    private let state = Mutex(TrackerState())

    private struct TrackerState {
        var flows: [UInt64: FlowHistory] = [:]
        var nextArrival: UInt64 = 0
        var newestNanoseconds: UInt64 = 0
        var recordsSinceSweep = 0
        var evictedFlows: UInt64 = 0
    }

    public init(
        configuration: DiagnosisConfiguration = DiagnosisConfiguration(),
        minimumSampleSpacingNanoseconds: UInt64 = 50_000_000,
        closedFlowRetentionNanoseconds: UInt64 = 10_000_000_000,
        maximumFlows: Int = 65_536
    ) {
        classifier = BottleneckClassifier(configuration: configuration)
        self.minimumSampleSpacingNanoseconds = minimumSampleSpacingNanoseconds
        self.closedFlowRetentionNanoseconds = closedFlowRetentionNanoseconds
        self.maximumFlows = max(maximumFlows, 1)
    }

    /// Adds a record's tcp_info to its flow's history (a `close` record marks the flow closed).
    public func record(_ notification: SocketNotification) {
        record(DiagnosisSample(notification), cookie: notification.cookie, local: notification.local,
               remote: notification.remote, isClose: notification.trigger == .close)
    }

    /// Adds a sample taken some other way (e.g. `getsockopt(TCP_INFO)` polls).
    public func record(_ sample: DiagnosisSample, cookie: UInt64, local: Endpoint, remote: Endpoint, isClose: Bool = false) {
        let window = classifier.configuration.windowNanoseconds
        state.withLock { state in
            if state.flows[cookie] == nil {
                state.flows[cookie] = FlowHistory(local: local, remote: remote, arrival: state.nextArrival)
                state.nextArrival += 1
            }
            state.flows[cookie]?.append(sample, isClose: isClose, keepingNanoseconds: window,
                                        minimumSpacingNanoseconds: minimumSampleSpacingNanoseconds)
            state.newestNanoseconds = max(state.newestNanoseconds, sample.monotonicNanoseconds)
            state.recordsSinceSweep += 1
            if state.recordsSinceSweep >= 1024 || state.flows.count > maximumFlows { sweep(&state) }
        }
    }

    /// The verdict on a flow's recent window, or nil for a flow never recorded (or already dropped).
    /// With `nowMonotonicNanoseconds` (kernel CLOCK_MONOTONIC), a flow silent for longer than the window is
    /// judged on that silence (see `BottleneckClassifier.diagnose(_:nowMonotonicNanoseconds:)`).
    public func diagnosis(cookie: UInt64, nowMonotonicNanoseconds: UInt64? = nil) -> Diagnosis? {
        report(cookie: cookie, nowMonotonicNanoseconds: nowMonotonicNanoseconds)?.diagnosis
    }

    public func report(cookie: UInt64, nowMonotonicNanoseconds: UInt64? = nil) -> DiagnosisReport? {
        guard let flow = state.withLock({ $0.flows[cookie] }) else { return nil }
        return report(cookie: cookie, flow: flow, now: nowMonotonicNanoseconds)
    }

    /// Reports for every flow held, in the order flows were first seen.
    public func reports(nowMonotonicNanoseconds: UInt64? = nil) -> [DiagnosisReport] {
        let flows = state.withLock { $0.flows }.sorted { $0.value.arrival < $1.value.arrival }
        return flows.map { report(cookie: $0.key, flow: $0.value, now: nowMonotonicNanoseconds) }
    }

    /// Drops a flow's history (e.g. once its final diagnosis has been printed).
    public func forget(cookie: UInt64) {
        _ = state.withLock { $0.flows.removeValue(forKey: cookie) }
    }

    public var flowCount: Int { state.withLock { $0.flows.count } }

    /// Open flows dropped to stay within `maximumFlows` (closed flows that aged out are not counted).
    public var evictedFlowCount: UInt64 { state.withLock { $0.evictedFlows } }

    /// Whether a flow's history is held now.
    public func holds(cookie: UInt64) -> Bool { state.withLock { $0.flows[cookie] != nil } }

    /// Samples held for a flow (for tests of the memory bound).
    func sampleCount(cookie: UInt64) -> Int { state.withLock { $0.flows[cookie]?.samples.count ?? 0 } }

    private func report(cookie: UInt64, flow: FlowHistory, now: UInt64?) -> DiagnosisReport {
        DiagnosisReport(
            cookie: cookie, local: flow.local, remote: flow.remote, isClosed: flow.isClosed,
            diagnosis: classifier.diagnose(flow.samples, nowMonotonicNanoseconds: now))
    }

    private func sweep(_ state: inout TrackerState) {
        state.recordsSinceSweep = 0
        let newest = state.newestNanoseconds
        state.flows = state.flows.filter { _, flow in
            guard flow.isClosed else { return true }
            return newest < flow.lastNanoseconds &+ closedFlowRetentionNanoseconds
        }
        let excess = state.flows.count - maximumFlows
        if excess > 0 {
            let stalest = state.flows.sorted { $0.value.lastNanoseconds < $1.value.lastNanoseconds }.prefix(excess)
            for (cookie, _) in stalest { state.flows[cookie] = nil }
            state.evictedFlows += UInt64(excess)
        }
    }
}

/// One flow's samples, oldest first, trimmed to what its window needs.
struct FlowHistory: Sendable {
    let local: Endpoint
    let remote: Endpoint
    /// Order of first appearance, for stable output.
    let arrival: UInt64
    private(set) var samples: [DiagnosisSample] = []
    private(set) var isClosed = false

    init(local: Endpoint, remote: Endpoint, arrival: UInt64) {
        self.local = local
        self.remote = remote
        self.arrival = arrival
    }

    var lastNanoseconds: UInt64 { samples.last?.monotonicNanoseconds ?? 0 }

    mutating func append(
        _ sample: DiagnosisSample, isClose: Bool, keepingNanoseconds window: UInt64, minimumSpacingNanoseconds spacing: UInt64
    ) {
        if isClose { isClosed = true }
        let time = sample.monotonicNanoseconds
        if let last = samples.last, time < last.monotonicNanoseconds {
            // Records from different CPUs can arrive slightly out of order.
            let index = samples.firstIndex { $0.monotonicNanoseconds > time } ?? samples.endIndex
            samples.insert(sample, at: index)
        } else if samples.count >= 2, !isClose, time &- samples[samples.count - 2].monotonicNanoseconds < spacing {
            samples[samples.count - 1] = sample // a burst of records: keep the freshest
        } else {
            samples.append(sample)
        }
        // Keep the newest sample at or before the window's start: it is the baseline of the deltas.
        let newest = samples.last?.monotonicNanoseconds ?? time
        let start = newest >= window ? newest - window : 0
        if let baseline = samples.lastIndex(where: { $0.monotonicNanoseconds <= start }), baseline > 0 {
            samples.removeFirst(baseline)
        }
    }
}
