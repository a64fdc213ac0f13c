/// Decimal digits for the JSON writers: written straight into the output's storage, no String made.
enum JSONDigits {
    /// Most bytes a UInt64 takes (18446744073709551615).
    static let maximumCount = 20

    /// Writes `value` at `out` (which has room for `maximumCount` bytes); returns the bytes written.
    @inline(__always)
    static func write(_ value: UInt64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var length = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            length += 1
        }
        var rest = value
        var index = length
        repeat {
            index -= 1
            let (quotient, remainder) = rest.quotientAndRemainder(dividingBy: 10)
            out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remainder)
            rest = quotient
        } while rest > 0
        return length
    }

    static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximumCount) { buffer in
            let count = write(value, to: buffer.baseAddress!)
            bytes.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: count))
        }
    }
}

/// `"name":` for every tcp_info field, back to back in one array, and the quoted names of the state and
/// congestion-state values: the bytes the `tcp_info` object of every notification line is made of.
struct TCPInfoKeyTable: Sendable {
    /// Keys of all fields, concatenated; field f's key is `keys[keyStart[f] ..< keyStart[f] + keyCount[f]]`.
    let keys: [UInt8]
    let keyStart: [Int]
    let keyCount: [Int]
    /// `"ESTABLISHED"` and so on by raw value (256 entries; an unknown value is its number, quoted).
    let stateNames: [[UInt8]]
    let congestionStateNames: [[UInt8]]

    static let shared = TCPInfoKeyTable()

    private init() {
        let slots = (TCPInfoField.allCases.map { Int($0.rawValue) }.max() ?? 0) + 1
        var keys: [UInt8] = []
        var keyStart = [Int](repeating: 0, count: slots)
        var keyCount = [Int](repeating: 0, count: slots)
        for field in TCPInfoField.allCases {
            let key = JSONWriter.keyBytes(field.name)
            keyStart[Int(field.rawValue)] = keys.count
            keyCount[Int(field.rawValue)] = key.count
            keys += key
        }
        self.keys = keys
        self.keyStart = keyStart
        self.keyCount = keyCount
        func quoted(_ text: String) -> [UInt8] {
            var bytes: [UInt8] = []
            JSONWriter.appendQuoted(text, to: &bytes)
            return bytes
        }
        stateNames = (0..<256).map { quoted(TCPState(rawValue: UInt8($0))?.name ?? String($0)) }
        congestionStateNames = (0..<256).map { quoted(TCPCongestionState(rawValue: UInt8($0))?.name ?? String($0)) }
    }

    /// What `NotificationFormatter.writeTCPInfo` wrote for a state value past 255 (truncated to a name, or the number).
    static func quotedName(_ field: TCPInfoField, _ value: UInt64) -> [UInt8] {
        let truncated = UInt8(truncatingIfNeeded: value)
        let name = field == .state ? TCPState(rawValue: truncated)?.name : TCPCongestionState(rawValue: truncated)?.name
        var bytes: [UInt8] = []
        JSONWriter.appendQuoted(name ?? String(value), to: &bytes)
        return bytes
    }

    /// Bytes `fields` can take at most: keys, values and commas.
    func maximumBytes(_ fields: [TCPInfoField]) -> Int {
        keys.count + fields.count * (JSONDigits.maximumCount + 1) + 64
    }
}

extension JSONWriter {
    /// `"key":"a.b.c.d:port"` as `Endpoint.description` gives it, written without building the String for
    /// IPv4 (every loopback and most lines); IPv6 goes through the description.
    mutating func field(keyBytes: [UInt8], endpoint: Endpoint) {
        guard endpoint.isIPv4Mapped else {
            field(keyBytes: keyBytes, endpoint.description)
            return
        }
        writeSeparator()
        bytes.append(contentsOf: keyBytes)
        bytes.append(UInt8(ascii: "\""))
        let address = endpoint.address
        for index in 12..<16 {
            JSONDigits.append(UInt64(address[index]), to: &bytes)
            bytes.append(index == 15 ? UInt8(ascii: ":") : UInt8(ascii: "."))
        }
        JSONDigits.append(UInt64(endpoint.port), to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// `"key":SECONDS.MICROS` as `Wire.Timestamp.jsonLiteral` writes it (six decimals), without a String.
    mutating func field(keyBytes: [UInt8], timestamp: Wire.Timestamp) {
        guard timestamp.microseconds >= 0 else {
            writeSeparator()
            bytes.append(contentsOf: keyBytes)
            bytes.append(contentsOf: timestamp.jsonLiteral.utf8)
            return
        }
        writeSeparator()
        bytes.append(contentsOf: keyBytes)
        let microseconds = UInt64(timestamp.microseconds)
        JSONDigits.append(microseconds / 1_000_000, to: &bytes)
        bytes.append(UInt8(ascii: "."))
        var fraction = microseconds % 1_000_000
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 6) { buffer in
            for index in stride(from: 5, through: 0, by: -1) {
                buffer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: fraction % 10)
                fraction /= 10
            }
            bytes.append(contentsOf: UnsafeBufferPointer(buffer))
        }
    }

    /// `"key":[` with precomputed key bytes.
    mutating func beginArray(keyBytes: [UInt8]) {
        writeSeparator()
        bytes.append(contentsOf: keyBytes)
        bytes.append(UInt8(ascii: "["))
        push()
    }

    /// The members of the `tcp_info` object (`"rtt":123,...`, no braces), straight into the line's storage:
    /// room for the longest case is made once, filled through a pointer, and the unused tail cut off.
    mutating func tcpInfoMembers(_ info: TCPInfo, fields: [TCPInfoField]) {
        let table = TCPInfoKeyTable.shared
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: table.maximumBytes(fields)))
        var end = start
        bytes.withUnsafeMutableBufferPointer { out in
            info.values.withUnsafeBufferPointer { values in
                table.keys.withUnsafeBufferPointer { keys in
                    let base = out.baseAddress!
                    var first = true
                    for field in fields {
                        let slot = Int(field.rawValue)
                        if !first {
                            base[end] = UInt8(ascii: ",")
                            end += 1
                        }
                        first = false
                        let keyCount = table.keyCount[slot]
                        (base + end).update(from: keys.baseAddress! + table.keyStart[slot], count: keyCount)
                        end += keyCount
                        let value = values[slot]
                        switch field {
                        case .state, .caState:
                            let names = field == .state ? table.stateNames : table.congestionStateNames
                            let name = value < 256 ? names[Int(value)] : TCPInfoKeyTable.quotedName(field, value)
                            name.withUnsafeBufferPointer { (base + end).update(from: $0.baseAddress!, count: $0.count) }
                            end += name.count
                        default:
                            end += JSONDigits.write(value, to: base + end)
                        }
                    }
                }
            }
        }
        bytes.removeSubrange(end...)
        if !fields.isEmpty { markMember() }
    }
}
