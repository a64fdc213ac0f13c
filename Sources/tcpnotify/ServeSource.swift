import Foundation
import Logging
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime
import TCPNotifyServer

/// How `serve` learns about sockets, as `watch` does: `--mode auto` pushes with BPF when the program
/// loads and attaches, else says why and polls with sock_diag; `bpf` only pushes, `poll` only polls.
extension ServeDaemon {
    /// A started source and the hub its records go to.
    struct Started {
        let source: any SubscriberTablesSource
        let kernel: KernelOwner
        let hub: SubscriptionHub
    }

    /// Builds the hub for a source (`makeHub`) and starts it; in auto mode a BPF failure falls back to polling.
    static func start(_ settings: Settings, attachPath: String, events: @escaping SessionEventHandler, logger: Logger,
                      makeHub: (KernelOwner, (generation: UInt32, tables: SharedTables)) -> SubscriptionHub) throws -> Started {
        if settings.mode != .poll {
            do {
                return try startPush(settings, attachPath: attachPath, events: events, logger: logger, makeHub: makeHub)
            } catch let unavailable as BPFUnavailable where settings.mode == .auto {
                let message = SessionEvent.pushUnavailable(summary: unavailable.summary, pollInterval: settings.pollIntervalText).message
                logger.warning("BPF unavailable; polling instead", metadata: [
                    "mode": "poll", "reason": "\(unavailable.summary)", "interval": "\(settings.pollIntervalText)",
                ])
                StandardError.write("tcpnotify: \(message)\n")
            }
        }
        return try startPoll(settings, events: events, logger: logger, makeHub: makeHub)
    }

    private static func startPush(_ settings: Settings, attachPath: String, events: @escaping SessionEventHandler, logger: Logger,
                                  makeHub: (KernelOwner, (generation: UInt32, tables: SharedTables)) -> SubscriptionHub) throws -> Started {
        var configuration = WatchConfiguration(
            filter: settings.inputs?.filter ?? CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""),
            rules: settings.inputs?.rules ?? CompiledRules(rules: [], terms: [], clauses: []),
            tuples: settings.inputs?.tuples ?? [], ringBufferBytes: settings.ringBytes)
        configuration.subscribesSlotZero = settings.inputs != nil
        let source = try PushSource(configuration: configuration, verbose: settings.verbose)
        let kernel = KernelOwner(source)
        let hub = makeHub(kernel, source.withProgram { ($0.ruleGeneration, $0.tables) })
        let linkID: UInt32
        do {
            try source.startReading(deliver: { hub.dispatch($0) }, measuresRunTime: false, events: events)
            linkID = try source.attach(cgroupPath: attachPath)
        } catch {
            _ = source.stop()
            throw error
        }
        logger.info("attached", metadata: [
            "mode": "push", "cgroup": "\(attachPath)", "link": "\(linkID)", "config": "\(settings.configPath ?? "none")",
        ])
        if source.withProgram({ $0.subscriptions[0] != nil }) {
            source.enrollExisting(in: NetworkNamespaces.all(), subscribers: 1, events: events)
        }
        return Started(source: source, kernel: kernel, hub: hub)
    }

    private static func startPoll(_ settings: Settings, events: @escaping SessionEventHandler, logger: Logger,
                                  makeHub: (KernelOwner, (generation: UInt32, tables: SharedTables)) -> SubscriptionHub) throws -> Started {
        // The subscribers' selections replace this empty one (PollSubscriptions).
        var session = SessionSettings(inputs: SessionInputs(
            filter: CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""), rules: CompiledRules(rules: [], terms: [], clauses: [])))
        session.cgroupPath = settings.cgroupPath
        session.pollIntervalNanoseconds = settings.pollIntervalNanoseconds
        session.pollIntervalText = settings.pollIntervalText
        let source = try PollSource(settings: session)
        let initial = try source.withTables { tables in
            if let inputs = settings.inputs {
                try tables.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
                try tables.replaceRules(inputs.rules)
            }
            return (tables.ruleGeneration, tables.tables)
        }
        let kernel = KernelOwner(source)
        let hub = makeHub(kernel, initial)
        try source.start(settings: session, deliver: { hub.dispatch($0) }, events: events)
        logger.info("polling", metadata: [
            "mode": "poll", "cgroup": "\(settings.cgroupPath ?? "all")", "interval": "\(settings.pollIntervalText)",
            "config": "\(settings.configPath ?? "none")",
        ])
        return Started(source: source, kernel: kernel, hub: hub)
    }
}
