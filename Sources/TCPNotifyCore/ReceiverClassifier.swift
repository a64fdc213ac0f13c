/// Decides a flow's `Bottleneck` from the receiving end's `tcp_info` (see `ReceiverMeasurements` for what
/// that end can see). The checks, in order: enough samples; a zero or shrunk window (the local application
/// does not read: `reader-limited`); holes in the stream (`packet-loss`); a window used up every round trip
/// (`receiver-window-limited`: the buffer is too small for the path); otherwise the data arrives slower than
/// the window allows (`peer-limited`: the sending end sets the pace). docs/diagnosis.md explains each one.
public struct ReceiverClassifier: Sendable {
    public var configuration: DiagnosisConfiguration

    public init(configuration: DiagnosisConfiguration = DiagnosisConfiguration()) {
        self.configuration = configuration
    }

    /// The verdict on a receiver's window of samples (baseline first). `silentSince` is set when no sample
    /// came for longer than the window (judged on the last one); `quietMilliseconds` is the last sample's
    /// `last_data_recv` when nothing arrived for a whole window.
    public func diagnose(_ window: ArraySlice<DiagnosisSample>, silentMicroseconds: Double? = nil) -> Diagnosis {
        let m = ReceiverMeasurements(samples: window, shrinkRatio: configuration.receiverShrinkRatio)
        var evidence = Self.evidence(m)
        let last = window.last?.info ?? TCPInfo()
        let quietMicroseconds = silentMicroseconds ?? quietTail(last)
        if let quietMicroseconds {
            evidence[silentMicroseconds == nil ? "last_data_recv_s" : "silent_s"] = quietMicroseconds / 1e6
            return nothingArrived(for: quietMicroseconds, last: last, evidence: evidence, measurements: m)
        }
        let spanNeeded = Double(configuration.minimumSpanNanoseconds) / 1000
        let tolerance = Double(min(configuration.minimumSpanToleranceNanoseconds, configuration.minimumSpanNanoseconds)) / 1000
        guard m.sampleCount >= configuration.minimumSamples, m.spanMicroseconds >= spanNeeded - tolerance else {
            return diagnosis(.insufficientData, 0, evidence, m,
                             "only \(m.sampleCount) sample(s) over \(DiagnosisText.seconds(m.spanMicroseconds)); "
                                + "need \(configuration.minimumSamples) over at least \(DiagnosisText.seconds(spanNeeded))")
        }
        if m.bytesReceived <= 1 { return nothingArrived(for: m.spanMicroseconds, last: last, evidence: evidence, measurements: m) }
        let checks: [(ReceiverMeasurements) -> (Bottleneck, Double, String)?] = [reader, loss, windowBound]
        for check in checks {
            if let (bottleneck, strength, summary) = check(m) { return diagnosis(bottleneck, strength, evidence, m, summary) }
        }
        return diagnosis(.peerLimited, max(0.5, 1 - m.windowUse), evidence, m,
                         "data arrived at \(Units.bitsPerSecond(fromBytesPerSecond: UInt64(m.throughputBytesPerSecond))), "
                            + "using \(DiagnosisText.percent(m.windowUse)) of the open window per round trip: the sending end "
                            + "(its application, send buffer or congestion window) or the path sets the pace")
    }

    /// The local application does not keep up: the window was zero, or held well below its ceiling.
    private func reader(_ m: ReceiverMeasurements) -> (Bottleneck, Double, String)? {
        if m.zeroWindowShare > 0 {
            return (.readerLimited, 0.7 + 0.3 * m.zeroWindowShare,
                    "advertised a zero window in \(DiagnosisText.percent(m.zeroWindowShare)) of samples: the application "
                        + "reads slower than data arrives, or stopped reading")
        }
        guard m.shrunkWindowShare >= configuration.receiverShrunkShare else { return nil }
        return (.readerLimited, 0.5 + 0.5 * m.shrunkWindowShare,
                "the window stayed below \(DiagnosisText.percent(configuration.receiverShrinkRatio)) of its ceiling "
                    + "(\(Units.bytes(UInt64(m.meanReceiveWindowBytes))) on average, ceiling \(Units.bytes(m.receiveWindowCeilingBytes))) in "
                    + "\(DiagnosisText.percent(m.shrunkWindowShare)) of the arrivals: unread data fills the receive buffer, "
                    + "the application reads slower than data arrives")
    }

    /// Holes in the stream. The receiver cannot tell random loss from drops at a full queue (it sees no
    /// queue), nor reordering from loss except by how much: reordering leaves a few segments out of order.
    private func loss(_ m: ReceiverMeasurements) -> (Bottleneck, Double, String)? {
        let c = configuration
        let fastPath = m.meanReceiveRTTMicroseconds <= c.receiverFastPathRTTMicroseconds
        let threshold = fastPath ? c.receiverFastPathOutOfOrderShare : c.receiverOutOfOrderShare
        guard m.outOfOrderSegments >= c.receiverMinimumOutOfOrderSegments, m.outOfOrderShare >= threshold else { return nil }
        return (.packetLoss, min(1, 0.5 + 0.5 * m.outOfOrderShare / (4 * threshold)),
                "\(m.outOfOrderSegments) of \(m.dataSegmentsIn) data segments (\(DiagnosisText.percent(m.outOfOrderShare))) "
                    + "arrived out of order: segments are lost on the path (the sending end's retransmissions say how many)")
    }

    /// The reader keeps up, yet every round trip fills the window: the buffer is too small for the path.
    private func windowBound(_ m: ReceiverMeasurements) -> (Bottleneck, Double, String)? {
        guard m.windowUse >= configuration.receiverWindowUse else { return nil }
        return (.receiverWindowLimited, min(1, 0.5 + 0.5 * m.windowUse),
                "each round trip (\(DiagnosisText.time(m.meanReceiveRTTMicroseconds))) carried "
                    + "\(DiagnosisText.percent(min(m.windowUse, 1))) of the window (\(Units.bytes(UInt64(m.meanReceiveWindowBytes)))) "
                    + "while the application kept up: the receive buffer is too small for the path")
    }

    /// Nothing arrived in order for `microseconds`: a zero window (in the last sample, or in the window's:
    /// the close record of a reset keeps the last window) means the peer may not send; else idle.
    private func nothingArrived(for microseconds: Double, last: TCPInfo, evidence: DiagnosisEvidence,
                                measurements m: ReceiverMeasurements) -> Diagnosis {
        let span = DiagnosisText.seconds(microseconds)
        if (last[.rcvWnd] == 0 && [.established, .close].contains(last.state)) || m.zeroWindowShare > 0 {
            return Diagnosis(bottleneck: .readerLimited, confidence: 0.8, evidence: evidence, signals: [.zeroWindow],
                             summary: "received nothing for \(span) behind a zero window: the application stopped reading",
                             end: .receiver)
        }
        return Diagnosis(bottleneck: .idle, confidence: 0.9, evidence: evidence, signals: [],
                         summary: "received nothing for \(span) with the window open: the peer sends nothing", end: .receiver)
    }

    private func quietTail(_ last: TCPInfo) -> Double? {
        let quiet = Double(last[.lastDataRecv]) * 1000
        return quiet * 1000 >= Double(configuration.windowNanoseconds) ? quiet : nil
    }

    private func diagnosis(_ bottleneck: Bottleneck, _ strength: Double, _ evidence: DiagnosisEvidence,
                           _ m: ReceiverMeasurements, _ summary: String) -> Diagnosis {
        Diagnosis(bottleneck: bottleneck, confidence: strength * dataQuality(m), evidence: evidence,
                  signals: signals(m, excluding: bottleneck), summary: summary, end: .receiver)
    }

    private func signals(_ m: ReceiverMeasurements, excluding verdict: Bottleneck) -> [DiagnosisSignal] {
        var found: [DiagnosisSignal] = []
        if verdict != .packetLoss && m.outOfOrderShare >= configuration.receiverOutOfOrderSignalShare && m.outOfOrderSegments >= configuration.receiverMinimumOutOfOrderSegments {
            found.append(.outOfOrder)
        }
        if m.zeroWindowShare > 0 && verdict != .readerLimited { found.append(.zeroWindow) }
        if verdict != .readerLimited && m.shrunkWindowShare >= configuration.pressureShare { found.append(.readerPressure) }
        return found
    }

    private func dataQuality(_ m: ReceiverMeasurements) -> Double {
        let spanShare = min(m.spanMicroseconds * 1000 / Double(max(configuration.windowNanoseconds, 1)), 1)
        let sampleShare = min(Double(max(m.sampleCount - 1, 0)) / 4, 1)
        return 0.6 + 0.4 * spanShare * sampleShare
    }

    public static func evidence(_ m: ReceiverMeasurements) -> DiagnosisEvidence {
        var evidence = DiagnosisEvidence()
        evidence["window_s"] = m.spanMicroseconds / 1e6
        evidence["samples"] = Double(m.sampleCount)
        evidence["throughput_bps"] = m.throughputBytesPerSecond * 8
        evidence["rcv_wnd_bytes"] = m.meanReceiveWindowBytes
        evidence["rcv_ssthresh_bytes"] = Double(m.receiveWindowCeilingBytes)
        evidence["rcv_rtt_us"] = m.meanReceiveRTTMicroseconds
        evidence["window_use_pct"] = m.windowUse * 100
        evidence["shrunk_window_pct"] = m.shrunkWindowShare * 100
        evidence["zero_window_pct"] = m.zeroWindowShare * 100
        evidence["data_segs_in"] = Double(m.dataSegmentsIn)
        evidence["ooo_segs"] = Double(m.outOfOrderSegments)
        evidence["ooo_pct"] = m.outOfOrderShare * 100
        return evidence
    }
}
