/// One flow's verdicts over time and what it did meanwhile: when its verdict first came, how long each
/// verdict held, bytes, retransmissions and RTTs since its first sample (the baseline of the kernel's
/// cumulative counters: a flow enrolled in mid-life is measured from then on).
struct FlowTimeline: Sendable {
    let local: Endpoint
    let remote: Endpoint
    let first: DiagnosisSample
    private(set) var last: DiagnosisSample
    private(set) var isClosed = false
    /// The verdict shown now (never `insufficient-data`), and since when.
    private(set) var verdict: Bottleneck?
    private(set) var verdictSince: UInt64 = 0
    private(set) var firstVerdictNanoseconds: UInt64?
    /// A different verdict judged once, and when: it is shown if the next judgement agrees.
    private var candidate: (Bottleneck, UInt64)?
    /// Time judged under each verdict; time before the first verdict goes to the first verdict (its window
    /// covers it), or to `insufficient-data` if none ever came.
    private(set) var durations: [Bottleneck: UInt64] = [:]
    private var pendingNanoseconds: UInt64 = 0
    private var lastEvaluated: UInt64
    private var rttSum = 0.0
    private var rttCount = 0
    private var minRTT = UInt64.max
    /// Bytes moved (acked + received) when the last `--interval` line was written.
    var bytesAtLastInterval: UInt64

    init(first: DiagnosisSample, local: Endpoint, remote: Endpoint) {
        self.local = local
        self.remote = remote
        self.first = first
        last = first
        lastEvaluated = first.monotonicNanoseconds
        bytesAtLastInterval = Self.bytesMoved(first.info)
        observeRTT(first.info)
    }

    static func bytesMoved(_ info: TCPInfo) -> UInt64 { info[.bytesAcked] &+ info[.bytesReceived] }

    mutating func observe(_ sample: DiagnosisSample, isClose: Bool) {
        if isClose { isClosed = true }
        if sample.monotonicNanoseconds >= last.monotonicNanoseconds { last = sample }
        observeRTT(sample.info)
    }

    private mutating func observeRTT(_ info: TCPInfo) {
        if info[.rtt] > 0 {
            rttSum += Double(info[.rtt])
            rttCount += 1
        }
        if info[.minRtt] > 0 { minRTT = min(minRTT, info[.minRtt]) }
    }

    /// What a new verdict means for the output.
    enum Change: Equatable {
        case first
        case changed(previous: Bottleneck, heldNanoseconds: UInt64)
    }

    /// Takes the verdict judged at `time`: the time since the previous judgement counts for it. Returns
    /// whether it is the flow's first verdict, or a different one than shown, judged twice in a row (it
    /// is then shown from its first judgement on: the previous verdict held until then).
    mutating func judge(_ bottleneck: Bottleneck, at time: UInt64) -> Change? {
        let period = time > lastEvaluated ? time - lastEvaluated : 0
        lastEvaluated = max(lastEvaluated, time)
        guard bottleneck != .insufficientData else {
            if verdict == nil { pendingNanoseconds += period } else { durations[.insufficientData, default: 0] += period }
            return nil
        }
        guard let current = verdict else {
            durations[bottleneck, default: 0] += pendingNanoseconds + period
            pendingNanoseconds = 0
            verdict = bottleneck
            verdictSince = time
            firstVerdictNanoseconds = time
            return .first
        }
        durations[bottleneck, default: 0] += period
        guard bottleneck != current else {
            candidate = nil
            return nil
        }
        // A different verdict is shown once judged twice in a row: a flow near a threshold would
        // otherwise flap at every sample.
        guard let (next, since) = candidate, next == bottleneck else {
            candidate = (bottleneck, time)
            return nil
        }
        candidate = nil
        verdict = next
        defer { verdictSince = since }
        return .changed(previous: current, heldNanoseconds: since > verdictSince ? since - verdictSince : 0)
    }

    /// The flow's life so far, up to `end` (its last sample when nil).
    func summary(startNanoseconds: UInt64, end: UInt64? = nil) -> FlowSummary {
        let until = max(end ?? last.monotonicNanoseconds, lastEvaluated)
        var durations = self.durations
        let unjudged = pendingNanoseconds + (until > lastEvaluated ? until - lastEvaluated : 0)
        if unjudged > 0 { durations[verdict ?? .insufficientData, default: 0] += unjudged }
        let total = durations.values.reduce(0, +)
        func delta(_ field: TCPInfoField) -> UInt64 {
            last.info[field] >= first.info[field] ? last.info[field] - first.info[field] : 0
        }
        return FlowSummary(
            observedNanoseconds: until > first.monotonicNanoseconds ? until - first.monotonicNanoseconds : 0,
            firstVerdictMilliseconds: firstVerdictNanoseconds.map {
                Double($0 > startNanoseconds ? $0 - startNanoseconds : 0) / 1e6
            },
            verdictShares: Bottleneck.allCases.compactMap { bottleneck in
                guard let time = durations[bottleneck], time > 0, total > 0 else { return nil }
                return FlowSummary.Share(bottleneck: bottleneck, share: Double(time) / Double(total))
            },
            bytesSent: delta(.bytesSent), bytesAcked: delta(.bytesAcked), bytesReceived: delta(.bytesReceived),
            bytesRetransmitted: delta(.bytesRetrans), retransmits: delta(.totalRetrans),
            minRTTMicroseconds: minRTT == .max ? nil : minRTT,
            averageRTTMicroseconds: rttCount > 0 ? rttSum / Double(rttCount) : nil)
    }
}

/// A flow's life as `diagnose` saw it, printed with its last verdict (at close, or when the command ends).
public struct FlowSummary: Sendable, Equatable {
    public struct Share: Sendable, Equatable {
        public var bottleneck: Bottleneck
        /// 0...1 of the observed time.
        public var share: Double
    }

    /// From the flow's first sample (its enrollment, or its start) to its last.
    public var observedNanoseconds: UInt64
    /// When its first verdict came, in ms since the command started; nil if none came.
    public var firstVerdictMilliseconds: Double?
    /// Share of the observed time under each verdict, in `Bottleneck` order.
    public var verdictShares: [Share]
    public var bytesSent: UInt64
    public var bytesAcked: UInt64
    public var bytesReceived: UInt64
    public var bytesRetransmitted: UInt64
    /// Segments retransmitted (`total_retrans` growth).
    public var retransmits: UInt64
    /// The smallest `min_rtt` and the mean `rtt` (srtt) of its samples.
    public var minRTTMicroseconds: UInt64?
    public var averageRTTMicroseconds: Double?
}

extension Bottleneck {
    /// Whether the verdict names a problem to fix (a full receive or send buffer, a standing queue, a lossy
    /// path), as opposed to a flow that is healthy, idle or held back by its own application
    /// (`diagnose --once` exits 3 when a flow is impaired).
    public var isImpairment: Bool {
        switch self {
        case .receiverWindowLimited, .sendBufferLimited, .bufferbloat, .packetLoss, .readerLimited: true
        case .applicationLimited, .networkLimited, .idle, .insufficientData, .peerLimited: false
        }
    }
}
