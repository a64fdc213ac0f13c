import TCPNotifyCore

/// The table at the top: a row per flow with its life, bytes, retransmits, RTT and the share of its time
/// under each verdict (a small stacked bar and the numbers), linking to its charts.
struct SummaryTable {
    var document: ReportDocument

    func html() -> String {
        var html = "<section id=\"summary\"><table class=\"summary\"><thead><tr><th>#</th><th>connection</th><th>cgroup</th>"
            + "<th>life (s)</th><th>bytes</th><th>retrans</th><th>RTT min / avg</th><th>verdicts (share of time)</th></tr></thead><tbody>"
        for (index, flow) in document.flows.enumerated() {
            html += row(flow, number: index + 1)
        }
        html += "</tbody></table>"
        if document.flows.isEmpty { html += "<p class=\"note\">No flow was seen.</p>" }
        if document.omittedFlows > 0 {
            html += "<p class=\"note omitted\">\(document.omittedFlowsIsLowerBound ? "At least " : "")\(document.omittedFlows) "
                + "more flow(s) were left out: the report charts the first \(document.limits.flows).</p>"
        }
        return html + "</section>\n"
    }

    private func row(_ flow: FlowRecording, number: Int) -> String {
        let id = ReportPage.flowID(number)
        var html = "<tr class=\"flow-row\"><td>\(number)</td><td><a href=\"#\(id)\">\(HTMLText.escape(flow.local.description)) → "
            + "\(HTMLText.escape(flow.remote.description))</a>"
        if let end = flow.end { html += " <span class=\"end\">\(HTMLText.escape(end.rawValue))</span>" }
        html += "</td><td>\(flow.cgroupPath.map { "<code>\(HTMLText.escape($0))</code>" } ?? "")</td>"
        html += "<td class=\"number\">\(life(flow))</td>"
        guard let summary = flow.summary else {
            return html + "<td></td><td></td><td></td><td>no summary</td></tr>"
        }
        html += "<td class=\"number\">sent \(Units.bytes(summary.bytesSent))<br>acked \(Units.bytes(summary.bytesAcked))"
            + "<br>received \(Units.bytes(summary.bytesReceived))</td>"
        html += "<td class=\"number\">\(summary.retransmits)</td>"
        let rtt = [summary.minRTTMicroseconds, summary.averageRTTMicroseconds.map { UInt64($0.rounded()) }]
            .map { $0.map(Units.microseconds) ?? "–" }
        html += "<td class=\"number\">\(rtt.joined(separator: " / "))</td>"
        return html + "<td class=\"shares\">\(shares(summary))</td></tr>"
    }

    private func life(_ flow: FlowRecording) -> String {
        guard let first = flow.firstNanoseconds, let last = flow.lastNanoseconds else { return "" }
        let from = seconds(first), to = flow.isClosed ? seconds(last) : seconds(document.endNanoseconds)
        return "+\(ReportNumber.fixed(from, decimals: 1)) → +\(ReportNumber.fixed(to, decimals: 1))"
            + (flow.isClosed ? " (closed)" : "")
    }

    private func seconds(_ nanoseconds: UInt64) -> Double {
        Double(nanoseconds &- min(document.startNanoseconds, nanoseconds)) / 1e9
    }

    /// A 160 px stacked bar and "verdict 78%" lines.
    private func shares(_ summary: FlowSummary) -> String {
        guard !summary.verdictShares.isEmpty else { return "no verdict" }
        var bar = "<svg class=\"share-bar\" width=\"160\" height=\"12\" viewBox=\"0 0 160 12\">"
        var x = 0.0
        for share in summary.verdictShares {
            let width = share.share * 160
            bar += "<rect x=\"\(c(x))\" y=\"0\" width=\"\(c(width))\" height=\"12\" fill=\"\(VerdictPalette.color(share.bottleneck))\">"
                + "<title>\(share.bottleneck.rawValue)</title></rect>"
            x += width
        }
        bar += "</svg>"
        let text = summary.verdictShares.sorted { $0.share > $1.share }.map {
            "<br><span class=\"swatch\" style=\"background:\(VerdictPalette.color($0.bottleneck))\"></span>"
                + "\($0.bottleneck.rawValue) \(ReportNumber.fixed($0.share * 100, decimals: 0))%"
        }
        return bar + text.joined()
    }
}
