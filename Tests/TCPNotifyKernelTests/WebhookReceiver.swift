import Foundation
import Glibc
import Synchronization

/// A tiny HTTP/1.1 receiver on 127.0.0.1 for Alertmanager's webhook: answers every POST with 200 and
/// keeps the bodies with the time they arrived. One thread accepts and reads each request in turn.
final class WebhookReceiver: @unchecked Sendable {
    let port: UInt16
    private let listener: TCPSocket
    private let shared = Shared()
    private let thread: Thread

    private final class Shared: Sendable {
        let received = Mutex<[(Date, String)]>([])
        let stopped = Atomic<Bool>(false)
    }

    init() throws {
        let listener = try TCPSocket(domain: AF_INET)
        try listener.bind(SocketAddress("127.0.0.1", port: 0))
        guard listen(listener.fd, 16) == 0 else { throw SocketError("listen") }
        self.listener = listener
        port = try listener.localPort()
        let fd = listener.fd, shared = self.shared
        thread = Thread {
            while !shared.stopped.load(ordering: .relaxed) {
                let connection = accept(fd, nil, nil)
                if connection < 0 { if errno == EINTR { continue } else { break } }
                if let body = Self.readRequestBody(connection) { shared.received.withLock { $0.append((Date(), body)) } }
                let reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                _ = reply.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                close(connection)
            }
        }
        thread.start()
    }

    /// The bodies so far, oldest first.
    var bodies: [(time: Date, body: String)] { shared.received.withLock { $0.map { (time: $0.0, body: $0.1) } } }

    /// Stops accepting (the blocked accept returns) and closes the listener.
    func stop() {
        guard !shared.stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener.fd, Int32(SHUT_RDWR))
    }

    deinit { stop() }

    /// The body of one request (by its Content-Length), within 5 s and 1 MiB.
    private static func readRequestBody(_ fd: Int32) -> String? {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var bodyStart: Int?
        var length = 0
        while data.count < 1 << 20 {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data += buffer[0..<count]
            if bodyStart == nil, let end = data.firstRange(of: Array("\r\n\r\n".utf8)) {
                bodyStart = end.upperBound
                let head = String(decoding: data[..<end.lowerBound], as: UTF8.self).lowercased()
                let line = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                length = Int(line?.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
            if let bodyStart, data.count - bodyStart >= length { break }
        }
        guard let bodyStart else { return nil }
        return String(decoding: data[bodyStart...], as: UTF8.self)
    }
}

/// Metric names in PromQL: what is left once strings, label matchers, ranges, grouping clauses,
/// offsets, numbers, keywords and functions are taken out.
enum PromQLNames {
    static func metricNames(in expression: String) -> Set<String> {
        var text = expression
        for pattern in [#""(\\.|[^"\\])*""#, #"\{[^}]*\}"#, #"\[[^\]]*\]"#,
                        #"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"#,
                        #"\boffset\s+-?[0-9A-Za-z]+"#, #"(?<![A-Za-z0-9_:])[0-9][0-9A-Za-z_.]*"#] {
            text = text.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        let keywords: Set<String> = ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"]
        var names = Set<String>()
        let scanner = try! NSRegularExpression(pattern: #"[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?"#)
        for match in scanner.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let token = String(text[Range(match.range, in: text)!])
            if token.hasSuffix("(") { continue } // a function
            if !keywords.contains(token) { names.insert(token) }
        }
        return names
    }

    /// The metric families a Prometheus text exposition carries (its `# TYPE` lines and its samples).
    static func families(inExposition text: String) -> Set<String> {
        var names = Set<String>()
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                names.insert(String(line.split(separator: " ")[2]))
            } else if !line.hasPrefix("#") {
                names.insert(String(line.prefix { $0 != "{" && $0 != " " }))
            }
        }
        return names
    }
}
