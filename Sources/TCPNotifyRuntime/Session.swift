import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// What a command does with a session's records: `watch` prints notifications, `diagnose` judges flows.
public protocol SessionConsumer: AnyObject, Sendable {
    /// A batch of records, on the source's thread; `ruleNames` names their rules by generation.
    func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook)
    /// The source is started: attached and enrolled (with `sweepAtStart`, the first sweep's records are
    /// delivered), or polling. On the session's thread.
    func started(kind: SourceKind)
    /// Periodically, on the session's thread (with the sweep).
    func tick(nowMonotonicNanoseconds: UInt64)
    /// Whether the session should end now (asked after each tick, signal and `StopSignals.wake()`).
    var isFinished: Bool { get }
}

extension SessionConsumer {
    public func started(kind: SourceKind) {}
    public func tick(nowMonotonicNanoseconds: UInt64) {}
    public var isFinished: Bool { false }
}

/// One run of tcpnotify against the kernel, written once for every command: open a source (BPF push, or
/// sock_diag polling; `--mode auto` falls back from push to polling with the reason), start it, deliver
/// its records to a consumer, tick it (the sweep), reload it on SIGHUP, stop it on SIGINT, SIGTERM, the
/// duration, a closed stdout or the consumer's say, and return the final totals.
public final class Session: Sendable {
    public let settings: SessionSettings
    public let output: LineOutput
    private let events: SessionEventHandler
    private let current = Mutex<(any NotificationSource)?>(nil)

    public init(settings: SessionSettings, output: LineOutput, events: @escaping SessionEventHandler) {
        self.settings = settings
        self.output = output
        self.events = events
    }

    /// The running source's totals (for metrics scrapes, from any thread); nil before it started.
    public func statistics() -> SourceStatistics? {
        current.withLock { $0 }?.statistics()
    }

    /// Runs until the end (see the type's description); the source's final totals.
    public func run(_ consumer: some SessionConsumer) throws -> SourceStatistics {
        let signals = StopSignals(reload: settings.handlesSIGHUP) // before any thread starts: they inherit the mask
        output.watchReader()
        // Before attaching: a cgroup removed while the source starts is noticed too.
        let presence = settings.cgroupPath.flatMap { CgroupPresence(path: $0, onGone: { StopSignals.wake() }) }
        defer { presence?.stop() }
        let (source, names) = try open(consumer)
        consumer.started(kind: source.kind)
        let fixedTickMilliseconds = settings.tickMilliseconds
        signals.wait(
            duration: settings.durationSeconds, output: output,
            tickSeconds: { (source.tickMilliseconds ?? fixedTickMilliseconds).map { Double($0) / 1000 } },
            onTick: {
                source.tick(events: events)
                consumer.tick(nowMonotonicNanoseconds: MonotonicClock.nanoseconds())
            },
            onReload: { reload(source, names: names) },
            shouldStop: { consumer.isFinished || presence?.isGone == true })
        if let presence, presence.isGone { events(.cgroupRemoved(presence.path)) }
        let final = source.stop()
        if let release = (source as? PushSource)?.callbackFlagRelease { events(.callbackFlagsReleased(release)) }
        return final
    }

    /// Opens and starts the source of `settings.mode` (`SourceStarter`); with `sweepAtStart`, sweeps once.
    private func open(_ consumer: some SessionConsumer) throws -> (any NotificationSource, RuleNameBook) {
        var names: RuleNameBook?
        let source: any NotificationSource
        do {
            source = try SourceStarter(settings: settings, events: events).start { source in
                let book = RuleNameBook(generation: source.ruleGeneration, rules: settings.inputs.rules)
                names = book
                current.withLock { $0 = source }
                return { consumer.deliver($0, ruleNames: book) }
            }
        } catch {
            current.withLock { $0 = nil }
            throw error
        }
        if settings.sweepAtStart { source.sweepAndSettle(events: events) }
        return (source, names!) // set by `start`, which calls it before it returns
    }

    /// SIGHUP: new rules re-arm every watched socket, the new selection applies to connections from now
    /// on. A bad file keeps the running configuration.
    private func reload(_ source: any NotificationSource, names: RuleNameBook) {
        guard let reload = settings.reload else {
            events(.reloadIgnored)
            return
        }
        do {
            let inputs = try reload.load()
            try source.replace(inputs, names: names)
            events(.reloaded(path: reload.path, rules: inputs.rules.rules.count))
        } catch let failure as SessionReloadFailure {
            events(.reloadFailed(failure.message))
        } catch {
            events(.reloadFailed("\(error)"))
        }
    }

    // MARK: Snapshot

    /// Every selected socket's tcp_info now, in every network namespace (or only this process's): the
    /// snapshot iterator of a program loaded without sock_ops. Nothing is attached.
    public static func snapshot(inputs: SessionInputs, ownNamespace: Bool, verbose: Bool) throws
        -> (sockets: [(namespace: NetworkNamespace, socket: SocketNotification)], namespaces: Int, failures: [String])
    {
        var configuration = SessionSettings(inputs: inputs)
        configuration.ringBufferBytes = 4096
        let source = try PushSource(configuration: configuration.watchConfiguration, verbose: verbose, purpose: .snapshot)
        // --own-namespace: no need to scan /proc for the others.
        let namespaces = ownNamespace
            ? [NetworkNamespaces.at(path: "/proc/\(getpid())/ns/net")].compactMap { $0 } : NetworkNamespaces.all()
        let result = try source.withProgram { try $0.snapshot(in: namespaces) }
        return (result.sockets, namespaces.count, result.failures)
    }
}

public struct SessionError: Error, CustomStringConvertible {
    public let description: String
    /// The exit status it leads to.
    public var status: ExitStatus = .failure
}
