extension TopFrame {
    /// The detail screen of one connection: who it is, its verdict with the evidence and recent history,
    /// and every tcp_info field; scrolled by `view.detailOffset`.
    public func detail(_ detail: TopDetail, status: TopStatus, view: TopView, total: Int, startNanoseconds: UInt64) -> [TopLine] {
        var lines = header(status: status, view: view, total: total, shown: total)
        var body = detailBody(detail, startNanoseconds: startNanoseconds)
        if let height {
            let room = max(height - lines.count - 1, 0)
            let offset = min(view.detailOffset, max(body.count - room, 0))
            body = Array(body.dropFirst(offset).prefix(room))
        }
        lines += body
        if let height {
            while lines.count < height - 1 { lines.append(TopLine("")) }
            lines.append(footer(view: view, status: status))
        }
        return lines
    }

    func detailBody(_ detail: TopDetail, startNanoseconds: UInt64) -> [TopLine] {
        let row = detail.row
        var lines: [TopLine] = []
        func add(_ text: String, _ style: TopLine.Style = .normal) { lines.append(TopLine(TopText.clip(text, width), style)) }
        add("\(row.local) -> \(row.remote)  \(row.stateText)  cookie \(row.cookie)", .columnHeader)
        add("cgroup \(row.owner) (id \(detail.cgroupID))  \(detail.records) records, the last "
            + "\(TopText.microseconds(detail.ageNanoseconds / 1000)) ago (\(detail.trigger))  rule last fired: \(row.lastRule ?? "none")")
        add("throughput \(TopText.rate(bytesPerSecond: row.throughputBytesPerSecond)) B/s  retransmits \(row.retransmitsTotal) "
            + "(\(row.retransmitsRecent) in the last 10 s)")
        if let verdict = row.verdict {
            add("verdict: \(verdict) held \(TopText.held(nanoseconds: row.verdictHeldNanoseconds))",
                verdict.isImpairment ? .alert : .normal)
        } else {
            add("verdict: none yet (a flow's first sample is its baseline; the first verdict comes about a second later)")
        }
        if let report = detail.report {
            // The report `diagnose --format text` prints, without its first line (the endpoints, shown above).
            for line in DiagnosisFormatter(format: .text).textReport(for: report).split(separator: "\n").dropFirst() {
                add("  " + line.drop { $0 == " " })
            }
        }
        if !detail.history.isEmpty {
            let story = detail.history.map { change in
                let at = change.monotonicNanoseconds > startNanoseconds ? change.monotonicNanoseconds - startNanoseconds : 0
                return "+\(TopText.held(nanoseconds: at)) \(change.bottleneck)"
                    + (change.previousHeldNanoseconds.map { " (previous held \(TopText.held(nanoseconds: $0)))" } ?? "")
            }
            add("history: " + story.joined(separator: ", "))
        }
        if let summary = detail.summary {
            add("life: observed \(TopText.held(nanoseconds: summary.observedNanoseconds)), acked \(TopText.count(summary.bytesAcked)) B, "
                + "received \(TopText.count(summary.bytesReceived)) B, \(summary.retransmits) segments retransmitted")
        }
        add("tcp_info (kernel units; `tcpnotify fields` explains each):", .columnHeader)
        lines += fieldLines(detail.info)
        return lines
    }

    /// Every field as `name value`, in as many columns as the width holds (laid out like ls: each column as
    /// wide as its widest cell, two spaces between).
    func fieldLines(_ info: TCPInfo) -> [TopLine] {
        let cells = TCPInfoField.allCases.map { field in "\(field.name) \(Self.value(field, in: info))" }
        for count in stride(from: max(width / 12, 1), through: 1, by: -1) {
            let perColumn = (cells.count + count - 1) / count
            let columns = stride(from: 0, to: cells.count, by: perColumn).map { Array(cells[$0..<min($0 + perColumn, cells.count)]) }
            let widths = columns.map { $0.map(\.count).max() ?? 0 }
            guard count == 1 || widths.reduce(0, +) + 2 * (columns.count - 1) <= width else { continue }
            return (0..<perColumn).map { line in
                let texts = columns.enumerated().compactMap { index, column in
                    line < column.count ? TopText.fit(column[line], index == columns.count - 1 ? column[line].count : widths[index]) : nil
                }
                return TopLine(TopText.clip(texts.joined(separator: "  "), width))
            }
        }
        return []
    }

    static func value(_ field: TCPInfoField, in info: TCPInfo) -> String {
        let value = info[field]
        switch field {
        case .state: return TCPState(rawValue: UInt8(truncatingIfNeeded: value))?.name ?? String(value)
        case .caState: return TCPCongestionState(rawValue: UInt8(truncatingIfNeeded: value))?.name ?? String(value)
        default: return String(value)
        }
    }
}
