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
        if host.contains(":") {
            family = AF_INET6
            storage = try Self.storage(sockaddr_in6(), host: host, port: port, family: AF_INET6, \.sin6_family, \.sin6_port, \.sin6_addr)
        } else {
            family = AF_INET
            storage = try Self.storage(sockaddr_in(), host: host, port: port, family: AF_INET, \.sin_family, \.sin_port, \.sin_addr)
        }
    }

    /// A sockaddr_in or sockaddr_in6 for `host` and `port`, in a sockaddr_storage.
    private static func storage<Address, IPAddress>(
        _ empty: Address, host: String, port: UInt16, family: Int32, _ familyField: WritableKeyPath<Address, sa_family_t>,
        _ portField: WritableKeyPath<Address, in_port_t>, _ addressField: WritableKeyPath<Address, IPAddress>
    ) throws -> sockaddr_storage {
        var address = empty
        address[keyPath: familyField] = sa_family_t(family)
        address[keyPath: portField] = port.bigEndian
        guard inet_pton(family, host, &address[keyPath: addressField]) == 1 else {
            throw LabError.invalidArgument("'\(host)' is not an \(family == AF_INET6 ? "IPv6" : "IPv4") address")
        }
        var storage = sockaddr_storage()
        withUnsafeBytes(of: address) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        return storage
    }

    /// `10.77.2.1:5001` or `[fd77:2::1]:5001`.
    public init(parsing text: String) throws {
        let parts: HostPortText
        do {
            parts = try HostPortText(text)
        } catch .noPortAfterBracket {
            throw LabError.invalidArgument("'\(text)' has no :PORT after the address")
        } catch {
            throw LabError.invalidArgument("'\(text)' is not ADDR:PORT (write IPv6 as [ADDR]:PORT)")
        }
        guard text.contains(":") else { throw LabError.invalidArgument("'\(text)' is not ADDR:PORT (write IPv6 as [ADDR]:PORT)") }
        guard let port = UInt16(parts.port) else { throw LabError.invalidArgument("'\(parts.port)' is not a port") }
        try self.init(host: String(parts.host ?? ""), port: port)
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
