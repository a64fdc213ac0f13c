/// A small, allocation-light writer for one JSON object per line, with keys in the order written.
/// (Foundation's encoder sorts or shuffles keys and is several times slower for this shape.) It writes
/// UTF-8 bytes into one buffer: a notification line (about 80 fields) takes a few microseconds, so the
/// JSON output keeps up with the kernel.
public struct JSONWriter: Sendable {
    private var bytes: [UInt8] = []
    /// Bit d set: the container at depth d already has a member (the next one needs a comma).
    private var hasMember: UInt64 = 0
    private var depth = 0

    /// The line so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    public init() { bytes.reserveCapacity(2048) }

    public mutating func beginObject(_ key: String? = nil) {
        writeKey(key)
        bytes.append(UInt8(ascii: "{"))
        push()
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        pop()
    }

    public mutating func beginArray(_ key: String? = nil) {
        writeKey(key)
        bytes.append(UInt8(ascii: "["))
        push()
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        pop()
    }

    public mutating func field(_ key: String?, _ value: String) {
        writeKey(key)
        JSONWriter.appendQuoted(value, to: &bytes)
    }

    public mutating func field<T: BinaryInteger>(_ key: String?, _ value: T) {
        writeKey(key)
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendDecimal(UInt64(truncatingIfNeeded: value.magnitude))
        } else {
            appendDecimal(UInt64(truncatingIfNeeded: value))
        }
    }

    public mutating func field(_ key: String?, _ value: Bool) {
        writeKey(key)
        bytes.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
    }

    /// A number written as it is given (already formatted, e.g. a fixed-point timestamp).
    public mutating func rawField(_ key: String?, _ literal: String) {
        writeKey(key)
        bytes.append(contentsOf: literal.utf8)
    }

    private mutating func push() {
        depth += 1
        if depth < 64 { hasMember &= ~(1 << UInt64(depth)) }
    }

    private mutating func pop() {
        if depth > 0 { depth -= 1 }
    }

    private mutating func writeKey(_ key: String?) {
        if depth > 0 && depth < 64 {
            let bit: UInt64 = 1 << UInt64(depth)
            if hasMember & bit != 0 { bytes.append(UInt8(ascii: ",")) }
            hasMember |= bit
        }
        if let key {
            JSONWriter.appendQuoted(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
        }
    }

    private mutating func appendDecimal(_ value: UInt64) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var count = 0
        var rest = value
        while rest > 0 {
            count += 1
            rest /= 10
        }
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: count))
        rest = value
        bytes.withUnsafeMutableBufferPointer { buffer in
            var index = start + count - 1
            while rest > 0 {
                buffer[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
                index -= 1
            }
        }
    }

    public static func appendQuoted(_ value: String, to text: inout String) {
        var buffer: [UInt8] = []
        appendQuoted(value, to: &buffer)
        text += String(decoding: buffer, as: UTF8.self)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped; other bytes as they are.
    static func appendQuoted(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        // Keys and most values need no escaping: copy them whole.
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: value.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xf)])
            default:
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
