import Foundation
import Glibc
import Synchronization
@testable import TCPNotifyExport
import Testing

/// The `/metrics` server against clients that misbehave: half-sent requests, byte-at-a-time senders,
/// oversized heads, too many connections, a stop with clients still connected. Serialized: the tests
/// measure latencies, and running them side by side would measure each other.
@Suite(.serialized) struct MetricsHTTPServerTests {
    static let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"

    static func server(_ limits: MetricsHTTPServer.Limits = .init(), registry: NotificationMetrics? = nil,
                       body: @escaping @Sendable () -> [UInt8] = { Array("tcpnotify_events_total 7\n".utf8) }) throws -> MetricsHTTPServer {
        let server = try MetricsHTTPServer(
            address: MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false), limits: limits, registry: registry?.registry, body: body)
        server.start()
        return server
    }

    /// A scrape and how long it took.
    static func timedScrape(_ server: MetricsHTTPServer) throws -> (response: String, seconds: Double) {
        let start = ContinuousClock.now
        let response = try httpExchange(port: server.address.port, request: request)
        return (response, (ContinuousClock.now - start).inSeconds)
    }

    /// Paths besides /metrics go to `routes` (serve's /connections): its status and body, HEAD without
    /// the body; a path it does not know, or a method other than GET and HEAD, is 404.
    @Test func otherPathsAreAnsweredByTheRoutes() throws {
        let server = try MetricsHTTPServer(
            address: MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false),
            routes: { path in
                switch path {
                case "/connections": MetricsHTTPServer.Reply(status: 200, body: Array("{\"held\":0}\n".utf8))
                case "/connections/x": MetricsHTTPServer.Reply(status: 400, body: Array("{\"type\":\"error\"}\n".utf8))
                default: nil
                }
            },
            body: { Array("tcpnotify_events_total 7\n".utf8) })
        server.start()
        defer { server.stop() }
        let port = server.address.port
        let ok = try httpExchange(port: port, request: "GET /connections?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK") && ok.contains("application/json") && ok.hasSuffix("{\"held\":0}\n"), "\(ok)")
        let bad = try httpExchange(port: port, request: "GET /connections/x HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(bad.hasPrefix("HTTP/1.1 400 Bad Request") && bad.hasSuffix("{\"type\":\"error\"}\n"), "\(bad)")
        let head = try httpExchange(port: port, request: "HEAD /connections HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK") && head.hasSuffix("\r\n\r\n"), "\(head)")
        #expect(try httpExchange(port: port, request: "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(try httpExchange(port: port, request: "POST /connections HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        let metrics = try httpExchange(port: port, request: Self.request)
        #expect(metrics.hasPrefix("HTTP/1.1 200 OK") && metrics.contains("tcpnotify_events_total 7"))
        #expect(server.counters.scrapes == 1, "only /metrics counts as a scrape")
    }

    @Test func aHalfSentRequestDoesNotDelayAScrape() throws {
        let server = try Self.server()
        defer { server.stop() }
        let slow = try RawClient(port: server.address.port)
        #expect(slow.send("GET /metrics HTTP/1.1\r\nHo"))
        #expect(eventually { server.counters.open == 1 })
        let (response, seconds) = try Self.timedScrape(server)
        #expect(response.hasPrefix("HTTP/1.1 200 OK"), "\(response)")
        #expect(seconds < 1, "the scrape took \(seconds) s")
        #expect(slow.isOpen, "the slow client keeps its connection until its deadline")
    }

    /// Found by the http-request fuzz target: CRs and LFs alone ("\r\r\n\n\r\r\n\n") passed for a
    /// complete head, so the connection was safe from eviction and, after EOF, waited 10 s for the
    /// request deadline. Blank lines are no request: at EOF the connection is closed at once.
    @Test func blankLinesAreNotARequest() throws {
        let server = try Self.server()
        defer { server.stop() }
        let blank = try RawClient(port: server.address.port)
        #expect(blank.send("\r\r\n\n\r\r\n\n\r\n"))
        shutdown(blank.fd, Int32(SHUT_WR))
        let started = ContinuousClock.now
        let reply = blank.readUntilClosed(waiting: .seconds(3))
        #expect(reply != nil && (reply?.isEmpty == true || reply.map { String(decoding: $0, as: UTF8.self).hasPrefix("HTTP/1.1 4") } == true),
                "\(String(describing: reply))")
        #expect(ContinuousClock.now - started < .seconds(1), "closed at EOF, not at a deadline")
    }

    @Test func fiftyHalfOpenConnectionsDoNotBlockAScrape() throws {
        let server = try Self.server()
        defer { server.stop() }
        let clients = try (0..<50).map { _ in try RawClient(port: server.address.port) }
        for client in clients { #expect(client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")) }
        #expect(eventually { server.counters.open == 50 }, "\(server.counters)")
        let (response, seconds) = try Self.timedScrape(server)
        #expect(response.hasPrefix("HTTP/1.1 200 OK"), "\(response)")
        #expect(seconds < 1, "the scrape took \(seconds) s")
        #expect(server.counters.refused == 0)
    }

    /// One byte every 100 ms, never ending the head: cut (408) at the head deadline, counted, also in the registry.
    @Test func aByteAtATimeSenderIsCutAtTheHeadDeadline() throws {
        let metrics = NotificationMetrics()
        let server = try Self.server(.init(headTimeout: .milliseconds(500)), registry: metrics)
        defer { server.stop() }
        let client = try RawClient(port: server.address.port)
        let start = ContinuousClock.now
        var reply: [UInt8] = []
        let bytes = Array(("GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Pad: a\r\n", count: 100)).utf8)
        for byte in bytes where ContinuousClock.now - start < .seconds(5) {
            guard client.send([byte]) else { break }
            if let answer = client.readUntilClosed(waiting: .milliseconds(100)) {
                reply = answer
                break
            }
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 408"), "\(String(decoding: reply, as: UTF8.self))")
        #expect(seconds >= 0.45 && seconds < 1.5, "cut after \(seconds) s")
        #expect(server.counters.headTimeouts == 1)
        #expect(eventually { server.counters.open == 0 })
        #expect(sampleValue(metrics.expositionText(), #"tcpnotify_metrics_http_timeouts_total{deadline="head"}"#) == 1)
        #expect(try Self.timedScrape(server).response.hasPrefix("HTTP/1.1 200"))
    }

    /// A complete head with a body that trickles: cut at the whole-request deadline.
    @Test func aTricklingBodyIsCutAtTheRequestDeadline() throws {
        let server = try Self.server(.init(headTimeout: .milliseconds(300), requestTimeout: .milliseconds(700)))
        defer { server.stop() }
        let client = try RawClient(port: server.address.port)
        let start = ContinuousClock.now
        #expect(client.send("POST /metrics HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"))
        var reply: [UInt8] = []
        for _ in 0..<50 {
            guard client.send("x") else { break }
            if let answer = client.readUntilClosed(waiting: .milliseconds(100)) {
                reply = answer
                break
            }
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 408"), "\(String(decoding: reply, as: UTF8.self))")
        #expect(seconds >= 0.65 && seconds < 1.5, "cut after \(seconds) s")
        #expect(server.counters.requestTimeouts == 1 && server.counters.headTimeouts == 0, "\(server.counters)")
    }

    @Test func anOversizedHeadIsRejected() throws {
        let server = try Self.server(.init(maxHeadBytes: 16 * 1024))
        defer { server.stop() }
        let pad = { (count: Int) in "X-Pad: " + String(repeating: "a", count: count) + "\r\n" }
        let big = try httpExchange(port: server.address.port, request: "GET /metrics HTTP/1.1\r\n" + pad(20 * 1024) + "\r\n")
        #expect(big.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large"), "\(big.prefix(200))")
        #expect(server.counters.headTooLarge == 1)
        // Many headers under the cap are fine.
        let fine = try httpExchange(port: server.address.port, request: "GET /metrics HTTP/1.1\r\n" + pad(15 * 1024) + "\r\n")
        #expect(fine.hasPrefix("HTTP/1.1 200 OK"), "\(fine.prefix(200))")
        // A body past its cap: 413.
        let body = String(repeating: "b", count: 40 * 1024)
        let post = try httpExchange(port: server.address.port, request: "POST /metrics HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(post.hasPrefix("HTTP/1.1 413"), "\(post.prefix(200))")
        #expect(server.counters.bodyTooLarge == 1)
    }

    /// `stop()` with an idle client and one sending a byte every 100 ms: done well within 2 s, clients see the close.
    @Test func stopWithClientsConnectedIsQuick() throws {
        let server = try Self.server()
        let idle = try RawClient(port: server.address.port)
        let trickle = try RawClient(port: server.address.port)
        // Ends when a send fails: once the server has closed the connection.
        let thread = Thread {
            for byte in Array("GET /metrics HTTP/1.1\r\nX-Pad: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 1000) {
                guard trickle.send([byte]) else { return }
                usleep(100_000)
            }
        }
        thread.start()
        #expect(eventually { server.counters.open == 2 })
        usleep(300_000)
        let start = ContinuousClock.now
        server.stop()
        let seconds = (ContinuousClock.now - start).inSeconds
        #expect(seconds < 2, "stop() took \(seconds) s")
        #expect(idle.readUntilClosed(waiting: .seconds(1)) != nil, "the idle client was not disconnected")
        #expect(throws: TestFailure.self) { try httpExchange(port: server.address.port, request: Self.request) }
    }

    @Test func statusCodesAndHead() throws {
        let server = try Self.server()
        defer { server.stop() }
        let port = server.address.port
        let head = try httpExchange(port: port, request: "HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n") && head.contains("Content-Length: 25\r\n") && head.hasSuffix("\r\n\r\n"), "\(head)")
        let missing = try httpExchange(port: port, request: "GET /metrics/x HTTP/1.1\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found") && missing.contains("Connection: close"), "\(missing)")
        let put = try httpExchange(port: port, request: "PUT /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")
        #expect(put.hasPrefix("HTTP/1.1 405") && put.contains("Allow: GET, HEAD"), "\(put)")
        for bad in ["GET /metrics\r\n\r\n", "GET /metrics HTTP/2.0\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", "\u{1}\u{2}\r\n\r\n"] {
            let reply = try httpExchange(port: port, request: bad)
            #expect(reply.hasPrefix("HTTP/1.1 400"), "\(bad.debugDescription): \(reply)")
        }
        #expect(server.counters.malformed == 4, "\(server.counters)")
        // The client shuts down its side after the request: the answer still comes.
        let client = try RawClient(port: port)
        #expect(client.send(Self.request))
        shutdown(client.fd, Int32(SHUT_WR))
        let answer = String(decoding: client.readUntilClosed(waiting: .seconds(2)) ?? [], as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
    }

    @Test func twentyParallelScrapesAllSucceed() throws {
        // A body that takes a while, so the scrapes overlap.
        let server = try Self.server(body: { usleep(20_000); return Array("tcpnotify_events_total 7\n".utf8) })
        defer { server.stop() }
        let results = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 20) { _ in
            let response = (try? httpExchange(port: server.address.port, request: Self.request)) ?? "error"
            results.withLock { $0.append(response) }
        }
        let responses = results.withLock { $0 }
        #expect(responses.count == 20)
        #expect(responses.allSatisfy { $0.hasPrefix("HTTP/1.1 200 OK") && $0.hasSuffix("tcpnotify_events_total 7\n") },
                "\(responses.filter { !$0.hasPrefix("HTTP/1.1 200") })")
        #expect(server.counters.scrapes == 20)
    }

    /// Past `maxConnections` a new connection is closed as it is accepted, and counted; the slots come back.
    /// At the cap, the oldest connection still sending its head makes room for the new one: 500
    /// slowloris clients against a cap of 4 cannot keep a scrape out.
    @Test func slowConnectionsAreEvictedForANewOne() throws {
        let metrics = NotificationMetrics()
        let server = try Self.server(.init(maxConnections: 4), registry: metrics)
        defer { server.stop() }
        let held = try (0..<4).map { _ in try RawClient(port: server.address.port) }
        #expect(eventually { server.counters.open == 4 })
        #expect(held[0].send("GET /metrics HTTP/1.1\r\n"), "half a head: still slow")
        let start = ContinuousClock.now
        let (response, _) = try Self.timedScrape(server)
        #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
        #expect((ContinuousClock.now - start).inSeconds < 0.5)
        #expect(held[0].readUntilClosed(waiting: .seconds(1)) != nil, "the oldest slow connection was closed")
        #expect(server.counters.evicted == 1 && server.counters.refused == 0, "\(server.counters)")
        #expect(sampleValue(metrics.expositionText(), "tcpnotify_metrics_http_evicted_connections_total") == 1)

        var attackers: [RawClient] = []
        for _ in 0..<500 { attackers.append(try RawClient(port: server.address.port)) }
        #expect(try Self.timedScrape(server).response.hasPrefix("HTTP/1.1 200"), "a scrape after 500 slow clients")
        for client in held + attackers { client.close() }
        #expect(eventually { server.counters.open == 0 })
    }

    /// When every open connection has sent its request head (here: each waits for its body), the cap
    /// refuses the new one: those are requests being served, not slow clients.
    @Test func connectionsPastTheCapAreRefusedWhenNoneIsSlow() throws {
        let metrics = NotificationMetrics()
        let server = try Self.server(.init(maxConnections: 4), registry: metrics)
        defer { server.stop() }
        let held = try (0..<4).map { _ in try RawClient(port: server.address.port) }
        for client in held { #expect(client.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")) }
        #expect(eventually { server.counters.open == 4 })
        Thread.sleep(forTimeInterval: 0.2) // the heads are read
        let extra = try RawClient(port: server.address.port)
        let start = ContinuousClock.now
        #expect(extra.readUntilClosed(waiting: .seconds(1)) == [], "the fifth connection was not closed")
        #expect((ContinuousClock.now - start).inSeconds < 0.5)
        #expect(server.counters.refused == 1 && server.counters.evicted == 0, "\(server.counters)")
        #expect(sampleValue(metrics.expositionText(), "tcpnotify_metrics_http_refused_connections_total") == 1)
        for client in held { client.close() }
        #expect(eventually { server.counters.open == 0 })
        #expect(try Self.timedScrape(server).response.hasPrefix("HTTP/1.1 200"))
    }
}

/// A loopback client on a raw socket, for requests sent piece by piece.
final class RawClient: @unchecked Sendable {
    let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect: \(String(cString: strerror(errno)))")
        }
    }

    deinit { Glibc.close(fd) }

    func close() { shutdown(fd, Int32(SHUT_RDWR)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Everything until the server closes, if it starts answering or closes within `waiting`; nil if it
    /// stays silent that long.
    func readUntilClosed(waiting: Duration) -> [UInt8]? {
        var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pending, 1, Int32(waiting.inSeconds * 1000)) > 0 else { return nil }
        return readToEnd(fd: fd, timeoutSeconds: 2)
    }

    /// Still connected: no EOF or error pending.
    var isOpen: Bool {
        var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pending, 1, 0) == 0
    }
}

/// Polls `condition` for up to `timeout` seconds.
func eventually(timeout: Double = 2, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

extension Duration {
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
