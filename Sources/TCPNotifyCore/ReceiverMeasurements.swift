/// What the receiving end's `tcp_info` shows over one window of samples: counter deltas between the
/// window's baseline and its last sample, and per-sample shares (see `ReceiverClassifier`).
///
/// The receiver sees its own advertised window (`rcv_wnd`, as last announced), the ceiling autotuning lets
/// it grow to (`rcv_ssthresh`), its RTT estimate (`rcv_rtt`), what arrived in order (`bytes_received`), data
/// segments (`data_segs_in`) and out-of-order segments (`rcv_ooopack`). tcp_info has no receive-queue length
/// (inet_diag's `rqueue` has) and no count of zero windows sent; a sample with `rcv_wnd == 0` is one.
public struct ReceiverMeasurements: Sendable, Equatable {
    public var sampleCount = 0
    public var spanMicroseconds = 0.0

    public var bytesReceived: UInt64 = 0
    public var dataSegmentsIn: UInt64 = 0
    /// Segments that arrived beyond a hole (loss or reordering on the path).
    public var outOfOrderSegments: UInt64 = 0
    /// Bytes the socket itself sent and had acknowledged (a request/response peer sends a little).
    public var bytesAcked: UInt64 = 0

    /// Means over the samples after the baseline (`rcv_rtt` over those that have one).
    public var meanReceiveWindowBytes = 0.0
    public var meanReceiveRTTMicroseconds = 0.0
    /// The last sample's window ceiling (`rcv_ssthresh`) and window.
    public var receiveWindowCeilingBytes: UInt64 = 0
    public var lastReceiveWindowBytes: UInt64 = 0

    /// Shares (0...1): of the samples after the baseline, those announcing a zero window; of the bytes that
    /// arrived, those that arrived while the window was below `shrinkRatio` of its ceiling (the receive
    /// buffer holds data the application has not read).
    public var zeroWindowShare = 0.0
    public var shrunkWindowShare = 0.0

    public init() {}

    public init(samples: ArraySlice<DiagnosisSample>, shrinkRatio: Double = 0.5) {
        guard let window = SampleWindow(samples) else { return }
        sampleCount = samples.count
        spanMicroseconds = window.spanMicroseconds
        bytesReceived = window.delta(.bytesReceived)
        dataSegmentsIn = window.delta(.dataSegsIn)
        outOfOrderSegments = window.delta(.rcvOoopack)
        bytesAcked = window.delta(.bytesAcked)
        receiveWindowCeilingBytes = window.last.info[.rcvSsthresh]
        lastReceiveWindowBytes = window.last.info[.rcvWnd]

        guard !window.observed.isEmpty else { return }
        meanReceiveWindowBytes = window.mean(.rcvWnd)
        let timed = window.observed.filter { $0.info[.rcvRtt] > 0 }
        meanReceiveRTTMicroseconds = timed.isEmpty ? 0 : timed.reduce(0.0) { $0 + Double($1.info[.rcvRtt]) } / Double(timed.count)
        zeroWindowShare = window.share { $0[.rcvWnd] == 0 && $0.state == .established }
        shrunkWindowShare = Self.shrunkShareOfArrivals(samples, shrinkRatio: shrinkRatio)
            ?? window.share { Self.isShrunk($0, shrinkRatio: shrinkRatio) }
    }

    static func isShrunk(_ info: TCPInfo, shrinkRatio: Double) -> Bool {
        Double(info[.rcvWnd]) < shrinkRatio * Double(info[.rcvSsthresh])
    }

    /// The share of the bytes that arrived between samples while the window was held down (half for an
    /// interval with one shrunk end). Weighted by arrivals, not samples: at a flow's end the sender stops,
    /// the reader catches up and the window opens, and those quiet samples must not outvote the transfer
    /// (a slow reader judged at its close had 60–83 % of samples shrunk, the transfer 100 %).
    /// Nil when nothing arrived.
    static func shrunkShareOfArrivals(_ samples: ArraySlice<DiagnosisSample>, shrinkRatio: Double) -> Double? {
        var arrived = 0.0, arrivedShrunk = 0.0
        for (before, after) in zip(samples, samples.dropFirst()) {
            let bytes = after.info[.bytesReceived] >= before.info[.bytesReceived]
                ? Double(after.info[.bytesReceived] - before.info[.bytesReceived]) : 0
            let shrunkEnds = (isShrunk(before.info, shrinkRatio: shrinkRatio) ? 1.0 : 0) + (isShrunk(after.info, shrinkRatio: shrinkRatio) ? 1 : 0)
            arrived += bytes
            arrivedShrunk += bytes * shrunkEnds / 2
        }
        return arrived > 0 ? arrivedShrunk / arrived : nil
    }

    public var throughputBytesPerSecond: Double {
        spanMicroseconds > 0 ? Double(bytesReceived) / (spanMicroseconds / 1e6) : 0
    }

    /// The share of the advertised window the flow used per round trip: throughput × rcv_rtt / rcv_wnd.
    /// Near 1, the window is what the sender waits for; far below, the sender sends less than it allows.
    public var windowUse: Double {
        guard meanReceiveWindowBytes > 0, meanReceiveRTTMicroseconds > 0 else { return 0 }
        return throughputBytesPerSecond * meanReceiveRTTMicroseconds / 1e6 / meanReceiveWindowBytes
    }

    /// Out-of-order segments over data segments received (0...1).
    public var outOfOrderShare: Double {
        dataSegmentsIn > 0 ? min(Double(outOfOrderSegments) / Double(dataSegmentsIn), 1) : 0
    }
}
