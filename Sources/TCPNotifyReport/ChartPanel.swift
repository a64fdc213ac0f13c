/// One line series of a panel: points as (seconds since start, value in the panel's unit).
struct ChartSeries {
    /// Used in the element's class (`series series-<id>`) and id (`flow-N-<id>`).
    var id: String
    var label: String
    var color: String
    var dashed = false
    var points: [(x: Double, y: Double)]
}

/// A chart panel: a y axis titled with its unit, horizontal grid lines on round values, its series and a
/// legend on the right. The x axis (seconds) is shared by every panel of every flow.
struct ChartPanel {
    var id: String
    /// With the unit: "RTT (ms)".
    var title: String
    var series: [ChartSeries]
    /// A fixed top (100 for percentages); else the series' largest value, rounded up.
    var fixedMaximum: Double?

    /// The panel's SVG at `top`, `height` px tall; `x` maps seconds to px, `xTicks` are the shared ticks.
    func svg(flowID: String, x: LinearScale, top: Double, height: Double, xTicks: [Double]) -> String {
        let left = x.start, right = x.end
        let largest = series.flatMap { $0.points.map(\.y) }.filter(\.isFinite).max() ?? 0
        let ticks = ReportNumber.ticks(upTo: fixedMaximum ?? largest)
        let top = top, bottom = top + height
        let y = LinearScale(domain: 0...(ticks.last ?? 1), start: bottom, end: top)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        var svg = "<g class=\"panel panel-\(id)\" id=\"\(flowID)-panel-\(id)\">"
        svg += "<rect class=\"plot\" x=\"\(c(left))\" y=\"\(c(top))\" width=\"\(c(right - left))\" height=\"\(c(height))\"/>"
        for tick in ticks {
            let ty = y(tick)
            svg += "<line class=\"grid\" x1=\"\(c(left))\" x2=\"\(c(right))\" y1=\"\(c(ty))\" y2=\"\(c(ty))\"/>"
            svg += "<text class=\"tick y\" x=\"\(c(left - 6))\" y=\"\(c(ty + 4))\">\(ReportNumber.tick(tick, step: step))</text>"
        }
        for tick in xTicks {
            svg += "<line class=\"grid\" x1=\"\(c(x(tick)))\" x2=\"\(c(x(tick)))\" y1=\"\(c(top))\" y2=\"\(c(bottom))\"/>"
        }
        svg += "<text class=\"axis-title\" transform=\"translate(\(c(left - 48)) \(c(top + height / 2))) rotate(-90)\">"
            + HTMLText.escape(title) + "</text>"
        for line in series {
            svg += path(line, flowID: flowID, x: x, y: y)
        }
        svg += legend(x: right + 14, top: top + 4)
        return svg + "</g>"
    }

    private func path(_ line: ChartSeries, flowID: String, x: LinearScale, y: LinearScale) -> String {
        let attributes = "class=\"series series-\(line.id)\" id=\"\(flowID)-\(line.id)\" stroke=\"\(line.color)\""
            + (line.dashed ? " stroke-dasharray=\"5 3\"" : "")
        let points = line.points.filter { $0.x.isFinite && $0.y.isFinite }
        guard points.count > 1 else {
            guard let point = points.first else { return "<path \(attributes) d=\"\"/>" }
            return "<circle \(attributes) fill=\"\(line.color)\" r=\"2.5\" cx=\"\(c(x(point.x)))\" cy=\"\(c(y(point.y)))\"/>"
        }
        var d = ""
        d.reserveCapacity(points.count * 14)
        for (index, point) in points.enumerated() {
            d += (index == 0 ? "M" : "L") + c(x(point.x)) + " " + c(y(point.y))
        }
        return "<path \(attributes) d=\"\(d)\"/>"
    }

    private func legend(x: Double, top: Double) -> String {
        var svg = "<g class=\"legend\">"
        for (index, line) in series.enumerated() {
            let ly = top + Double(index) * 17
            svg += "<line x1=\"\(c(x))\" x2=\"\(c(x + 22))\" y1=\"\(c(ly + 6))\" y2=\"\(c(ly + 6))\" stroke=\"\(line.color)\" "
                + "stroke-width=\"2.5\"" + (line.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>"
            svg += "<text class=\"legend-label\" x=\"\(c(x + 28))\" y=\"\(c(ly + 10))\">\(HTMLText.escape(line.label))</text>"
        }
        return svg + "</g>"
    }
}

/// Short for SVG coordinates.
func c(_ value: Double) -> String { ReportNumber.coordinate(value) }
