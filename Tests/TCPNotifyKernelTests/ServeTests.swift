import Foundation
import Glibc
import TCPNotifyClient
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `tcpnotify serve` end to end: a real daemon process attached to the test's cgroup, subscribers on
    /// its Unix socket, real loopback connections.
    @Suite struct Serve {
        /// Two subscribers with different filters and rules share the kernel tables; each receives exactly
        /// the notifications of its own sockets and rules, named as it named them. Each connection makes
        /// both rules true, so a leak in either direction shows.
        @Test(.enabled(if: KernelGate.canRun))
        func twoSubscribersReceiveExactlyTheirOwnNotifications() async throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-two")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let serverA = try LoopbackServer(), serverB = try LoopbackServer()

            let a = try await TCPNotifySubscription.connect(
                socketPath: serve.socketPath, filter: "dport = :\(serverA.port)", rules: ["a_fin=state == FIN_WAIT1"])
            let b = try RawSubscriber(socketPath: serve.socketPath)
            let reply = try b.subscribe(filter: "dport = :\(serverB.port)", rules: ["b_acked=bytes_acked > 1000"])
            
            #expect(a.ruleNames == ["a_fin"])
            #expect(a.subscriber != reply.subscriber)

            let collected = EventBox()
            let reader = Task {
                for try await event in a { collected.append(event) }
            }
            defer { reader.cancel() }

            var pairsA: [ConnectedPair] = [], pairsB: [ConnectedPair] = []
            for _ in 0..<3 {
                pairsA.append(try serverA.connect())
                pairsB.append(try serverB.connect())
            }
            for pair in pairsA + pairsB {
                try transfer(64 << 10, from: pair.client, to: pair.server) // bytes_acked > 1000 on every client
                try pair.client.shutdownWrite()                          // FIN_WAIT1 on every client
            }
            let cookiesA = Set(try pairsA.map { try $0.client.cookie() }), cookiesB = Set(try pairsB.map { try $0.client.cookie() })

            let aGotAll = eventually(timeout: 10) {
                Set(collected.notifications.map(\.cookie)).isSuperset(of: cookiesA)
            }
            #expect(aGotAll, "A is told about each of its 3 clients: \(collected.notifications.map(\.cookie)) vs \(cookiesA)")
            let bGotAll = eventually(timeout: 10) {
                Set(b.notifications.map(\.cookie)).isSuperset(of: cookiesB)
            }
            #expect(bGotAll, "B is told about each of its 3 clients: \(b.allLines.suffix(3))")
            usleep(300_000) // anything misrouted would have arrived by now

            let aNotifications = collected.notifications
            #expect(aNotifications.allSatisfy { cookiesA.contains($0.cookie) }, "A got another socket: \(aNotifications.map(\.cookie))")
            #expect(aNotifications.allSatisfy { $0.rules == ["a_fin"] || $0.trigger == "close" && $0.rules.isEmpty })
            #expect(aNotifications.filter { $0.trigger == "state" }.count == 3, "one FIN_WAIT1 per client: \(aNotifications.map(\.trigger))")
            #expect(aNotifications.allSatisfy { $0.tcpInfo.count + 2 == 70 }, "a whole tcp_info, as `watch` prints it")
            let bNotifications = b.notifications
            #expect(bNotifications.allSatisfy { cookiesB.contains($0.cookie) }, "B got another socket")
            #expect(bNotifications.allSatisfy { $0.rules == ["b_acked"] }, "\(bNotifications.map(\.rules))")
            #expect(bNotifications.count == 3, "one edge per client: \(bNotifications.count)")
            print("serve: A got \(aNotifications.count) lines, B got \(bNotifications.count)")
            a.cancel()
        }

        /// A subscriber joining later also gets connections that exist already, including ones enrolled for
        /// another subscriber (its bit is ORed into them).
        @Test(.enabled(if: KernelGate.canRun))
        func joiningSubscriberTakesOverExistingConnections() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-join")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let server = try LoopbackServer()
            let first = try RawSubscriber(socketPath: serve.socketPath)
            try first.subscribe(filter: "dport = :\(server.port)", rules: ["first=state == FIN_WAIT1"])
            let enrolledByFirst = try server.connect()  // sock_ops enrolls it for `first`
            let other = try LoopbackServer()
            let notYetSelected = try other.connect()     // nobody selects it yet

            let second = try RawSubscriber(socketPath: serve.socketPath)
            let reply = try second.subscribe(filter: "dport = :\(server.port) or dport = :\(other.port)", rules: ["second=state == FIN_WAIT1"])
            #expect(reply.existingEnrolled == 2, "both existing clients: \(reply)")

            try enrolledByFirst.client.shutdownWrite()
            try notYetSelected.client.shutdownWrite()
            let cookies = [try enrolledByFirst.client.cookie(), try notYetSelected.client.cookie()]
            #expect(eventually(timeout: 10) {
                Set(second.notifications.map(\.cookie)) == Set(cookies)
            }, "\(second.allLines)")
            #expect(eventually(timeout: 5) { first.notifications.contains { $0.cookie == cookies[0] } })
            usleep(200_000)
            #expect(first.notifications.allSatisfy { $0.cookie == cookies[0] && $0.rules == ["first"] })
            #expect(second.notifications.allSatisfy { $0.rules == ["second"] })
        }

        /// A subscriber killed mid-stream is removed: the daemon logs it, its selections leave the kernel
        /// tables and its bit leaves the sockets it had, so the next subscriber, which reuses its slot,
        /// never hears of them.
        /// Also with the sk_storage map iterator refused (as some hosts do): `forget_sockets` walks each
        /// namespace instead, and the slot is still reused without inheritance.
        @Test(.enabled(if: KernelGate.canRun), arguments: ["", "forget_subscribers"])
        func killedSubscriberIsCleanedUp(refusing: String) throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-kill")
            defer { cgroup.restore() }
            let serve = try ServeProcess(
                cgroup: cgroup, environment: refusing.isEmpty ? [:] : ["TCPNOTIFY_REFUSE_PROGRAMS": refusing])
            let server = try LoopbackServer()
            let client = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["subscribe", "--socket", serve.socketPath, "--when", "acked=bytes_acked > 1000", "dport = :\(server.port)"])
            #expect(eventually(timeout: 10) { client.standardError.contains("subscribed as subscriber") }, "\(client.standardError)")
            let killedSlot = client.standardError.split(separator: " ").drop { $0 != "subscriber" }.dropFirst().first.flatMap { Int($0) }

            let pairs = try (0..<3).map { _ in try server.connect() }
            for pair in pairs { try transfer(64 << 10, from: pair.client, to: pair.server) }
            let cookies = Set(try pairs.map { try $0.client.cookie() })
            #expect(eventually(timeout: 10) { Set(client.notifications.map(\.cookie)) == cookies },
                    "the subscriber streams its notifications: \(client.outputLines.map(\.text))")
            client.signal(SIGKILL)
            _ = client.waitForExit()
            #expect(eventually(timeout: 10) { serve.process.standardError.contains("subscriber left") }, "\(serve.process.standardError)")

            let next = try RawSubscriber(socketPath: serve.socketPath)
            let other = try LoopbackServer()
            let reply = try next.subscribe(filter: "dport = :\(other.port)", rules: ["fin=state == FIN_WAIT1"])
            #expect(reply.subscriber == killedSlot, "the slot is reused: \(reply), killed \(String(describing: killedSlot))")
            // The killed subscriber's sockets reach FIN_WAIT1, and so does the new subscriber's own one.
            for pair in pairs { try pair.client.shutdownWrite() }
            let own = try other.connect()
            try own.client.shutdownWrite()
            let ownCookie = try own.client.cookie()
            #expect(eventually(timeout: 10) { next.notifications.contains { $0.cookie == ownCookie } })
            usleep(300_000)
            let leaked = next.notifications.filter { cookies.contains($0.cookie) }
            #expect(leaked.isEmpty, "the new subscriber got the killed one's sockets: \(leaked)")
            #expect(serve.isRunning)
            if !refusing.isEmpty {
                #expect(serve.process.standardError.contains("forget_subscribers"), "the refusal is logged: \(serve.process.standardError)")
            }
        }

        /// A subscriber that stops reading loses notifications (counted, then reported to it), while the
        /// other subscriber gets every one of them without delay.
        @Test(.enabled(if: KernelGate.canRun))
        func slowSubscriberDoesNotDelayTheOther() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-slow")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--queue-bytes", "262144"])
            let server = try LoopbackServer()
            let filter = "dport = :\(server.port)", rules = ["acked=bytes_acked > 0"]
            let slow = try RawSubscriber(socketPath: serve.socketPath, receiveBufferBytes: 4096, paused: true)
            try slow.send(SubscriberProtocol.subscribeLine(filter: filter, rules: rules) + "\n")
            let slowReply = slow.readLineBlocking()
            let slowSlot = try? Wire.decode(Wire.Subscribed.self, from: slowReply ?? "").subscriber
            #expect(slowSlot != nil, "\(String(describing: slowReply))")
            let fast = try RawSubscriber(socketPath: serve.socketPath)
            try fast.subscribe(filter: filter, rules: rules)

            let connections = 400
            let start = Date()
            var lastCookie: UInt64 = 0
            for _ in 0..<connections {
                usleep(5000) // about 200 connections (400 lines) per second: a pace a reader keeps up with
                let pair = try server.connect()
                try transfer(4096, from: pair.client, to: pair.server)
                lastCookie = try pair.client.cookie()
                // Closing both ends: the client's close record follows its notification.
            }
            let madeIn = Date().timeIntervalSince(start)
            // Each client notifies once, and again at close unless the rule first held at close itself.
            func complete(_ lines: [Wire.Notification]) -> Bool {
                Set(lines.filter { !$0.rules.isEmpty }.map(\.cookie)).count == connections
                    && lines.filter { $0.trigger == .close }.count == connections
            }
            let fastGotAll = eventually(timeout: 20) { complete(fast.notifications) }
            let lag = Date().timeIntervalSince(start) - madeIn
            usleep(200_000)
            let fastLines = fast.notifications
            #expect(fastGotAll, "the fast subscriber got \(fastLines.count) lines for \(connections) connections")
            #expect(fastLines.contains { $0.cookie == lastCookie })
            #expect(fast.dropped.isEmpty, "the fast subscriber lost lines: \(fast.dropped)")
            print("serve: \(connections) connections in \(String(format: "%.2f", madeIn)) s; the fast subscriber had all "
                  + "\(fastLines.count) lines \(String(format: "%.2f", lag)) s after the last one")
            #expect(lag < 5, "the fast subscriber lagged \(lag) s")

            // The slow one reads now: what it missed is reported, and nothing is unaccounted for.
            slow.startReading()
            #expect(eventually(timeout: 10) {
                let delivered = slow.notifications.count
                let dropped = Int(slow.dropped.reduce(0) { $0 + $1.count })
                return delivered + dropped == fastLines.count
            }, "slow: \(slow.notifications.count) delivered, dropped lines \(slow.dropped)")
            let dropped = slow.dropped
            #expect(!dropped.isEmpty, "a 256 KiB queue cannot hold \(fastLines.count) lines")
            print("serve: the slow subscriber got \(slow.notifications.count) lines and \(dropped.count) dropped reports")
            try slow.send(Wire.line(Wire.StatsRequest()) + "\n")
            #expect(eventually(timeout: 5) { (slow.wireLines.compactMap(\.subscriberStats).first?.dropped ?? 0) > 0 })
            // The drops are on /metrics too, per subscriber.
            let droppedTotal = Int(dropped.reduce(0) { $0 + $1.count })
            if let port = waitForMetricsPort(serve.process), let slowSlot {
                let body = try httpGet(port: port, path: "/metrics").body
                let line = body.split(separator: "\n").first { $0.hasPrefix("tcpnotify_subscriber_drops_total{subscriber=\"\(slowSlot)\"}") }
                #expect(line.map { Int(Double($0.split(separator: " ").last ?? "") ?? -1) } == droppedTotal, "\(String(describing: line))")
            } else {
                Issue.record("no metrics port or subscriber number: \(serve.process.standardError)")
            }
            if let kilobytes = serve.residentKilobytes { print("serve: daemon RSS \(kilobytes) KiB") }
        }

        /// SIGHUP replaces the config subscription's rules; a socket enrolled before the reload notifies
        /// under the new rule. A bad file keeps the running configuration. Subscribers are unaffected.
        @Test(.enabled(if: KernelGate.canRun))
        func sighupReloadChangesRulesWithoutLosingEnrolledSockets() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-reload")
            defer { cgroup.restore() }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-serve-\(getpid()).yaml").path
            defer { unlink(path) }
            try "filter: \"dst 127.0.0.1\"\nrules:\n  - \"never=state == LISTEN\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--config", path])
            let server = try LoopbackServer()
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.subscribe(filter: "dport = :\(server.port)", rules: ["mine=state == FIN_WAIT1"])

            let pair = try server.connect() // enrolled under the first configuration
            let cookie = try pair.client.cookie()
            try transfer(256 << 10, from: pair.client, to: pair.server)

            try "rules:\n  - nope=rtt >> 5\n".write(toFile: path, atomically: true, encoding: .utf8)
            serve.process.signal(SIGHUP)
            #expect(eventually { serve.process.standardError.contains("reload failed") }, "\(serve.process.standardError)")

            try "filter: \"dst 127.0.0.1\"\nrules:\n  - {name: fin, when: \"state == FIN_WAIT1\"}\n".write(
                toFile: path, atomically: true, encoding: .utf8)
            serve.process.signal(SIGHUP)
            #expect(eventually { serve.process.standardError.contains("reloaded") }, "\(serve.process.standardError)")
            try pair.client.shutdownWrite()
            #expect(eventually {
                serve.process.notifications.contains { $0.rules == ["fin"] && $0.cookie == cookie }
            }, "the socket enrolled before the reload notifies under the new rule: \(serve.process.outputLines.map(\.text))")
            #expect(eventually { subscriber.notifications.contains { $0.cookie == cookie && $0.rules == ["mine"] } })
            #expect(subscriber.notifications.allSatisfy { $0.rules == ["mine"] || $0.trigger == .close })
        }

        /// SIGTERM: subscribers get an `end` line, the final statistics are printed, the program is
        /// detached and the socket file removed; exit status 0.
        @Test(.enabled(if: KernelGate.canRun))
        func sigtermLeavesNothingAttached() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-term")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            #expect(try attachedProgramIDs(cgroup: cgroup.path).count == 1)
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.subscribe(filter: "", rules: ["fin=state == FIN_WAIT1"])
            let pair = try ConnectedPair.make()
            try pair.client.shutdownWrite()
            #expect(eventually { !subscriber.notifications.isEmpty })
            serve.process.signal(SIGTERM)
            #expect(serve.process.waitForExit() == 0, "\(serve.process.standardError)")
            #expect(try attachedProgramIDs(cgroup: cgroup.path).isEmpty, "SIGTERM left a program attached")
            #expect(eventually { subscriber.ends == 1 && subscriber.isClosed }, "\(subscriber.allLines.suffix(2))")
            let stats = serve.process.finalStats
            #expect((stats?.notifications ?? 0) >= 1, "\(serve.process.outputLines.suffix(1))")
            #expect(!FileManager.default.fileExists(atPath: serve.socketPath))
        }

        /// Garbage, oversized lines, unknown fields, invalid filters and rules: each gets an error line;
        /// the connection stays open unless the peer is not speaking the protocol; the daemon keeps serving.
        @Test(.enabled(if: KernelGate.canRun))
        func badRequestsGetErrorsAndNeverCrashTheDaemon() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-bad")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)

            let closing: [(String, String)] = [
                ("hello\n", "not a JSON object"),
                ("[1,2,3]\n", "not a JSON object"),
                (String(repeating: "[", count: 5000) + "\n", "not a JSON object"),
                ("{\"type\":\"subscribe\",\"filter\":\"" + String(repeating: "x", count: 70_000) + "\"}\n", "longer than"),
                (String(repeating: "a", count: 70_000), "longer than"), // no newline at all
                ("\u{0}\u{1}\u{2}\u{ff}\n", "not a JSON object"),
            ]
            for (request, fragment) in closing {
                let connection = try RawSubscriber(socketPath: serve.socketPath)
                try? connection.send(request)
                #expect(eventually(timeout: 5) { connection.isClosed }, "closed after \(request.prefix(40))")
                let error = connection.errorMessages.first ?? ""
                #expect(error.contains(fragment), "\(request.prefix(40)): \(connection.allLines)")
            }

            let recoverable: [(String, String)] = [
                ("{\"type\":\"subscribe\",\"filtr\":\"dport = :1\"}", "did you mean 'filter'"),
                ("{\"type\":\"subscribe\",\"filter\":\"dst 10.0.0.0/33\"}", "invalid filter"),
                ("{\"type\":\"subscribe\",\"rules\":[\"rtvar > 10\"]}", "rttvar"),
                ("{\"type\":\"subscribe\",\"rules\":\"rtt > 1ms\"}", "array of strings"),
                ("{\"type\":\"subscribe\",\"filter\":7}", "must be a string"),
                ("{\"type\":\"unsubscribe\"}", "unknown request type"),
                ("{\"filter\":\"\"}", "missing \"type\""),
            ]
            let connection = try RawSubscriber(socketPath: serve.socketPath)
            for (index, (request, fragment)) in recoverable.enumerated() {
                try connection.send(request + "\n")
                #expect(eventually(timeout: 5) { connection.errorMessages.count == index + 1 }, "\(request)")
                let message = connection.errorMessages.last ?? ""
                #expect(message.contains(fragment), "\(request): \(message)")
            }
            #expect(!connection.isClosed)
            // The same connection can still subscribe.
            try connection.subscribe(filter: "dport = :1", rules: ["rtt > 1s"])
            try connection.send("{\"type\":\"subscribe\"}\n")
            #expect(eventually { (connection.errorMessages.last ?? "").contains("already subscribed") })

            // Limits shared by all subscribers are named.
            let greedy = try RawSubscriber(socketPath: serve.socketPath)
            // 32 conditions fit one subscriber's filter, but not beside the first subscriber's one.
            let many = (0..<32).map { "dport = :\(1000 + $0)" }.joined(separator: " or ")
            do {
                try greedy.subscribe(filter: many, rules: [])
                Issue.record("33 conditions were accepted")
            } catch let refused as SubscribeRefused {
                #expect(refused.message.contains("together use 33 distinct conditions"), "\(refused)")
                #expect(refused.message.contains("TCPNOTIFY_MAX_FILTER_PREDICATES"), "\(refused)")
            }

            // `tcpnotify subscribe` turns a refusal into exit status 2.
            let cli = try CLIProcess.run(KernelSuite.CLI.tcpnotify(), ["subscribe", "--socket", serve.socketPath, "dport = :99999"])
            #expect(cli.status == 2, "\(cli.stderr)")
            #expect(cli.stderr.contains("port"), "\(cli.stderr)")
            #expect(serve.isRunning, "the daemon survived: \(serve.process.standardError)")
        }
    }
}

/// Events collected by an iterating task.
final class EventBox: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [SubscriptionEvent] = []

    func append(_ event: SubscriptionEvent) { lock.withLock { events.append(event) } }

    var notifications: [TCPNotification] {
        lock.withLock { events.compactMap { if case .notification(let n) = $0.kind { n } else { nil } } }
    }
}
