/// Turns diagnosis reports into output: one JSON object per line, or a short readable report.
public struct DiagnosisFormatter: Sendable {
    public var format: NotificationFormatter.Format

    public init(format: NotificationFormatter.Format) {
        self.format = format
    }

    public func text(for report: DiagnosisReport) -> String {
        switch format {
        case .json: jsonLine(for: report)
        case .text: textReport(for: report)
        }
    }

    /// `{"type":"diagnosis","src":...,"dst":...,"cookie":...,"bottleneck":...,"confidence":...,"evidence":{...},
    /// "signals":[...],"summary":...}` (`Wire.DiagnosisLine`).
    public func jsonLine(for report: DiagnosisReport) -> String {
        Wire.line(Wire.DiagnosisLine(report))
    }

    /// ```
    /// 10.77.1.1:40001 -> 10.77.2.1:5001 (cookie 4099, closed)
    ///   receiver-window-limited, confidence 0.93
    ///   the receiver's window limited the sender 99% of the time it was busy
    ///   signals: zero-window
    ///   busy 100% | rwnd-limited 99.5% | sndbuf-limited 0% | rate app-limited 0% | ...
    /// ```
    public func textReport(for report: DiagnosisReport) -> String {
        let diagnosis = report.diagnosis
        let evidence = diagnosis.evidence
        func value(_ name: String) -> Double { evidence[name] ?? 0 }
        func percent(_ name: String) -> String { DiagnosisNumber.json(value(name), decimals: 1) + "%" }
        func time(_ name: String) -> String { Units.microseconds(UInt64(max(value(name), 0))) }
        func rate(_ name: String) -> String { Units.bitsPerSecond(fromBytesPerSecond: UInt64(max(value(name), 0) / 8)) }
        var lines = ["\(report.local) -> \(report.remote) (cookie \(report.cookie)\(report.isClosed ? ", closed" : ""))"]
        lines.append("  \(diagnosis.bottleneck), confidence \(DiagnosisNumber.json(diagnosis.confidence, decimals: 2))")
        lines.append("  \(diagnosis.summary)")
        if !diagnosis.signals.isEmpty { lines.append("  signals: " + diagnosis.signals.map(\.rawValue).joined(separator: ", ")) }
        if diagnosis.end == .receiver {
            lines[1] = "  \(diagnosis.bottleneck) (receiving end), confidence \(DiagnosisNumber.json(diagnosis.confidence, decimals: 2))"
            lines.append("  over \(DiagnosisNumber.json(value("window_s"), decimals: 1)) s, \(Int(value("samples"))) samples: "
                + "rcv_wnd \(Units.bytes(UInt64(max(value("rcv_wnd_bytes"), 0)))) of \(Units.bytes(UInt64(max(value("rcv_ssthresh_bytes"), 0)))) "
                + "| shrunk \(percent("shrunk_window_pct")) | zero \(percent("zero_window_pct")) | window used \(percent("window_use_pct"))")
            lines.append("  rcv_rtt \(time("rcv_rtt_us")) | out of order \(Int(value("ooo_segs"))) of \(Int(value("data_segs_in"))) "
                + "(\(percent("ooo_pct"))) | throughput \(rate("throughput_bps"))")
            return lines.joined(separator: "\n")
        }
        lines.append("  over \(DiagnosisNumber.json(value("window_s"), decimals: 1)) s, \(Int(value("samples"))) samples: "
            + "busy \(percent("busy_pct")) | rwnd-limited \(percent("rwnd_limited_pct")) | sndbuf-limited \(percent("sndbuf_limited_pct")) "
            + "| rate app-limited \(percent("rate_app_limited_pct"))")
        lines.append("  rtt \(time("rtt_us")) vs min_rtt \(time("min_rtt_us")) (x\(DiagnosisNumber.json(value("rtt_over_min_rtt"), decimals: 2)), "
            + "queue \(time("queue_delay_us"))) | retransmitted \(DiagnosisNumber.json(value("retrans_rate") * 100, decimals: 2))% "
            + "| delivery \(rate("delivery_rate_bps")) | throughput \(rate("throughput_bps"))")
        return lines.joined(separator: "\n")
    }
}

/// JSON number literals for evidence: fixed decimals, trailing zeros dropped.
enum DiagnosisNumber {
    /// Small rates (retrans_rate 0.00012) keep their significant digits; large values need no decimals.
    static func decimals(for value: Double) -> Int {
        let magnitude = abs(value)
        if magnitude >= 1000 { return 0 }
        if magnitude >= 1 || magnitude == 0 { return 2 }
        if magnitude >= 0.01 { return 4 }
        return 6
    }

    static func json(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else {
            guard abs(value) < 9e18 else { return String(value > 0 ? Int64.max : Int64.min) }
            return String(Int64(value.rounded()))
        }
        let units = UInt64(scaled)
        let whole = units / UInt64(scale)
        var fraction = String(units % UInt64(scale))
        fraction = String(repeating: "0", count: max(decimals - fraction.count, 0)) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let sign = value < 0 && units > 0 ? "-" : ""
        return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }
}
