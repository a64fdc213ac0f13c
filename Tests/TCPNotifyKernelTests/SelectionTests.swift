import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// Only sockets matching the filter are enrolled and notify; everything else pays nothing.
    @Suite struct Selection {
        /// A listener per (host, port) and many connections spread over them.
        struct Fleet {
            var pairs: [(pair: ConnectedPair, serverHost: String, serverPort: UInt16, family: Family)] = []
            var listeners: [TCPSocket] = []
        }

        static let basePort = UInt16(20000 + (getpid() % 5000) * 2)
        static let rule = ["fin=state == FIN_WAIT1"]

        /// Connects `count` clients round-robin to listeners on the given endpoints.
        func connectFleet(count: Int, endpoints: [(host: String, port: UInt16, family: Family)]) throws -> Fleet {
            var fleet = Fleet()
            var listenerFDs: [String: TCPSocket] = [:]
            for endpoint in endpoints {
                let listener = try TCPSocket(domain: endpoint.family.domain)
                try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                if endpoint.host == "::" { try listener.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) }
                try listener.bind(SocketAddress(endpoint.host, port: endpoint.port))
                guard listen(listener.fd, 512) == 0 else { throw SocketError("listen") }
                listenerFDs["\(endpoint.host)|\(endpoint.port)"] = listener
                fleet.listeners.append(listener)
            }
            for index in 0..<count {
                let endpoint = endpoints[index % endpoints.count]
                let listener = listenerFDs["\(endpoint.host)|\(endpoint.port)"]!
                let target = endpoint.host == "::" ? "::ffff:127.0.0.1" : endpoint.host
                let client = try TCPSocket(domain: endpoint.family.domain)
                try client.connect(SocketAddress(target, port: endpoint.port))
                let accepted = accept(listener.fd, nil, nil)
                guard accepted >= 0 else { throw SocketError("accept") }
                let pair = ConnectedPair(client: client, server: TCPSocket(fd: accepted), listener: listener)
                fleet.pairs.append((pair, endpoint.host, endpoint.port, endpoint.family))
            }
            return fleet
        }

        /// Attaches with `filter`, builds the fleet, shuts every client down, and checks that exactly the
        /// expected client sockets notified and that the kernel enrolled exactly those.
        func expectSelection(
            _ filter: String, endpoints: [(host: String, port: UInt16, family: Family)], count: Int = 200,
            tuples: [TupleEntry] = [], clientMatches: (String, UInt16, Family) -> Bool
        ) throws {
            let cgroup = try TestCgroup(name: "selection")
            defer { cgroup.restore() }
            let harness = try WatchHarness(cgroupPath: cgroup.path, filter: filter, rules: Self.rule, tuples: tuples)
            let fleet = try connectFleet(count: count, endpoints: endpoints)
            var expected = Set<UInt64>()
            for entry in fleet.pairs where clientMatches(entry.serverHost, entry.serverPort, entry.family) {
                expected.insert(try entry.pair.client.cookie())
            }
            #expect(!expected.isEmpty && expected.count < count, "the case must select some but not all")
            for entry in fleet.pairs { try entry.pair.client.shutdownWrite() }
            _ = eventually { Set(harness.notifications.map(\.cookie)).count >= expected.count }
            usleep(50_000)
            let notified = Set(harness.notifications.map(\.cookie))
            #expect(notified == expected, "filter '\(filter)': \(notified.subtracting(expected).count) unexpected, \(expected.subtracting(notified).count) missing")
            let statistics = try harness.program.kernelStatistics()
            #expect(statistics.enrolled == UInt64(expected.count), "filter '\(filter)': enrolled")
            #expect(statistics.established >= UInt64(2 * count))
            withExtendedLifetime(fleet) {}
        }

        @Test(.enabled(if: KernelGate.canRun))
        func prefix() throws {
            try KernelGate.require()
            try expectSelection(
                "dst 127.0.2.0/24", endpoints: [("127.0.1.1", Self.basePort, .ipv4), ("127.0.2.1", Self.basePort, .ipv4)]
                    + (1...8).map { ("127.0.1.1", Self.basePort + UInt16($0), Family.ipv4) }
            ) { host, _, _ in host == "127.0.2.1" }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func portRange() throws {
            try KernelGate.require()
            let low = Self.basePort + 2, high = Self.basePort + 3
            try expectSelection(
                "dport >= :\(low) and dport <= :\(high)",
                endpoints: (0..<10).map { ("127.0.0.1", Self.basePort + UInt16($0), Family.ipv4) }
            ) { _, port, _ in port >= low && port <= high }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func negation() throws {
            try KernelGate.require()
            let excluded = Self.basePort + 1
            try expectSelection(
                "dst 127.0.2.0/24 and not dport = :\(excluded)",
                endpoints: [("127.0.2.1", Self.basePort, .ipv4), ("127.0.2.1", excluded, .ipv4),
                            ("127.0.1.1", Self.basePort, .ipv4), ("127.0.1.1", excluded, .ipv4)]
            ) { host, port, _ in host == "127.0.2.1" && port != excluded }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func ipv6() throws {
            try KernelGate.require()
            let port = Self.basePort + 4
            try expectSelection(
                "dst ::1 and dport = :\(port)",
                endpoints: [("::1", port, .ipv6), ("127.0.0.1", port, .ipv4), ("::1", port + 1, .ipv6),
                            ("127.0.0.1", port + 1, .ipv4)]
            ) { host, p, _ in host == "::1" && p == port }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func ipv4MappedSocketsMatchIPv4Prefixes() throws {
            try KernelGate.require()
            // "::" is a dual-stack listener reached at ::ffff:127.0.0.1 by IPv6 clients.
            let port = Self.basePort + 6
            try expectSelection(
                "dst 127.0.0.0/8 and dport = :\(port)",
                endpoints: [("::", port, .ipv6), ("::1", port + 1, .ipv6), ("127.0.0.1", port + 1, .ipv4)]
            ) { host, _, _ in host == "::" }
        }

        /// 10,000 exact tuples, of which a few are real connections (some with a wildcard local port).
        @Test(.enabled(if: KernelGate.canRun))
        func exactTupleFile() throws {
            try KernelGate.require()
            let port = Self.basePort + 8
            let clientPortBase = Self.basePort + 1000
            var lines: [String] = []
            for index in 0..<9990 {
                lines.append("10.\(index / 250 % 250).\(index % 250).1:\(1000 + index % 5000) 192.0.2.\(index % 250):443")
            }
            // Real: clients bound to 127.0.0.1:clientPortBase+i for i < 5, and any port from 127.0.0.3.
            for index in 0..<5 { lines.append("127.0.0.1:\(clientPortBase + UInt16(index)) 127.0.0.1:\(port)") }
            lines.append("127.0.0.3:* 127.0.0.1:\(port)")
            for index in 0..<4 { lines.append("127.0.0.9:\(clientPortBase + UInt16(index)) 127.0.0.1:\(port)") }
            let entries = try TupleFile.parse(lines.joined(separator: "\n"))
            #expect(entries.count == 10_000)

            let cgroup = try TestCgroup(name: "selection-tuples")
            defer { cgroup.restore() }
            let harness = try WatchHarness(cgroupPath: cgroup.path, rules: Self.rule, tuples: entries)
            let listener = try TCPSocket(domain: AF_INET)
            try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            try listener.bind(SocketAddress("127.0.0.1", port: port))
            guard listen(listener.fd, 512) == 0 else { throw SocketError("listen") }
            var clients: [TCPSocket] = [], servers: [TCPSocket] = []
            var expected = Set<UInt64>()
            for index in 0..<200 {
                let client = try TCPSocket(domain: AF_INET)
                try client.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                let source = index % 3 == 0 ? "127.0.0.3" : "127.0.0.1"
                let sourcePort: UInt16 = index < 5 ? clientPortBase + UInt16(index) : 0
                try client.bind(SocketAddress(index < 5 ? "127.0.0.1" : source, port: sourcePort))
                try client.connect(SocketAddress("127.0.0.1", port: port))
                let accepted = accept(listener.fd, nil, nil)
                guard accepted >= 0 else { throw SocketError("accept") }
                if index < 5 || source == "127.0.0.3" { expected.insert(try client.cookie()) }
                clients.append(client)
                servers.append(TCPSocket(fd: accepted))
            }
            for client in clients { try client.shutdownWrite() }
            _ = eventually { Set(harness.notifications.map(\.cookie)).count >= expected.count }
            usleep(50_000)
            #expect(Set(harness.notifications.map(\.cookie)) == expected)
            #expect(try harness.program.kernelStatistics().enrolled == UInt64(expected.count))
        }
    }
}
