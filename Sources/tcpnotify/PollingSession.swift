import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll

/// `watch --mode`: how tcpnotify learns about sockets.
enum WatchMode: String, CaseIterable {
    /// BPF when it can be loaded and attached, else polling (with one line on stderr saying why).
    case auto
    /// The sock_ops program only; failures are errors.
    case bpf
    /// sock_diag dumps every `--interval`, rules evaluated in user space.
    case poll
}

/// The BPF path could not be set up (privileges, kernel features, loading, attaching); nothing is
/// attached. `--mode auto` polls instead; `--mode bpf` reports `reason`.
struct BPFUnavailable: Error, CustomStringConvertible {
    let reason: any Error
    var description: String { "\(reason)" }

    /// The first line of the reason (a verifier refusal carries libbpf's whole log).
    var summary: String { String(description.split(separator: "\n", omittingEmptySubsequences: true).first ?? "") }
}

struct WatchModeError: Error, CustomStringConvertible {
    let description: String
}

/// Runs `watch` in the chosen mode: the BPF session, the polling session, or BPF with the fallback.
struct WatchModeRunner {
    let mode: WatchMode
    let intervalText: String
    let bpf: WatchSession
    let notifyOnClose: Bool

    func run(intervalNanoseconds: UInt64) throws {
        switch mode {
        case .bpf:
            try bpf.run() // BPFUnavailable prints as the underlying error
        case .poll:
            try polling(intervalNanoseconds).run()
        case .auto:
            do {
                try bpf.run()
            } catch let unavailable as BPFUnavailable {
                if bpf.diagnose {
                    throw WatchModeError(description: "\(unavailable.summary); --diagnose needs BPF (its verdicts come from in-kernel sampling)")
                }
                StandardError.write(
                    "tcpnotify: BPF unavailable (\(unavailable.summary)); polling with sock_diag every \(intervalText) instead\n")
                try polling(intervalNanoseconds).run()
            }
        }
    }

    private func polling(_ intervalNanoseconds: UInt64) -> PollingSession {
        PollingSession(
            configuration: PollingConfiguration(
                filter: bpf.configuration.filter, rules: bpf.configuration.rules, tuples: bpf.configuration.tuples,
                notifyOnClose: notifyOnClose, cgroupPath: bpf.cgroupPath),
            intervalNanoseconds: intervalNanoseconds, intervalText: intervalText, format: bpf.format,
            duration: bpf.duration, configPath: bpf.configPath, export: bpf.export)
    }
}

/// One `watch --mode poll` run: polls on its own thread until a signal (or the duration), then prints the
/// final statistics line. Output lines are the BPF mode's (trigger `poll`, and `close` for sockets that
/// notified and are gone).
struct PollingSession {
    let configuration: PollingConfiguration
    let intervalNanoseconds: UInt64
    let intervalText: String
    let format: NotificationFormatter.Format
    let duration: Double?
    /// Reloaded on SIGHUP, when given.
    let configPath: String?
    /// Metrics, OTLP and cgroup paths.
    let export: WatchExport

    func run() throws {
        let stopSignals = StopSignals(reload: true) // before the poll thread starts: it inherits the mask
        let watcher = try PollingWatcher(configuration: configuration)
        var formatter = NotificationFormatter(
            format: format, ruleNames: configuration.rules.rules.map(\.name),
            realtimeOffsetNanoseconds: WatchSession.realtimeOffsetNanoseconds())
        formatter.cgroupAttribution = export.cgroupPaths?.resolver
        formatter.kernelFields = KernelInfo.tcpInfoFields
        let ruleNames = RuleNameBook(generation: watcher.ruleGeneration, rules: configuration.rules)
        let output = LineOutput()
        let export = export
        let loop = PollLoop(watcher: watcher, intervalNanoseconds: intervalNanoseconds) { [formatter] batch in
            output.write(batch.map { notification in
                var formatter = formatter
                formatter.ruleNames = ruleNames.names(generation: notification.ruleGeneration)
                if export.needsDelivery { export.delivered(notification, formatter: formatter, diagnosis: nil) }
                return formatter.line(for: notification)
            })
        }
        export.setRefresh { metrics in
            let (statistics, watched) = loop.withWatcher { ($0.statistics, UInt64($0.trackedCount)) }
            metrics.update(statistics, watchedSockets: watched)
        }
        defer { export.setRefresh { _ in } }
        let scope = configuration.cgroupPath.map { "cgroup \($0)" } ?? "every cgroup"
        StandardError.write(
            "tcpnotify: watching \(scope) by polling sock_diag every \(intervalText) in \(watcher.namespaceCount) network namespace(s) "
                + "with \(configuration.rules.rules.count) rule(s)"
                + (watcher.filtersInKernel ? "" : " (filter too large for sock_diag bytecode: applied in user space)")
                + "; SIGINT or SIGTERM stops\n")
        loop.start()
        stopSignals.wait(duration: duration, output: output) {
            reload(loop, ruleNames: ruleNames)
        }
        loop.stop()
        let (statistics, polling) = loop.withWatcher { watcher in
            var statistics = watcher.statistics
            statistics.received = statistics.notifications // every record is delivered: there is no ring to drop from
            return (statistics, watcher.pollingStatistics)
        }
        output.write([formatter.line(for: statistics, polling: polling)])
    }

    /// SIGHUP: new rules re-arm every socket; the new selection applies from the next poll.
    private func reload(_ loop: PollLoop, ruleNames: RuleNameBook) {
        guard let configPath else {
            StandardError.write("tcpnotify: SIGHUP ignored: no --config file to reload\n")
            return
        }
        do {
            let inputs = try WatchInputs.load(config: configPath, filter: "", rules: [], tuplesPath: nil, diagnose: false)
            loop.withWatcher { watcher in
                watcher.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
                watcher.replaceRules(inputs.rules)
                ruleNames.record(generation: watcher.ruleGeneration, rules: inputs.rules)
            }
            StandardError.write("tcpnotify: reloaded \(configPath): \(inputs.rules.rules.count) rule(s)\n")
        } catch {
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error.message)\n")
        }
    }
}

/// The poll thread: polls, hands the notifications over, sleeps until the next tick. Polls keep a fixed
/// schedule; one that overruns the interval is counted and the schedule restarts from its end.
final class PollLoop: @unchecked Sendable {
    private let watcher: PollingWatcher
    private let lock = NSLock() // the watcher: the poll thread and SIGHUP reloads
    private let intervalNanoseconds: UInt64
    private let deliver: @Sendable ([SocketNotification]) -> Void
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    init(watcher: PollingWatcher, intervalNanoseconds: UInt64, deliver: @escaping @Sendable ([SocketNotification]) -> Void) {
        self.watcher = watcher
        self.intervalNanoseconds = intervalNanoseconds
        self.deliver = deliver
    }

    func withWatcher<T>(_ body: (PollingWatcher) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(watcher)
    }

    func start() {
        started = true
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "tcpnotify-poll"
        thread.start()
    }

    /// Returns once the poll in progress, if any, has finished and been delivered.
    func stop() {
        guard started else { return }
        stopping.store(true, ordering: .releasing)
        wake.signal()
        finished.wait()
    }

    private func run() {
        var next = PollingWatcher.monotonicNanoseconds()
        while !stopping.load(ordering: .acquiring) {
            let notifications = withWatcher { $0.poll() }
            if !notifications.isEmpty { deliver(notifications) }
            next += intervalNanoseconds
            let now = PollingWatcher.monotonicNanoseconds()
            if now >= next {
                withWatcher { $0.recordLatePoll() }
                next = now
                continue
            }
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(next - now)))
        }
    }
}
