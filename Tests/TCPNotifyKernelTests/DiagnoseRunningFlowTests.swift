import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `tcpnotify diagnose` started while the flow is already running (in the lab's client namespace): it
    /// enrolls the connection, takes its first record as the baseline, and gives a verdict within 3 s of
    /// its own start; verdict lines over time, `--interval` and `--once`.
    @Suite struct DiagnoseRunningFlow {
        static let commands = ["tc", "sysctl"]
        static let flow = "\(LabAddress.clientIPv4):\(LabScenario.clientPort)"

        /// The catalog's scenario, writing for `seconds` instead of 5 s: time for a head start, the start-up
        /// and the first verdict.
        static func lengthened(_ scenario: LabScenario, seconds: Int = 8) -> LabScenario {
            var longer = scenario
            if let index = longer.clientArguments.firstIndex(of: "--duration"), index + 1 < longer.clientArguments.count {
                longer.clientArguments[index + 1] = String(seconds)
            }
            return longer
        }

        /// A scenario per verdict class, with how long its flow runs before diagnose starts (long enough
        /// for the behaviour to be established: the bloated queue takes a second or two to fill, the idle
        /// flow stops writing after 1 s).
        struct RunningCase: Sendable, CustomTestStringConvertible {
            var scenario: LabScenario
            var headStartSeconds = 1.0
            /// False when nothing is acknowledged after diagnose starts (a reader that stopped for good).
            var movesData = true
            var testDescription: String { scenario.name }
        }

        /// Every verdict class: the sending end's seven (insufficient-data is no verdict), and the receiving
        /// end's reader-limited (slow and stopped reader), peer-limited, packet-loss and idle, each from the
        /// same flows' server sockets.
        static let runningCases: [RunningCase] = [
            RunningCase(scenario: lengthened(.applicationLimited)),
            RunningCase(scenario: lengthened(.receiverWindowLimited)),
            RunningCase(scenario: lengthened(.sendBufferLimited)),
            RunningCase(scenario: lengthened(.bufferbloat), headStartSeconds: 2),
            RunningCase(scenario: lengthened(.packetLoss)),
            RunningCase(scenario: lengthened(.networkLimited)),
            RunningCase(scenario: .idle, headStartSeconds: 1.5),
            RunningCase(scenario: lengthened(.stalledReader), headStartSeconds: 2, movesData: false),
        ]

        @Test(.enabled(if: KernelGate.canRun(needing: DiagnoseRunningFlow.commands)), arguments: runningCases)
        func aRunningFlowGetsItsVerdictWithinThreeSeconds(running testCase: RunningCase) throws {
            try KernelGate.require(needing: Self.commands)
            let scenario = testCase.scenario
            // As in DiagnosisScenarios: a run whose own getsockopt ground truth misses the condition (the
            // user-space delay line queued on a loaded machine) is the lab failing, not tcpnotify; it is made
            // once more, and a second miss fails.
            for attempt in 1...2 {
                if try judgeRunningFlow(testCase, lastAttempt: attempt == 2) { break }
                print("diagnose running flow \(scenario.name): the lab did not build its condition; running it again")
            }
        }

        /// One run of a running-flow case; false (nothing judged) when the lab missed its condition and this
        /// is not the last attempt.
        func judgeRunningFlow(_ testCase: RunningCase, lastAttempt: Bool) throws -> Bool {
            let scenario = testCase.scenario
            let cgroup = try TestCgroup(name: "diagnose-running-\(scenario.name)")
            defer { cgroup.restore() }
            let running = try RunningScenario(scenario, cgroup: cgroup, arguments: ["--for", "6s"],
                                              headStart: testCase.headStartSeconds, filter: DiagnosisScenarios.bothEnds)
            defer { running.diagnose.signal(SIGKILL) }
            let ends = [(end: "sender", endpoint: scenario.senderEndpoint, expectation: scenario.finalExpectation),
                        (end: "receiver", endpoint: scenario.receiverEndpoint,
                         expectation: scenario.receiverExpectation ?? scenario.finalExpectation)]

            _ = eventually(timeout: 8) { ends.allSatisfy { !running.verdicts(of: $0.endpoint).isEmpty } }
            let firsts = ends.map { running.verdicts(of: $0.endpoint).first }
            let run = try running.finish()
            if !lastAttempt && !run.failures.isEmpty {
                print("diagnose running flow \(scenario.name): \(run.failures.joined(separator: "; "))")
                return false
            }
            #expect(run.failures.isEmpty, "the lab's own ground truth: \(run.failures.joined(separator: "\n"))")
            var story: [String] = []
            for (end, first) in zip(ends, firsts) {
                let output = "\(running.diagnose.outputLines.map(\.text)) \(running.diagnose.standardError)"
                let (line, arrived) = try #require(first, "no verdict line for the \(end.end) \(end.endpoint): \(output)")
                let verdict = line.verdict.bottleneck.rawValue
                let seconds = Double(arrived - running.startedNanoseconds) / 1e9
                #expect(line.event == .first)
                #expect(line.verdict.end.rawValue == end.end, "\(line)")
                #expect(seconds <= 3, "\(end.end): first verdict \(String(format: "%.2f", seconds)) s after the command started")
                #expect(line.elapsedMs <= 3000, "\(line)")
                let accepted = end.expectation.accepts(line.verdict.bottleneck)
                    || Self.queuedLikeCongestion(run, scenario: scenario, end: end.end, verdict: verdict,
                                                 from: running.startedNanoseconds, to: arrived)
                #expect(accepted, "\(end.end): first verdict \(verdict) (\(line.verdict.summary)), expected \(end.expectation)")
                story.append("\(end.end) \(verdict) after \(String(format: "%.2f", seconds)) s (elapsed_ms \(line.elapsedMs))")
            }
            #expect(running.diagnose.waitForExit() == 0)
            #expect(running.diagnose.standardError.contains("enrolled 2 existing socket(s)"), "\(running.diagnose.standardError)")
            let report = running.diagnose.lines(of: Wire.DiagnosisLine.self).first { $0.src == scenario.senderEndpoint }
            let lifetime = report?.lifetime
            #expect(lifetime != nil, "the flow's summary at the end: \(String(describing: report))")
            if testCase.movesData {
                #expect((lifetime?.bytesAcked ?? 0) > 0, "the flow's summary at the end: \(String(describing: report))")
            }
            print("diagnose running flow \(scenario.name): first verdicts: \(story.joined(separator: "; ")); "
                + "\(running.diagnose.standardError.split(separator: "\n").first { $0.contains("ready in") } ?? "")")
            return true
        }

        /// The lossy path's delay line is a user-space program: on a loaded machine it can queue. Loss that
        /// comes with queueing of at least a quarter of min_rtt is congestion at a full queue
        /// (network-limited), so that verdict is right for the first window when the lab's own samples
        /// (getsockopt in the client) show such a queue over it; without one it is still a failure.
        static func queuedLikeCongestion(_ run: ScenarioRun, scenario: LabScenario, end: String, verdict: String,
                                         from startNanoseconds: UInt64, to endNanoseconds: UInt64) -> Bool {
            guard scenario.name == LabScenario.packetLoss.name, end == "sender", verdict == Bottleneck.networkLimited.rawValue else {
                return false
            }
            let window = run.clientPhase("bulk").samples.filter {
                $0.monotonicNanoseconds >= startNanoseconds && $0.monotonicNanoseconds <= endNanoseconds
            }
            guard let last = window.last, last.info[.minRtt] > 0 else { return false }
            let meanRTT = window.reduce(0.0) { $0 + Double($1.info[.rtt]) } / Double(window.count)
            let minRTT = Double(last.info[.minRtt])
            let queued = meanRTT - minRTT >= max(1_000, 0.25 * minRTT)
            print("diagnose running flow packet-loss: network-limited at the sender; the lab's samples queued "
                + "\(Int(meanRTT - minRTT)) us over min_rtt \(Int(minRTT)) us (\(queued ? "congestion: accepted" : "no queue: wrong"))")
            return queued
        }

        /// A bulk transfer on loopback: microsecond RTTs whose ratio to min_rtt is huge, and the odd
        /// retransmission; neither may make it bufferbloat or packet-loss, at either end. With --interval, a
        /// line a second.
        @Test(.enabled(if: KernelGate.canRun))
        func aCleanLoopbackTransferIsNeitherBufferbloatNorLoss() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "diagnose-loopback")
            defer { cgroup.restore() }
            let lab = try LabBinary.locate()
            let port = "45690"
            let server = try CLIProcess(lab, ["traffic", "server", "--port", port, "--max-seconds", "20"])
            defer { server.signal(SIGKILL) }
            usleep(300_000)
            let client = try CLIProcess(lab, ["traffic", "client", "--to", "127.0.0.1:\(port)", "--bulk", "--duration", "8"])
            defer { client.signal(SIGKILL) }
            usleep(1_000_000)
            let started = MonotonicClock.nanoseconds()
            let diagnose = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["diagnose", "--cgroup", cgroup.path, "--format", "json", "--for", "5s", "--interval", "1s",
                 "dport = :\(port) or sport = :\(port)"])
            defer { diagnose.signal(SIGKILL) }
            #expect(diagnose.waitForExit(timeout: 15) == 0)
            let verdictLines = diagnose.timedLines(of: Wire.VerdictLine.self)
            let reports = diagnose.lines(of: Wire.DiagnosisLine.self)
            let first = try #require(verdictLines.first { $0.line.event == .first },
                                     "\(diagnose.outputLines.map(\.text)) \(diagnose.standardError)")
            let seconds = Double(first.monotonicNanoseconds - started) / 1e9
            #expect(seconds <= 3, "first verdict \(seconds) s after the command started")
            let whileMoving = verdictLines.map(\.line.verdict.bottleneck.rawValue)
            let verdicts = whileMoving + reports.map(\.verdict.bottleneck.rawValue)
            #expect(Set(whileMoving).isDisjoint(with: ["bufferbloat", "packet-loss", "idle", "insufficient-data"]), "\(verdicts)")
            #expect(!verdicts.contains("bufferbloat") && !verdicts.contains("packet-loss"), "\(verdicts)")
            // Both ends: the receiving socket (local port \(port)) is judged as the receiver, also without alarms.
            let receiverEnds = verdictLines.filter { $0.line.src == "127.0.0.1:\(port)" }.map(\.line.verdict.end)
                + reports.filter { $0.src == "127.0.0.1:\(port)" }.map(\.verdict.end)
            #expect(!receiverEnds.isEmpty && receiverEnds.allSatisfy { $0 == .receiver }, "\(verdicts)")
            let intervals = verdictLines.filter { $0.line.event == .interval }
            #expect(intervals.count >= 2, "an --interval line a second while data moves: \(verdicts)")
            #expect(intervals.allSatisfy { $0.line.heldMs != nil })
            print("diagnose loopback: first verdict \(verdicts.first ?? "?") after \(String(format: "%.2f", seconds)) s "
                + "(elapsed_ms \(first.line.elapsedMs)); lines \(verdicts); "
                + "\(diagnose.standardError.split(separator: "\n").first { $0.contains("ready in") } ?? "")")
        }

        /// `--once`: one verdict line for the connection, then exit 3 when it is impaired, 0 when not.
        @Test(.enabled(if: KernelGate.canRun(needing: DiagnoseRunningFlow.commands)),
              arguments: [(LabScenario.receiverWindowLimited, Int32(3)), (LabScenario.applicationLimited, Int32(0))])
        func onceJudgesEachConnectionOnceAndSaysWhetherOneIsImpaired(scenario: LabScenario, status: Int32) throws {
            try KernelGate.require(needing: Self.commands)
            let cgroup = try TestCgroup(name: "diagnose-once-\(scenario.name)")
            defer { cgroup.restore() }
            let running = try RunningScenario(Self.lengthened(scenario), cgroup: cgroup, arguments: ["--once"])
            defer { running.diagnose.signal(SIGKILL) }
            let exit = running.diagnose.waitForExit(timeout: 12)
            let exited = Double(MonotonicClock.nanoseconds() - running.startedNanoseconds) / 1e9
            _ = try running.finish()
            #expect(exit == status, "\(running.diagnose.outputLines.map(\.text)) \(running.diagnose.standardError)")
            let verdicts = running.diagnose.lines(of: Wire.VerdictLine.self)
            #expect(verdicts.count == 1 && verdicts.first?.src == Self.flow, "\(running.diagnose.outputLines.map(\.text))")
            #expect(verdicts.first?.verdict.bottleneck == scenario.finalExpectation.accepted.first, "\(verdicts)")
            #expect(running.diagnose.lines(of: Wire.DiagnosisLine.self).isEmpty, "--once prints the verdict lines only")
            #expect(running.diagnose.lastLineType == Wire.Stats.lineType)
            #expect(exited < 5, "--once ends with the verdict, not at its 10 s limit: \(exited) s")
        }

        @Test(.enabled(if: KernelGate.canRun))
        func onceWithoutAMatchingConnectionEndsAtOnce() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "diagnose-once-none")
            defer { cgroup.restore() }
            let result = try CLIProcess.run(
                KernelSuite.CLI.tcpnotify(), ["diagnose", "--cgroup", cgroup.path, "--format", "json", "--once", "dport = :1"], timeout: 10)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("no matching connection"), "\(result.stderr)")
        }

        /// Application-limited for 6 s, then bulk into a slow reader: the verdict changes, and the line
        /// says from what and after how long; the summary shares the flow's life between both.
        @Test(.enabled(if: KernelGate.canRun(needing: DiagnoseRunningFlow.commands)))
        func aChangeOfBehaviourIsALine() throws {
            try KernelGate.require(needing: Self.commands)
            let cgroup = try TestCgroup(name: "diagnose-change")
            defer { cgroup.restore() }
            let running = try RunningScenario(LabScenario.behaviourChange, cgroup: cgroup, arguments: [], headStart: 0.5)
            defer { running.diagnose.signal(SIGKILL) }
            let run = try running.finish()
            _ = eventually(timeout: 5) { !running.diagnose.lines(of: Wire.DiagnosisLine.self).isEmpty }
            running.diagnose.signal(SIGINT)
            #expect(running.diagnose.waitForExit() == 0)
            #expect(run.failures.isEmpty, "\(run.failures.joined(separator: "\n"))")
            let lines = running.verdicts(of: Self.flow).map(\.line)
            let story = lines.map { "\($0.event):\($0.verdict.bottleneck)" }
            #expect(lines.first?.verdict.bottleneck == .applicationLimited, "\(story)")
            let change = lines.first { $0.event == .change && $0.verdict.bottleneck == .receiverWindowLimited }
            #expect(change != nil, "\(story)")
            #expect((change?.previousHeldMs ?? 0) >= 2000, "\(String(describing: change))")
            #expect(lines.allSatisfy { $0.event != .change || $0.previous != nil }, "\(story)")
            let report = running.diagnose.lines(of: Wire.DiagnosisLine.self).first { $0.src == Self.flow }
            let shares = Dictionary(uniqueKeysWithValues: report?.lifetime?.verdicts.map { ($0.bottleneck, $0.share) } ?? [])
            #expect((shares[.applicationLimited] ?? 0) > 0.2 && (shares[.receiverWindowLimited] ?? 0) > 0.1, "\(shares)")
            print("diagnose behaviour change: \(story); change at \(change.map { String($0.elapsedMs) } ?? "?") ms, previous held "
                + "\(change?.previousHeldMs.map(String.init) ?? "?") ms; shares \(shares)")
            for line in running.diagnose.outputLines where line.text.contains("\"src\":\"\(Self.flow)\"") { print(line.text) }
        }
    }
}

/// A lab scenario running on its own thread, and `tcpnotify diagnose` started `headStart` seconds after its
/// client, so the flow exists before the command.
final class RunningScenario: @unchecked Sendable {
    let diagnose: CLIProcess
    /// CLOCK_MONOTONIC just before `diagnose` was started.
    let startedNanoseconds: UInt64
    private let outcome: Outcome

    /// The scenario thread's result, once it is there.
    final class Outcome: @unchecked Sendable {
        let lock = NSLock()
        var result: Result<ScenarioRun, any Error>?
        let done = DispatchSemaphore(value: 0)
    }

    init(_ scenario: LabScenario, cgroup: TestCgroup, arguments: [String], headStart: Double = 1,
         filter: String = "dport = :\(LabScenario.serverPort)") throws {
        let trafficStarted = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        self.outcome = outcome
        let thread = Thread {
            let result = Result { try scenario.run(whileTrafficRuns: { trafficStarted.signal() }) }
            outcome.lock.withLock { outcome.result = result }
            trafficStarted.signal() // (a scenario that failed before its traffic)
            outcome.done.signal()
        }
        thread.start()
        trafficStarted.wait()
        usleep(UInt32(headStart * 1e6))
        startedNanoseconds = MonotonicClock.nanoseconds()
        diagnose = try CLIProcess(
            KernelSuite.CLI.tcpnotify(),
            ["diagnose", "--cgroup", cgroup.path, "--format", "json"] + arguments + [filter])
    }

    /// Waits for the scenario's end; its run, or its error.
    func finish() throws -> ScenarioRun {
        outcome.done.wait()
        outcome.done.signal()
        return try outcome.lock.withLock { outcome.result! }.get()
    }

    /// The `verdict` lines about the flow from `src`, with their arrival times.
    func verdicts(of src: String) -> [(line: Wire.VerdictLine, monotonicNanoseconds: UInt64)] {
        diagnose.timedLines(of: Wire.VerdictLine.self).filter { $0.line.src == src }
    }
}
