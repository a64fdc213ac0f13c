import Foundation
import Glibc
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// One exit-status table for every command (README "Errors and exit codes"): 0 done, 1 failed while
    /// running, 2 bad input, 3 `diagnose --once` found an impaired flow, 69 the kernel or the host cannot,
    /// 77 missing privileges. Bad input is refused before the kernel is touched.
    @Suite struct ExitCodes {
        static func tcpnotify() throws -> String { try KernelSuite.CLI.tcpnotify() }

        static func run(_ arguments: [String], environment: [String: String] = [:], asNobody: Bool = false) throws
            -> (status: Int32, stderr: String)
        {
            let executable = asNobody ? "/usr/bin/setpriv" : try tcpnotify()
            let prefix = asNobody
                ? ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", try tcpnotify()] : []
            let process = try CLIProcess(executable, prefix + arguments, environment: environment)
            let status = process.waitForExit(timeout: 30) ?? -1
            return (status, process.standardError)
        }

        /// A bad value for every command, each with what stderr must say (what is wrong, what to give).
        static let badValues: [(arguments: [String], fragments: [String])] = [
            (["watch", "--duration", "-5"], ["--duration", "'-5' is negative"]),
            (["watch", "--interval", "0"], ["--interval"]),
            (["watch", "--tuples", "/nonexistent-tcpnotify.tuples"], ["/nonexistent-tcpnotify.tuples"]),
            (["watch", "--config", "/nonexistent-tcpnotify.yaml"], ["/nonexistent-tcpnotify.yaml"]),
            (["watch", "--unit", "no-such-unit-tcpnotify.service"], ["no-such-unit-tcpnotify.service"]),
            (["serve", "--duration", "5"], ["Unknown option '--duration'"]),
            (["serve", "--ring-bytes", "3"], ["--ring-bytes", "power of two"]),
            (["serve", "--queue-bytes", "-1"], ["--queue-bytes"]),
            (["serve", "--config", "/nonexistent-tcpnotify.yaml"], ["/nonexistent-tcpnotify.yaml"]),
            (["serve", "--history", "dport = :99999"], ["--history", "port"]),
            (["serve", "--socket-group", "no-such-group-tcpnotify"], ["--socket-group", "no-such-group-tcpnotify"]),
            (["serve", "--unit", "no-such-unit-tcpnotify.service"], ["no-such-unit-tcpnotify.service"]),
            (["serve", "--metrics-address", "127.0.0.1:99999"], ["--metrics-address"]),
            (["serve", "--pid", "1"], ["serve --pid"]),
            (["diagnose", "--for", "-5"], ["--for", "negative"]),
            (["diagnose", "--window", "soon"], ["--window"]),
            (["diagnose", "dport = :99999"], ["invalid filter", "port"]),
            (["snapshot", "--tuples", "/nonexistent-tcpnotify.tuples"], ["/nonexistent-tcpnotify.tuples"]),
            (["snapshot", "--pid", "-7"], ["--pid"]),
            (["subscribe", "--socket", String(repeating: "s", count: 200)], ["--socket", "at most 107"]),
            (["subscribe", "--bogus"], ["Unknown option '--bogus'"]),
            (["doctor", "--format", "xml"], ["--format"]),
            (["fields", "--bogus"], ["Unknown option '--bogus'"]),
            (["rules", "--bogus"], ["Unknown option '--bogus'"]),
            (["nonsense-command"], ["nonsense-command"]),
        ]

        /// Exit 2, the message, nothing loaded: with --verbose, libbpf would print every load.
        @Test(arguments: badValues.indices)
        func badValueExitsWithUsageBeforeTheKernel(index: Int) throws {
            let (arguments, fragments) = Self.badValues[index]
            let verbose = ["watch", "serve", "diagnose", "snapshot"].contains(arguments[0]) ? ["--verbose"] : []
            let started = Date()
            let result = try Self.run(arguments + verbose)
            #expect(result.status == 2, "\(arguments): status \(result.status), stderr: \(result.stderr)")
            for fragment in fragments {
                #expect(result.stderr.contains(fragment), "\(arguments) lacks '\(fragment)': \(result.stderr)")
            }
            #expect(!result.stderr.contains("libbpf"), "\(arguments) loaded BPF before refusing: \(result.stderr.prefix(400))")
            #expect(!result.stderr.contains("serving") && !result.stderr.contains("watching"), "\(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 10)
        }

        /// Values only the run can check, all before the kernel: a port in use for metrics, a socket
        /// another daemon answers on, a socket directory this user cannot write (refused as bad input
        /// even though the user also lacks the privileges: the arguments come first).
        @Test(.enabled(if: KernelGate.canRun(needing: ["setpriv"])))
        func runTimeChecksComeBeforeTheKernel() throws {
            try KernelGate.require(needing: ["setpriv"])
            let busy = try TCPSocket.listener()
            let port = try busy.localPort()
            let directory = "/tmp/tcpnotify-exit-\(getpid())"
            mkdir(directory, 0o755)
            defer { _ = try? FileManager.default.removeItem(atPath: directory) }
            let answering = try UnixListener(path: "\(directory)/taken.sock")
            defer { answering.close() }
            let cases: [(arguments: [String], fragment: String, asNobody: Bool)] = [
                (["serve", "--socket", "\(directory)/a.sock", "--metrics-address", "127.0.0.1:\(port)"], "127.0.0.1:\(port)", false),
                (["watch", "--mode", "bpf", "--metrics-address", "127.0.0.1:\(port)"], "127.0.0.1:\(port)", false),
                (["serve", "--socket", "\(directory)/taken.sock", "--metrics-address", "off"], "another tcpnotify serve is listening", false),
                (["serve", "--socket", "\(directory)/b.sock", "--metrics-address", "off"], "cannot create a file in", true),
            ]
            for (arguments, fragment, asNobody) in cases {
                let result = try Self.run(arguments + ["--verbose"], asNobody: asNobody)
                #expect(result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
                #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
                #expect(!result.stderr.contains("libbpf"), "\(arguments) loaded BPF first: \(result.stderr.prefix(400))")
            }
        }

        /// Missing privileges: 77, naming the capability, for every command that loads programs.
        @Test(.enabled(if: KernelGate.canRun(needing: ["setpriv"])))
        func missingPrivilegesExit77() throws {
            try KernelGate.require(needing: ["setpriv"])
            let socketDirectory = "/tmp/tcpnotify-exit77-\(getpid())"
            mkdir(socketDirectory, 0o777)
            chmod(socketDirectory, 0o777)
            defer { _ = try? FileManager.default.removeItem(atPath: socketDirectory) }
            for arguments in [
                ["watch", "--mode", "bpf", "--duration", "5"],
                ["serve", "--mode", "bpf", "--socket", "\(socketDirectory)/s.sock", "--metrics-address", "off"],
                ["diagnose", "--for", "5"],
                ["snapshot"],
            ] {
                let result = try Self.run(arguments, asNobody: true)
                #expect(result.status == 77, "\(arguments): \(result.status) \(result.stderr)")
                #expect(result.stderr.contains("permission denied") && result.stderr.contains("CAP_BPF"), "\(arguments): \(result.stderr)")
            }
        }

        /// The kernel refusing the program (the host's policy, simulated): 69 where only BPF will do; a
        /// subscriber without a daemon: 69.
        @Test(.enabled(if: KernelGate.canRun))
        func unavailableFeaturesExit69() throws {
            try KernelGate.require()
            let refuse = ["TCPNOTIFY_REFUSE_PROGRAMS": "sockops_main"]
            for arguments in [
                ["watch", "--mode", "bpf", "--duration", "5"],
                ["serve", "--mode", "bpf", "--socket", "/tmp/tcpnotify-exit69-\(getpid()).sock", "--metrics-address", "off"],
                ["diagnose", "--for", "5"],
            ] {
                let result = try Self.run(arguments, environment: refuse)
                #expect(result.status == 69, "\(arguments): \(result.status) \(result.stderr)")
                #expect(result.stderr.contains("refused BPF program 'sockops_main'"), "\(arguments): \(result.stderr)")
            }
            let subscribe = try Self.run(["subscribe", "--socket", "/tmp/tcpnotify-no-daemon-\(getpid()).sock"])
            #expect(subscribe.status == 69, "\(subscribe.status) \(subscribe.stderr)")
            #expect(subscribe.stderr.contains("is `tcpnotify serve` running?"), "\(subscribe.stderr)")
        }
    }
}

/// A Unix stream socket listening at a path (another "daemon" for the tests).
final class UnixListener {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 8) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}
