/// Verdict lines over time and the per-flow summary of `diagnose`.
extension DiagnosisFormatter {
    /// JSON: `{"type":"verdict","event":"first"|"change"|"interval","elapsed_ms":...,"src":...,"dst":...,
    /// "cookie":...,"bottleneck":...,"confidence":...,"evidence":{...},"signals":[...],"summary":...}` plus
    /// `previous` and `previous_held_ms` on a change, `held_ms` on an interval line.
    /// Text: `+1.52 s 10.77.1.1:40001 -> 10.77.2.1:5001 receiver-window-limited (0.93; was ... for 3.8 s): summary`.
    public func text(for update: VerdictUpdate) -> String {
        switch format {
        case .json: jsonLine(for: update)
        case .text: textLine(for: update)
        }
    }

    public func jsonLine(for update: VerdictUpdate) -> String {
        Wire.line(Wire.VerdictLine(update))
    }

    func textLine(for update: VerdictUpdate) -> String {
        let diagnosis = update.report.diagnosis
        var note = DiagnosisNumber.json(diagnosis.confidence, decimals: 2)
        if let previous = update.previous {
            note += "; was \(previous)" + (update.previousHeldNanoseconds.map { " for " + Self.seconds($0) } ?? "")
        }
        if let held = update.heldNanoseconds { note += "; for " + Self.seconds(held) }
        let label = update.kind == .interval ? "" : " \(update.kind.rawValue == "first" ? "first verdict" : "changed"):"
        return "+\(Self.seconds(update.elapsedNanoseconds)) \(update.report.local) -> \(update.report.remote)\(label) "
            + "\(diagnosis.bottleneck) (\(note)): \(diagnosis.summary)"
    }

    /// A final report with the flow's life: the `diagnosis` line gains `"lifetime":{...}`, the text report
    /// a last line.
    public func text(for report: DiagnosisReport, summary: FlowSummary) -> String {
        switch format {
        case .json: jsonLine(for: report, summary: summary)
        case .text: textReport(for: report) + "\n" + Self.textSummary(summary)
        }
    }

    /// `"lifetime":{"observed_s":...,"first_verdict_ms":...,"verdicts":{"application-limited":0.41,...},
    /// "bytes_sent":...,"bytes_acked":...,"bytes_received":...,"bytes_retrans":...,"retransmits":...,
    /// "min_rtt_us":...,"avg_rtt_us":...}` after the diagnosis line's fields.
    public func jsonLine(for report: DiagnosisReport, summary: FlowSummary) -> String {
        var line = Wire.DiagnosisLine(report)
        line.lifetime = Wire.Lifetime(summary)
        return Wire.line(line)
    }

    /// `  over 12.4 s (first verdict at 1.5 s): application-limited 41%, receiver-window-limited 59% | sent 12 MB, ...`
    static func textSummary(_ summary: FlowSummary) -> String {
        let shares = summary.verdictShares.map { "\($0.bottleneck) \(DiagnosisText.percent($0.share))" }.joined(separator: ", ")
        var line = "  over \(seconds(summary.observedNanoseconds))"
            + (summary.firstVerdictMilliseconds.map { " (first verdict at \(seconds(UInt64($0 * 1e6))))" } ?? "")
            + ": " + (shares.isEmpty ? "no verdict" : shares)
            + " | sent \(Units.bytes(summary.bytesSent)), acked \(Units.bytes(summary.bytesAcked)), "
            + "received \(Units.bytes(summary.bytesReceived)), \(summary.retransmits) retransmitted"
        if let minimum = summary.minRTTMicroseconds, let average = summary.averageRTTMicroseconds {
            line += " | rtt min \(Units.microseconds(minimum)) avg \(Units.microseconds(UInt64(average.rounded())))"
        }
        return line
    }

    /// "1.52 s".
    static func seconds(_ nanoseconds: UInt64) -> String {
        DiagnosisNumber.json(Double(nanoseconds) / 1e9, decimals: 2) + " s"
    }
}
