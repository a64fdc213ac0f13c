import CNcurses
import Glibc
import TCPNotifyCore

/// The terminal through ncurses: draws frames' lines with their styles and reads keys. Only drawing and
/// keys live here (frames are `TopFrame`'s). Every call must come from one thread (ncurses is not
/// thread-safe): `TopInteractive`'s.
final class TopScreen {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let screen: OpaquePointer
    private let window: UnsafeMutablePointer<WINDOW>
    private let colours: Bool
    private var closed = false

    /// Opens the terminal (the alternate screen, no echo, keys one by one, no cursor). `colours` false:
    /// attributes only (bold, reverse), as NO_COLOR asks.
    init(colours wanted: Bool) throws {
        setlocale(LC_ALL, "")
        // newterm, not initscr: an unknown $TERM is an error to report, not an exit inside ncurses.
        guard let screen = newterm(nil, tn_stdout(), tn_stdin()) else {
            throw Failure(description: Self.terminalProblem() ?? "ncurses cannot open the terminal")
        }
        self.screen = screen
        guard let window = tn_stdscr() else {
            endwin()
            delscreen(screen)
            throw Failure(description: "ncurses gave no screen")
        }
        self.window = window
        TerminalRestore.screenOpened()
        cbreak()
        noecho()
        nonl()
        keypad(window, true)
        set_escdelay(25)
        curs_set(0)
        wtimeout(window, 100)
        colours = wanted && has_colors()
        if colours {
            start_color()
            use_default_colors()
            init_pair(1, Int16(COLOR_RED), -1)
            init_pair(2, Int16(COLOR_CYAN), -1)
            init_pair(3, Int16(COLOR_BLACK), Int16(COLOR_CYAN))
        }
    }

    deinit { close() }

    /// Why the screen cannot be used on this terminal ($TERM unknown to terminfo), before anything starts.
    static func terminalProblem() -> String? {
        guard tn_terminal_known() == 0 else { return nil }
        let term = getenv("TERM").map { String(cString: $0) } ?? ""
        return "cannot use the terminal '\(term)' (unknown to terminfo): use --batch, or set TERM (e.g. TERM=xterm)"
    }

    /// Leaves the alternate screen and restores the terminal's modes. Idempotent.
    func close() {
        guard !closed else { return }
        closed = true
        endwin()
        delscreen(screen)
        TerminalRestore.screenClosed()
    }

    var size: (width: Int, height: Int) { (Int(tn_cols()), Int(tn_lines())) }

    func draw(_ lines: [TopLine]) {
        werase(window)
        let (width, height) = size
        for (index, line) in lines.prefix(height).enumerated() {
            wattrset(window, attribute(line.style))
            var text = line.text
            // Reverse-video lines span the whole width.
            if line.style == .columnHeader || line.style == .selected { text = TopText.fit(text, width) }
            // The last cell of the last line would scroll the screen: leave it.
            let room = index == height - 1 ? width - 1 : width
            _ = mvwaddnstr(window, Int32(index), 0, text, Int32(max(room, 0)))
        }
        wattrset(window, 0)
        wrefresh(window)
    }

    private func attribute(_ style: TopLine.Style) -> Int32 {
        switch style {
        case .normal: 0
        case .title: tn_attr_bold() | (colours ? tn_attr_pair(2) : 0)
        case .columnHeader: colours ? tn_attr_pair(3) : tn_attr_reverse()
        case .selected: tn_attr_reverse() | tn_attr_bold()
        case .alert: colours ? tn_attr_pair(1) | tn_attr_bold() : tn_attr_bold()
        case .dim: tn_attr_dim()
        }
    }

    enum Input: Equatable {
        case key(TopKey)
        case resize
    }

    /// The next key within the screen's timeout (100 ms); nil when none came.
    func readKey() -> Input? {
        let code = wgetch(window)
        switch code {
        case ERR: return nil
        case KEY_RESIZE: return .resize
        case KEY_UP: return .key(.up)
        case KEY_DOWN: return .key(.down)
        case KEY_PPAGE: return .key(.pageUp)
        case KEY_NPAGE: return .key(.pageDown)
        case KEY_HOME: return .key(.home)
        case KEY_END: return .key(.end)
        case KEY_ENTER, 10, 13: return .key(.enter)
        case 27: return .key(.escape)
        case KEY_BACKSPACE, 127, 8: return .key(.backspace)
        case 32..<127: return .key(.character(Character(Unicode.Scalar(UInt8(code)))))
        default: return nil
        }
    }
}
