import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyPoll
import TCPNotifyRuntime

/// `tcpnotify snapshot`: like `ss -ti`, from the in-kernel record builder, across network namespaces.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Print every selected TCP socket's tcp_info now, in every network namespace (like ss -ti).",
        discussion: """
            FILTER is the same as for `watch`. Listening sockets are left out, as ss leaves them out \
            without -l; time-wait and request sockets have no tcp_info. Nothing is attached: a BPF \
            iterator reads each socket under its lock, so every record is consistent.
            """
    )

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var scope: CgroupOption
    @OptionGroup var output: OutputOptions

    @Flag(name: .long, help: "Only this process's network namespace.")
    var ownNamespace = false

    @OptionGroup var libbpf: VerboseOption

    func run() throws {
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.compile(
                filter: selection.filter.text, rules: [], tuplesPath: selection.tuples, diagnose: false)
        } catch {
            throw ExitCode.usage(error.message)
        }
        let resolvedScope = try scope.resolveOrExit()
        let outputFormat = output.resolvedFormat
        signal(SIGPIPE, SIG_IGN)
        do {
            let before = try resolvedScope.processSockets?.currentCookies()
            var result = try Session.snapshot(inputs: inputs.session, ownNamespace: ownNamespace, verbose: libbpf.verbose)
            result.sockets = try Self.select(result.sockets, scope: resolvedScope, ownedBefore: before)
            var formatter = NotificationFormatter(
                format: outputFormat, ruleNames: [], realtimeOffsetNanoseconds: Clocks.realtimeOffsetNanoseconds())
            formatter.cgroupAttribution = CgroupPaths.system()?.resolver
            formatter.kernelFields = KernelInfo.tcpInfoFields
            let lines = LineOutput()
            if outputFormat == .json {
                lines.write(result.sockets.map { formatter.snapshotLine(for: $0.socket, networkNamespaceInode: $0.namespace.inode) })
            } else {
                lines.write(NotificationFormatter.snapshotTable(result.sockets.map(\.socket)))
            }
            for failure in result.failures {
                StandardError.write("tcpnotify: could not read the sockets of \(failure)\n")
            }
            StandardError.write("tcpnotify: \(result.sockets.count) socket(s) in \(result.namespaces - result.failures.count) network namespace(s)\n")
        } catch {
            throw ExitCode.reporting(error)
        }
    }

    /// --pid: the sockets the process held before or after the snapshot; --cgroup, --unit: those created
    /// in the cgroup or below (a socket keeps the cgroup it was created in).
    static func select<T>(_ sockets: [(namespace: T, socket: SocketNotification)], scope: SocketScope, ownedBefore: Set<UInt64>?) throws
        -> [(namespace: T, socket: SocketNotification)]
    {
        if let processSockets = scope.processSockets {
            let owned = (ownedBefore ?? []).union(try processSockets.currentCookies())
            return sockets.filter { owned.contains($0.socket.cookie) }
        }
        guard let path = scope.cgroupPath else { return sockets }
        let ids = Set(CgroupTree.ids(under: path))
        return sockets.filter { ids.contains($0.socket.cgroupID) }
    }
}
