import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
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

    @Argument(help: "Socket filter, ss style (e.g. 'dport = :443').")
    var filter: [String] = []

    @Option(name: .long, help: "File of exact 'LOCAL REMOTE' endpoint pairs to select (local port * = any).")
    var tuples: String?

    @Option(name: .long, help: "Output format: json or text (default: json unless stdout is a terminal).")
    var format: NotificationFormatter.Format?

    @Flag(name: .long, help: "Only this process's network namespace.")
    var ownNamespace = false

    @Flag(name: .long, help: "Print libbpf's messages to stderr.")
    var verbose = false

    func run() throws {
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.compile(
                filter: filter.joined(separator: " "), rules: [], tuplesPath: tuples, diagnose: false)
        } catch {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        }
        let outputFormat = format ?? (isatty(1) != 0 ? .text : .json)
        signal(SIGPIPE, SIG_IGN)
        do {
            let result = try Session.snapshot(inputs: inputs.session, ownNamespace: ownNamespace, verbose: verbose)
            var formatter = NotificationFormatter(
                format: outputFormat, ruleNames: [], realtimeOffsetNanoseconds: Clocks.realtimeOffsetNanoseconds())
            formatter.cgroupAttribution = CgroupPaths.system()?.resolver
            formatter.kernelFields = KernelInfo.tcpInfoFields
            let output = LineOutput()
            if outputFormat == .json {
                output.write(result.sockets.map { formatter.snapshotLine(for: $0.socket, networkNamespaceInode: $0.namespace.inode) })
            } else {
                output.write(NotificationFormatter.snapshotTable(result.sockets.map(\.socket)))
            }
            for failure in result.failures {
                StandardError.write("tcpnotify: could not read the sockets of \(failure)\n")
            }
            StandardError.write("tcpnotify: \(result.sockets.count) socket(s) in \(result.namespaces - result.failures.count) network namespace(s)\n")
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
    }
}
