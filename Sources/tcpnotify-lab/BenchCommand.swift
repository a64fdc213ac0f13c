import ArgumentParser
import Foundation
import TCPNotifyBench
import TCPNotifyLab

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark tcpnotify against polling: idle cost, detection latency, data-path overhead, notification throughput, enrollment and memory.",
        discussion: """
            Needs root. Runs everything in a child cgroup of the cgroup v2 mount, turns on \
            kernel.bpf_stats_enabled for the run, and undoes both on every exit (SIGINT included). Use \
            scripts/bench, which builds release binaries first. Not a test: it takes minutes and its figures \
            depend on the machine.
            """)

    @Option(help: "Seconds of steady-state CPU measurement per idle-cost mode.")
    var duration: Double = 30

    @Option(help: "Idle connection counts, comma-separated.")
    var sizes: String = "1000,10000,50000"

    @Option(help: "Parts to run, comma-separated: \(BenchPart.allCases.map(\.rawValue).joined(separator: ",")) (default: all but callback-cost and records).")
    var only: String?

    @Option(help: "The tcpnotify binary (default: next to this executable).")
    var tcpnotify: String?

    @Option(help: "Detection-latency samples per mode.")
    var latencySamples: Int = 200

    @Option(help: "Alternating unmonitored/monitored iperf3 rounds of the data-path part.")
    var datapathRuns: Int = 3

    @Option(help: "Seconds per data-path iperf3 run.")
    var datapathSeconds: Double = 5

    @Option(help: "Parallel flows of the throughput part (iperf3 -P, at most 128).")
    var flows: Int = 64

    @Option(help: "Seconds of the throughput part.")
    var throughputSeconds: Double = 5

    @Option(help: "Runs per rule set of the callback-cost part.")
    var callbackCostRuns: Int = 3

    @Flag(help: "Print the results as JSON instead of tables.")
    var json = false

    @Option(help: "Also write the JSON results to this file.")
    var jsonFile: String?

    func validate() throws {
        guard duration > 0, datapathSeconds >= 1, throughputSeconds >= 1 else { throw ValidationError("durations must be positive") }
        guard (1...128).contains(flows) else { throw ValidationError("--flows must be within 1...128 (iperf3's limit)") }
        guard latencySamples > 0, datapathRuns > 0, callbackCostRuns > 0 else { throw ValidationError("counts must be positive") }
        _ = try parsedSizes()
        _ = try parsedParts()
    }

    func parsedSizes() throws -> [Int] {
        let values = sizes.split(separator: ",").map { Int($0.filter { $0 != "_" }) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 400_000 }) else {
            throw ValidationError("--sizes takes positive counts up to 400000, e.g. 1000,10000,50000")
        }
        return values.compactMap { $0 }
    }

    func parsedParts() throws -> [BenchPart] {
        guard let only else { return BenchPart.defaultParts }
        return try only.split(separator: ",").map { name in
            let word = name == "memory" ? "enrollment" : String(name)
            guard let part = BenchPart(rawValue: word) else {
                throw ValidationError("unknown part '\(name)'; parts: \(BenchPart.allCases.map(\.rawValue).joined(separator: ", ")), memory")
            }
            return part
        }
    }

    func run() throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark needs root (BPF, cgroups, sysctl)") }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let directory = URL(filePath: executable).deletingLastPathComponent()
        var settings = BenchSettings(
            tcpnotifyPath: tcpnotify ?? directory.appending(path: "tcpnotify").path(), labPath: executable)
        guard FileManager.default.isExecutableFile(atPath: settings.tcpnotifyPath) else {
            throw ValidationError("no tcpnotify binary at \(settings.tcpnotifyPath); pass --tcpnotify PATH")
        }
        settings.parts = try parsedParts()
        settings.sizes = try parsedSizes()
        settings.durationSeconds = duration
        settings.latencySamples = latencySamples
        settings.dataPathRuns = datapathRuns
        settings.dataPathSeconds = datapathSeconds
        settings.throughputFlows = flows
        settings.throughputSeconds = throughputSeconds
        settings.callbackCostRuns = callbackCostRuns
        let benchmark = try Benchmark(settings: settings)
        let report = benchmark.run { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        if let jsonFile { try report.json().write(toFile: jsonFile, atomically: true, encoding: .utf8) }
        print(json ? report.json() : report.text())
    }
}

struct IdleConnectionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle-connections",
        abstract: "Hold N established idle loopback connections until SIGTERM (the benchmark's helper).",
        discussion: """
            --matched of them go to 127.0.0.1:BASE, the rest to BASE+1, BASE+2, ... (20,000 per port). Prints one \
            JSON line when they are all up; raises RLIMIT_NOFILE to fit 2N descriptors (within the hard limit \
            unless it has CAP_SYS_RESOURCE).
            """)

    @Option(help: "Connections to hold.")
    var count: Int

    @Option(help: "How many of them go to --base-port.")
    var matched: Int = 0

    @Option(help: "First listener port (keep it below the ephemeral range, 32768).")
    var basePort: UInt16 = 21_000

    @Option(help: "Loopback address to listen on and connect to (several helpers use 127.0.0.1, 127.0.0.2, ...).")
    var address: String = "127.0.0.1"

    func validate() throws {
        guard count > 0, matched >= 0 else { throw ValidationError("--count must be positive, --matched not negative") }
        guard Int(basePort) + count / IdleConnections.connectionsPerPort + 2 < 32_768 else {
            throw ValidationError("ports would reach the ephemeral range (32768+)")
        }
    }

    func run() throws {
        let octets = address.split(separator: ".").compactMap { UInt32($0) }
        guard octets.count == 4, octets.allSatisfy({ $0 < 256 }), octets[0] == 127 else {
            throw ValidationError("--address must be an IPv4 loopback address (127.x.y.z)")
        }
        let host = octets.reduce(0) { $0 << 8 | $1 }
        try IdleConnections(count: count, matchedCount: matched, basePort: basePort, address: host).run()
    }
}
