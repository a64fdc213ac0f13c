/// One line of a frame and how to draw it; without colour (or in `--batch`) only the text counts.
public struct TopLine: Sendable, Equatable {
    public enum Style: Sendable, Equatable {
        case normal
        case title
        case columnHeader
        case selected
        /// A connection whose verdict names a problem (`Bottleneck.isImpairment`), or a warning.
        case alert
        case dim
    }

    public var text: String
    public var style: Style

    public init(_ text: String, _ style: Style = .normal) {
        self.text = text
        self.style = style
    }
}

/// The header's numbers: what the session and its source say.
public struct TopStatus: Sendable, Equatable {
    /// push (the kernel pushes), hybrid (push, with some existing sockets watched through tracepoints) or
    /// poll (sock_diag).
    public var mode = "push"
    public var notificationsPerSecond = 0.0
    public var ringDrops: UInt64 = 0
    public var userDrops: UInt64 = 0
    /// Features that are off or degraded on this host (`Degradation.feature`).
    public var degraded: [String] = []
    public var uptimeNanoseconds: UInt64 = 0
    /// Local time of day, in seconds since midnight.
    public var secondsOfDay = 0

    public init() {}
}

/// Turns the model, the view and the status into the lines of a screen of `width` x `height` (the table)
/// or of a whole frame (`height` nil: `--batch`, every row). Pure text: testable without a terminal.
public struct TopFrame: Sendable {
    public var width: Int
    public var height: Int?

    public init(width: Int, height: Int?) {
        self.width = max(width, 20)
        self.height = height.map { max($0, 5) }
    }

    /// The header lines: title, totals, filter and sort.
    func header(status: TopStatus, view: TopView, total: Int, shown: Int) -> [TopLine] {
        var title = "tcpnotify top  \(TopText.clock(secondsOfDay: status.secondsOfDay))  up \(TopText.held(nanoseconds: status.uptimeNanoseconds))"
        title += "  mode \(status.mode)"
        if view.paused { title += "  PAUSED" }
        var totals = "conns \(total)"
        if shown != total { totals += " (\(shown) shown)" }
        totals += "  notif/s \(TopText.decimal(status.notificationsPerSecond))"
        totals += "  drops \(status.ringDrops + status.userDrops)"
        if status.ringDrops + status.userDrops > 0 { totals += " (ring \(status.ringDrops), user \(status.userDrops))" }
        totals += status.degraded.isEmpty ? "  features: all on" : "  off: " + status.degraded.joined(separator: ", ")
        let selection = "filter: \(view.filterText.isEmpty ? "none" : view.filterText)  sort: \(view.sort.column.rawValue) "
            + (view.sort.descending ? "desc" : "asc") + "  rates: bytes/s"
        return [TopLine(TopText.clip(title, width), .title),
                TopLine(TopText.clip(totals, width), status.ringDrops + status.userDrops > 0 || !status.degraded.isEmpty ? .alert : .normal),
                TopLine(TopText.clip(selection, width))]
    }

    /// The table screen: header, column titles, the rows that fit (scrolled to keep the selected one in
    /// view), and the key line (or the filter prompt, or a message).
    public func table(rows unsorted: [TopRow], total: Int, status: TopStatus, view: TopView) -> [TopLine] {
        let rows = view.sort.sorted(unsorted)
        let layout = TopLayout(width: width, rows: rows)
        var lines = header(status: status, view: view, total: total, shown: rows.count)
        lines.append(TopLine(TopText.fit(layout.header(sort: view.sort), width), .columnHeader))
        var visible = rows[...]
        if let height {
            let room = max(height - lines.count - 1, 0)
            let selected = rows.firstIndex { $0.cookie == view.selectedCookie } ?? 0
            let first = selected >= room ? selected - room + 1 : 0
            visible = rows[first..<min(first + room, rows.count)]
        }
        for row in visible {
            let style: TopLine.Style = row.cookie == view.selectedCookie ? .selected
                : row.isClosed ? .dim : row.verdict?.isImpairment == true ? .alert : .normal
            lines.append(TopLine(layout.line(for: row), style))
        }
        if rows.isEmpty {
            lines.append(TopLine(total == 0 ? "(no connection selected yet)" : "(no connection matches the view filter)", .dim))
        }
        if let height {
            while lines.count < height - 1 { lines.append(TopLine("")) }
            lines.append(footer(view: view, status: status))
        }
        return lines
    }

    /// The last line: the filter prompt, a message, or the keys.
    func footer(view: TopView, status: TopStatus) -> TopLine {
        if let prompt = view.prompt {
            return TopLine(TopText.clip("filter (ss syntax, Enter applies, Esc cancels)> " + prompt + "_", width))
        }
        if let message = view.message { return TopLine(TopText.clip(message, width), .alert) }
        let keys = view.detailCookie == nil
            ? "< > or letter: sort  /: filter  Up/Down Enter: detail  p: pause  q: quit"
            : "Enter/Esc: back  Up/Down: scroll  p: pause  q: quit"
        return TopLine(TopText.clip(keys, width), .dim)
    }
}
