/// One exact connection for `--tuples` (`struct tcpnotify_tuple_key`).
public struct TupleEntry: Sendable, Hashable, CustomStringConvertible {
    /// 16 bytes, network order, IPv4 v4-mapped.
    public var localAddress: [UInt8]
    /// Host order; 0 means any local port.
    public var localPort: UInt16
    public var remoteAddress: [UInt8]
    public var remotePort: UInt16

    public init(localAddress: [UInt8], localPort: UInt16, remoteAddress: [UInt8], remotePort: UInt16) {
        self.localAddress = localAddress
        self.localPort = localPort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    /// The tuple-file line for this entry.
    public var description: String {
        "\(Self.endpointText(localAddress, localPort)) \(Self.endpointText(remoteAddress, remotePort))"
    }

    private static func endpointText(_ address: [UInt8], _ port: UInt16) -> String {
        let text = IPAddressText.format(address)
        let portText = port == 0 ? "*" : String(port)
        return IPAddressText.isV4Mapped(address) ? "\(text):\(portText)" : "[\(text)]:\(portText)"
    }
}

/// A problem in a tuple file, with its 1-based line number.
public struct TupleFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based; 0 for problems not tied to a line.
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line > 0 ? "line \(line): \(message)" : message }
}

/// The `--tuples FILE` format: one `LOCAL REMOTE` pair per line.
///
///     # local            remote
///     10.0.0.1:40001     10.0.0.2:443
///     10.0.0.1:*         10.0.0.2:5201        local port * (or 0) matches any local port
///     [2001:db8::1]:5000 [2001:db8::2]:443
///
/// `#` starts a comment; blank lines are ignored; duplicates are dropped.
public enum TupleFile {
    public static let defaultMaxEntries = 65_536  // TCPNOTIFY_MAX_TUPLES

    public static func parse(_ text: String, maxEntries: Int = defaultMaxEntries) throws(TupleFileError) -> [TupleEntry] {
        var entries: [TupleEntry] = []
        var seen = Set<TupleEntry>()
        var lineNumber = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let content = rawLine.prefix { $0 != "#" }
            let fields = content.split { $0.isWhitespace }
            if fields.isEmpty { continue }
            guard fields.count == 2 else {
                throw TupleFileError(line: lineNumber, message: "expected 'LOCAL REMOTE' (two endpoints such as 10.0.0.1:40001 10.0.0.2:443), found \(fields.count) field\(fields.count == 1 ? "" : "s")")
            }
            let local = try endpoint(fields[0], role: "local", line: lineNumber)
            let remote = try endpoint(fields[1], role: "remote", line: lineNumber)
            guard remote.port != 0 else {
                throw TupleFileError(line: lineNumber, message: "remote port must be 1-65535 (only the local port may be '*' or 0)")
            }
            let entry = TupleEntry(localAddress: local.address, localPort: local.port,
                                   remoteAddress: remote.address, remotePort: remote.port)
            guard seen.insert(entry).inserted else { continue }
            guard entries.count < maxEntries else {
                throw TupleFileError(line: lineNumber, message: "more than \(maxEntries) tuples; that is the limit (TCPNOTIFY_MAX_TUPLES)")
            }
            entries.append(entry)
        }
        return entries
    }

    /// `a.b.c.d:port` or `[v6]:port`; port `*` means 0 (any).
    private static func endpoint(_ field: Substring, role: String, line: Int) throws(TupleFileError) -> (address: [UInt8], port: UInt16) {
        let bytes = Array(field.utf8)
        let problem = { (detail: String) in TupleFileError(line: line, message: "\(role) endpoint '\(field)': \(detail)") }
        let literal: EndpointLiteral
        let port: UInt16?
        do {
            literal = try AddressSyntax.parseEndpoint(bytes)
            port = try literal.portRange.map { range throws(LiteralError) in
                try PortSyntax.parse(bytes, range, allowsWildcard: true) ?? 0
            }
        } catch {
            throw problem(error.message + (error.hint.map { " (\($0))" } ?? ""))
        }
        guard let prefix = literal.prefix else { throw problem("expected an address, not '*'") }
        guard prefix.length == 128 else { throw problem("expected a single address, not a prefix") }
        guard let port else {
            let example = prefix.isIPv4 || field.hasPrefix("[") ? "\(field):443" : "[\(field)]:443"
            throw problem("expected ADDRESS:PORT, e.g. \(example)")
        }
        return (prefix.address, port)
    }
}
