import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// One `watch` run: load, attach, print notifications until a signal (or the duration), detach, and
/// print the final statistics line.
struct WatchSession {
    let configuration: WatchConfiguration
    let cgroupPath: String?
    let format: NotificationFormatter.Format
    let verbose: Bool
    let duration: Double?
    /// Reloaded on SIGHUP, when given.
    let configPath: String?
    /// `--diagnose`: the last rule samples flows for the verdicts.
    let diagnose: Bool
    /// Metrics, OTLP and cgroup paths.
    let export: WatchExport
    /// Enroll the selected sockets established before the start (all network namespaces).
    var enrollExisting = true
    /// Period of the in-kernel sweep over enrolled sockets; 0 = never. It runs only when the rules
    /// need it (`CompiledRules.needsSweep`).
    var sweepIntervalMilliseconds: UInt64 = 1000

    func run() throws {
        let stopSignals = StopSignals(reload: true)
        var startup = StartupTimer()

        let attachPath: String, program: TCPNotifyProgram
        do {
            attachPath = try cgroupPath ?? WatchSession.defaultCgroup()
            program = try TCPNotifyProgram(configuration: configuration, logLibbpf: verbose)
        } catch {
            throw BPFUnavailable(reason: error)
        }
        startup.mark("load and verify")
        var formatter = NotificationFormatter(
            format: format, ruleNames: configuration.rules.rules.map(\.name),
            realtimeOffsetNanoseconds: WatchSession.realtimeOffsetNanoseconds())
        formatter.cgroupAttribution = export.cgroupPaths?.resolver
        formatter.kernelFields = KernelInfo.tcpInfoFields
        let ruleNames = RuleNameBook(generation: program.ruleGeneration, rules: configuration.rules)
        let output = LineOutput()
        let diagnoses = diagnose ? DiagnosedOutput() : nil
        let export = export
        let reader = try program.makeReader { [formatter] batch in
            output.write(batch.compactMap { notification in
                var formatter = formatter
                let names = ruleNames.names(generation: notification.ruleGeneration)
                formatter.ruleNames = names
                guard let diagnoses else {
                    if export.needsDelivery { export.delivered(notification, formatter: formatter, diagnosis: nil) }
                    return formatter.line(for: notification)
                }
                guard let shown = diagnoses.visible(notification, samplingRule: names.count - 1) else { return nil }
                let diagnosis = diagnoses.tracker.diagnosis(cookie: shown.cookie)
                if export.needsDelivery { export.delivered(shown, formatter: formatter, diagnosis: diagnosis) }
                return formatter.line(for: shown, diagnosis: diagnosis)
            })
        }
        reader.start()
        // Kernel run time and count of the program, while metrics are served (accounting costs a little per run).
        let runStatistics: BPFRunStatistics? = export.metrics == nil ? nil : {
            do {
                return try BPFRunStatistics()
            } catch {
                StandardError.write("tcpnotify: no kernel run-time statistics for the metrics: \(error)\n")
                return nil
            }
        }()
        let sweepCount = Atomic<UInt64>(0)
        let shared = UncheckedSendable((program, reader))
        let measuresRunTime = runStatistics != nil
        export.setRefresh { metrics in
            let (program, reader) = shared.value
            guard var statistics = try? program.kernelStatistics() else { return }
            statistics.sweeps = sweepCount.load(ordering: .relaxed)
            statistics.received = reader.receivedCount
            statistics.userDrops = reader.malformedCount
            metrics.update(statistics, watchedSockets: statistics.watchedSockets)
            if measuresRunTime, let run = try? program.runStatistics() {
                metrics.updateKernelRunTime(nanoseconds: run.runTimeNanoseconds, count: run.runCount)
            }
        }
        defer { export.setRefresh { _ in } }
        let attachment: CgroupAttachment
        do {
            attachment = try program.attach(cgroupPath: attachPath)
        } catch {
            if error.isInvalidArgument { throw error } // a bad --cgroup: an error in every mode
            throw BPFUnavailable(reason: error)
        }
        startup.mark("attach")
        StandardError.write(
            "tcpnotify: watching cgroup \(attachPath) (link \(attachment.linkID)) with \(configuration.rules.rules.count) rule(s); "
                + "SIGINT or SIGTERM stops\n")

        if enrollExisting {
            enrollExistingSockets(program)
            startup.mark("enroll")
        }
        // Attached and enrolled: notifications flow from here on.
        StandardError.write("tcpnotify: \(startup.summary)\n")
        // Load the sweep now when the rules need one, so that a refused program is reported at start.
        if sweepIntervalMilliseconds > 0 && program.rules.needsSweep {
            do {
                try program.prepareSweep()
            } catch {
                StandardError.write("tcpnotify: no periodic sweep, stall and silence rules are checked only at TCP events: \(error.summary)\n")
            }
        }
        var degradationsReported = DegradationReport()
        degradationsReported.writeNew(program.degradations)

        var sweeps: UInt64 = 0
        var sweepFailureReported = false
        stopSignals.wait(
            duration: duration, output: output, tickSeconds: sweepIntervalMilliseconds > 0 ? Double(sweepIntervalMilliseconds) / 1000 : nil,
            onTick: {
                defer { degradationsReported.writeNew(program.degradations) }
                do {
                    guard try program.sweepIfNeeded() else { return }
                    sweeps += 1
                    sweepCount.store(sweeps, ordering: .relaxed)
                } catch {
                    if !sweepFailureReported {
                        StandardError.write("tcpnotify: the periodic sweep failed, stalls are seen only at TCP events: \(error)\n")
                        sweepFailureReported = true
                    }
                }
            },
            onReload: { reload(program, ruleNames: ruleNames) })

        attachment.detach()
        reader.stop()
        var statistics = try program.kernelStatistics()
        statistics.sweeps = sweeps
        statistics.received = reader.receivedCount
        statistics.userDrops = reader.malformedCount
        output.write([formatter.line(for: statistics)])
        withExtendedLifetime(runStatistics) {}
    }

    /// Enrolls the selected sockets that were established before the attachment, in every network
    /// namespace. A kernel that cannot do it (before 6.12) is reported once; new connections are still watched.
    private func enrollExistingSockets(_ program: TCPNotifyProgram) {
        do {
            let result = try program.enrollExisting(in: NetworkNamespaces.all())
            let milliseconds = Double(result.elapsedNanoseconds) / 1e6
            StandardError.write(
                "tcpnotify: enrolled \(result.enrolled) existing socket(s) in \(result.namespaces) network namespace(s) in "
                    + String(format: "%.1f", milliseconds) + " ms (\(result.visited) visited"
                    + (result.viaTracepoints > 0 ? ", \(result.viaTracepoints) watched through tracepoints" : "") + ")\n")
            for failure in result.failures.prefix(5) {
                StandardError.write("tcpnotify: could not enroll existing sockets in \(failure)\n")
            }
            if result.failures.count > 5 {
                StandardError.write("tcpnotify: ... and \(result.failures.count - 5) more namespace(s)\n")
            }
        } catch {
            // A refused program is reported with the other degradations.
            if program.refusals[.enrollExisting] == nil {
                StandardError.write("tcpnotify: existing sockets are not enrolled, only new connections are watched: \(error)\n")
            }
        }
    }

    /// SIGHUP: re-reads the config file; new rules re-arm every enrolled socket, the new selection applies
    /// to connections established from now on. A bad file keeps the running configuration.
    private func reload(_ program: TCPNotifyProgram, ruleNames: RuleNameBook) {
        guard let configPath else {
            StandardError.write("tcpnotify: SIGHUP ignored: no --config file to reload\n")
            return
        }
        do {
            let inputs = try WatchInputs.load(
                config: configPath, filter: "", rules: [], tuplesPath: nil, diagnose: diagnose)
            try program.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
            try program.replaceRules(inputs.rules)
            ruleNames.record(generation: program.ruleGeneration, rules: inputs.rules)
            StandardError.write("tcpnotify: reloaded \(configPath): \(inputs.rules.rules.count) rule(s)\n")
        } catch let failure as WatchInputs.Failure {
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(failure.message)\n")
        } catch {
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error)\n")
        }
    }

    static func defaultCgroup() throws -> String {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        guard let mountPoint = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo) else {
            throw BPFError.notSupported(
                feature: "a cgroup v2 hierarchy", minimumKernel: "4.5",
                detail: "no cgroup2 mount in /proc/self/mountinfo; mount one (mount -t cgroup2 none /sys/fs/cgroup) or pass --cgroup")
        }
        return mountPoint
    }

    static func realtimeOffsetNanoseconds() -> Int64 {
        var realtime = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        clock_gettime(CLOCK_REALTIME, &realtime)
        let real = Int64(realtime.tv_sec) * 1_000_000_000 + Int64(realtime.tv_nsec)
        let mono = Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec)
        return real - mono
    }
}

/// Start-up time by part, from the process's start (`/proc/self/stat`, 10 ms resolution) to ready.
struct StartupTimer {
    private let startedNanoseconds = DispatchTime.now().uptimeNanoseconds
    private var last = DispatchTime.now().uptimeNanoseconds
    private var parts: [(String, UInt64)] = []

    mutating func mark(_ part: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        parts.append((part, now - last))
        last = now
    }

    /// "ready in 312 ms since exec (before main 20 ms, load and verify 190 ms, ...)".
    var summary: String {
        let beforeMain = Self.processAgeNanoseconds().map { $0 > (last - startedNanoseconds) ? $0 - (last - startedNanoseconds) : 0 } ?? 0
        let total = beforeMain + (last - startedNanoseconds)
        let list = [("before main", beforeMain)] + parts
        return "ready in \(total / 1_000_000) ms since exec ("
            + list.map { "\($0.0) \($0.1 / 1_000_000) ms" }.joined(separator: ", ") + ")"
    }

    /// How long this process has run: now minus its start time in /proc/self/stat (clock ticks since boot).
    static func processAgeNanoseconds() -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after the command: state is field 3, starttime field 22.
        guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
        let hertz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        let uptime = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        let started = ticks * (1_000_000_000 / hertz)
        return uptime > started ? uptime - started : nil
    }
}

/// Writes each degradation to stderr once, when it is first found.
struct DegradationReport {
    private var reported = 0

    mutating func writeNew(_ degradations: [Degradation]) {
        guard degradations.count > reported else { return }
        for degradation in degradations[reported...] { StandardError.write("tcpnotify: \(degradation.message)\n") }
        reported = degradations.count
    }
}

/// A value handed to another thread whose type is not Sendable but is safe to use there (the program's
/// counters are read with syscalls on map fds).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// Writes whole lines to stdout, one write(2) per batch, from any thread.
final class LineOutput: Sendable {
    private let broken = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    var isBroken: Bool { broken.load(ordering: .relaxed) }

    func write(_ lines: [String]) {
        guard !lines.isEmpty, !isBroken else { return }
        var text = lines.joined(separator: "\n")
        text += "\n"
        lock.withLock { _ in
            text.withUTF8 { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 {
                        // Wake the main thread's signal wait (it may sleep with no timeout): nobody
                        // reads any more, so stop as on SIGTERM.
                        if !broken.exchange(true, ordering: .relaxed) { kill(getpid(), SIGTERM) }
                        return
                    }
                    offset += written
                }
            }
        }
    }
}

/// `watch --diagnose`: every record feeds the verdicts; a record is printed when a user rule fired, or at
/// close for a flow that was printed before. The sampling rule itself never shows.
final class DiagnosedOutput: Sendable {
    let tracker = DiagnosisTracker()
    private let printedFlows = Mutex<Set<UInt64>>([])

    func visible(_ notification: SocketNotification, samplingRule: Int) -> SocketNotification? {
        tracker.record(notification)
        var shown = notification
        if samplingRule >= 0 && samplingRule < 32 { shown.rulesFired &= ~(UInt32(1) << UInt32(samplingRule)) }
        let show = printedFlows.withLock { flows -> Bool in
            if notification.trigger == .close { return flows.remove(notification.cookie) != nil || shown.rulesFired != 0 }
            if shown.rulesFired == 0 { return false }
            flows.insert(notification.cookie)
            return true
        }
        return show ? shown : nil
    }
}

/// Rule names by rule-table generation: records written just before a reload still carry the old
/// generation and must be named by the old rules.
final class RuleNameBook: Sendable {
    private let names = Mutex<[UInt32: [String]]>([:])

    init(generation: UInt32, rules: CompiledRules) { record(generation: generation, rules: rules) }

    func record(generation: UInt32, rules: CompiledRules) {
        names.withLock { book in
            book[generation] = rules.rules.map(\.name)
            if book.count > 8, let oldest = book.keys.min() { book[oldest] = nil }
        }
    }

    func names(generation: UInt32) -> [String] { names.withLock { $0[generation] ?? [] } }
}
