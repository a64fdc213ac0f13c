import Foundation
import Glibc
import Synchronization

/// Three network namespaces, client —veth— router —veth— server, for tests that need real paths with
/// loss or a bottleneck (see `LabAddress` for the addresses; IPv4 and IPv6, default routes via the router).
///
/// Namespaces are named `tnl-<pid>-<n>-c/-r/-s`. `shutdown()` (also run on deinit) kills what `spawn` started
/// and deletes them; `cleanupStale()` removes what a crashed test process left behind.
///
/// Commands run through `ip netns exec`, so they inherit this process's cgroup: move the test process into
/// its `TestCgroup` before starting traffic, or pass `cgroup:` to `run`/`spawn`. Inside `ip netns exec` the
/// cgroup file system is not visible (it mounts a fresh /sys), so cgroup paths must be used from outside.
public final class NetworkLab: Sendable {
    public static let namespacePrefix = "tnl-"

    /// `tnl-<pid>-<n>`, the common part of this lab's namespace names.
    public let name: String
    public let layout: LabLayout
    private let callerFilePath: String
    private let state = Mutex(State())

    private struct State: Sendable {
        var spawned: [LabProcess] = []
        var isShutDown = false
    }

    private static let labsCreated = Atomic<Int>(0)

    /// Builds the lab; on failure, whatever was created is removed again.
    /// - Parameters:
    ///   - lossPercent: chance (0...100) that the router drops each TCP segment with payload headed toward
    ///     `lossToward`; 0 attaches no filter.
    ///   - lossToward: `.server` (the default) drops client→server data; `.client` drops server→client data.
    ///   - bottleneck: a tbf rate limit on the router's egress toward one end host.
    ///   - delay: a constant delay in the router, both ways (a `tcpnotify-lab delay` process).
    ///   - callerFilePath: locates the package, and so its `tcpnotify-lab` build, when loss or delay is used.
    ///   - layout: `.direct` joins client and server with one veth pair (no router, so no impairments).
    public init(
        lossPercent: Double = 0, lossToward: LabHost = .server, bottleneck: Bottleneck? = nil,
        delay: PathDelay? = nil, layout: LabLayout = .routed, callerFilePath: String = #filePath
    ) throws {
        let number = Self.labsCreated.add(1, ordering: .relaxed).newValue
        name = "\(Self.namespacePrefix)\(getpid())-\(number)"
        self.layout = layout
        self.callerFilePath = callerFilePath
        guard lossPercent.isFinite, (0...100).contains(lossPercent) else {
            throw LabError.invalidArgument("lossPercent \(lossPercent) is not within 0...100")
        }
        if layout == .direct && (lossPercent > 0 || bottleneck != nil || delay != nil) {
            throw LabError.invalidArgument("a direct lab has no router for loss, a bottleneck or a delay; use the routed layout")
        }
        do {
            try createTopology()
            if let bottleneck { try addBottleneck(bottleneck) }
            if let delay { try addDelay(delay) }
            if lossPercent > 0 { try setLoss(LossSettings(dropPercent: lossPercent), toward: lossToward) }
        } catch {
            shutdown()
            throw error
        }
    }

    deinit { shutdown() }

    public func namespace(_ host: LabHost) -> String { "\(name)-\(host.namespaceSuffix)" }
    public var clientNamespace: String { namespace(.client) }
    public var routerNamespace: String { namespace(.router) }
    public var serverNamespace: String { namespace(.server) }

    // MARK: - Running commands

    /// Runs a command inside `host`'s namespace to completion (killed after `timeoutSeconds`); see `spawn`.
    public func run(
        in host: LabHost, _ arguments: [String], cgroup: TestCgroup? = nil, timeoutSeconds: Double = 30
    ) throws -> CommandResult {
        try spawn(in: host, arguments, cgroup: cgroup).waitForExit(timeoutSeconds: timeoutSeconds)
    }

    /// Starts a command inside `host`'s namespace; `shutdown()` kills it if it is still running.
    /// It joins this process's cgroup, or `cgroup` when given (without moving this process).
    public func spawn(in host: LabHost, _ arguments: [String], cgroup: TestCgroup? = nil) throws -> LabProcess {
        guard !arguments.isEmpty else { throw LabError.invalidArgument("empty command") }
        try ensureRunning()
        let inNamespace = ["ip", "netns", "exec", namespace(host)] + arguments
        let process = try LabProcess(cgroup?.wrapping(inNamespace) ?? inNamespace)
        let accepted = state.withLock { state -> Bool in
            guard !state.isShutDown else { return false }
            state.spawned.removeAll { !$0.isRunning }
            state.spawned.append(process)
            return true
        }
        if !accepted {
            process.terminate()
            throw LabError.invalidArgument("network lab \(name) is shut down")
        }
        return process
    }

    /// Waits until something in `host` listens on TCP `port` (IPv4 or IPv6), e.g. a freshly spawned server.
    public func waitForListener(in host: LabHost, port: UInt16, timeoutSeconds: Double = 5) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        repeat {
            // /proc/net is per network namespace, so `cat` has to run inside it.
            let tables = try run(in: host, ["cat", "/proc/net/tcp", "/proc/net/tcp6"], timeoutSeconds: 5)
            if ProcNetTCP.hasListener(port: port, in: tables.stdout) { return }
            usleep(20_000)
        } while Date() < deadline
        throw LabError.timedOut(what: "a listener on port \(port) in \(namespace(host))", seconds: timeoutSeconds)
    }

    // MARK: - Impairments

    /// Attaches (or replaces) the loss filter on the router's egress toward `toward`.
    public func setLoss(_ settings: LossSettings, toward: LabHost = .server) throws {
        var arguments = [try LabBinary.locate(callerFilePath: callerFilePath), "loss",
                         "--dev", try routerInterface(toward: toward), "--egress", "--replace",
                         "--percent", String(settings.dropPercent)]
        if settings.matchesAllPackets { arguments.append("--all") }
        try run(in: .router, arguments).checked()
    }

    /// Removes the loss filter toward `toward` (nothing happens if there is none).
    public func clearLoss(toward: LabHost = .server) throws {
        try run(in: .router, [try LabBinary.locate(callerFilePath: callerFilePath), "clear",
                              "--dev", try routerInterface(toward: toward), "--egress"]).checked()
    }

    /// The loss filter's counters toward `toward`.
    public func lossCounters(toward: LabHost = .server) throws -> LossCounters {
        let result = try run(in: .router, [try LabBinary.locate(callerFilePath: callerFilePath), "stats",
                                           "--dev", try routerInterface(toward: toward), "--egress"]).checked()
        do {
            return try JSONDecoder().decode(LossCounters.self, from: Data(result.stdout.utf8))
        } catch {
            throw LabError.invalidArgument("unreadable loss counters '\(result.stdout)': \(error)")
        }
    }

    // MARK: - Teardown

    /// Kills spawned processes and deletes the namespaces. Safe to call more than once.
    public func shutdown() {
        let processes = state.withLock { state -> [LabProcess]? in
            if state.isShutDown { return nil }
            state.isShutDown = true
            defer { state.spawned.removeAll() }
            return state.spawned
        }
        guard let processes else { return }
        for process in processes { process.signal(SIGTERM) } // all at once, then wait for each
        for process in processes { process.terminate(graceSeconds: 1) }
        for host in LabHost.allCases { Self.deleteNamespace(namespace(host)) }
    }

    /// Deletes `tnl-<pid>-*` namespaces whose process is gone (a crashed or killed test run).
    public static func cleanupStale() {
        for namespace in existingNamespaces() {
            guard let pid = LabNamespaceName.ownerPID(namespace, prefix: namespacePrefix) else { continue }
            if !ProcessLiveness.isAlive(pid) { deleteNamespace(namespace) }
        }
    }

    /// Names of all named network namespaces (`ip netns list`), from the directory it reads.
    public static func existingNamespaces() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns"))?.sorted() ?? []
    }

    // MARK: - Setup

    private func ensureRunning() throws {
        if state.withLock({ $0.isShutDown }) { throw LabError.invalidArgument("network lab \(name) is shut down") }
    }

    private func routerInterface(toward host: LabHost) throws -> String {
        guard layout == .routed else { throw LabError.invalidArgument("a direct lab has no router") }
        guard host != .router else { throw LabError.invalidArgument("the router has no interface toward itself") }
        return LabAddress.routerInterface(toward: host)
    }

    private func createTopology() throws {
        for host in layout.hosts {
            let namespace = namespace(host)
            // Only a dead process with our pid can have left this name behind.
            if Self.existingNamespaces().contains(namespace) { Self.deleteNamespace(namespace) }
            try Self.ip(["netns", "add", namespace])
            // Before any interface exists: addresses, link-local ones included, are usable at once.
            var settings = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
            if host == .router { settings += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] }
            try run(in: host, ["sysctl", "-q", "-w"] + settings).checked()
            try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        }
        if layout == .direct { return try connectDirectly() }
        for link in LabLink.all { try connect(link) }
    }

    /// One veth pair between the end hosts, which keep their routed-lab addresses: each reaches the other's
    /// subnet on the link (the peer answers ARP and neighbour solicitations for its own address).
    private func connectDirectly() throws {
        let client = namespace(.client), server = namespace(.server), device = LabAddress.hostInterface
        try Self.ip(["-n", client, "link", "add", device, "type", "veth", "peer", "name", device, "netns", server])
        for link in LabLink.all {
            let host = namespace(link.host), other = LabLink.all.first { $0.host != link.host }!
            try Self.ip(["-n", host, "addr", "add", "\(link.hostIPv4)/\(link.ipv4PrefixLength)", "dev", device])
            try Self.ip(["-n", host, "addr", "add", "\(link.hostIPv6)/\(link.ipv6PrefixLength)", "dev", device, "nodad"])
            try Self.ip(["-n", host, "link", "set", device, "up"])
            try Self.ip(["-n", host, "route", "add", "\(other.hostIPv4)/32", "dev", device])
            try Self.ip(["-n", host, "-6", "route", "add", "\(other.hostIPv6)/128", "dev", device])
        }
    }

    private func connect(_ link: LabLink) throws {
        let router = namespace(.router), host = namespace(link.host), device = LabAddress.hostInterface
        try Self.ip(["-n", router, "link", "add", link.routerInterface, "type", "veth",
                     "peer", "name", device, "netns", host])
        try Self.ip(["-n", router, "addr", "add", "\(link.routerIPv4)/\(link.ipv4PrefixLength)", "dev", link.routerInterface])
        try Self.ip(["-n", router, "addr", "add", "\(link.routerIPv6)/\(link.ipv6PrefixLength)", "dev", link.routerInterface, "nodad"])
        try Self.ip(["-n", host, "addr", "add", "\(link.hostIPv4)/\(link.ipv4PrefixLength)", "dev", device])
        try Self.ip(["-n", host, "addr", "add", "\(link.hostIPv6)/\(link.ipv6PrefixLength)", "dev", device, "nodad"])
        try Self.ip(["-n", router, "link", "set", link.routerInterface, "up"])
        try Self.ip(["-n", host, "link", "set", device, "up"])
        try Self.ip(["-n", host, "route", "add", "default", "via", link.routerIPv4])
        try Self.ip(["-n", host, "-6", "route", "add", "default", "via", link.routerIPv6])
    }

    private func addBottleneck(_ bottleneck: Bottleneck) throws {
        try Self.run(["tc", "-n", namespace(.router), "qdisc", "add", "dev", try routerInterface(toward: bottleneck.toward),
                      "root", "tbf", "rate", "\(bottleneck.rateKbitPerSecond)kbit",
                      "burst", String(bottleneck.burstBytes), "limit", String(bottleneck.queueLimitBytes)])
    }

    /// Starts the delay process on a TUN device, then policy-routes everything the router forwards from
    /// either end host into it; packets it writes back arrive on the TUN device and take the main table.
    private func addDelay(_ delay: PathDelay) throws {
        guard delay.millisecondsEachWay.isFinite, delay.millisecondsEachWay >= 0 else {
            throw LabError.invalidArgument("delay \(delay.millisecondsEachWay) ms is not a non-negative number")
        }
        let router = namespace(.router), device = LabAddress.delayInterface, table = LabAddress.delayRoutingTable
        try Self.ip(["-n", router, "tuntap", "add", "dev", device, "mode", "tun"])
        let delayLine = try spawn(in: .router, [try LabBinary.locate(callerFilePath: callerFilePath), "delay",
                                                "--dev", device, "--ms", String(delay.millisecondsEachWay)])
        let deadline = Date().addingTimeInterval(5)
        while !delayLine.stdout.contains("ready") {
            guard delayLine.isRunning, Date() < deadline else {
                throw LabError.commandFailed(command: delayLine.command, status: -1, stderr: "not ready: " + delayLine.stderr)
            }
            usleep(10_000)
        }
        // The packets coming back from the TUN device fail a strict reverse-path check.
        try run(in: .router, ["sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                              "net.ipv4.conf.\(device).rp_filter=0"]).checked()
        try Self.ip(["-n", router, "link", "set", device, "up"])
        for family in ["-4", "-6"] {
            for host in [LabHost.client, .server] {
                try Self.ip(["-n", router, family, "rule", "add", "iif", LabAddress.routerInterface(toward: host),
                             "lookup", table, "pref", "100"])
            }
            try Self.ip(["-n", router, family, "route", "add", "default", "dev", device, "table", table])
        }
    }

    private static func ip(_ arguments: [String]) throws { try run(["ip"] + arguments) }

    private static func run(_ arguments: [String]) throws {
        try Subprocess.run(arguments, timeoutSeconds: 10).checked()
    }

    /// Kills whatever still runs in the namespace (it would keep the namespace alive), then deletes it.
    static func deleteNamespace(_ namespace: String) {
        if let pids = try? Subprocess.run(["ip", "netns", "pids", namespace], timeoutSeconds: 5), pids.succeeded {
            for pid in pids.stdout.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        _ = try? Subprocess.run(["ip", "netns", "delete", namespace], timeoutSeconds: 5)
    }
}
