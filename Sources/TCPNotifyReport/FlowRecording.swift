import TCPNotifyCore

/// One flow as the report shows it: its points, decimated to a fixed budget, its verdicts over time and
/// its summary. Memory is bounded by `ReportLimits` whatever the run's length.
public struct FlowRecording: Sendable {
    /// A verdict shown from `startNanoseconds` (CLOCK_MONOTONIC) until the next one.
    public struct VerdictSpan: Sendable, Equatable {
        public var startNanoseconds: UInt64
        public var bottleneck: Bottleneck
    }

    public let cookie: UInt64
    public let local: Endpoint
    public let remote: Endpoint
    public let cgroupID: UInt64
    /// The cgroup path when it could be resolved (escaped when rendered, like every string).
    public var cgroupPath: String?
    /// Kept points, oldest first; at most `limits.pointsPerFlow`, then the latest point not kept.
    public var points: [ReportPoint] { latest.map { kept + [$0] } ?? kept }
    public private(set) var verdicts: [VerdictSpan] = []
    public private(set) var droppedVerdictChanges = 0
    public private(set) var end: FlowEnd?
    /// The last judgement (at close or the end: the final one) and its sentence.
    public private(set) var lastBottleneck: Bottleneck?
    public private(set) var lastSummaryText: String?
    public private(set) var summary: FlowSummary?
    public private(set) var isClosed = false
    /// Records seen, kept or not.
    public private(set) var recordCount = 0

    private let limits: ReportLimits
    private var kept: [ReportPoint] = []
    /// The newest record when it was not kept: the chart still reaches the flow's last moment.
    private var latest: ReportPoint?
    /// Keep one record in `stride`; doubles whenever the budget is full.
    private var stride = 1

    init(cookie: UInt64, local: Endpoint, remote: Endpoint, cgroupID: UInt64, limits: ReportLimits) {
        self.cookie = cookie
        self.local = local
        self.remote = remote
        self.cgroupID = cgroupID
        self.limits = limits
    }

    public var firstNanoseconds: UInt64? { kept.first?.monotonicNanoseconds ?? latest?.monotonicNanoseconds }
    public var lastNanoseconds: UInt64? { latest?.monotonicNanoseconds ?? kept.last?.monotonicNanoseconds }

    mutating func append(_ point: ReportPoint, isClose: Bool) {
        if isClose { isClosed = true }
        recordCount += 1
        if let last = kept.last, point.monotonicNanoseconds < last.monotonicNanoseconds { return } // (late, from another CPU)
        guard recordCount % stride == 0 || kept.isEmpty else {
            latest = point
            return
        }
        latest = nil
        kept.append(point)
        if kept.count >= max(limits.pointsPerFlow, 4) {
            // Halve: every other point stays (the first always); cumulative counters keep the totals right.
            kept = kept.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
            stride *= 2
        }
    }

    mutating func observe(_ update: VerdictUpdate, startNanoseconds: UInt64) {
        let diagnosis = update.report.diagnosis
        end = diagnosis.end
        lastBottleneck = diagnosis.bottleneck
        lastSummaryText = diagnosis.summary
        let judged = startNanoseconds &+ update.elapsedNanoseconds
        switch update.kind {
        case .interval:
            return
        case .first:
            addVerdict(VerdictSpan(startNanoseconds: judged, bottleneck: diagnosis.bottleneck))
        case .change:
            // The new verdict is shown from its first judgement on: where the previous one stopped holding.
            let since = verdicts.last.flatMap { last in update.previousHeldNanoseconds.map { last.startNanoseconds &+ $0 } }
            addVerdict(VerdictSpan(startNanoseconds: min(since ?? judged, judged), bottleneck: diagnosis.bottleneck))
        }
    }

    mutating func close(_ report: DiagnosisReport, summary: FlowSummary) {
        end = report.diagnosis.end
        lastBottleneck = report.diagnosis.bottleneck
        lastSummaryText = report.diagnosis.summary
        self.summary = summary
    }

    private mutating func addVerdict(_ span: VerdictSpan) {
        guard verdicts.count < limits.verdictChangesPerFlow else {
            droppedVerdictChanges += 1
            return
        }
        if let last = verdicts.last, span.startNanoseconds < last.startNanoseconds {
            verdicts.append(VerdictSpan(startNanoseconds: last.startNanoseconds, bottleneck: span.bottleneck))
        } else {
            verdicts.append(span)
        }
    }
}

/// The report's memory bounds.
public struct ReportLimits: Sendable, Equatable {
    /// Flows charted; later flows are counted and named in a note, not kept.
    public var flows = 64
    /// Points kept per flow (about one per 1.5 px of a chart): beyond it, every other point goes and one
    /// record in twice as many is kept from then on.
    public var pointsPerFlow = 720
    /// Verdict changes kept per flow; later ones are counted.
    public var verdictChangesPerFlow = 256

    public init(flows: Int = 64, pointsPerFlow: Int = 720, verdictChangesPerFlow: Int = 256) {
        self.flows = max(flows, 1)
        self.pointsPerFlow = max(pointsPerFlow, 4)
        self.verdictChangesPerFlow = max(verdictChangesPerFlow, 1)
    }
}
