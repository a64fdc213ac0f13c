/// The order of `tcpnotify top`'s rows: a column and a direction.
public struct TopSort: Sendable, Equatable {
    public var column: TopColumn
    public var descending: Bool

    public init(column: TopColumn, descending: Bool? = nil) {
        self.column = column
        self.descending = descending ?? column.sortsDescendingByDefault
    }

    /// Busiest first.
    public static let standard = TopSort(column: .throughput)

    /// Sorted; rows equal in the column keep a stable order (by cookie), so the table does not shuffle.
    public func sorted(_ rows: [TopRow]) -> [TopRow] {
        rows.sorted { a, b in
            if column.isEqual(a, b) { return a.cookie < b.cookie }
            return descending ? column.ascending(b, a) : column.ascending(a, b)
        }
    }

    /// The caret under the column title: "v" largest first, "^" smallest first.
    var marker: String { descending ? "v" : "^" }
}

/// Which columns fit in a width, and how wide each is: every column's text is then cut or padded to
/// exactly that, so a line is never wider than the terminal.
public struct TopLayout: Sendable, Equatable {
    public struct Slot: Sendable, Equatable {
        public var column: TopColumn
        public var width: Int
    }

    public private(set) var slots: [Slot]
    public let totalWidth: Int

    /// Columns by priority while they fit (one space between), then the stretching ones grow towards the
    /// longest text they must show.
    public init(width: Int, rows: [TopRow]) {
        totalWidth = max(width, 1)
        var chosen: Set<TopColumn> = []
        var used = -1
        for column in TopColumn.allCases.sorted(by: { $0.priority < $1.priority }) {
            let cost = column.width + 1
            // The endpoints always show, cut if need be.
            if column.priority == 0 || used + cost <= totalWidth {
                chosen.insert(column)
                used += cost
            }
        }
        var slots = TopColumn.allCases.filter(chosen.contains).map { Slot(column: $0, width: $0.width) }
        var spare = totalWidth - used
        if spare < 0 {
            // Narrower than the two endpoints: they share what there is.
            let each = max((totalWidth - (slots.count - 1)) / max(slots.count, 1), 1)
            for index in slots.indices { slots[index].width = each }
            spare = 0
        }
        for index in slots.indices where spare > 0 && slots[index].column.maximumWidth > slots[index].width {
            let column = slots[index].column
            let wanted = min(rows.map { column.cell($0).count }.max() ?? 0, column.maximumWidth)
            let grow = min(max(wanted - slots[index].width, 0), spare)
            slots[index].width += grow
            spare -= grow
        }
        self.slots = slots
    }

    public var columns: [TopColumn] { slots.map(\.column) }

    /// The title line, the sorted column marked.
    public func header(sort: TopSort) -> String {
        line(slots.map { slot in
            slot.column == sort.column ? slot.column.rawValue + sort.marker : slot.column.rawValue
        })
    }

    public func line(for row: TopRow) -> String { line(slots.map { $0.column.cell(row) }) }

    private func line(_ cells: [String]) -> String {
        let texts = zip(slots, cells).map { slot, cell in
            TopText.fit(cell, slot.width, rightAligned: slot.column.isRightAligned)
        }
        return TopText.clip(texts.joined(separator: " "), totalWidth)
    }
}
