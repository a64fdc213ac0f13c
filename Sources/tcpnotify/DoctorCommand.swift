import ArgumentParser
import Foundation
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll

/// `tcpnotify doctor`: what this host gives tcpnotify, asked of the kernel, and what runs without the rest.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check what this host's kernel gives tcpnotify, and what tcpnotify does without the rest.",
        discussion: """
            Every feature is found by asking the kernel: libbpf's type probes, loading each of tcpnotify's \
            BPF programs, an existing loopback connection enrolled by the iterator, and (unless \
            --no-connection) a loopback connection pushed through the sock_ops program from a temporary \
            child cgroup. Nothing stays attached. Exit status: 0 when notifications can be pushed or \
            polled, 69 when neither works.
            """
    )

    @Option(name: .long, help: "table (default) or json.")
    var format: DoctorFormat = .table

    @Flag(name: .long, help: "Skip the end-to-end check (it moves this process into a temporary cgroup for a moment).")
    var noConnection = false

    @OptionGroup var libbpf: VerboseOption

    enum DoctorFormat: String, ExpressibleByArgument {
        case table, json
    }

    func run() throws {
        var report = HostProbe.run(endToEnd: !noConnection, logLibbpf: libbpf.verbose)
        let poll = Self.probePolling()
        report.checks.append(poll)
        let mode: String
        switch (report.push, poll.status == .yes) {
        case (true, _): mode = report.pushSummary
        case (false, true): mode = "poll (sock_diag): no push on this host"
        case (false, false): mode = "none: neither push nor polling works here"
        }
        switch format {
        case .table: print(Self.table(report, mode: mode))
        case .json: print(Self.json(report, mode: mode))
        }
        if !report.push && poll.status != .yes { throw ExitCode.status(.unavailable) }
    }

    /// sock_diag, what `--mode poll` (and auto without BPF) uses.
    static func probePolling() -> HostCheck {
        do {
            let client = try SockDiagClient(receiveTimeoutSeconds: 2)
            let sockets = try client.dump(bytecode: [])
            return HostCheck(name: "sock_diag polling", status: .yes, detail: "\(sockets.count) connected TCP socket(s) in this namespace")
        } catch {
            return HostCheck(name: "sock_diag polling", status: .no, detail: "\(error)", without: "no polling fallback")
        }
    }

    static func table(_ report: HostReport, mode: String) -> String {
        var lines = ["tcpnotify doctor: Linux \(report.kernel)", ""]
        let nameWidth = max(report.checks.map(\.name.count).max() ?? 0, 7)
        func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(width - text.count, 1)) }
        let indent = String(repeating: " ", count: nameWidth + 8)
        lines.append(pad("FEATURE", nameWidth + 2) + "OK    DETAIL")
        for check in report.checks where check.name != "kernel" {
            let status = switch check.status {
            case .yes: "yes"
            case .no: "NO"
            case .info: "-"
            }
            var line = pad(check.name, nameWidth + 2) + pad(status, 6) + check.detail
            if check.status == .no {
                if let without = check.without { line += "\n" + indent + "without it: " + without }
                if let minimum = check.minimumKernel { line += " (Linux \(minimum)+)" }
            }
            lines.append(line)
        }
        lines.append("")
        lines.append("mode: \(mode)")
        for degradation in report.degradations { lines.append("off: " + degradation.message) }
        return lines.joined(separator: "\n")
    }

    static func json(_ report: HostReport, mode: String) -> String { Wire.line(Wire.DoctorReport(report, mode: mode)) }
}
