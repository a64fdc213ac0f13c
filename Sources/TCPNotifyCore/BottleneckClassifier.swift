/// Decides a flow's `Bottleneck` from the sender's own `tcp_info` samples (and hands a receiving socket to
/// `ReceiverClassifier`), on deltas over a recent window.
///
/// The order of the checks is the argument: first whether anything can be said (enough samples, something
/// sent), then the limits the kernel times itself (chrono stats: busy, rwnd-limited, sndbuf-limited), then
/// the rate sampler's application-limited mark, then the path (a standing queue, then loss without a queue),
/// and `network-limited` when nothing else held the sender back (the checks are in BottleneckVerdicts.swift).
/// docs/diagnosis.md explains each threshold.
public struct BottleneckClassifier: Sendable {
    public var configuration: DiagnosisConfiguration

    public init(configuration: DiagnosisConfiguration = DiagnosisConfiguration()) {
        self.configuration = configuration
    }

    /// The window's samples: the baseline (the last sample at or before the window's start, else the first)
    /// through the last sample. `samples` are oldest first.
    public func window(of samples: [DiagnosisSample]) -> ArraySlice<DiagnosisSample> {
        guard let last = samples.last else { return samples[...] }
        let start = last.monotonicNanoseconds >= configuration.windowNanoseconds
            ? last.monotonicNanoseconds - configuration.windowNanoseconds : 0
        let baseline = samples.lastIndex { $0.monotonicNanoseconds <= start } ?? samples.startIndex
        return samples[baseline...]
    }

    /// The verdict on `samples` (oldest first). With `nowMonotonicNanoseconds`, a flow that has produced no
    /// sample for longer than the window is judged on that silence: records come only with TCP events, and
    /// a sender without events is not moving data.
    /// A socket that mostly receives (see `FlowEnd.of`) is judged by `ReceiverClassifier` instead.
    public func diagnose(_ samples: [DiagnosisSample], nowMonotonicNanoseconds: UInt64? = nil) -> Diagnosis {
        let window = window(of: samples)
        if FlowEnd.of(window) == .receiver {
            var silent: Double?
            if let now = nowMonotonicNanoseconds, let last = samples.last, last.info.state != .close,
               now > last.monotonicNanoseconds &+ configuration.windowNanoseconds {
                silent = Double(now - last.monotonicNanoseconds) / 1000
            }
            return ReceiverClassifier(configuration: configuration).diagnose(window, silentMicroseconds: silent)
        }
        let measurements = DiagnosisMeasurements(samples: window)
        if let now = nowMonotonicNanoseconds, let last = samples.last, last.info.state != .close,
           now > last.monotonicNanoseconds &+ configuration.windowNanoseconds {
            return diagnoseSilence(since: last, now: now, measurements: measurements)
        }
        if let quiet = diagnoseQuietTail(samples) { return quiet }
        return diagnose(measurements)
    }

    /// The verdict on one window's measurements.
    public func diagnose(_ measurements: DiagnosisMeasurements) -> Diagnosis {
        let evidence = Self.evidence(measurements)
        if let lacking = insufficiency(measurements) {
            return Diagnosis(bottleneck: .insufficientData, confidence: 0, evidence: evidence, signals: [], summary: lacking)
        }
        let verdict = verdict(measurements)
        return Diagnosis(
            bottleneck: verdict.bottleneck,
            confidence: verdict.strength * dataQuality(measurements),
            evidence: evidence,
            signals: signals(measurements, excluding: verdict.bottleneck),
            summary: verdict.summary)
    }

    private func insufficiency(_ m: DiagnosisMeasurements) -> String? {
        let spanNeeded = Double(configuration.minimumSpanNanoseconds) / 1000
        let tolerance = Double(min(configuration.minimumSpanToleranceNanoseconds, configuration.minimumSpanNanoseconds)) / 1000
        guard m.sampleCount >= configuration.minimumSamples, m.spanMicroseconds >= spanNeeded - tolerance else {
            return "only \(m.sampleCount) sample(s) over \(DiagnosisText.seconds(m.spanMicroseconds)); "
                + "need \(configuration.minimumSamples) over at least \(DiagnosisText.seconds(spanNeeded))"
        }
        return nil
    }

    // MARK: - Silence

    private func diagnoseSilence(since last: DiagnosisSample, now: UInt64, measurements: DiagnosisMeasurements) -> Diagnosis {
        var evidence = Self.evidence(measurements)
        let silentMicroseconds = Double(now - last.monotonicNanoseconds) / 1000
        evidence["silent_s"] = silentMicroseconds / 1e6
        let silence = "no TCP events for \(DiagnosisText.seconds(silentMicroseconds))"
        let hasDataPending = last.info[.notsentBytes] > 0 || last.info[.unacked] > 0
        if hasDataPending && last.info[.sndWnd] == 0 {
            return Diagnosis(bottleneck: .receiverWindowLimited, confidence: 0.6, evidence: evidence, signals: [.zeroWindow],
                             summary: "\(silence) while the peer's window was zero with data waiting: the receiver stopped reading")
        }
        if hasDataPending {
            return Diagnosis(bottleneck: .insufficientData, confidence: 0, evidence: evidence, signals: [],
                             summary: "\(silence) with data waiting to be sent or acknowledged")
        }
        return Diagnosis(bottleneck: .idle, confidence: 0.8, evidence: evidence, signals: [],
                         summary: "\(silence) and nothing in flight: the flow is idle")
    }

    /// Records are sparse when nothing happens, so the window's baseline can reach back into older traffic;
    /// the kernel's own `last_data_sent` says when data last left. Nothing sent for a whole window, and
    /// nothing waiting: idle.
    private func diagnoseQuietTail(_ samples: [DiagnosisSample]) -> Diagnosis? {
        guard let last = samples.last, last.info[.notsentBytes] == 0,
              Double(last.info[.lastDataSent]) * 1e6 >= Double(configuration.windowNanoseconds) else { return nil }
        var evidence = Self.evidence(DiagnosisMeasurements(samples: window(of: samples)))
        evidence["last_data_sent_s"] = Double(last.info[.lastDataSent]) / 1000
        let received = last.info[.lastDataRecv] * 1_000_000 < configuration.windowNanoseconds
            ? " (it received data; diagnose the sending end)" : ""
        return Diagnosis(
            bottleneck: .idle, confidence: 0.9, evidence: evidence, signals: [],
            summary: "sent nothing for \(DiagnosisText.seconds(Double(last.info[.lastDataSent]) * 1000))\(received)")
    }

    // MARK: - Signals, evidence, confidence

    private func signals(_ m: DiagnosisMeasurements, excluding verdict: Bottleneck) -> [DiagnosisSignal] {
        let c = configuration
        var found: [DiagnosisSignal] = []
        if verdict != .bufferbloat && m.queueDelayMicroseconds >= c.inflationQueueDelayMicroseconds
            && m.rttOverMinRTT >= c.inflationRTTRatio {
            found.append(.rttInflation)
        }
        if m.retransmitRate >= c.retransmitSignalRate { found.append(.retransmissions) }
        if m.timeouts > 0 { found.append(.timeouts) }
        if m.zeroWindowShare > 0 { found.append(.zeroWindow) }
        if verdict != .receiverWindowLimited && m.receiverWindowLimitedShare >= c.pressureShare {
            found.append(.receiverWindowPressure)
        }
        if verdict != .sendBufferLimited && m.sendBufferLimitedShare >= c.pressureShare { found.append(.sendBufferPressure) }
        if verdict != .applicationLimited && verdict != .idle && 1 - m.busyShare >= c.pressureShare {
            found.append(.applicationPauses)
        }
        return found
    }

    /// Full confidence needs a whole window and at least five samples.
    private func dataQuality(_ m: DiagnosisMeasurements) -> Double {
        let spanShare = min(m.spanMicroseconds * 1000 / Double(max(configuration.windowNanoseconds, 1)), 1)
        let sampleShare = min(Double(m.sampleCount - 1) / 4, 1)
        return 0.6 + 0.4 * spanShare * sampleShare
    }

    public static func evidence(_ m: DiagnosisMeasurements) -> DiagnosisEvidence {
        var evidence = DiagnosisEvidence()
        evidence["window_s"] = m.spanMicroseconds / 1e6
        evidence["samples"] = Double(m.sampleCount)
        evidence["busy_pct"] = m.busyShare * 100
        evidence["app_limited_pct"] = (1 - m.busyShare) * 100
        evidence["rwnd_limited_pct"] = m.receiverWindowLimitedShare * 100
        evidence["sndbuf_limited_pct"] = m.sendBufferLimitedShare * 100
        evidence["rate_app_limited_pct"] = m.rateAppLimitedShare * 100
        evidence["unsent_data_pct"] = m.unsentDataShare * 100
        evidence["window_bound_pct"] = m.windowBoundShare * 100
        evidence["zero_window_pct"] = m.zeroWindowShare * 100
        evidence["rtt_us"] = m.meanRTTMicroseconds
        evidence["min_rtt_us"] = m.minRTTMicroseconds
        evidence["rtt_over_min_rtt"] = m.rttOverMinRTT
        evidence["queue_delay_us"] = m.queueDelayMicroseconds
        evidence["retrans_rate"] = m.retransmitRate
        evidence["timeouts"] = Double(m.timeouts)
        evidence["delivery_rate_bps"] = m.meanDeliveryRateBytesPerSecond * 8
        evidence["throughput_bps"] = m.throughputBitsPerSecond
        return evidence
    }
}
