import TCPNotifyBPF
import TCPNotifyCore

/// Opens and starts the source a session's settings ask for, written once for `Session` (watch, diagnose,
/// top) and `serve`: `--mode bpf` loads and attaches the sock_ops program, `poll` polls sock_diag, `auto`
/// pushes when BPF loads and attaches, else reports `pushUnavailable` (why, and the poll interval) and
/// polls. A source that fails to start is stopped before the error is thrown: nothing stays attached.
public struct SourceStarter {
    public typealias Deliver = @Sendable ([SocketNotification]) -> Void

    public let settings: SessionSettings
    public let events: SessionEventHandler

    public init(settings: SessionSettings, events: @escaping SessionEventHandler) {
        self.settings = settings
        self.events = events
    }

    /// The started source. `delivery` is called once the source is loaded and before it starts, with the
    /// source, for where its records go (it may be called twice in auto mode: for push, then for the poller).
    public func start(delivery: (any SubscriberTablesSource) throws -> Deliver) throws -> any SubscriberTablesSource {
        switch settings.mode {
        case .bpf:
            return try startPush(delivery) // BPFUnavailable prints as the underlying error
        case .poll:
            return try startPoll(delivery)
        case .auto:
            do {
                return try startPush(delivery)
            } catch let unavailable as BPFUnavailable {
                if let reason = settings.pushOnlyReason {
                    throw SessionError(description: "\(unavailable.summary); \(reason)", status: ExitStatus.of(unavailable))
                }
                events(.pushUnavailable(summary: unavailable.summary, pollInterval: settings.pollIntervalText))
                return try startPoll(delivery)
            }
        }
    }

    private func startPush(_ delivery: (any SubscriberTablesSource) throws -> Deliver) throws -> any SubscriberTablesSource {
        let push = try PushSource(configuration: settings.watchConfiguration, verbose: settings.verbose)
        do {
            try push.start(settings: settings, deliver: try delivery(push), events: events)
        } catch {
            _ = push.stop()
            throw error
        }
        return push
    }

    private func startPoll(_ delivery: (any SubscriberTablesSource) throws -> Deliver) throws -> any SubscriberTablesSource {
        let settings = self.settings.pollSettings
        let poll = try PollSource(settings: settings)
        do {
            if self.settings.servesSubscribers {
                // The subscribers' tables replace the poller's selection from here on; the config file's is subscriber 0's.
                try poll.withTables { tables in
                    guard self.settings.subscribesSlotZero else { return }
                    try tables.replaceSelection(filter: self.settings.inputs.filter, tuples: self.settings.inputs.tuples)
                    try tables.replaceRules(self.settings.inputs.rules)
                }
            }
            try poll.start(settings: settings, deliver: try delivery(poll), events: events)
        } catch {
            _ = poll.stop() // as push's: a source that failed to start is stopped before the error goes up
            throw error
        }
        return poll
    }
}
