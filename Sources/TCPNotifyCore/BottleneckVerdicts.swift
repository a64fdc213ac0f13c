/// The checks behind a verdict, in the order `BottleneckClassifier` applies them; the first that holds
/// decides. Each returns how strongly it holds (0...1, before the data-quality factor) and a sentence.
struct BottleneckVerdict {
    var bottleneck: Bottleneck
    var strength: Double
    var summary: String
}

extension BottleneckClassifier {
    func verdict(_ m: DiagnosisMeasurements) -> BottleneckVerdict {
        let checks = [idle, applicationPauses, sendBuffer, receiverWindow, rateSampler, standingQueue, loss]
        for check in checks {
            if let verdict = check(m) { return verdict }
        }
        return unhindered(m)
    }

    /// Nothing sent (a FIN moves bytes_acked by one; two jiffies of busy time are chrono rounding).
    func idle(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        guard m.bytesSent == 0, m.bytesAcked <= 1, m.busyMicroseconds < 8_000 else { return nil }
        let received = m.bytesReceived > 0 ? " (it received \(Units.bytes(m.bytesReceived)); diagnose the sending end)" : ""
        return BottleneckVerdict(bottleneck: .idle, strength: 1,
                                 summary: "sent nothing in the last \(DiagnosisText.seconds(m.spanMicroseconds))\(received)")
    }

    /// Mostly nothing outstanding: the writer, not the connection, is the limit.
    func applicationPauses(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        guard m.busyShare < configuration.minimumBusyShare else { return nil }
        return BottleneckVerdict(bottleneck: .applicationLimited, strength: 1 - m.busyShare,
                                 summary: "the sender had nothing to send \(DiagnosisText.percent(1 - m.busyShare)) of the time")
    }

    /// Before anything the rate sampler says: a send-buffer-limited sender looks app-limited to it.
    func sendBuffer(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        guard m.sendBufferLimitedShare >= configuration.limitedShare,
              m.sendBufferLimitedShare >= m.receiverWindowLimitedShare else { return nil }
        return BottleneckVerdict(
            bottleneck: .sendBufferLimited, strength: 0.5 + 0.5 * m.sendBufferLimitedShare,
            summary: "the send buffer limited the sender \(DiagnosisText.percent(m.sendBufferLimitedShare)) of the time it was busy")
    }

    /// Before the RTT: a slow receiver inflates srtt without any queue on the path.
    func receiverWindow(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        let c = configuration
        let windowBound = m.windowBoundShare >= c.windowBoundShare && m.receiverWindowLimitedShare >= c.pressureShare
        guard m.receiverWindowLimitedShare >= c.limitedShare || windowBound else { return nil }
        var summary = "the receiver's window limited the sender \(DiagnosisText.percent(m.receiverWindowLimitedShare)) of the time it was busy"
        if m.windowBoundShare > 0 {
            summary += "; it was smaller than cwnd with data waiting in \(DiagnosisText.percent(m.windowBoundShare)) of samples"
        }
        return BottleneckVerdict(bottleneck: .receiverWindowLimited,
                                 strength: 0.5 + 0.5 * max(m.receiverWindowLimitedShare, m.windowBoundShare), summary: summary)
    }

    /// Busy (a long path keeps a slow writer's data in flight), but the rate sampler saw cwnd room and no
    /// backlog: the writer sets the pace.
    func rateSampler(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        guard m.rateAppLimitedShare >= configuration.rateSamplerAppLimitedShare, m.unsentDataShare < 0.5 else { return nil }
        return BottleneckVerdict(
            bottleneck: .applicationLimited, strength: m.rateAppLimitedShare * (1 - m.unsentDataShare),
            summary: "data was in flight \(DiagnosisText.percent(m.busyShare)) of the time, but "
                + "\(DiagnosisText.percent(m.rateAppLimitedShare)) of delivery-rate samples were application-limited "
                + "and nothing waited unsent: the writer set the pace")
    }

    /// Both an absolute delay and a ratio: on microsecond paths the ratio alone is huge without a queue.
    func standingQueue(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        let c = configuration
        guard m.queueDelayMicroseconds >= c.bufferbloatQueueDelayMicroseconds, m.rttOverMinRTT >= c.bufferbloatRTTRatio else {
            return nil
        }
        let margin = min(m.queueDelayMicroseconds / c.bufferbloatQueueDelayMicroseconds, m.rttOverMinRTT / c.bufferbloatRTTRatio)
        return BottleneckVerdict(
            bottleneck: .bufferbloat, strength: min(1, 0.5 + 0.25 * margin),
            summary: "a standing queue added \(DiagnosisText.time(m.queueDelayMicroseconds)) to the RTT "
                + "(srtt \(DiagnosisText.ratio(m.rttOverMinRTT))× min_rtt)")
    }

    /// Random loss keeps the window too small to queue; congestion loss happens at a full queue, so loss
    /// that comes with queueing is the path's capacity at work.
    func loss(_ m: DiagnosisMeasurements) -> BottleneckVerdict? {
        let c = configuration
        guard m.retransmitRate >= c.lossRetransmitRate else { return nil }
        let congestionDelay = max(c.congestionQueueDelayFloorMicroseconds, c.congestionQueueDelayShareOfMinRTT * m.minRTTMicroseconds)
        let retransmitted = DiagnosisText.percent(m.retransmitRate), queued = DiagnosisText.time(m.queueDelayMicroseconds)
        guard m.queueDelayMicroseconds < congestionDelay else {
            return BottleneckVerdict(
                bottleneck: .networkLimited, strength: 0.6 + 0.3 * m.busyShare,
                summary: "the flow filled the path: its losses (\(retransmitted) retransmitted) came with \(queued) of queueing, "
                    + "congestion at a full queue")
        }
        let margin = min(m.retransmitRate / c.lossRetransmitRate, 4) / 4
        return BottleneckVerdict(
            bottleneck: .packetLoss, strength: (0.6 + 0.4 * margin) * (1 - 0.3 * m.queueDelayMicroseconds / congestionDelay),
            summary: "\(retransmitted) of the bytes sent were retransmitted while no queue built up "
                + "(queueing delay \(queued)): the path loses packets")
    }

    /// Nothing held the sender back: it used the path's capacity.
    func unhindered(_ m: DiagnosisMeasurements) -> BottleneckVerdict {
        let heldBack = max(m.receiverWindowLimitedShare, m.sendBufferLimitedShare, m.rateAppLimitedShare * (1 - m.unsentDataShare))
        let throughput = Units.bitsPerSecond(fromBytesPerSecond: UInt64(m.throughputBitsPerSecond / 8))
        return BottleneckVerdict(
            bottleneck: .networkLimited, strength: m.busyShare * (1 - heldBack),
            summary: "the sender was busy \(DiagnosisText.percent(m.busyShare)) of the time and nothing else held it back: "
                + "it used the path's capacity (\(throughput))")
    }
}
