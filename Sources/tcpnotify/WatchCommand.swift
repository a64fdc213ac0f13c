import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch the selected sockets and print a line each time a rule becomes true.",
        discussion: """
            FILTER selects sockets like ss(8) filters: src/dst with addresses or prefixes (IPv4 and IPv6), \
            sport/dport with =, !=, <, <=, >, >= and :PORT, combined with and, or, not and parentheses. \
            src is the local end, dst the remote end. No filter: every TCP socket is a candidate.

            --when EXPR is a rule over tcp_info fields (kernel names and units; see `tcpnotify fields`), \
            e.g. 'rttvar > 10000 or total_retrans > 16'. Each top-level `or` alternative is a rule of its \
            own; NAME=EXPR names a whole expression. Without --when the built-in rules apply \
            (`tcpnotify rules`). A rule notifies when it becomes true for a socket and re-arms once it is \
            false again. Sockets that notified get a final record when they close.
            """
    )

    @Argument(help: "Socket filter, ss style (e.g. 'dst 10.0.0.0/8 and dport = :443').")
    var filter: [String] = []

    @Option(name: .long, help: "A rule (repeatable).")
    var when: [String] = []

    @Option(name: .long, help: "File of exact 'LOCAL REMOTE' endpoint pairs to select (local port * = any).")
    var tuples: String?

    @Option(name: .long, help: "cgroup v2 directory to attach to (default: the cgroup v2 root, i.e. the whole machine).")
    var cgroup: String?

    @Option(name: .long, help: "Output format: json or text (default: json unless stdout is a terminal).")
    var format: NotificationFormatter.Format?

    @Option(name: .long, help: "Ring buffer size in bytes (a power of two, at least one page).")
    var ringBytes: Int = 4 << 20

    @Option(name: .long, help: "Stop after this many seconds (default: run until SIGINT or SIGTERM).")
    var duration: Double?

    @Flag(name: .long, help: "No final record when a socket that notified closes.")
    var noCloseRecords = false

    @Flag(name: .long, help: "Print libbpf's messages to stderr.")
    var verbose = false

    func validate() throws {
        if ringBytes < 4096 || ringBytes > 1 << 30 {
            throw ValidationError("--ring-bytes must be between 4096 and 1 GiB")
        }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be positive") }
    }

    func run() throws {
        let compiledFilter: CompiledFilter
        let compiledRules: CompiledRules
        do {
            compiledFilter = try FilterExpression.compile(filter.joined(separator: " "))
        } catch {
            StandardError.write("tcpnotify: invalid filter: \(error)\n")
            throw ExitCode(2)
        }
        do {
            compiledRules = try RuleExpression.compile(when.isEmpty ? RuleExpression.defaultRules : when)
        } catch {
            StandardError.write("tcpnotify: invalid rule: \(error)\n")
            throw ExitCode(2)
        }
        var tupleEntries: [TupleEntry] = []
        if let tuples {
            do {
                let text = try String(contentsOfFile: tuples, encoding: .utf8)
                tupleEntries = try TupleFile.parse(text)
            } catch let error as TupleFileError {
                StandardError.write("tcpnotify: \(tuples): \(error)\n")
                throw ExitCode(2)
            } catch {
                StandardError.write("tcpnotify: cannot read --tuples file '\(tuples)': \(error.localizedDescription)\n")
                throw ExitCode(2)
            }
        }

        let outputFormat = format ?? (isatty(1) != 0 ? .text : .json)
        let configuration = WatchConfiguration(
            filter: compiledFilter, rules: compiledRules, tuples: tupleEntries, ringBufferBytes: ringBytes,
            notifyOnClose: !noCloseRecords)
        let session = WatchSession(
            configuration: configuration, cgroupPath: cgroup, format: outputFormat, verbose: verbose,
            duration: duration)
        do {
            try session.run()
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
    }
}

extension NotificationFormatter.Format: ExpressibleByArgument {}
