import TCPNotifyCore

/// One flow's timelines as one SVG, on the report's shared time axis: the verdict as coloured bands (and a
/// faint shade behind every panel) with its change points, retransmits and RTOs as marks, then panels for
/// RTT, congestion window and flight, rates, and the busy / limited shares.
struct FlowChart {
    var flow: FlowRecording
    /// Used in element ids: `flow-3`.
    var flowID: String
    var startNanoseconds: UInt64
    var endNanoseconds: UInt64

    static let width = 1180.0
    static let plotLeft = 78.0
    static let plotRight = 1000.0
    static let bandTop = 8.0
    static let bandHeight = 26.0
    static let marksTop = 40.0
    static let marksHeight = 18.0
    static let panelsTop = 68.0
    static let panelHeight = 100.0
    static let panelGap = 16.0

    func seconds(_ nanoseconds: UInt64) -> Double {
        Double(nanoseconds &- min(startNanoseconds, nanoseconds)) / 1e9
    }

    var xScale: LinearScale {
        LinearScale(domain: 0...max(seconds(endNanoseconds), 0.001), start: Self.plotLeft, end: Self.plotRight)
    }

    func svg() -> String {
        let x = xScale
        let xTicks = ReportNumber.ticks(upTo: x.domain.upperBound, count: 10).filter { $0 <= x.domain.upperBound + 1e-9 }
        let panels = self.panels
        let panelsBottom = Self.panelsTop + Double(panels.count) * (Self.panelHeight + Self.panelGap) - Self.panelGap
        let height = panelsBottom + 46
        var svg = "<svg class=\"flow-chart\" id=\"\(flowID)-chart\" "
            + "width=\"\(c(Self.width))\" height=\"\(c(height))\" viewBox=\"0 0 \(c(Self.width)) \(c(height))\" role=\"img\">"
        svg += verdictBands(x: x, shadeBottom: panelsBottom)
        svg += marks(x: x)
        for (index, panel) in panels.enumerated() {
            let top = Self.panelsTop + Double(index) * (Self.panelHeight + Self.panelGap)
            svg += panel.svg(flowID: flowID, x: x, top: top, height: Self.panelHeight, xTicks: xTicks)
        }
        svg += xAxis(x: x, ticks: xTicks, y: panelsBottom)
        return svg + "</svg>"
    }

    // MARK: Verdicts

    /// The spans to draw: "no verdict yet" from the first record to the first verdict, then each verdict
    /// until the next (the last until the close, or the report's end for a flow still open).
    var verdictSpans: [(start: UInt64, end: UInt64, bottleneck: Bottleneck?)] {
        guard let first = flow.firstNanoseconds else { return [] }
        let end = flow.isClosed ? (flow.lastNanoseconds ?? endNanoseconds) : endNanoseconds
        var spans: [(UInt64, UInt64, Bottleneck?)] = []
        let verdicts = flow.verdicts
        if let firstVerdict = verdicts.first?.startNanoseconds, firstVerdict > first {
            spans.append((first, min(firstVerdict, end), nil))
        } else if verdicts.isEmpty {
            spans.append((first, end, nil))
        }
        for (index, verdict) in verdicts.enumerated() {
            let next = index + 1 < verdicts.count ? verdicts[index + 1].startNanoseconds : end
            spans.append((verdict.startNanoseconds, max(next, verdict.startNanoseconds), verdict.bottleneck))
        }
        return spans
    }

    private func verdictBands(x: LinearScale, shadeBottom: Double) -> String {
        var svg = "<g class=\"verdicts\"><text class=\"row-label\" x=\"\(c(Self.plotLeft - 8))\" y=\"\(c(Self.bandTop + 17))\">verdict</text>"
        let spans = verdictSpans
        for (index, span) in spans.enumerated() {
            let x0 = x(seconds(span.start)), x1 = max(x(seconds(span.end)), x0 + 1)
            let name = VerdictPalette.label(span.bottleneck), color = VerdictPalette.color(span.bottleneck)
            let tooltip = "<title>\(HTMLText.escape(name)): +\(time(span.start)) to +\(time(span.end))</title>"
            let className = VerdictPalette.className(span.bottleneck)
            svg += "<rect class=\"verdict-shade \(className)\" x=\"\(c(x0))\" y=\"\(c(Self.panelsTop))\" width=\"\(c(x1 - x0))\" "
                + "height=\"\(c(shadeBottom - Self.panelsTop))\" fill=\"\(color)\"/>"
            svg += "<rect class=\"verdict-band \(className)\" data-verdict=\"\(HTMLText.escape(name))\" x=\"\(c(x0))\" "
                + "y=\"\(c(Self.bandTop))\" width=\"\(c(x1 - x0))\" height=\"\(c(Self.bandHeight))\" fill=\"\(color)\">\(tooltip)</rect>"
            if x1 - x0 > Double(name.count) * 6.6 + 8 {
                svg += "<text class=\"band-label\" x=\"\(c(x0 + 5))\" y=\"\(c(Self.bandTop + 17))\" "
                    + "fill=\"\(VerdictPalette.textColor(span.bottleneck))\">\(HTMLText.escape(name))</text>"
            }
            // A change point: one verdict to another (not the first verdict after "no verdict yet").
            if index > 0 && span.bottleneck != nil && spans[index - 1].bottleneck != nil {
                svg += "<line class=\"verdict-change\" x1=\"\(c(x0))\" x2=\"\(c(x0))\" y1=\"\(c(Self.bandTop))\" "
                    + "y2=\"\(c(shadeBottom))\"><title>changed to \(HTMLText.escape(name)) at +\(time(span.start))</title></line>"
            }
        }
        return svg + "</g>"
    }

    // MARK: Marks and panels

    private var intervals: [ReportInterval] { ReportInterval.between(flow.points) }

    private func marks(x: LinearScale) -> String {
        var svg = "<g class=\"marks\"><text class=\"row-label\" x=\"\(c(Self.plotLeft - 8))\" y=\"\(c(Self.marksTop + 13))\">"
            + "retrans/RTO</text>"
        svg += "<rect class=\"plot\" x=\"\(c(Self.plotLeft))\" y=\"\(c(Self.marksTop))\" width=\"\(c(Self.plotRight - Self.plotLeft))\" "
            + "height=\"\(c(Self.marksHeight))\"/>"
        var count = 0
        for interval in intervals where interval.retransmits > 0 || interval.timeouts > 0 {
            let mx = x(seconds(interval.endNanoseconds))
            if interval.retransmits > 0 {
                count += 1
                svg += "<rect class=\"mark mark-retransmit\" x=\"\(c(mx - 1))\" y=\"\(c(Self.marksTop + 2))\" width=\"2\" "
                    + "height=\"\(c(Self.marksHeight - 4))\"><title>\(interval.retransmits) retransmitted segment(s) by "
                    + "+\(time(interval.endNanoseconds))</title></rect>"
            }
            if interval.timeouts > 0 {
                count += 1
                let top = Self.marksTop + 2
                svg += "<path class=\"mark mark-rto\" d=\"M\(c(mx - 5)) \(c(top))L\(c(mx + 5)) \(c(top))L\(c(mx)) \(c(top + 12))Z\">"
                    + "<title>\(interval.timeouts) RTO(s) by +\(time(interval.endNanoseconds))</title></path>"
            }
        }
        if count == 0 {
            svg += "<text class=\"none\" x=\"\(c(Self.plotLeft + 6))\" y=\"\(c(Self.marksTop + 13))\">no retransmits, no RTOs</text>"
        }
        return svg + "</g>"
    }

    var panels: [ChartPanel] {
        let points = flow.points, intervals = self.intervals
        func series(_ id: String, _ label: String, _ color: String, dashed: Bool = false,
                    _ value: (ReportPoint) -> Double) -> ChartSeries {
            ChartSeries(id: id, label: label, color: color, dashed: dashed,
                        points: points.map { (seconds($0.monotonicNanoseconds), value($0)) })
        }
        func intervalSeries(_ id: String, _ label: String, _ color: String, _ value: (ReportInterval) -> Double) -> ChartSeries {
            ChartSeries(id: id, label: label, color: color, points: intervals.map { (seconds($0.endNanoseconds), value($0)) })
        }
        let rttMaximum = points.map { max($0.srttMicroseconds, $0.minRTTMicroseconds, $0.rttvarMicroseconds) }.max() ?? 0
        let (rttDivisor, rttUnit) = rttMaximum >= 1000 ? (1000.0, "ms") : (1.0, "µs")
        let rateMaximum = max(points.map { Double($0.deliveryRateBytesPerSecond) }.max() ?? 0,
                              intervals.map(\.goodputBytesPerSecond).max() ?? 0) * 8
        let (rateDivisor, rateUnit) = rateMaximum >= 1e9 ? (1e9, "Gbit/s") : rateMaximum >= 1e6 ? (1e6, "Mbit/s") : (1e3, "kbit/s")
        return [
            ChartPanel(id: "rtt", title: "RTT (\(rttUnit))", series: [
                series("srtt", "srtt", SeriesColor.blue) { Double($0.srttMicroseconds) / rttDivisor },
                series("min-rtt", "min_rtt", SeriesColor.green, dashed: true) { Double($0.minRTTMicroseconds) / rttDivisor },
                series("rttvar", "rttvar", SeriesColor.orange) { Double($0.rttvarMicroseconds) / rttDivisor },
            ]),
            ChartPanel(id: "window", title: "window (packets)", series: [
                series("cwnd", "cwnd", SeriesColor.blue) { Double($0.congestionWindowPackets) },
                series("in-flight", "in flight", SeriesColor.red) { Double($0.packetsInFlight) },
            ]),
            ChartPanel(id: "rate", title: "rate (\(rateUnit))", series: [
                series("delivery-rate", "delivery rate", SeriesColor.purple) { Double($0.deliveryRateBytesPerSecond) * 8 / rateDivisor },
                intervalSeries("goodput", "goodput", SeriesColor.teal) { $0.goodputBytesPerSecond * 8 / rateDivisor },
            ]),
            ChartPanel(id: "limits", title: "% of time", series: [
                intervalSeries("busy", "busy", SeriesColor.grey) { $0.busyShare * 100 },
                intervalSeries("rwnd-limited", "rwnd-limited", SeriesColor.orange) { $0.receiverWindowLimitedShare * 100 },
                intervalSeries("sndbuf-limited", "sndbuf-limited", SeriesColor.olive) { $0.sendBufferLimitedShare * 100 },
            ], fixedMaximum: 100),
        ]
    }

    private func xAxis(x: LinearScale, ticks: [Double], y: Double) -> String {
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        var svg = "<g class=\"x-axis\">"
        for tick in ticks {
            svg += "<line class=\"axis\" x1=\"\(c(x(tick)))\" x2=\"\(c(x(tick)))\" y1=\"\(c(y))\" y2=\"\(c(y + 5))\"/>"
            svg += "<text class=\"tick x\" x=\"\(c(x(tick)))\" y=\"\(c(y + 18))\">\(ReportNumber.tick(tick, step: step))</text>"
        }
        svg += "<text class=\"axis-title x\" x=\"\(c((x.start + x.end) / 2))\" y=\"\(c(y + 38))\">"
            + "time since the command started (s)</text>"
        return svg + "</g>"
    }

    /// "1.25 s" since the start.
    func time(_ nanoseconds: UInt64) -> String { ReportNumber.fixed(seconds(nanoseconds), decimals: 2) + " s" }
}
