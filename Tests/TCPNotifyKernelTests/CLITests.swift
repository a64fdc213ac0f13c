import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// The `tcpnotify` binary end to end: detach on SIGINT and on SIGKILL, errors and exit codes.
    @Suite struct CLI {
        static func tcpnotify() throws -> String { try builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN") }

        func startWatch(cgroup: TestCgroup, _ extra: [String]) throws -> CLIProcess {
            let process = try CLIProcess(Self.tcpnotify(), ["watch", "--cgroup", cgroup.path, "--format", "json"] + extra)
            let attached = eventually(timeout: commandStartSeconds) { process.standardError.contains("watching") }
            #expect(attached, "tcpnotify did not report attaching: \(process.standardError)")
            return process
        }

        @Test(.enabled(if: KernelGate.canRun))
        func sigintDetachesAndPrintsStatistics() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "cli-sigint")
            defer { cgroup.restore() }
            #expect(try attachedProgramIDs(cgroup: cgroup.path).isEmpty)
            let watch = try startWatch(cgroup: cgroup, ["--when", "state == FIN_WAIT1"])
            #expect(try attachedProgramIDs(cgroup: cgroup.path).count == 1)
            let pair = try ConnectedPair.make()
            try pair.client.shutdownWrite()
            let cookie = try pair.client.cookie()
            let notified = eventually {
                watch.notifications.contains { $0.cookie == cookie }
            }
            #expect(notified, "no notification line: \(watch.outputLines.map(\.text))")
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let last = watch.finalStats
            #expect(watch.lastLineType == Wire.Stats.lineType)
            #expect((last?.notifications ?? 0) >= 1)
            #expect(last?.ringDrops == 0)
            #expect(try attachedProgramIDs(cgroup: cgroup.path).isEmpty, "SIGINT left a program attached")
        }

        @Test(.enabled(if: KernelGate.canRun))
        func sigkillLeavesNothingAttached() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "cli-sigkill")
            defer { cgroup.restore() }
            let watch = try startWatch(cgroup: cgroup, [])
            let programs = try attachedProgramIDs(cgroup: cgroup.path)
            #expect(programs.count == 1)
            watch.signal(SIGKILL)
            _ = watch.waitForExit()
            #expect(try attachedProgramIDs(cgroup: cgroup.path).isEmpty, "SIGKILL left a program attached")
            // The program itself is freed once its last reference (link, fds) is gone.
            let freed = try eventually(timeout: 5) {
                let shown = try CLIProcess.run("/usr/sbin/bpftool", ["prog", "show", "id", String(programs.first ?? 0)])
                return shown.status != 0
            }
            #expect(freed, "program \(programs) still loaded after SIGKILL")
        }

        /// Without privileges: a clear message naming what is missing, and a non-zero exit (in `--mode bpf`;
        /// `--mode auto` polls instead, see PollingMode).
        @Test(.enabled(if: KernelGate.canRun(needing: ["setpriv"])))
        func unprivilegedUserIsToldWhatIsMissing() throws {
            try KernelGate.require(needing: ["setpriv"])
            let result = try CLIProcess.run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                 Self.tcpnotify(), "watch", "--mode", "bpf", "--format", "json"])
            #expect(result.status == 77, "missing privileges: \(result.status)")
            #expect(result.stderr.contains("permission denied"), "\(result.stderr)")
            #expect(result.stderr.contains("CAP_BPF"), "\(result.stderr)")
        }

        static let badInput: [(arguments: [String], fragment: String)] = [
            (["watch", "dst 10.0.0.0/33"], "prefix"),
            (["watch", "dport = :70000"], "port"),
            (["watch", "dst"], "expected"),
            (["watch", "(dport = :80"], ")"),
            (["watch", "sport ~ :80"], "expected"),
            (["watch", "--when", "rtvar > 10"], "rttvar"),
            (["watch", "--when", "rtt >"], "expected"),
            (["watch", "--when", "state == NOPE"], "state"),
            (["watch", "--when", "probes > 300"], "300"),
            (["watch", "--when", "rtt > 1 and"], "expected"),
            (["watch", "--when", ""], "expected"),
        ]

        @Test(arguments: badInput.indices)
        func badInputIsRejectedWithExitCode2(index: Int) throws {
            let (arguments, fragment) = Self.badInput[index]
            let result = try CLIProcess.run(Self.tcpnotify(), arguments)
            #expect(result.status == 2, "\(arguments): status \(result.status), stderr: \(result.stderr)")
            #expect(result.stderr.localizedCaseInsensitiveContains(fragment), "\(arguments): \(result.stderr)")
            if !(arguments.last ?? "").isEmpty {
                #expect(result.stderr.contains("^"), "points at the problem: \(result.stderr)")
            }
        }

        @Test func tuplesFileErrorsNameTheLine() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tuples-\(getpid()).txt").path
            try "127.0.0.1:1 127.0.0.1:2\nnot-a-tuple\n".write(toFile: path, atomically: true, encoding: .utf8)
            defer { unlink(path) }
            let result = try CLIProcess.run(Self.tcpnotify(), ["watch", "--tuples", path])
            #expect(result.status == 2)
            #expect(result.stderr.contains("2"), "\(result.stderr)")
        }
    }
}

extension KernelSuite {
    /// `--config` and SIGHUP: new rules reach sockets enrolled before the reload; a bad file is refused
    /// and the running configuration kept. In every mode: push, polling, and push with the iterator
    /// programs refused (the hybrid of tracepoints and iter/tcp).
    @Suite struct ConfigReload {
        static let modes: [(mode: String, refusing: String)] = [
            ("bpf", ""), ("poll", ""), ("bpf", "cb_flags_from_iterator,sweep_enrolled,forget_subscribers"),
        ]

        @Test(.enabled(if: KernelGate.canRun), arguments: modes.indices)
        func sighupReplacesRulesWithoutLosingEnrolledSockets(modeIndex: Int) throws {
            try KernelGate.require()
            let (mode, refusing) = Self.modes[modeIndex]
            let cgroup = try TestCgroup(name: "cli-reload")
            defer { cgroup.restore() }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-\(getpid()).yaml").path
            defer { unlink(path) }
            try "filter: \"dst 127.0.0.1\"\nrules:\n  - \"never=state == LISTEN\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            let watch = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["watch", "--mode", mode, "--cgroup", cgroup.path, "--format", "json", "--config", path, "--interval", "200ms"],
                environment: refusing.isEmpty ? [:] : ["TCPNOTIFY_REFUSE_PROGRAMS": refusing])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")

            let pair = try ConnectedPair.make() // enrolled under the first configuration
            let cookie = try pair.client.cookie()
            try transfer(256 << 10, from: pair.client, to: pair.server)

            try "rules:\n  - nope=rtt >> 5\n".write(toFile: path, atomically: true, encoding: .utf8)
            watch.signal(SIGHUP)
            #expect(eventually { watch.standardError.contains("reload failed") }, "\(watch.standardError)")

            // FIN_WAIT2 lasts until the server closes, so polling sees it too.
            try "filter: \"dst 127.0.0.1\"\nrules:\n  - {name: fin, when: \"state == FIN_WAIT2\"}\n".write(
                toFile: path, atomically: true, encoding: .utf8)
            watch.signal(SIGHUP)
            #expect(eventually { watch.standardError.contains("reloaded") }, "\(watch.standardError)")
            try pair.client.shutdownWrite()
            let notified = eventually {
                watch.notifications.contains { $0.rules == ["fin"] && $0.cookie == cookie }
            }
            #expect(notified, "\(mode) \(refusing): the socket enrolled before the reload notifies under the new rule: \(watch.outputLines.map(\.text))")
            watch.signal(SIGTERM)
            #expect(watch.waitForExit() == 0)
        }

        @Test func badConfigFileIsRejectedWithExitCode2() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-bad-\(getpid()).yaml").path
            defer { unlink(path) }
            try "filter: \"dport = :443\"\nrulez:\n  - bufferbloat\n".write(toFile: path, atomically: true, encoding: .utf8)
            let result = try CLIProcess.run(KernelSuite.CLI.tcpnotify(), ["watch", "--config", path])
            #expect(result.status == 2)
            #expect(result.stderr.contains("rulez"), "\(result.stderr)")
        }
    }
}

extension KernelSuite {
    /// `watch --diagnose`: notifications carry the flow's verdict; the sampling records behind it do not
    /// show on their own.
    @Suite struct WatchDiagnose {
        @Test(.enabled(if: KernelGate.canRun))
        func notificationsCarryTheCurrentVerdict() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "cli-diagnose")
            defer { cgroup.restore() }
            let watch = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["watch", "--cgroup", cgroup.path, "--format", "json", "--diagnose", "--when", "fin=state == FIN_WAIT1"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            let pair = try ConnectedPair.make()
            let cookie = try pair.client.cookie()
            let deadline = Date().addingTimeInterval(1.5)
            while Date() < deadline { try transfer(1 << 20, from: pair.client, to: pair.server) }
            try pair.client.shutdownWrite()
            func isMine(_ line: Wire.Notification) -> Bool { line.cookie == cookie }
            #expect(eventually { watch.notifications.contains { isMine($0) && $0.trigger == .state } })
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let lines = watch.notifications
            #expect(lines.allSatisfy { !$0.rules.contains("diagnose_sample") })
            let fin = lines.first { isMine($0) && $0.rules == ["fin"] }
            #expect(fin?.diagnosis != nil, "the FIN_WAIT1 notification carries a verdict: \(String(describing: fin))")
            #expect(lines.filter(isMine).count <= 2, "only the rule's notification and the close record: \(lines.filter(isMine).count)")
        }
    }
}
