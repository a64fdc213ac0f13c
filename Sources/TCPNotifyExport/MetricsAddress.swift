import Glibc
import TCPNotifyCore

/// Where the `/metrics` server listens: a numeric IPv4 or IPv6 address and a port. `PORT` and `:PORT`
/// mean 127.0.0.1 (exposing metrics beyond the host is a choice: give `0.0.0.0:PORT` or `[::]:PORT`).
public struct MetricsAddress: Sendable, Equatable, CustomStringConvertible {
    public static let defaultPort: UInt16 = 9464
    public static let loopback = MetricsAddress(host: "127.0.0.1", port: defaultPort, isIPv6: false)

    public var host: String
    /// 0 asks the kernel for a free port (the server reports the one it got).
    public var port: UInt16
    public var isIPv6: Bool

    public init(host: String, port: UInt16, isIPv6: Bool) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String) throws(MetricsOptionError) -> MetricsAddress {
        func failure(_ why: String) -> MetricsOptionError {
            MetricsOptionError("invalid --metrics-address '\(text)': \(why); give HOST:PORT with a numeric address "
                + "(127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464) or just PORT for 127.0.0.1")
        }
        let parts: HostPortText
        do {
            parts = try HostPortText(text)
        } catch {
            switch error {
            case .unclosedBracket: throw failure("missing ']'")
            case .noPortAfterBracket: throw failure("expected ':PORT' after ']'")
            case .bareIPv6: throw failure("an IPv6 address goes in brackets")
            }
        }
        let portText = parts.port
        // `localhost` only unbracketed; no host at all is loopback.
        let host = text.hasPrefix("[") ? String(parts.host ?? "")
            : parts.host.map { $0 == "localhost" ? "127.0.0.1" : String($0) } ?? "127.0.0.1"
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let port = UInt16(portText) else {
            throw failure("the port must be a number from 0 to 65535")
        }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return MetricsAddress(host: host, port: port, isIPv6: false) }
        if inet_pton(AF_INET6, host, &v6) == 1 { return MetricsAddress(host: host, port: port, isIPv6: true) }
        throw failure("'\(host)' is not a numeric IP address")
    }
}
