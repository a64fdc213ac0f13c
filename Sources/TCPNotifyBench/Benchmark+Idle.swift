import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab

/// Idle cost (CPU over a steady-state window: push versus polling the same rules at 1 s and 100 ms, and
/// versus `ss -tin` every second), enrollment time of pre-existing sockets and the watcher's peak RSS, for
/// each size of held, idle connections.
extension Benchmark {
    private struct IdleMode {
        let name: String
        let extra: [String]
        /// ss instead of tcpnotify.
        var isSS = false
    }

    func runIdleAndEnrollment(progress: (String) -> Void) throws {
        let doIdle = settings.parts.contains(.idle), doEnrollment = settings.parts.contains(.enrollment)
        var idle = BenchSection(
            title: "Idle cost: CPU over \(BenchFormat.number(settings.durationSeconds)) s with N idle connections, 1 % selected",
            columns: ["N", "mode", "CPU ms", "% of a core", "× push", "sweeps", "enrolled", "peak RSS MiB"])
        var enrollment = BenchSection(
            title: "Enrollment of existing sockets and memory (every client socket selected)",
            columns: ["N", "enrolled", "namespaces", "enroll ms", "startup ms", "ready: its parts (ms)", "peak RSS MiB"])
        idle.notes.append("Rules: \(Self.idleRules.joined(separator: "; ")). CPU = tcpnotify's CPU (all threads, "
            + "/proc/PID/task/*/schedstat, which includes the sweep's BPF run time) plus the sock_ops program's kernel run time; polling = the poller's CPU; "
            + "ss = CPU of the `ss -tin FILTER` children (wait4 rusage; output discarded, no rule evaluation). "
            + "The window starts 1 s after the watcher is up, so startup is excluded.")
        idle.notes.append("push = the sweep's share over its period plus the rest over the window: "
            + "(\"push, window\" − its sweeps × one sweep) + one sweep × window / period, where one sweep = "
            + "(\"push, sweep every 500ms\" − \"push, no sweep\") / \(Int(settings.durationSeconds / IdleSweepCost.forcedIntervalSeconds)) "
            + "and the period is tcpnotify's own `sweep: next after ...` line when the rules allow skipping ticks before the "
            + "sweep horizon (its first sweep, 1 s after the start and before the window, says when no enrolled socket can "
            + "reach a time rule sooner), else its `sweep: every ...` line (the same rules and sockets in every run). "
            + "The sweeps column counts a run's sweeps in the window (from tcpnotify's stats line, less that first sweep).")
        if !features.enrollsExisting {
            idle.notes.append("This build does not enroll pre-existing sockets: push watched 0 of the idle sockets, so its "
                + "idle cost is not representative (unverified).")
        }
        if !features.pollMode { idle.notes.append("This build has no --mode poll: polling rows are missing.") }

        for (index, size) in settings.sizes.enumerated() {
            let basePort = Self.idleBasePort + UInt16(index * 10)
            let matched = max(1, size / 100)
            progress("   holding \(size) idle connections (\(matched) to :\(basePort))")
            let helper = try holdIdleConnections(count: size, matched: matched, basePort: basePort)
            defer { helper.stop() }

            if doIdle {
                try measureIdle(size: size, basePort: basePort, section: &idle, progress: progress)
            }
            if doEnrollment {
                let ports = IdleConnections.ports(count: size, matchedCount: matched, basePort: basePort)
                try measureEnrollment(
                    size: size, filter: "dport >= :\(ports.lowerBound) and dport <= :\(ports.upperBound)",
                    section: &enrollment, progress: progress)
            }
        }
        if doIdle {
            sections.append(idle)
            idleTarget()
        }
        if doEnrollment {
            if !features.enrollsExisting {
                enrollment.notes.append("This build does not enroll existing sockets (no `enrolled ...` line): unverified.")
            }
            enrollment.notes.append("enroll ms = tcpnotify's own `enrolled N existing socket(s) in M network namespace(s) in X ms`; "
                + "startup ms = from spawning tcpnotify to its `enrolled` line (load, verify, attach, enroll), seen by the benchmark; "
                + "ready = tcpnotify's own `ready in N ms since exec (...)` line with its parts (before main, load and verify, attach, enroll); "
                + "peak RSS = VmHWM 3 s after start (after a few sweeps).")
            sections.append(enrollment)
            enrollmentTargets()
        }
    }

    /// Starts `idle-connections` helpers in the children cgroup (as many as the descriptor limit needs,
    /// each on its own loopback address, same ports) and waits until all their connections are up.
    func holdIdleConnections(count: Int, matched: Int, basePort: UInt16) throws -> IdleConnectionGroup {
        let helperCount = (count + IdleConnections.maximumPerProcess - 1) / IdleConnections.maximumPerProcess
        let group = IdleConnectionGroup()
        for index in 0..<helperCount {
            let share = count / helperCount + (index < count % helperCount ? 1 : 0)
            let matchedShare = matched / helperCount + (index < matched % helperCount ? 1 : 0)
            group.helpers.append(try BenchProcess(
                [settings.labPath, "idle-connections", "--count", "\(share)", "--matched", "\(matchedShare)",
                 "--base-port", "\(basePort)", "--address", "127.0.0.\(index + 1)"],
                cgroup: environment.childrenCgroup))
        }
        let deadline = Date().addingTimeInterval(300)
        for helper in group.helpers {
            while helper.isRunning && Date() < deadline && !helper.otherStdoutLines.contains(where: { $0.contains("\"ready\"") }) {
                BenchClock.sleep(seconds: 0.05)
            }
            guard helper.otherStdoutLines.contains(where: { $0.contains("\"ready\"") }) else {
                group.stop()
                throw LabError.commandFailed(command: helper.command, status: helper.stop().status, stderr: helper.stderr)
            }
        }
        return group
    }

    private func measureIdle(size: Int, basePort: UInt16, section: inout BenchSection, progress: (String) -> Void) throws {
        let filter = "dport = :\(basePort)"
        // "push, window" runs the schedule the rules derive (a sweep every 3 min: none in the window); the
        // forced run, less "push, no sweep", prices one sweep (IdleSweepCost).
        let forced = "\(Int(IdleSweepCost.forcedIntervalSeconds * 1000))ms"
        var modes = [IdleMode(name: "push, window", extra: []), IdleMode(name: "push, no sweep", extra: ["--sweep-interval", "0"]),
                     IdleMode(name: "push, sweep every \(forced)", extra: ["--sweep-interval", forced])]
        if features.pollMode {
            modes += [IdleMode(name: "poll 1s", extra: ["--mode", "poll", "--interval", "1s"]),
                      IdleMode(name: "poll 100ms", extra: ["--mode", "poll", "--interval", "100ms"])]
        }
        modes.append(IdleMode(name: "ss -tin 1s", extra: [], isSS: true))
        var cpuByMode: [String: Double] = [:]
        var rowsByMode: [String: [String]] = [:]
        var sweepsByMode: [String: UInt64] = [:]
        var sweepLine: SweepLine?
        func row(_ name: String, _ nanoseconds: Double, sweeps: String, enrolled: String, rss: String) -> [String] {
            [BenchFormat.number(Double(size)), name, BenchFormat.milliseconds(nanoseconds),
             String(format: "%.3f", nanoseconds / (settings.durationSeconds * 1e9) * 100), "", sweeps, enrolled, rss]
        }
        for mode in modes {
            progress("   N=\(size) \(mode.name): \(BenchFormat.number(settings.durationSeconds)) s")
            var cpuNanoseconds: Double
            var enrolled = "", rss = "", sweeps = ""
            if mode.isSS {
                cpuNanoseconds = runSSLoop(filter: filter, seconds: settings.durationSeconds)
            } else {
                let watcher = try startWatcher(filter: filter, rules: Self.idleRules, extra: mode.extra)
                // Under a sweep horizon the first sweep comes 1 s after the start (tcpnotify's line says when
                // the next is due): it is before the window, not part of it.
                let sweptFirst = mode.extra.isEmpty && watcher.waitForStderr(containing: SweepLine.horizonPrefix, timeoutSeconds: 5)
                let sweepsBeforeWindow: UInt64 = sweptFirst ? 1 : 0
                BenchClock.sleep(seconds: 1)
                let cpuBefore = watcher.cpuNanoseconds(), bpfBefore = BPFRunStatistics.of(pid: watcher.pid)
                BenchClock.sleep(seconds: settings.durationSeconds)
                let cpuAfter = watcher.cpuNanoseconds(), bpfAfter = BPFRunStatistics.of(pid: watcher.pid)
                rss = watcher.peakResidentBytes().map { String(format: "%.1f", Double($0) / 1_048_576) } ?? "?"
                if mode.extra.isEmpty { sweepLine = SweepLine(stderr: watcher.stderr) }
                let stats = stopWatcher(watcher)
                enrolled = stats.map { "\($0.enrolled)" } ?? "?"
                if let stats, !mode.extra.contains("poll") {
                    sweepsByMode[mode.name] = stats.sweeps - min(stats.sweeps, sweepsBeforeWindow)
                    sweeps = "\(stats.sweeps - min(stats.sweeps, sweepsBeforeWindow))"
                }
                // The sweep's BPF programs run inside tcpnotify's own syscalls, so schedstat already holds
                // them; sock_ops runs in whichever context TCP runs in, so add it.
                cpuNanoseconds = Double(cpuAfter &- cpuBefore)
                    + Double(bpfAfter.sockOps.runTimeNanoseconds &- bpfBefore.sockOps.runTimeNanoseconds)
            }
            cpuByMode[mode.name] = cpuNanoseconds
            rowsByMode[mode.name] = row(mode.name, cpuNanoseconds, sweeps: sweeps, enrolled: enrolled, rss: rss)
            section.figures["idle_\(size)_\(mode.name.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: " ", with: "_"))_cpu_ns"] = cpuNanoseconds
        }
        let cost = IdleSweepCost(
            windowSeconds: settings.durationSeconds, windowNanoseconds: cpuByMode["push, window"] ?? 0,
            windowSweeps: sweepsByMode["push, window"] ?? 0,
            perSweepNanoseconds: IdleSweepCost.perSweep(
                forcedNanoseconds: cpuByMode["push, sweep every \(forced)"] ?? 0, noSweepNanoseconds: cpuByMode["push, no sweep"] ?? 0,
                windowSeconds: settings.durationSeconds),
            periodSeconds: sweepLine.flatMap { $0.horizonSeconds ?? $0.periodSeconds })
        let push = max(cost.amortizedNanoseconds, 1)
        let period = sweepLine.map { ($0.horizonSeconds ?? $0.periodSeconds).map { "1 per \(BenchFormat.number($0)) s" } ?? "none" } ?? "?"
        var pushRow = row("push", cost.amortizedNanoseconds, sweeps: period, enrolled: rowsByMode["push, window"]?[6] ?? "",
                          rss: rowsByMode["push, window"]?[7] ?? "")
        pushRow[4] = "1"
        section.rows.append(pushRow)
        section.figures["idle_\(size)_push_cpu_ns"] = cost.amortizedNanoseconds
        section.figures["idle_\(size)_one_sweep_ns"] = cost.perSweepNanoseconds
        if let periodSeconds = sweepLine?.periodSeconds { section.figures["idle_\(size)_sweep_period_s"] = periodSeconds }
        if let horizonSeconds = sweepLine?.horizonSeconds { section.figures["idle_\(size)_sweep_horizon_s"] = horizonSeconds }
        section.notes.append("N = \(BenchFormat.number(Double(size))): one sweep \(BenchFormat.milliseconds(cost.perSweepNanoseconds)) ms; "
            + "`sweep: \(sweepLine?.text ?? "(no sweep line)")`"
            + (sweepLine?.horizonText.map { "; after the first sweep (1 s after the start, before the window): `\($0)`" } ?? "") + ".")
        for mode in modes {
            var row = rowsByMode[mode.name]!
            // The ratio column compares the others with push; push's own runs are its parts.
            row[4] = mode.name.hasPrefix("push") ? "–" : BenchFormat.ratio((cpuByMode[mode.name] ?? 0) / push)
            section.rows.append(row)
        }
        if let poll = cpuByMode["poll 1s"] { measured["idle_ratio_poll1s_\(size)"] = poll / push }
        measured["idle_ss_ratio_\(size)"] = (cpuByMode["ss -tin 1s"] ?? 0) / push
    }

    /// Runs `ss -tin FILTER` once a second for `seconds`, output discarded; returns the children's CPU in ns.
    private func runSSLoop(filter: String, seconds: Double) -> Double {
        var total = 0.0
        let start = MonotonicClock.nanoseconds()
        var tick = 0
        while Double(MonotonicClock.nanoseconds() - start) / 1e9 < seconds {
            if let ss = try? BenchProcess(["ss", "-tin", filter], cgroup: environment.childrenCgroup) {
                total += Double(ss.wait(timeoutSeconds: 10).cpuNanoseconds)
            }
            tick += 1
            let next = start + UInt64(tick) * 1_000_000_000
            let now = MonotonicClock.nanoseconds()
            if next > now { BenchClock.sleep(seconds: Double(next - now) / 1e9) }
        }
        return total
    }

    private func measureEnrollment(size: Int, filter: String, section: inout BenchSection, progress: (String) -> Void) throws {
        progress("   N=\(size) enrollment and memory")
        let spawned = MonotonicClock.nanoseconds()
        let watcher = try startWatcher(filter: filter, rules: Self.idleRules)
        let startupNanoseconds = Double(MonotonicClock.nanoseconds() - spawned)
        BenchClock.sleep(seconds: 3)
        let rss = watcher.peakResidentBytes().map { Double($0) } ?? .nan
        let stderr = watcher.stderr
        let stats = stopWatcher(watcher)
        let line = EnrollmentLine(stderr: stderr)
        section.rows.append([
            BenchFormat.number(Double(size)), line.map { BenchFormat.number(Double($0.sockets)) } ?? "\(stats?.enrolled ?? 0)?",
            line.map { "\($0.namespaces)" } ?? "?", line.map { String(format: "%.1f", $0.milliseconds) } ?? "n/a",
            String(format: "%.0f", startupNanoseconds / 1e6), ReadyLine(stderr: stderr)?.parts ?? "n/a",
            String(format: "%.1f", rss / 1_048_576),
        ])
        if let ready = ReadyLine(stderr: stderr) {
            section.figures["ready_\(size)_ms"] = ready.milliseconds
            measured["ready_ms_\(size)"] = ready.milliseconds
        }
        if let line {
            section.figures["enroll_\(size)_ms"] = line.milliseconds
            section.figures["enroll_\(size)_sockets"] = Double(line.sockets)
            measured["enroll_ms_\(size)"] = line.milliseconds
            measured["enroll_sockets_\(size)"] = Double(line.sockets)
        }
        section.figures["startup_\(size)_ms"] = startupNanoseconds / 1e6
        section.figures["peak_rss_\(size)_bytes"] = rss
        measured["rss_\(size)"] = rss
    }

    private func idleTarget() {
        let size = settings.sizes.contains(10_000) ? 10_000 : settings.sizes.max() ?? 0
        var target = BenchTarget(name: "idle cost at \(BenchFormat.number(Double(size))) sockets", target: "push ≥100× cheaper than polling at 1 s",
                                 measured: "not measured", met: nil)
        if let ratio = measured["idle_ratio_poll1s_\(size)"] {
            target.measured = BenchFormat.ratio(ratio) + " cheaper"
            target.met = ratio >= 100 && features.enrollsExisting
            if !features.enrollsExisting { target.met = nil; target.note = "push enrolled no pre-existing socket" }
        } else {
            target.note = features.pollMode ? "no 1 s polling figure" : "no --mode poll in this build"
            if let ss = measured["idle_ss_ratio_\(size)"] { target.note += "; ss -tin 1s: \(BenchFormat.ratio(ss))" }
        }
        if size != 10_000 { target.note += (target.note.isEmpty ? "" : "; ") + "10,000 not in --sizes" }
        addTarget(target)
    }

    private func enrollmentTargets() {
        let size = settings.sizes.contains(50_000) ? 50_000 : settings.sizes.max() ?? 0
        let sizeNote = size == 50_000 ? "" : "50,000 not in --sizes; at \(BenchFormat.number(Double(size)))"
        var enroll = BenchTarget(name: "enrollment of 50,000 existing sockets", target: "< 1 s", measured: "not measured", met: nil, note: sizeNote)
        if let milliseconds = measured["enroll_ms_\(size)"] {
            enroll.measured = String(format: "%.0f ms (%@ sockets)", milliseconds, BenchFormat.number(measured["enroll_sockets_\(size)"] ?? 0))
            enroll.met = milliseconds < 1_000
        } else if !features.enrollsExisting {
            enroll.note = "this build does not enroll existing sockets"
        }
        addTarget(enroll)
        var memory = BenchTarget(name: "peak RSS with 50,000 enrolled sockets", target: "< 64 MB", measured: "not measured", met: nil, note: sizeNote)
        if let rss = measured["rss_\(size)"], !rss.isNaN {
            memory.measured = String(format: "%.1f MB (%.1f MiB)", rss / 1e6, rss / 1_048_576)
            memory.met = rss < 64e6 && features.enrollsExisting
            if !features.enrollsExisting { memory.met = nil; memory.note = "nothing enrolled by this build" }
        }
        addTarget(memory)
        let smallest = settings.sizes.min() ?? 0
        var ready = BenchTarget(
            name: "start-up: exec to attached and enrolled", target: "< 0.5 s", measured: "not measured", met: nil,
            note: "at N = \(BenchFormat.number(Double(smallest))) (tcpnotify's own `ready` line)")
        if let milliseconds = measured["ready_ms_\(smallest)"] {
            ready.measured = String(format: "%.0f ms", milliseconds)
            ready.met = milliseconds < 500
        }
        addTarget(ready)
    }
}

/// The helpers holding one set of idle connections.
final class IdleConnectionGroup {
    var helpers: [BenchProcess] = []

    /// SIGTERM: each helper resets its connections (RST, no TIME_WAIT) and exits.
    func stop() {
        for helper in helpers { helper.signal(SIGTERM) }
        for helper in helpers { helper.stop(signal: SIGTERM, graceSeconds: 30) }
    }
}
