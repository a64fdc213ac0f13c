/// The observation window and the thresholds of `BottleneckClassifier`. The defaults are explained, with
/// the measurements behind them, in docs/diagnosis.md.
public struct DiagnosisConfiguration: Sendable, Equatable {
    /// Judge the flow on the deltas over this recent stretch of samples, never on lifetime totals.
    public var windowNanoseconds: UInt64 = 3_000_000_000
    /// Below this span between the window's first and last sample, the verdict is `insufficient-data`
    /// (chrono stats move in 4 ms jiffies at HZ=250: a 1 s span keeps that error under 1 %).
    public var minimumSpanNanoseconds: UInt64 = 1_000_000_000
    /// A span this much shorter still counts: records of `every 500ms` are stamped when built, a few µs off
    /// the rule's own clock, so two intervals measured 999.93 ms (and the first verdict came 500 ms later).
    public var minimumSpanToleranceNanoseconds: UInt64 = 10_000_000
    /// Samples needed in the window, its baseline included.
    public var minimumSamples = 3

    /// A sender busy (data outstanding) less than this share of the window is application-limited.
    public var minimumBusyShare = 0.5
    /// rwnd_limited or sndbuf_limited at or above this share of the busy time decides the verdict. Not a
    /// majority: BBR's pacing stops both chronos between paced sends, so a flow held back by its receiver
    /// or its send buffer the whole time showed 35–48 % in the lab.
    public var limitedShare = 0.3
    /// Samples with a full peer window (see `DiagnosisMeasurements.windowBoundShare`), at or above this
    /// share and with some rwnd_limited time, also make the flow receiver-window-limited.
    public var windowBoundShare = 0.5
    /// Samples whose delivery rate was application-limited, at or above this share, with data rarely
    /// waiting unsent: a busy sender that still kept its window unfilled (long paths, paced writers).
    public var rateSamplerAppLimitedShare = 0.6

    /// Bufferbloat needs both an absolute queueing delay (srtt − min_rtt) and an RTT ratio: on
    /// microsecond paths the ratio alone is huge without any queue.
    public var bufferbloatQueueDelayMicroseconds = 10_000.0
    public var bufferbloatRTTRatio = 2.0
    /// Milder inflation is reported as the `rtt-inflation` signal.
    public var inflationQueueDelayMicroseconds = 5_000.0
    public var inflationRTTRatio = 1.5

    /// Retransmitted bytes (DSACKed ones excluded) over sent bytes at which loss may be the bottleneck:
    /// 0.5 % already holds CUBIC to about 20 Mbit/s on a 10 ms path.
    public var lossRetransmitRate = 0.005
    /// ...and at which the `retransmissions` signal is reported.
    public var retransmitSignalRate = 0.001
    /// Loss with at least this queueing delay (the larger of the two) is congestion at a full queue,
    /// not a lossy path: random loss keeps the window too small to queue.
    public var congestionQueueDelayFloorMicroseconds = 1_000.0
    public var congestionQueueDelayShareOfMinRTT = 0.25

    /// Shares of busy (or idle) time reported as pressure signals when they are not the verdict.
    public var pressureShare = 0.1

    // Receiving end (ReceiverClassifier).

    /// A window below this share of its ceiling (`rcv_ssthresh`) is held down by unread data.
    public var receiverShrinkRatio = 0.5
    /// In at least this share of samples, the reader is the limit (the lab's slow reader: 100 %, at 0.2 of
    /// the ceiling; readers that keep up: 0–10 %, never below 0.55).
    public var receiverShrunkShare = 0.5
    /// Throughput × rcv_rtt at or above this share of the window: the window itself bounds the flow (with
    /// autotuning keeping the window about twice the bytes per round trip, a flow it does not bound uses
    /// about half).
    public var receiverWindowUse = 0.8
    /// Out-of-order segments over data segments that mean loss on the path: 2 % random loss on a 20 ms path
    /// showed 15–20 %; reordering alone (veth across two CPUs) 0.5–5.3 % per half second.
    public var receiverOutOfOrderShare = 0.05
    /// On paths whose rcv_rtt is this short or shorter (timestamps tick in milliseconds, so 1 ms is the
    /// floor) reordering between CPUs is common and a loss leaves a whole window out of order: a higher bar.
    public var receiverFastPathRTTMicroseconds = 2_000.0
    public var receiverFastPathOutOfOrderShare = 0.15
    public var receiverMinimumOutOfOrderSegments: UInt64 = 10
    /// ...and at which the `out-of-order` signal is reported.
    public var receiverOutOfOrderSignalShare = 0.001

    public init() {}

    public var windowSeconds: Double {
        get { Double(windowNanoseconds) / 1e9 }
        set { windowNanoseconds = UInt64(max(newValue, 0) * 1e9) }
    }
}

extension DiagnosisConfiguration {
    /// The rule diagnosis samples flows with (`diagnose`, `watch --diagnose`, `serve --history`): one record
    /// per flow at most this often, so a window of 3 s holds about six samples.
    public static let samplingRule = "diagnose_sample=bytes_acked >= 0 every 500ms"
}
