/// Text made safe for HTML and SVG: every string that comes from outside (addresses, cgroup paths, process
/// names, verdict summaries) goes through here before it is put into the page.
public enum HTMLText {
    /// Escapes `&`, `<`, `>`, `"` and `'`, so the result is safe both as element text and inside a quoted
    /// attribute; control characters other than tab and newline become U+FFFD.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            case "\t", "\n": escaped.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) {
                    escaped += "\u{FFFD}"
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return escaped
    }

    /// A string usable as (part of) an id or class name: letters, digits and '-' only.
    static func token(_ text: String) -> String {
        String(text.unicodeScalars.map { scalar -> Character in
            let ok = ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            return ok ? Character(scalar) : "-"
        })
    }
}
