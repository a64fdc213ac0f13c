import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `serve --history`: a real daemon remembers real loopback connections, answers for them over HTTP
    /// and on the subscriber socket, within its bounds and retention.
    @Suite struct ServeHistory {
        /// The connections of a `connections` reply (none for another reply).
        static func connections(_ body: String) -> [Wire.Connection] {
            decodedLine(Wire.Connections.self, from: body)?.connections ?? []
        }

        /// A connection that moves data shows up with its last record and its verdicts, over HTTP and on
        /// the socket; a bad cookie is 400, an unknown one 404; once closed it stays for the retention only.
        @Test(.enabled(if: KernelGate.canRun))
        func connectionShowsItsLastRecordAndVerdictsUntilRetentionEnds() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-history")
            defer { cgroup.restore() }
            let server = try LoopbackServer()
            let serve = try ServeProcess(cgroup: cgroup, extra: [
                "--history", "dport = :\(server.port)", "--history-retention", "2s", "--sweep-interval", "500ms",
            ])
            let port = try #require(waitForMetricsPort(serve.process), "\(serve.process.standardError)")
            #expect(serve.process.standardError.contains("keeping connection history"), "\(serve.process.standardError)")

            let pair = try server.connect()
            let other = try ConnectedPair.make() // not selected by the history's filter
            let cookie = try pair.client.cookie()
            for _ in 0..<8 {
                try transfer(256 << 10, from: pair.client, to: pair.server)
                usleep(250_000)
            }
            var entry: Wire.Connection?
            let judged = eventually(timeout: 10) {
                guard let reply = try? httpGet(port: port, path: "/connections/\(cookie)"), reply.status == 200 else { return false }
                entry = Self.connections(reply.body).first
                return entry?.verdicts.contains { $0.verdict.bottleneck != .insufficientData } == true
            }
            #expect(judged, "a verdict on the connection: \(String(describing: entry))")
            #expect(entry?.cookie == cookie)
            #expect(entry?.open == true)
            let record = entry?.lastRecord
            #expect(record?.cookie == cookie, "a notification line: \(String(describing: record))")
            #expect(record?.dst == "127.0.0.1:\(server.port)")
            #expect(record?.tcpInfo["bytes_acked"] != nil, "a whole tcp_info: \(String(describing: record))")
            let verdicts = entry?.verdicts ?? []
            #expect(verdicts.allSatisfy { $0.count >= 1 }, "\(verdicts)")

            let all = try httpGet(port: port, path: "/connections")
            #expect(all.status == 200)
            // The reply is the wire model's: it decodes back.
            let decoded = try Wire.decode(Wire.Connections.self, from: all.body)
            let listed = decoded.connections.map(\.cookie)
            #expect(decoded.held == listed.count, "\(decoded)")
            #expect(decoded.connections.first { $0.cookie == cookie }?.lastRecord.cookie == cookie)
            let otherCookie = try other.client.cookie()
            #expect(listed.contains(cookie) && !listed.contains(otherCookie), "only what --history selects: \(listed)")

            let bad = try httpGet(port: port, path: "/connections/not-a-cookie")
            #expect(bad.status == 400 && decodedLine(Wire.ErrorReply.self, from: bad.body) != nil, "\(bad)")
            let unknown = try httpGet(port: port, path: "/connections/18446744073709551615")
            #expect(unknown.status == 404 && decodedLine(Wire.ErrorReply.self, from: unknown.body)?.message.contains("no connection") == true,
                    "\(unknown)")
            #expect(try httpGet(port: port, path: "/connections/1/2").status == 404)

            // The same over the subscriber socket.
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.send("{\"type\":\"connections\",\"cookie\":\(cookie)}\n")
            try subscriber.send("{\"type\":\"connections\",\"cookie\":\"x\"}\n")
            #expect(eventually { subscriber.wireLines.count >= 2 }, "\(subscriber.allLines)")
            let replies = subscriber.wireLines
            #expect(replies.first?.decoded(Wire.Connections.self)?.connections.first?.cookie == cookie, "\(subscriber.allLines)")
            #expect(replies.dropFirst().first?.error != nil, "\(subscriber.allLines)")

            // Closed: still there (open false) for the 2 s retention, then gone.
            try pair.client.shutdownWrite()
            try pair.server.shutdownWrite()
            var closedAt: Date?
            #expect(eventually(timeout: 5) {
                let reply = try? httpGet(port: port, path: "/connections/\(cookie)")
                let open = Self.connections(reply?.body ?? "").first?.open
                if open == false, closedAt == nil { closedAt = Date() }
                return open == false
            }, "the close is recorded")
            let gone = eventually(timeout: 6) { (try? httpGet(port: port, path: "/connections/\(cookie)"))?.status == 404 }
            #expect(gone, "dropped after the retention")
            if let closedAt { #expect(Date().timeIntervalSince(closedAt) >= 1.0, "kept for about the retention (2 s) first") }
            let after = try Wire.decode(Wire.Connections.self, from: httpGet(port: port, path: "/connections").body)
            #expect(after.expiredConnections >= 1, "\(after)")
            withExtendedLifetime((pair, other)) {}
        }

        /// Six connections in a history of three: three are evicted, counted in the reply and on /metrics.
        @Test(.enabled(if: KernelGate.canRun))
        func smallBoundEvictsTheStalestAndCountsIt() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-history-evict")
            defer { cgroup.restore() }
            let server = try LoopbackServer()
            let serve = try ServeProcess(cgroup: cgroup, extra: [
                "--history", "dport = :\(server.port)", "--history-connections", "3", "--sweep-interval", "500ms",
            ])
            let port = try #require(waitForMetricsPort(serve.process), "\(serve.process.standardError)")
            var pairs: [ConnectedPair] = []
            for _ in 0..<6 {
                let pair = try server.connect()
                try transfer(16 << 10, from: pair.client, to: pair.server) // a TCP event: recorded now
                pairs.append(pair)
                usleep(100_000)
            }
            var reply: Wire.Connections?
            let evicted = eventually(timeout: 10) {
                reply = (try? httpGet(port: port, path: "/connections")).flatMap { decodedLine(Wire.Connections.self, from: $0.body) }
                return (reply?.evictedConnections ?? 0) >= 3
            }
            #expect(evicted, "\(String(describing: reply))")
            #expect(reply?.held == 3 && reply?.connections.count == 3, "\(String(describing: reply))")
            let metrics = try httpGet(port: port, path: "/metrics").body
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("tcpnotify_history_evicted_connections_total ") }
            #expect(Double(line?.split(separator: " ").last ?? "") ?? 0 >= 3, "\(line ?? "no eviction counter")")
            #expect(metrics.contains("tcpnotify_history_connections 3"), "the held gauge")
            withExtendedLifetime(pairs) {}
        }

        @Test func historyOptionsAreChecked() throws {
            for (arguments, fragment) in [
                (["serve", "--history-connections", "10"], "need --history"),
                (["serve", "--history", "all", "--history-connections", "0"], "from 1 to"),
                (["serve", "--history", "all", "--history-verdicts", "100000"], "from 1 to"),
                (["serve", "--history", "all", "--history-retention", "10parsecs"], "history-retention"),
                (["serve", "--history", "dport = :nope"], "invalid filter"),
                (["serve", "--metrics-connections", "5"], "need --history"),
                (["serve", "--history", "all", "--metrics-connections", "20000"], "from 0 to 10000"),
            ] {
                let result = try CLIProcess.run(CLI.tcpnotify(), arguments, timeout: 20)
                #expect(result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
                #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
            }
        }
    }
}
