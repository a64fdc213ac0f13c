import Glibc
import TCPNotifyCore

/// An IPv4 or IPv6 socket address, parsed from `ADDR:PORT` or `[ADDR]:PORT`, ready for bind/connect.
public struct LabSocketAddress: Sendable, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    let family: Int32
    private let storage: sockaddr_storage

    public init(host: String, port: UInt16) throws {
        self.host = host
        self.port = port
        var storage = sockaddr_storage()
        if host.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                throw LabError.invalidArgument("'\(host)' is not an IPv6 address")
            }
            withUnsafeBytes(of: address) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            family = AF_INET6
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
                throw LabError.invalidArgument("'\(host)' is not an IPv4 address")
            }
            withUnsafeBytes(of: address) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            family = AF_INET
        }
        self.storage = storage
    }

    /// `10.77.2.1:5001` or `[fd77:2::1]:5001`.
    public init(parsing text: String) throws {
        let hostPart: Substring, portPart: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw LabError.invalidArgument("'\(text)' has no :PORT after the address") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else {
                throw LabError.invalidArgument("'\(text)' is not ADDR:PORT (write IPv6 as [ADDR]:PORT)")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = UInt16(portPart) else { throw LabError.invalidArgument("'\(portPart)' is not a port") }
        try self.init(host: String(hostPart), port: port)
    }

    public var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var length: socklen_t {
        socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { bytes in
            body(bytes.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// The endpoint a `sockaddr_storage` names, as tcpnotify writes endpoints (IPv4 as ::ffff:a.b.c.d).
    static func endpoint(of storage: sockaddr_storage) -> Endpoint? {
        withUnsafeBytes(of: storage) { bytes -> Endpoint? in
            let family = Int32(bytes.load(as: sa_family_t.self))
            let port = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
            if family == AF_INET {
                let octets = Array(bytes[4..<8])
                return Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff] + octets, port: port)
            }
            if family == AF_INET6 { return Endpoint(address: Array(bytes[8..<24]), port: port) }
            return nil
        }
    }
}
