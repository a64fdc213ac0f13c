#if OTLP
import Foundation
import Glibc
import Synchronization
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `watch --otlp-endpoint` (built with the OTLP trait): notifications arrive as OTLP/HTTP log records at a
    /// receiver in the test, which checks the request and finds the record's rule and socket in the payload.
    @Suite struct OTLP {
        @Test(.enabled(if: KernelGate.canRun))
        func notificationsArriveAsOTLPLogRecords() throws {
            try KernelGate.require()
            let receiver = try OTLPReceiver()
            defer { receiver.stop() }
            let cgroup = try TestCgroup(name: "otlp-export")
            defer { cgroup.restore() }
            let serverPort = try freeLoopbackPort()
            let watch = try CLIProcess(KernelSuite.Metrics.tcpnotify(), [
                "watch", "dport = :\(serverPort)", "--cgroup", cgroup.path, "--format", "json",
                "--when", "otlp_fin=state == FIN_WAIT1", "--otlp-endpoint", "http://127.0.0.1:\(receiver.port)",
            ])
            defer { watch.signal(SIGINT); _ = watch.waitForExit() }
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            let pair = try ConnectedPair.make(serverPort: serverPort)
            try pair.client.shutdownWrite()
            let received = eventually(timeout: 20) {
                receiver.requests.withLock { $0.contains { $0.body.contains("otlp_fin") } }
            }
            let requests = receiver.requests.withLock { $0 }
            #expect(received, "no log record with the rule arrived: \(requests.map(\.head)); stderr: \(watch.standardError)")
            let request = try #require(requests.first { $0.body.contains("otlp_fin") })
            #expect(request.head.hasPrefix("POST /v1/logs HTTP/1.1"), "\(request.head)")
            #expect(request.head.lowercased().contains("content-type: application/x-protobuf"), "\(request.head)")
            // The record carries the socket (attributes) and the JSON line (body).
            #expect(request.body.contains("network.peer.port") && request.body.contains(String(serverPort)))
            #expect(request.body.contains("\"type\":\"notification\""))
            #expect(request.body.contains("tcpnotify.cgroup"))
        }

        /// `serve --otlp-endpoint`: a subscriber's notification also goes out as an OTLP log record.
        @Test(.enabled(if: KernelGate.canRun))
        func serveExportsSubscribersNotifications() throws {
            try KernelGate.require()
            let receiver = try OTLPReceiver()
            defer { receiver.stop() }
            let cgroup = try TestCgroup(name: "otlp-serve")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--otlp-endpoint", "http://127.0.0.1:\(receiver.port)"])
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.subscribe(filter: "", rules: ["otlp_serve_fin=state == FIN_WAIT1"])
            let pair = try ConnectedPair.make()
            try pair.client.shutdownWrite()
            #expect(eventually { !subscriber.notifications.isEmpty })
            let received = eventually(timeout: 20) {
                receiver.requests.withLock { $0.contains { $0.body.contains("otlp_serve_fin") } }
            }
            #expect(received, "no log record with the subscriber's rule arrived; stderr: \(serve.process.standardError)")
        }
    }
}

/// A minimal OTLP/HTTP receiver: accepts POSTs on loopback, keeps each request's head and body (bytes read as
/// Latin-1, so protobuf strings can be searched), answers 200 with an empty ExportLogsServiceResponse.
final class OTLPReceiver: @unchecked Sendable {
    struct Request: Sendable {
        var head: String
        var body: String
    }

    let requests = Mutex<[Request]>([])
    let port: UInt16
    private let listener: TCPSocket
    private let running = Atomic<Bool>(true)
    private let finished = DispatchSemaphore(value: 0)

    init() throws {
        listener = try TCPSocket(domain: AF_INET)
        try listener.bind(SocketAddress("127.0.0.1", port: 0))
        guard listen(listener.fd, 16) == 0 else { throw SocketError("listen") }
        port = try listener.localPort()
        let thread = Thread { [self] in
            while running.load(ordering: .relaxed) {
                var fds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)]
                guard poll(&fds, 1, 100) > 0 else { continue }
                let client = accept(listener.fd, nil, nil)
                if client >= 0 { serve(client) }
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        finished.wait()
    }

    /// Serves requests on one connection (the exporter keeps it alive) until it closes.
    private func serve(_ client: Int32) {
        defer { close(client) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while running.load(ordering: .relaxed) {
            // Head, then Content-Length bytes of body.
            while !buffer.containsHeadEnd, let count = Optional(recv(client, &chunk, chunk.count, 0)), count > 0 {
                buffer += chunk[0..<count]
            }
            guard let headEnd = buffer.headEnd else { return }
            let head = String(decoding: buffer[..<headEnd], as: UTF8.self)
            let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
            while buffer.count < headEnd + 4 + length, let count = Optional(recv(client, &chunk, chunk.count, 0)), count > 0 {
                buffer += chunk[0..<count]
            }
            guard buffer.count >= headEnd + 4 + length else { return }
            let body = String(buffer[(headEnd + 4)..<(headEnd + 4 + length)].map { Character(Unicode.Scalar($0)) })
            requests.withLock { $0.append(Request(head: head, body: body)) }
            buffer.removeFirst(headEnd + 4 + length)
            let response = Array("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n".utf8)
            _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }
}

extension [UInt8] {
    var headEnd: Int? {
        guard count >= 4 else { return nil }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return index
        }
        return nil
    }

    var containsHeadEnd: Bool { headEnd != nil }
}
#endif
