import TCPNotifyCore

/// The report as one self-contained HTML page: inline CSS and SVG, no script, no external resource (the
/// Content-Security-Policy forbids any fetch), so it works offline and as an e-mail attachment. Every
/// string from outside is escaped.
public enum ReportPage {
    public static func html(_ document: ReportDocument) -> String {
        var page = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        page += "<title>\(HTMLText.escape(document.title))</title><style>\(ReportStyle.css)</style></head>\n<body>\n"
        page += "<header><h1>\(HTMLText.escape(document.title))</h1>"
        for line in document.context { page += "<p class=\"context\">\(HTMLText.escape(line))</p>" }
        let span = Double(document.endNanoseconds - document.startNanoseconds) / 1e9
        page += "<p class=\"context\">\(document.flows.count) flow(s) over \(ReportNumber.fixed(span, decimals: 1)) s; "
            + "times are seconds since the command started, on one axis for every flow.</p></header>\n"
        page += SummaryTable(document: document).html()
        page += legend(document)
        for (index, flow) in document.flows.enumerated() {
            page += section(flow, number: index + 1, document: document)
        }
        return page + "</body></html>\n"
    }

    static func flowID(_ number: Int) -> String { "flow-\(number)" }

    private static func section(_ flow: FlowRecording, number: Int, document: ReportDocument) -> String {
        let id = flowID(number)
        var html = "<section class=\"flow\" id=\"\(id)\" data-cookie=\"\(flow.cookie)\">"
        html += "<h2>#\(number) \(HTMLText.escape(flow.local.description)) → \(HTMLText.escape(flow.remote.description))"
        if let end = flow.end { html += " <span class=\"end\">\(HTMLText.escape(end.rawValue)) end</span>" }
        html += "</h2><p class=\"flow-meta\">"
        if let path = flow.cgroupPath { html += "cgroup <code>\(HTMLText.escape(path))</code> · " }
        html += "cookie \(flow.cookie) · \(flow.recordCount) record(s), \(flow.points.count) charted"
        if flow.isClosed { html += " · closed" }
        if flow.droppedVerdictChanges > 0 {
            html += " · \(flow.droppedVerdictChanges) later verdict change(s) not drawn (limit \(document.limits.verdictChangesPerFlow))"
        }
        html += "</p>"
        if let text = flow.lastSummaryText {
            let last = flow.lastBottleneck
            html += "<p class=\"verdict-text\"><span class=\"swatch\" style=\"background:\(VerdictPalette.color(last))\"></span>"
                + "<b>\(HTMLText.escape(VerdictPalette.label(last)))</b>: \(HTMLText.escape(text))</p>"
        }
        html += FlowChart(flow: flow, flowID: id, startNanoseconds: document.startNanoseconds,
                          endNanoseconds: document.endNanoseconds).svg()
        return html + "</section>\n"
    }

    /// The verdict colours used in this report.
    private static func legend(_ document: ReportDocument) -> String {
        var used: [Bottleneck?] = []
        for flow in document.flows {
            let spans = FlowChart(flow: flow, flowID: "", startNanoseconds: document.startNanoseconds,
                                  endNanoseconds: document.endNanoseconds).verdictSpans
            for span in spans where !used.contains(span.bottleneck) { used.append(span.bottleneck) }
        }
        guard !used.isEmpty else { return "" }
        var html = "<p class=\"verdict-legend\">Verdicts: "
        for bottleneck in used {
            html += "<span class=\"legend-item\"><span class=\"swatch\" style=\"background:\(VerdictPalette.color(bottleneck))\"></span>"
                + "\(HTMLText.escape(VerdictPalette.label(bottleneck)))</span> "
        }
        return html + "· <span class=\"legend-item\">▮ retransmits ▼ RTO</span></p>\n"
    }
}

/// The page's style sheet (inline).
enum ReportStyle {
    static let css = """
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;margin:16px 24px;max-width:1240px}
        h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 2px}
        .context,.flow-meta,.note{color:#555;margin:2px 0}
        table.summary{border-collapse:collapse;margin:12px 0;font-size:13px}
        table.summary th,table.summary td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
        table.summary td.number{text-align:right;white-space:nowrap}
        .swatch{display:inline-block;width:11px;height:11px;margin-right:4px;border:1px solid #0003;vertical-align:-1px}
        .legend-item{margin-right:12px;white-space:nowrap}.shares{white-space:nowrap}
        .end{font-weight:normal;color:#555;font-size:13px}
        .verdict-text{margin:4px 0}
        section.flow{border-top:1px solid #ccc;margin-top:14px}
        svg text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#333}
        svg .plot{fill:none;stroke:#bbb}svg .grid{stroke:#e6e6e6}svg .axis{stroke:#888}
        svg .tick.y,svg .row-label{text-anchor:end}svg .tick.x,svg .axis-title{text-anchor:middle}
        svg .axis-title{font-weight:600;fill:#444}
        svg .series{fill:none;stroke-width:1.8;stroke-linejoin:round}
        svg .verdict-shade{opacity:.16}svg .verdict-band{stroke:#fff;stroke-width:1}
        svg .band-label{font-weight:600}svg .marks .row-label{font-size:11px}svg .verdict-change{stroke:#333;stroke-dasharray:3 3}
        svg .mark-retransmit{fill:#e15759}svg .mark-rto{fill:#111}svg .none{fill:#888}
        svg .legend-label{fill:#333}
        """
}
