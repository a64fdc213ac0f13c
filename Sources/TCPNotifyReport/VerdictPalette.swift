import TCPNotifyCore

/// A colour per verdict: warm colours for the impairments (each a different hue), greens and blues for
/// healthy flows, greys for no verdict. Chosen to stay apart for the common colour-vision deficiencies
/// as far as ten colours can; the band's label says the name anyway.
enum VerdictPalette {
    static func color(_ bottleneck: Bottleneck?) -> String {
        switch bottleneck {
        case .receiverWindowLimited: "#f28e2b" // orange
        case .sendBufferLimited: "#edc948" // yellow
        case .bufferbloat: "#b07aa1" // purple
        case .packetLoss: "#e15759" // red
        case .readerLimited: "#9c755f" // brown
        case .applicationLimited: "#8cd17d" // light green
        case .networkLimited: "#59a14f" // green
        case .peerLimited: "#76b7b2" // teal
        case .idle: "#c9c9c9"
        case .insufficientData, nil: "#ececec"
        }
    }

    /// Text on the band: dark on the light colours, white on the dark ones.
    static func textColor(_ bottleneck: Bottleneck?) -> String {
        switch bottleneck {
        case .bufferbloat, .packetLoss, .readerLimited, .networkLimited: "#ffffff"
        default: "#1a1a1a"
        }
    }

    /// The CSS class of a band: `verdict-receiver-window-limited`, `verdict-none` before the first verdict.
    static func className(_ bottleneck: Bottleneck?) -> String {
        "verdict-" + (bottleneck.map { HTMLText.token($0.rawValue) } ?? "none")
    }

    static func label(_ bottleneck: Bottleneck?) -> String { bottleneck?.rawValue ?? "no verdict yet" }
}

/// Series colours (Tableau 10, distinct from one another within a panel).
enum SeriesColor {
    static let blue = "#4e79a7"
    static let green = "#59a14f"
    static let orange = "#f28e2b"
    static let red = "#e15759"
    static let purple = "#7b4fa0"
    static let teal = "#2a9d8f"
    static let grey = "#6b6b6b"
    static let olive = "#a5a520"
}
