/// Text forms of the 16-byte, network-order addresses used throughout (IPv4 stored v4-mapped).
public enum IPAddressText {
    /// "10.0.0.1" for v4-mapped addresses, RFC 5952 text ("2001:db8::1") otherwise.
    public static func format(_ address: [UInt8]) -> String {
        guard address.count == 16 else { return "<\(address.count)-byte address>" }
        if isV4Mapped(address) { return address[12...].map(String.init).joined(separator: ".") }
        let groups = (0..<8).map { UInt16(address[2 * $0]) << 8 | UInt16(address[2 * $0 + 1]) }
        // RFC 5952: "::" replaces the first longest run of two or more zero groups.
        var bestStart = -1, bestLength = 1, runStart = -1
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { (bestStart, bestLength) = (runStart, index - runStart) }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestStart >= 0 else { return hex.joined(separator: ":") }
        let head = hex[..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    /// Parses an IPv4 or IPv6 address (no prefix, no port) to 16 bytes; IPv4 becomes v4-mapped.
    public static func parse(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard !bytes.contains(UInt8(ascii: "/")), let prefix = try? AddressSyntax.parsePrefix(bytes[...]), prefix.length == 128 else { return nil }
        return prefix.address
    }

    /// `::ffff:a.b.c.d`.
    public static func isV4Mapped(_ address: [UInt8]) -> Bool {
        address.count == 16 && address[..<10].allSatisfy { $0 == 0 } && address[10] == 0xff && address[11] == 0xff
    }

    /// `::ffff:a.b.c.d` for four IPv4 bytes.
    static func v4Mapped(_ octets: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + octets
    }
}

/// An address prefix over the 16-byte form: IPv4 `a.b.c.d/n` is `::ffff:a.b.c.d/(96+n)`.
/// Bits past `length` are always zero, as the kernel's prefix match expects.
struct AddressPrefix: Hashable, Sendable {
    private(set) var address: [UInt8]
    private(set) var length: UInt8

    init(address: [UInt8], length: UInt8) {
        let length = min(length, 128)
        self.length = length
        self.address = (0..<16).map { index in
            let byte = index < address.count ? address[index] : 0
            let bitsHere = max(0, min(8, Int(length) - index * 8))
            return bitsHere == 0 ? 0 : byte & UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
    }

    /// The same test as the kernel's `tn_prefix_match`.
    func contains(_ candidate: [UInt8]) -> Bool {
        guard candidate.count == 16 else { return false }
        return AddressPrefix(address: candidate, length: length).address == address
    }

    /// Every address of `other` is also in `self`.
    func contains(_ other: AddressPrefix) -> Bool {
        length <= other.length && contains(other.address)
    }

    var isIPv4: Bool { length >= 96 && IPAddressText.isV4Mapped(address) }

    /// "10.0.0.0/8", "2001:db8::/32", "10.0.0.1", "::1".
    var text: String {
        if isIPv4 {
            return IPAddressText.format(address) + (length == 128 ? "" : "/\(length - 96)")
        }
        return IPAddressText.format(address) + (length == 128 ? "" : "/\(length)")
    }
}

/// A problem inside one word (address, port), located by byte index into that word; words are ASCII.
struct LiteralError: Error, Equatable {
    var message: String
    var range: Range<Int>
    var hint: String? = nil
}

/// An `src`/`dst` operand or a tuple-file endpoint split into its parts.
struct EndpointLiteral: Equatable {
    /// nil for `*` or a bare `:port`: any address.
    var prefix: AddressPrefix?
    /// Byte range of the port text after ':' (nil when no port was written).
    var portRange: Range<Int>?
}

/// Hand-written parsers for address literals. They work on the word's UTF-8 bytes with absolute
/// indices, so every error can point at the offending part of the word.
enum AddressSyntax {
    private static let colon = UInt8(ascii: ":"), dot = UInt8(ascii: "."), slash = UInt8(ascii: "/")

    /// `*`, `*:P`, `:P`, `a.b.c.d[/n][:P]`, `[v6][/n][:P]`, `[v6/n][:P]`, `v6[/n]` (no port without brackets).
    static func parseEndpoint(_ word: [UInt8]) throws(LiteralError) -> EndpointLiteral {
        let all = word.indices
        guard let first = word.first else { throw LiteralError(message: "expected an address", range: 0..<0) }
        if first == UInt8(ascii: "*") {
            guard word.count > 1 else { return EndpointLiteral(prefix: nil, portRange: nil) }
            guard word[1] == colon else {
                throw LiteralError(message: "expected ':' and a port after '*'", range: 1..<word.count)
            }
            return EndpointLiteral(prefix: nil, portRange: 2..<word.count)
        }
        if first == colon, word.count == 1 || word[1] != colon {
            return EndpointLiteral(prefix: nil, portRange: 1..<word.count)
        }
        if first == UInt8(ascii: "[") { return try parseBracketed(word) }
        let colons = word.indices.filter { word[$0] == colon }
        if colons.count == 1, let portColon = colons.first {
            let addressPart = word[..<portColon]
            if !addressPart.contains(dot), addressPart.allSatisfy(isHexDigit) {
                throw LiteralError(message: "'\(text(word[all]))' is not an address",
                                   range: all, hint: "write an IPv6 address with a port as [addr]:port")
            }
            let prefix = try parsePrefix(addressPart)
            return EndpointLiteral(prefix: prefix, portRange: (portColon + 1)..<word.count)
        }
        return EndpointLiteral(prefix: try parsePrefix(word[...]), portRange: nil)
    }

    private static func parseBracketed(_ word: [UInt8]) throws(LiteralError) -> EndpointLiteral {
        guard let close = word.firstIndex(of: UInt8(ascii: "]")) else {
            throw LiteralError(message: "missing ']' after the IPv6 address", range: 0..<word.count)
        }
        var prefix = try parsePrefix(word[1..<close])
        var index = close + 1
        if index < word.count, word[index] == slash {
            let lengthEnd = word[index...].firstIndex(of: colon) ?? word.count
            guard prefix.length == 128 else {
                throw LiteralError(message: "the prefix length is given twice", range: index..<lengthEnd)
            }
            let maximum = prefix.isIPv4 ? 32 : 128
            let length = try parsePrefixLength(word[(index + 1)..<lengthEnd], maximum: maximum, slashAt: index)
            prefix = AddressPrefix(address: prefix.address, length: UInt8(length + (prefix.isIPv4 ? 96 : 0)))
            index = lengthEnd
        }
        guard index < word.count else { return EndpointLiteral(prefix: prefix, portRange: nil) }
        guard word[index] == colon else {
            throw LiteralError(message: "unexpected '\(text(word[index...]))' after ']'", range: index..<word.count,
                               hint: "a port follows as [addr]:port")
        }
        return EndpointLiteral(prefix: prefix, portRange: (index + 1)..<word.count)
    }

    /// An address with an optional `/length`: IPv4 when it has no ':'.
    static func parsePrefix(_ text: ArraySlice<UInt8>) throws(LiteralError) -> AddressPrefix {
        let range = text.startIndex..<text.endIndex
        guard !text.isEmpty else { throw LiteralError(message: "expected an address", range: range) }
        let slashIndex = text.firstIndex(of: slash)
        let addressPart = text[..<(slashIndex ?? text.endIndex)]
        let isIPv6 = addressPart.contains(colon)
        if !isIPv6, addressPart.contains(where: isLetter) {
            throw LiteralError(message: "'\(Self.text(addressPart))' is not an IP address",
                               range: addressPart.startIndex..<addressPart.endIndex,
                               hint: "host names are not resolved; write an IPv4 or IPv6 address")
        }
        let address = isIPv6 ? try parseIPv6(addressPart) : IPAddressText.v4Mapped(try parseIPv4(addressPart))
        guard let slashIndex else { return AddressPrefix(address: address, length: 128) }
        let maximum = isIPv6 ? 128 : 32
        let length = try parsePrefixLength(text[(slashIndex + 1)...], maximum: maximum, slashAt: slashIndex)
        return AddressPrefix(address: address, length: UInt8(length + (isIPv6 ? 0 : 96)))
    }

    private static func parsePrefixLength(_ digits: ArraySlice<UInt8>, maximum: Int,
                                          slashAt slash: Int) throws(LiteralError) -> Int {
        let range = digits.startIndex..<digits.endIndex
        guard !digits.isEmpty else {
            throw LiteralError(message: "expected a prefix length after '/'", range: slash..<(slash + 1))
        }
        guard digits.allSatisfy(isDigit), digits.count <= 3, let value = Int(text(digits)), value <= maximum else {
            throw LiteralError(message: "prefix length '\(text(digits))' is out of range (0-\(maximum))", range: range)
        }
        return value
    }

    /// Dotted quad, four decimal octets; leading zeros are refused (inet_aton would read them as octal).
    static func parseIPv4(_ text: ArraySlice<UInt8>) throws(LiteralError) -> [UInt8] {
        let whole = text.startIndex..<text.endIndex
        let parts = text.split(separator: dot, omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            throw LiteralError(message: "'\(Self.text(text))' is not an IPv4 address (expected four octets a.b.c.d)",
                               range: whole)
        }
        var octets: [UInt8] = []
        for part in parts {
            let range = part.startIndex..<part.endIndex
            guard !part.isEmpty else {
                throw LiteralError(message: "empty octet in IPv4 address '\(Self.text(text))'",
                                   range: part.startIndex..<(part.startIndex + 1))
            }
            if let bad = part.firstIndex(where: { !isDigit($0) }) {
                throw LiteralError(message: "invalid character '\(Self.text(part[bad...bad]))' in IPv4 address",
                                   range: bad..<(bad + 1))
            }
            guard part.count == 1 || part.first != UInt8(ascii: "0") else {
                throw LiteralError(message: "octet '\(Self.text(part))' has a leading zero", range: range,
                                   hint: "leading zeros are ambiguous (octal); write the octet in plain decimal")
            }
            guard part.count <= 3, let value = UInt8(Self.text(part)) else {
                throw LiteralError(message: "octet \(Self.text(part)) is out of range (0-255)", range: range)
            }
            octets.append(value)
        }
        return octets
    }

    /// RFC 4291 text: eight 16-bit hex groups, one optional "::", optional trailing dotted IPv4.
    static func parseIPv6(_ text: ArraySlice<UInt8>) throws(LiteralError) -> [UInt8] {
        let whole = text.startIndex..<text.endIndex
        let invalid = { (reason: String) in
            LiteralError(message: "'\(Self.text(text))' is not an IPv6 address: \(reason)", range: whole)
        }
        var groupsText = text
        var embeddedIPv4: [UInt8] = []
        if text.contains(dot) {
            // The dotted part may only be the last 32 bits: "::ffff:1.2.3.4".
            guard let lastColon = text.lastIndex(of: colon) else { throw invalid("misplaced '.'") }
            embeddedIPv4 = try parseIPv4(text[(lastColon + 1)...])
            let keepsDoubleColon = lastColon > text.startIndex && text[lastColon - 1] == colon
            groupsText = text[..<(keepsDoubleColon ? lastColon + 1 : lastColon)]
        }
        var head = groupsText, tail: ArraySlice<UInt8> = []
        var compressed = false
        if let double = doubleColonIndex(in: groupsText) {
            compressed = true
            head = groupsText[..<double]
            tail = groupsText[(double + 2)...]
            if doubleColonIndex(in: tail) != nil || tail.first == colon { throw invalid("'::' may appear only once") }
        }
        let headGroups = try parseGroups(head, in: text)
        let tailGroups = try parseGroups(tail, in: text)
        let explicit = headGroups.count + tailGroups.count + embeddedIPv4.count / 2
        if compressed ? explicit > 7 : explicit != 8 {
            throw invalid(compressed ? "too many groups" : "expected 8 groups of hex digits or '::'")
        }
        let zeros = [UInt16](repeating: 0, count: 8 - explicit)
        let groups = headGroups + (compressed ? zeros : []) + tailGroups
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] } + embeddedIPv4
    }

    private static func doubleColonIndex(in text: ArraySlice<UInt8>) -> Int? {
        text.indices.first { $0 + 1 < text.endIndex && text[$0] == colon && text[$0 + 1] == colon }
    }

    private static func parseGroups(_ text: ArraySlice<UInt8>, in whole: ArraySlice<UInt8>) throws(LiteralError) -> [UInt16] {
        guard !text.isEmpty else { return [] }
        var groups: [UInt16] = []
        for group in text.split(separator: colon, omittingEmptySubsequences: false) {
            guard !group.isEmpty else {
                let at = group.startIndex
                throw LiteralError(message: "'\(Self.text(whole))' is not an IPv6 address: empty group",
                                   range: max(whole.startIndex, at - 1)..<min(whole.endIndex, at + 1))
            }
            guard group.count <= 4, group.allSatisfy(isHexDigit), let value = UInt16(Self.text(group), radix: 16) else {
                throw LiteralError(message: "'\(Self.text(group))' is not a group of 1-4 hex digits",
                                   range: group.startIndex..<group.endIndex)
            }
            groups.append(value)
        }
        return groups
    }

    static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    static func isLetter(_ byte: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) }

    static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
