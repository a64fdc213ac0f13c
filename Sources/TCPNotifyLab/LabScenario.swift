import Foundation
import TCPNotifyCore

/// A reproducible path and flow whose bottleneck is known: the lab to build, what the traffic programs do,
/// the verdict(s) expected, and physical facts the kernel's own numbers must show. Running it yields the
/// client's `getsockopt(TCP_INFO)` series, which the classifier must label as expected (the ground truth
/// tcpnotify is then judged against). See `LabScenario.all` for the catalog.
public struct LabScenario: Sendable, CustomStringConvertible {
    /// What a phase of the flow should be diagnosed as, judged on the samples up to that phase's end.
    public struct Expectation: Sendable, CustomStringConvertible {
        /// A phase name as the client prints it (`bulk`, `rate=500000`, `idle`).
        public var phase: String
        /// The verdicts that are right; usually one.
        public var accepted: Set<TCPNotifyCore.Bottleneck>

        public init(phase: String, _ bottleneck: TCPNotifyCore.Bottleneck) {
            self.phase = phase
            accepted = [bottleneck]
        }

        public init(phase: String, anyOf accepted: Set<TCPNotifyCore.Bottleneck>) {
            self.phase = phase
            self.accepted = accepted
        }

        /// Any verdict but `rejected` (for flows whose limit is the machine itself).
        public init(phase: String, anyExcept rejected: Set<TCPNotifyCore.Bottleneck>) {
            self.phase = phase
            accepted = Set(TCPNotifyCore.Bottleneck.allCases).subtracting(rejected)
        }

        public func accepts(_ verdict: TCPNotifyCore.Bottleneck) -> Bool { accepted.contains(verdict) }

        public var description: String {
            accepted.count == 1 ? accepted.map(\.rawValue).joined()
                : "any of " + accepted.map(\.rawValue).sorted().joined(separator: ", ")
        }
    }

    public var name: String
    public var delay: PathDelay?
    public var bottleneck: Bottleneck?
    public var lossPercent: Double = 0
    public var family: LabFamily = .ipv4
    public var layout: LabLayout = .routed
    /// `tcpnotify-lab traffic server` options besides the port.
    public var serverArguments: [String] = []
    /// `tcpnotify-lab traffic client` options besides the target and local port.
    public var clientArguments: [String]
    /// In phase order; the last is the verdict on the whole flow.
    public var expectations: [Expectation]
    /// The verdict on the receiving end (the server's socket) over the whole flow; nil: not checked.
    public var receiverExpectation: Expectation?
    /// Physical facts about the ground truth; each returned string is a failure.
    public var physicalChecks: @Sendable (ScenarioRun) -> [String] = { _ in [] }

    public static let serverPort: UInt16 = 5001
    public static let clientPort: UInt16 = 40001

    public init(name: String, clientArguments: [String], expectations: [Expectation]) {
        self.name = name
        self.clientArguments = clientArguments
        self.expectations = expectations
    }

    public var description: String { name }

    /// The sending socket (the client's) and the receiving one (the server's), as `tcpnotify` prints them.
    public var senderEndpoint: String { family.endpoint(family.clientAddress, port: Self.clientPort) }
    public var receiverEndpoint: String { family.endpoint(family.serverAddress, port: Self.serverPort) }

    /// The same scenario over IPv6 (same path, the server's IPv6 address), named `ipv6-<name>`.
    public func overIPv6() -> LabScenario {
        var scenario = self
        scenario.name = "ipv6-" + name
        scenario.family = .ipv6
        return scenario
    }

    /// What is expected of the flow as a whole (its last phase).
    public var finalExpectation: Expectation { expectations.last ?? Expectation(phase: "", .insufficientData) }

    /// Builds the lab, runs server and client (in `cgroup` when given, else in this process's cgroup), and
    /// tears everything down again, also on failure. `beforeTraffic` runs (on this thread) once the lab and
    /// the server are up, before the client starts; `whileTrafficRuns` as soon as the client is started.
    public func run(cgroup: TestCgroup? = nil, callerFilePath: String = #filePath,
                    beforeTraffic: () throws -> Void = {}, whileTrafficRuns: () -> Void = {}) throws -> ScenarioRun {
        let started = Date()
        let lab = try NetworkLab(
            lossPercent: lossPercent, bottleneck: bottleneck, delay: delay, layout: layout, callerFilePath: callerFilePath)
        defer { lab.shutdown() }
        let program = try LabBinary.locate(callerFilePath: callerFilePath)
        let server = try lab.spawn(
            in: .server, [program, "traffic", "server", "--port", String(Self.serverPort), "--max-seconds", "20"] + serverArguments,
            cgroup: cgroup)
        defer { server.terminate() }
        try lab.waitForListener(in: .server, port: Self.serverPort)
        try beforeTraffic()
        let trafficStarted = Date()
        let clientProcess = try lab.spawn(
            in: .client,
            [program, "traffic", "client", "--to", family.endpoint(family.serverAddress, port: Self.serverPort),
             "--cport", String(Self.clientPort)] + clientArguments,
            cgroup: cgroup)
        whileTrafficRuns()
        let client = clientProcess.waitForExit(timeoutSeconds: 20)
        try client.checked()
        let serverResult = server.waitForExit(timeoutSeconds: 5)
        return try ScenarioRun(
            scenario: self, clientOutput: client.stdout, serverOutput: serverResult.stdout,
            trafficSeconds: Date().timeIntervalSince(trafficStarted), totalSeconds: Date().timeIntervalSince(started))
    }
}

/// One run of a scenario: both ends' tcp_info series and what the classifier makes of the client's.
public struct ScenarioRun: Sendable {
    public let scenario: LabScenario
    public let client: TCPInfoSeries
    public let server: TCPInfoSeries
    /// Per expectation, the classifier's verdict on the client series up to the end of that phase.
    public let groundTruth: [(expectation: LabScenario.Expectation, diagnosis: Diagnosis)]
    public let trafficSeconds: Double
    public let totalSeconds: Double

    init(scenario: LabScenario, clientOutput: String, serverOutput: String, trafficSeconds: Double, totalSeconds: Double) throws {
        self.scenario = scenario
        let client = try TCPInfoSeries(jsonLines: clientOutput).side("client")
        self.client = client
        server = try TCPInfoSeries(jsonLines: serverOutput).side("server")
        self.trafficSeconds = trafficSeconds
        self.totalSeconds = totalSeconds
        let classifier = BottleneckClassifier()
        groundTruth = scenario.expectations.map { expectation in
            (expectation, classifier.diagnose(client.through(phase: expectation.phase).samples))
        }
    }

    /// The classifier's verdict on the whole flow (its last expected phase).
    public var verdict: Diagnosis? { groundTruth.last?.diagnosis }

    /// The classifier's verdict on the server's series (the receiving end), over the whole flow.
    public var receiverVerdict: Diagnosis { BottleneckClassifier().diagnose(server.samples) }

    /// Expectations the ground truth does not meet, then failed physical checks; empty when the label holds.
    public var failures: [String] {
        var failures = groundTruth.compactMap { expectation, diagnosis -> String? in
            expectation.accepts(diagnosis.bottleneck) ? nil
                : "\(scenario.name), phase \(expectation.phase): ground truth says \(diagnosis.bottleneck) "
                    + "(\(diagnosis.summary)), expected \(expectation)"
        }
        if client.entries.isEmpty { failures.append("\(scenario.name): the client printed no tcp_info samples") }
        if let expected = scenario.receiverExpectation {
            let diagnosis = receiverVerdict
            if !expected.accepts(diagnosis.bottleneck) || diagnosis.end != .receiver {
                failures.append("\(scenario.name), receiving end: ground truth says \(diagnosis.end) \(diagnosis.bottleneck) "
                    + "(\(diagnosis.summary)), expected \(expected)")
            }
        }
        failures += scenario.physicalChecks(self).map { "\(scenario.name): \($0)" }
        return failures
    }

    /// How soon the ground truth settled: seconds from the flow's first sample until the classifier, fed the
    /// samples every 500 ms (as `tcpnotify diagnose` gets records), gave an accepted verdict and kept it to
    /// the end of the phase. Nil if it never did.
    public func secondsToVerdict(_ expectation: LabScenario.Expectation, classifier: BottleneckClassifier = BottleneckClassifier()) -> Double? {
        let series = client.through(phase: expectation.phase)
        guard let start = series.entries.first?.sample.monotonicNanoseconds else { return nil }
        var sampled: [DiagnosisSample] = []
        var settled: Double?
        for entry in series.entries where sampled.isEmpty
            || entry.sample.monotonicNanoseconds >= (sampled.last?.monotonicNanoseconds ?? 0) + 500_000_000 {
            sampled.append(entry.sample)
            let accepted = expectation.accepts(classifier.diagnose(sampled).bottleneck)
            if !accepted { settled = nil } else if settled == nil {
                settled = Double(entry.sample.monotonicNanoseconds - start) / 1e9
            }
        }
        return settled
    }

    /// The client's samples in one phase (for physical checks).
    public func clientPhase(_ name: String) -> TCPInfoSeries { client.phase(name) }
}
