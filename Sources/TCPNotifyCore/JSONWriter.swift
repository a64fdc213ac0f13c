/// A small, allocation-light writer for one JSON object per line, with keys in the order written.
/// (Foundation's encoder sorts or shuffles keys and is several times slower for this shape.)
public struct JSONWriter: Sendable {
    public private(set) var text = ""
    private var needsComma: [Bool] = []

    public init() {}

    public mutating func beginObject(_ key: String? = nil) {
        writeKey(key)
        text += "{"
        needsComma.append(false)
    }

    public mutating func endObject() {
        text += "}"
        needsComma.removeLast()
    }

    public mutating func beginArray(_ key: String? = nil) {
        writeKey(key)
        text += "["
        needsComma.append(false)
    }

    public mutating func endArray() {
        text += "]"
        needsComma.removeLast()
    }

    public mutating func field(_ key: String?, _ value: String) {
        writeKey(key)
        JSONWriter.appendQuoted(value, to: &text)
    }

    public mutating func field<T: BinaryInteger>(_ key: String?, _ value: T) {
        writeKey(key)
        text += String(value)
    }

    public mutating func field(_ key: String?, _ value: Bool) {
        writeKey(key)
        text += value ? "true" : "false"
    }

    /// A number written as it is given (already formatted, e.g. a fixed-point timestamp).
    public mutating func rawField(_ key: String?, _ literal: String) {
        writeKey(key)
        text += literal
    }

    private mutating func writeKey(_ key: String?) {
        if let last = needsComma.indices.last {
            if needsComma[last] { text += "," }
            needsComma[last] = true
        }
        if let key {
            JSONWriter.appendQuoted(key, to: &text)
            text += ":"
        }
    }

    public static func appendQuoted(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }
}
