/// What the kernel measured over one window of samples: counter deltas between the window's baseline
/// (the last sample at or before its start) and its last sample, plus per-sample averages.
public struct DiagnosisMeasurements: Sendable, Equatable {
    /// Samples used, baseline included.
    public var sampleCount = 0
    public var spanMicroseconds = 0.0

    // Chrono deltas (microseconds; they move in jiffies). busy includes the two limited times.
    public var busyMicroseconds = 0.0
    public var receiverWindowLimitedMicroseconds = 0.0
    public var sendBufferLimitedMicroseconds = 0.0

    public var bytesSent: UInt64 = 0
    /// Retransmitted bytes, less those the receiver reported as duplicates (DSACK): reordering, not loss.
    public var bytesRetransmitted: UInt64 = 0
    public var bytesAcked: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var timeouts: UInt64 = 0

    /// Mean smoothed RTT of the samples after the baseline, and the latest min_rtt.
    public var meanRTTMicroseconds = 0.0
    public var minRTTMicroseconds = 0.0
    public var meanDeliveryRateBytesPerSecond = 0.0

    // Shares (0...1) of the samples after the baseline.
    public var rateAppLimitedShare = 0.0
    public var zeroWindowShare = 0.0
    /// Samples with at least one MSS written but not yet sent.
    public var unsentDataShare = 0.0
    /// Samples where the peer's window, not cwnd, bounded the flight (see `isWindowBound`). BBR's pacing
    /// interrupts the rwnd_limited chrono between sends; this share does not depend on it.
    public var windowBoundShare = 0.0

    public init() {}

    /// Measures `samples` (oldest first; the first is the baseline).
    public init(samples: ArraySlice<DiagnosisSample>) {
        guard let window = SampleWindow(samples) else { return }
        let last = window.last
        sampleCount = samples.count
        spanMicroseconds = window.spanMicroseconds
        busyMicroseconds = Double(window.delta(.busyTime))
        receiverWindowLimitedMicroseconds = Double(window.delta(.rwndLimited))
        sendBufferLimitedMicroseconds = Double(window.delta(.sndbufLimited))
        bytesSent = window.delta(.bytesSent)
        let retransmitted = window.delta(.bytesRetrans)
        let (spuriousBytes, overflow) = window.delta(.dsackDups).multipliedReportingOverflow(by: max(last.info[.sndMss], 1))
        bytesRetransmitted = !overflow && retransmitted > spuriousBytes ? retransmitted - spuriousBytes : 0
        bytesAcked = window.delta(.bytesAcked)
        bytesReceived = window.delta(.bytesReceived)
        timeouts = window.delta(.totalRto)

        guard !window.observed.isEmpty else { return }
        meanRTTMicroseconds = window.mean(.rtt)
        minRTTMicroseconds = Double(window.observed.last(where: { $0.info[.minRtt] > 0 })?.info[.minRtt] ?? 0)
        meanDeliveryRateBytesPerSecond = window.mean(.deliveryRate)
        rateAppLimitedShare = window.share { $0[.deliveryRateAppLimited] != 0 }
        zeroWindowShare = window.share { $0[.sndWnd] == 0 && $0.state == .established }
        // Less than one MSS waiting is what the rate sampler itself calls application-limited (Nagle and
        // autocorking hold such scraps back even from a slow writer).
        unsentDataShare = window.share { $0[.notsentBytes] >= max($0[.sndMss], 1) }
        windowBoundShare = window.share(Self.isWindowBound)
    }

    /// The peer's window is smaller than the congestion window while data waits: whenever the flight
    /// reaches the window, the receiver, not the network, stops the sender. (Kernel records are taken at
    /// ACKs, when the window has just opened, so "the flight fills the window" would miss it.)
    static func isWindowBound(_ info: TCPInfo) -> Bool {
        let mss = max(info[.sndMss], 1)
        let (cwndBytes, overflow) = info[.sndCwnd].multipliedReportingOverflow(by: mss)
        return info[.notsentBytes] >= mss && (overflow || info[.sndWnd] < cwndBytes)
    }

    public var busyShare: Double { spanMicroseconds > 0 ? min(busyMicroseconds / spanMicroseconds, 1) : 0 }
    public var receiverWindowLimitedShare: Double {
        busyMicroseconds > 0 ? min(receiverWindowLimitedMicroseconds / busyMicroseconds, 1) : 0
    }
    public var sendBufferLimitedShare: Double {
        busyMicroseconds > 0 ? min(sendBufferLimitedMicroseconds / busyMicroseconds, 1) : 0
    }
    /// srtt − min_rtt: the time packets spent queued, on average, beyond the path's own delay.
    public var queueDelayMicroseconds: Double { max(meanRTTMicroseconds - minRTTMicroseconds, 0) }
    public var rttOverMinRTT: Double { minRTTMicroseconds > 0 ? meanRTTMicroseconds / minRTTMicroseconds : 0 }
    public var retransmitRate: Double { bytesSent > 0 ? Double(bytesRetransmitted) / Double(bytesSent) : 0 }
    public var throughputBitsPerSecond: Double {
        spanMicroseconds > 0 ? Double(bytesAcked) * 8 / (spanMicroseconds / 1e6) : 0
    }
}
