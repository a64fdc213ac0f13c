/// A service name the filter language accepts in place of a port number.
public struct ServicePort: Sendable, Equatable {
    public let name: String
    public let port: UInt16
}

/// The fixed service names accepted as ports (`dport = :https`). A small built-in table rather than
/// /etc/services, so a filter means the same on every machine.
public enum ServicePorts {
    public static let all: [ServicePort] = [
        ServicePort(name: "ftp", port: 21),
        ServicePort(name: "ssh", port: 22),
        ServicePort(name: "telnet", port: 23),
        ServicePort(name: "smtp", port: 25),
        ServicePort(name: "domain", port: 53),
        ServicePort(name: "dns", port: 53),
        ServicePort(name: "http", port: 80),
        ServicePort(name: "pop3", port: 110),
        ServicePort(name: "imap", port: 143),
        ServicePort(name: "bgp", port: 179),
        ServicePort(name: "ldap", port: 389),
        ServicePort(name: "https", port: 443),
        ServicePort(name: "submission", port: 587),
        ServicePort(name: "ldaps", port: 636),
        ServicePort(name: "imaps", port: 993),
        ServicePort(name: "pop3s", port: 995),
        ServicePort(name: "mysql", port: 3306),
        ServicePort(name: "postgresql", port: 5432),
        ServicePort(name: "postgres", port: 5432),
        ServicePort(name: "iperf3", port: 5201),
        ServicePort(name: "redis", port: 6379),
        ServicePort(name: "http-alt", port: 8080),
    ]

    /// The port of a service name (case-insensitive).
    public static func port(named name: String) -> UInt16? {
        let key = name.lowercased()
        return all.first { $0.name == key }?.port
    }
}

/// Port text: decimal 0-65535 or a service name, with an optional leading ':'.
enum PortSyntax {
    /// Parses `bytes[range]`; nil for `*` (any port) when `allowsWildcard`.
    static func parse(_ bytes: [UInt8], _ range: Range<Int>, allowsWildcard: Bool) throws(LiteralError) -> UInt16? {
        var range = range
        if range.first.map({ bytes[$0] == UInt8(ascii: ":") }) == true { range = (range.lowerBound + 1)..<range.upperBound }
        let text = AddressSyntax.text(bytes[range])
        guard !text.isEmpty else {
            throw LiteralError(message: "expected a port number or service name",
                               range: max(0, range.lowerBound - 1)..<range.upperBound)
        }
        if text == "*" {
            guard allowsWildcard else { throw LiteralError(message: "'*' is not a port here", range: range) }
            return nil
        }
        if bytes[range].allSatisfy(AddressSyntax.isDigit) {
            guard text.count <= 5, let port = UInt16(text) else {
                throw LiteralError(message: "port \(text) is out of range (0-65535)", range: range)
            }
            return port
        }
        if let port = ServicePorts.port(named: text) { return port }
        let suggestion = NameSuggestion.nearest(to: text, among: ServicePorts.all, name: \.name)
        throw LiteralError(
            message: "unknown port '\(text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
            range: range,
            hint: "ports are numbers 0-65535 or one of: " + ServicePorts.all.map(\.name).joined(separator: ", "))
    }
}
