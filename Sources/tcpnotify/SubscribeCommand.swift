import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyClient
import TCPNotifyCore
import TCPNotifyRuntime

/// `tcpnotify subscribe`: a subscriber of a running `tcpnotify serve`, printing its notifications as
/// the JSON lines `watch --format json` prints.
struct SubscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribe",
        abstract: "Subscribe to a running `tcpnotify serve` and print this subscription's notifications.",
        discussion: """
            FILTER and --when are those of `watch`. The daemon merges them into the kernel tables it \
            shares with its other subscribers, enrolls the matching existing connections, and sends this \
            subscriber only its own notifications. A `dropped` line says how many were lost because this \
            process read too slowly. --cgroup, --unit or --pid narrow it to that cgroup's, unit's or             process's sockets (resolved by the daemon; they must be under the cgroup it is attached to).             SIGINT or SIGTERM unsubscribes.
            """
    )

    @OptionGroup var selection: FilterArgument
    @OptionGroup var rules: RuleOptions
    @OptionGroup var daemon: SocketOption
    @OptionGroup var scope: CgroupOption

    func run() throws {
        let (socket, filter, when) = (daemon.socket, selection.text, rules.when)
        let scope = SubscriptionScope(cgroup: scope.cgroup, unit: scope.unit, pid: scope.pid)
        let code = BlockingAsync.exitStatus { await Self.stream(socket: socket, filter: filter, rules: when, scope: scope) }
        if code != 0 { throw ExitCode(code) }
    }

    /// Prints the subscription's lines until the daemon ends it or a signal does; the exit status.
    static func stream(socket: String, filter: String, rules when: [String], scope: SubscriptionScope) async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let subscription: TCPNotifySubscription
        do {
            subscription = try await TCPNotifySubscription.connect(socketPath: socket, filter: filter, rules: when, scope: scope)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            return ((error as? SubscriptionError)?.exitStatus ?? .failure).rawValue
        }
        StandardError.write(
            "tcpnotify: subscribed as subscriber \(subscription.subscriber) with \(subscription.ruleNames.count) rule(s); "
                + "\(subscription.existingEnrolled) existing connection(s) enrolled\n")
        // SIGINT/SIGTERM end the subscription cleanly (the daemon drops our selections).
        let stop = StopOnSignal(subscription)
        defer { stop.cancel() }
        let output = LineOutput()
        do {
            for try await event in subscription {
                output.write([event.line])
                if output.isBroken { break }
                if case .end = event.kind { break }
            }
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            return 1
        }
        return 0
    }
}

/// Cancels a subscription on SIGINT or SIGTERM.
final class StopOnSignal: @unchecked Sendable {
    private let sources: [DispatchSourceSignal]

    init(_ subscription: TCPNotifySubscription) {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { subscription.cancel() }
            source.resume()
            return source
        }
    }

    func cancel() { sources.forEach { $0.cancel() } }
}
