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
    public var isIPv4Mapped: Bool { IPAddressText.isV4Mapped(address) }

    /// `a.b.c.d:port` for IPv4 and v4-mapped addresses, `[v6]:port` otherwise.
    public var description: String {
        isIPv4Mapped ? "\(addressText):\(port)" : "[\(addressText)]:\(port)"
    }

    /// The address alone (RFC 5952 for IPv6, dotted for IPv4 and v4-mapped addresses).
    public var addressText: String { IPAddressText.format(address) }
}
