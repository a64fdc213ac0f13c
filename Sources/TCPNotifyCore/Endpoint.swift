/// One end of a TCP connection: a 16-byte address (IPv4 as ::ffff:a.b.c.d) and a host-order port.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
    public var address: [UInt8]
    public var port: UInt16

    public init(address: [UInt8], port: UInt16) {
        precondition(address.count == 16, "Endpoint addresses are 16 bytes")
        self.address = address
        self.port = port
    }

    /// True for ::ffff:a.b.c.d.
    public var isIPv4Mapped: Bool {
        address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xff && address[11] == 0xff
    }

    /// `a.b.c.d:port` for IPv4 and v4-mapped addresses, `[v6]:port` otherwise.
    public var description: String {
        if isIPv4Mapped { return "\(Endpoint.formatIPv4(address[12...])):\(port)" }
        return "[\(Endpoint.formatIPv6(address))]:\(port)"
    }

    /// The address alone, as `description` writes it (without brackets).
    public var addressText: String {
        isIPv4Mapped ? Endpoint.formatIPv4(address[12...]) : Endpoint.formatIPv6(address)
    }

    static func formatIPv4(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map(String.init).joined(separator: ".")
    }

    /// RFC 5952: lower-case hex, leading zeros dropped, the longest run of two or more zero groups as `::`.
    static func formatIPv6(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { bestStart = runStart; bestLength = index - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }
}
