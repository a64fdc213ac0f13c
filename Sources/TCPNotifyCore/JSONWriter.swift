/// A small, allocation-light writer for one JSON object per line, with keys in the order written.
/// (Foundation's encoder sorts or shuffles keys and is several times slower for this shape.) It writes
/// UTF-8 bytes into one buffer: a notification line (about 80 fields) takes a few microseconds, so the
/// JSON output keeps up with the kernel.
public struct JSONWriter: Sendable {
    /// Internal, not private: the notification line's hot path (`JSONWriter+HotPath.swift`) writes here directly.
    var bytes: [UInt8] = []
    /// Bit d set: the container at depth d already has a member (the next one needs a comma).
    private var hasMember: UInt64 = 0
    private var depth = 0

    /// The line so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// The line so far as UTF-8, handed over (the writer is empty afterwards).
    public mutating func takeBytes() -> [UInt8] {
        defer { bytes = []; hasMember = 0; depth = 0 }
        return bytes
    }

    public init() { bytes.reserveCapacity(2048) }

    /// Takes over `buffer` (leaving it empty) to append to what it holds: many lines, one buffer, one
    /// write(2). Swapped, not copied: a copy per line would make a batch quadratic; `takeBytes` hands it back.
    public init(appendingTo buffer: inout [UInt8]) {
        swap(&bytes, &buffer)
    }

    /// `"key":` already quoted and escaped, with its colon (`JSONWriter.keyBytes`): the hot path's keys.
    public mutating func field(keyBytes: [UInt8], _ value: UInt64) {
        writeSeparator()
        bytes.append(contentsOf: keyBytes)
        appendDecimal(value)
    }

    public mutating func field(keyBytes: [UInt8], _ value: String) {
        writeSeparator()
        bytes.append(contentsOf: keyBytes)
        JSONWriter.appendQuoted(value, to: &bytes)
    }

    /// `"key":` as bytes, for `field(keyBytes:_:)`.
    public static func keyBytes(_ key: String) -> [UInt8] {
        var bytes: [UInt8] = []
        appendQuoted(key, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        return bytes
    }

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

    /// The container now has a member (the hot path wrote one without `writeSeparator`).
    mutating func markMember() {
        if depth > 0 && depth < 64 { hasMember |= 1 << UInt64(depth) }
    }

    mutating func push() {
        depth += 1
        if depth < 64 { hasMember &= ~(1 << UInt64(depth)) }
    }

    private mutating func pop() {
        if depth > 0 { depth -= 1 }
    }

    mutating func writeSeparator() {
        if depth > 0 && depth < 64 {
            let bit: UInt64 = 1 << UInt64(depth)
            if hasMember & bit != 0 { bytes.append(UInt8(ascii: ",")) }
            hasMember |= bit
        }
    }

    private mutating func writeKey(_ key: String?) {
        writeSeparator()
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
        JSONDigits.append(value, to: &bytes)
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
