/// A key as `tcpnotify top` understands it; the terminal layer translates its key codes into these.
public enum TopKey: Sendable, Equatable {
    case character(Character)
    case enter
    case escape
    case backspace
    case up
    case down
    case pageUp
    case pageDown
    case home
    case end
}

/// What the screen should do after a key.
public enum TopKeyResult: Sendable, Equatable {
    case redraw
    case quit
}

/// The state of `tcpnotify top`'s screen that keys change: sorting, the view filter, the selected row,
/// the detail view, pause and the filter prompt. Pure: the terminal layer feeds keys and draws frames.
public struct TopView: Sendable {
    public var sort = TopSort.standard
    /// The view filter (ss syntax, as FILTER; applied to the rows shown), and its text.
    public private(set) var filter: CompiledFilter?
    public private(set) var filterText: String
    public var paused = false
    /// The connection the cursor is on (it follows the connection when the order changes).
    public var selectedCookie: UInt64?
    /// Set: the detail view of this connection.
    public private(set) var detailCookie: UInt64?
    /// Lines the detail view is scrolled down by.
    public var detailOffset = 0
    /// Set: the filter prompt is open with this text.
    public private(set) var prompt: String?
    /// A message for the status line (a refused filter), until the next key.
    public private(set) var message: String?

    public init(filterText: String = "") {
        self.filterText = filterText
        filter = nil
        if !filterText.isEmpty { filter = try? FilterExpression.compile(filterText) }
    }

    /// Applies a key; `rows` are the rows shown now, in order, and `columns` the columns shown.
    public mutating func handle(_ key: TopKey, rows: [TopRow], columns: [TopColumn]) -> TopKeyResult {
        message = nil
        if prompt != nil { return handlePrompt(key) }
        if detailCookie != nil { return handleDetail(key) }
        switch key {
        case .character("q"), .character("Q"): return .quit
        case .character("p"), .character(" "): paused.toggle()
        case .character("/"): prompt = filterText
        case .character("<"): moveSort(by: -1, columns: columns)
        case .character(">"): moveSort(by: 1, columns: columns)
        case .character(let letter):
            guard let column = TopColumn.forLetter(Character(letter.lowercased())) else {
                message = "unknown key '\(letter)': < > or a column's letter sorts, / filters, Enter shows a connection, p pauses, q quits"
                return .redraw
            }
            // The same column again reverses the order.
            sort = sort.column == column ? TopSort(column: column, descending: !sort.descending) : TopSort(column: column)
        case .enter:
            guard let cookie = selectedCookie ?? rows.first?.cookie, rows.contains(where: { $0.cookie == cookie }) else {
                message = "no connection to show"
                return .redraw
            }
            selectedCookie = cookie
            detailCookie = cookie
            detailOffset = 0
        case .up, .down, .pageUp, .pageDown, .home, .end: moveSelection(key, rows: rows)
        case .escape, .backspace: break
        }
        return .redraw
    }

    private mutating func handleDetail(_ key: TopKey) -> TopKeyResult {
        switch key {
        case .character("q"), .character("Q"): return .quit
        case .enter, .escape, .backspace, .character("b"): detailCookie = nil
        case .character("p"), .character(" "): paused.toggle()
        case .up: detailOffset = max(detailOffset - 1, 0)
        case .down: detailOffset += 1
        case .pageUp: detailOffset = max(detailOffset - 10, 0)
        case .pageDown: detailOffset += 10
        case .home: detailOffset = 0
        default: break
        }
        return .redraw
    }

    private mutating func handlePrompt(_ key: TopKey) -> TopKeyResult {
        guard var text = prompt else { return .redraw }
        switch key {
        case .character(let character): text.append(character)
        case .backspace: if !text.isEmpty { text.removeLast() }
        case .escape: prompt = nil; return .redraw
        case .enter:
            prompt = nil
            applyFilter(text)
            return .redraw
        default: break
        }
        prompt = text
        return .redraw
    }

    /// A new view filter; a bad one is refused with the parser's message and the old one stays.
    public mutating func applyFilter(_ text: String) {
        let trimmed = String(text.drop { $0 == " " })
        guard !trimmed.isEmpty else {
            filter = nil
            filterText = ""
            return
        }
        do {
            filter = try FilterExpression.compile(trimmed)
            filterText = trimmed
        } catch {
            message = "invalid filter: \(error) (kept: \(filterText.isEmpty ? "none" : filterText))"
        }
    }

    private mutating func moveSort(by step: Int, columns: [TopColumn]) {
        guard !columns.isEmpty else { return }
        let index = columns.firstIndex(of: sort.column) ?? 0
        let next = columns[min(max(index + step, 0), columns.count - 1)]
        if next != sort.column { sort = TopSort(column: next) }
    }

    private mutating func moveSelection(_ key: TopKey, rows: [TopRow]) {
        guard !rows.isEmpty else { return }
        let current = rows.firstIndex { $0.cookie == selectedCookie }
        let index: Int
        switch key {
        case .up: index = (current ?? 0) - 1
        case .down: index = current.map { $0 + 1 } ?? 0
        case .pageUp: index = (current ?? 0) - 10
        case .pageDown: index = (current ?? 0) + 10
        case .home: index = 0
        default: index = rows.count - 1
        }
        selectedCookie = rows[min(max(index, 0), rows.count - 1)].cookie
    }

    /// The detail view's connection has gone: back to the table, saying so.
    public mutating func connectionGone() {
        detailCookie = nil
        message = "the connection has gone"
    }
}
