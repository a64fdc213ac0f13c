import Glibc

/// Why a subscription could not start or ended early.
public enum SubscriptionError: Error, Sendable, CustomStringConvertible {
    case connect(path: String, errno: Int32)
    /// The daemon refused the request (an invalid filter or rule, a shared limit, no free slot).
    case refused(String)
    case disconnected(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connect(let path, let code):
            var text = "cannot connect to \(path): \(String(cString: strerror(code)))"
            if code == ENOENT || code == ECONNREFUSED { text += " (is `tcpnotify serve` running? --socket names another path)" }
            if code == EACCES { text += " (the socket is for root and the daemon's group)" }
            return text
        case .refused(let message): return message
        case .disconnected(let message): return message
        case .protocolViolation(let message): return message
        }
    }
}
