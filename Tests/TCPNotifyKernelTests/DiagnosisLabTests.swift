import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// The lab pieces the diagnosis scenarios add: the TUN delay line and scenario cleanup.
    @Suite struct DiagnosisLab {
        @Test(.enabled(if: KernelGate.canRun(needing: ["sysctl"])))
        func delayLineAddsItsDelayBothWays() throws {
            try KernelGate.require(needing: ["sysctl"])
            let delayLinesBefore = try Self.delayProcesses()
            var scenario = LabScenario(name: "delay-check", clientArguments: ["--write-rate", "200k", "--duration", "1.5"],
                                       expectations: [LabScenario.Expectation(phase: "rate=200000", .applicationLimited)])
            scenario.delay = PathDelay(millisecondsEachWay: 15)
            let run = try scenario.run()
            let minRTT = try #require(run.client.entries.last?.sample.info[.minRtt])
            // 30 ms added to a path of tens of microseconds; the delay line's own work adds well under 2 ms.
            #expect((30_000...32_000).contains(minRTT), "min_rtt \(minRTT) us")
            #expect(try Self.delayProcesses().subtracting(delayLinesBefore).isEmpty, "the delay line stops with its lab")
        }

        @Test(.enabled(if: KernelGate.canRun(needing: ["sysctl"])))
        func aFailingScenarioLeavesNothingBehind() throws {
            try KernelGate.require(needing: ["sysctl"])
            let before = Set(NetworkLab.existingNamespaces())
            let delayLinesBefore = try Self.delayProcesses()
            var scenario = LabScenario(name: "broken", clientArguments: ["--phases", "warp:1"], expectations: [])
            scenario.delay = PathDelay(millisecondsEachWay: 1)
            #expect(throws: LabError.self) { try scenario.run() }
            #expect(Set(NetworkLab.existingNamespaces()) == before)
            #expect(try Self.delayProcesses().subtracting(delayLinesBefore).isEmpty)
        }

        /// Pids of running `tcpnotify-lab delay` processes.
        static func delayProcesses() throws -> Set<String> {
            let processes = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }
            return Set(processes.compactMap { pid in
                guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return nil }
                let words = command.split(separator: "\0")
                return words.contains("delay") && words.contains(where: { $0.hasSuffix("tcpnotify-lab") }) ? pid : nil
            })
        }
    }
}

/// The traffic programs' argument syntax (no root needed).
@Suite struct TrafficArgumentTests {
    @Test func phasesParse() throws {
        #expect(try TrafficPhase.parseList("rate=500k:4,bulk:4,idle:0.5") == [
            TrafficPhase(.rate(bytesPerSecond: 500_000), seconds: 4), TrafficPhase(.bulk, seconds: 4),
            TrafficPhase(.idle, seconds: 0.5),
        ])
        #expect(try TrafficPhase.parseList("rate=2M:1").first?.name == "rate=2000000")
        for bad in ["", "bulk", "bulk:-1", "rate=:1", "rate=0:1", "fast:1", "bulk:x"] {
            #expect(throws: LabError.self, "\(bad)") { try TrafficPhase.parseList(bad) }
        }
    }

    @Test func byteCountsAndAddressesParse() throws {
        #expect(try ByteCount.parse("64000") == 64_000)
        #expect(try ByteCount.parse("32k") == 32_000)
        #expect(try ByteCount.parse("1G") == 1e9)
        #expect(throws: LabError.self) { try ByteCount.parse("12x") }
        #expect(try LabSocketAddress(parsing: "10.77.2.1:5001").description == "10.77.2.1:5001")
        #expect(try LabSocketAddress(parsing: "[fd77:2::1]:5001").description == "[fd77:2::1]:5001")
        for bad in ["10.77.2.1", "fd77:2::1:5001", "[fd77:2::1]", "host:80", "10.77.2.1:99999"] {
            #expect(throws: LabError.self, "\(bad)") { try LabSocketAddress(parsing: bad) }
        }
    }
}
