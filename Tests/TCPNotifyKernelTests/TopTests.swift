import Foundation
import Glibc
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `tcpnotify top` on a real terminal (tmux) and in --batch, against two loopback flows of different
    /// throughput started before it (the lab's traffic server and client, in the test's cgroup).
    @Suite struct Top {
        // Ports the kernel picks (fixed ones collide with other users of the machine and their TIME-WAITs).
        static let fastPort = unusedPort()
        static let slowPort = unusedPort()
        static let filter = "dport = :\(fastPort) or dport = :\(slowPort)"

        /// A TCP port nothing is bound to now: bind [::]:0, read the port, close.
        static func unusedPort() -> Int {
            let socket = Glibc.socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(socket) }
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                    bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
                }
            }
            return bound ? Int(UInt16(bigEndian: address.sin6_port)) : 45741
        }

        /// Two flows: 20 MB/s and 100 kB/s, for 20 s at most (the test kills them sooner).
        final class TwoFlows {
            private var processes: [CLIProcess] = []

            init() throws {
                let lab = try LabBinary.locate()
                for port in [Top.fastPort, Top.slowPort] {
                    processes.append(try CLIProcess(lab, ["traffic", "server", "--port", String(port), "--max-seconds", "25"]))
                }
                usleep(300_000)
                for (port, rate) in [(Top.fastPort, "20M"), (Top.slowPort, "100k")] {
                    processes.append(try CLIProcess(lab, ["traffic", "client", "--to", "127.0.0.1:\(port)", "--write-rate", rate,
                                                          "--duration", "20"]))
                }
                usleep(700_000) // established before top starts: existing connections to enroll
                for process in processes where !process.process.isRunning {
                    throw SocketError("a traffic process ended early: \(process.standardError)", EIO)
                }
            }

            /// Kills both ends and waits for them (the test's cgroup must be empty to go).
            func stop() {
                for process in processes { process.signal(SIGKILL) }
                for process in processes { _ = process.waitForExit(timeout: 2) }
            }
            deinit { stop() }
        }

        /// The shell line that starts top (its pid in `pidFile`, for SIGTERM) and says how it ended.
        static func commandLine(cgroup: TestCgroup, pidFile: String, environment: String = "", arguments: String = "") throws -> String {
            let binary = try KernelSuite.CLI.tcpnotify()
            return "\(environment) sh -c 'echo $$ > \(pidFile); exec \(binary) top --cgroup \(cgroup.path) \(arguments) \"\(filter)\"'; "
                + "echo \"top exited $?\""
        }

        /// The table line of the flow to `port`, if shown.
        static func row(_ screen: String, port: Int) -> Substring? {
            screen.split(separator: "\n").first { $0.hasPrefix("127.0.0.1:") && $0.contains(" 127.0.0.1:\(port) ") }
        }

        /// Both flows are in the table with a verdict ("..." until the first).
        static func bothJudged(_ screen: String) -> Bool {
            [fastPort, slowPort].allSatisfy { port in row(screen, port: port).map { !$0.contains("...") } ?? false }
        }

        /// Whether the fast flow's line comes before the slow one's.
        static func fastFirst(_ screen: String) -> Bool? {
            let lines = screen.split(separator: "\n")
            guard let fast = lines.firstIndex(where: { $0.hasPrefix("127.0.0.1:") && $0.contains(" 127.0.0.1:\(fastPort) ") }),
                  let slow = lines.firstIndex(where: { $0.hasPrefix("127.0.0.1:") && $0.contains(" 127.0.0.1:\(slowPort) ") })
            else { return nil }
            return fast < slow
        }

        /// 100x30: the flows appear with verdicts within 3 s of the screen, busiest first; `t` reverses the
        /// order; Enter shows the detail (tcp_info, verdict); Esc goes back; `q` exits 0 and gives the shell back.
        @Test(.enabled(if: KernelGate.canRun(needing: ["tmux"])))
        func liveFlowsSortAndDetailOnA100x30Terminal() throws {
            try KernelGate.require(needing: ["tmux"])
            let cgroup = try TestCgroup(name: "top-live")
            defer { cgroup.restore() }
            let flows = try TwoFlows()
            defer { flows.stop() }
            let pane = try TmuxPane(width: 100, height: 30, name: "top-live")
            defer { pane.kill() }
            let pidFile = "/tmp/tcpnotify-top-live-\(getpid()).pid"
            defer { unlink(pidFile) }
            let typed = Date()
            // (the test runner's NO_COLOR, if any, is not the terminal's)
            try pane.type(Self.commandLine(cgroup: cgroup, pidFile: pidFile, environment: "env -u NO_COLOR"))
            let up = pane.wait(timeout: commandStartSeconds) { $0.contains("conns ") && $0.contains("LOCAL") }
            try #require(up.held, "no table: \(up.screen)")
            let upAt = Date()
            let judged = pane.wait(timeout: 3, Self.bothJudged)
            #expect(judged.held, "both flows with a verdict within 3 s of the first frame:\n\(judged.screen)")
            let judgedSeconds = Date().timeIntervalSince(upAt)
            #expect(Self.fastFirst(judged.screen) == true, "sorted by throughput, busiest first:\n\(judged.screen)")
            #expect(!colourParameters(in: pane.capture(escapes: true)).isEmpty, "a colour terminal gets colours")
            let frame100 = judged.screen

            try pane.send(["t"])
            let flipped = pane.wait(timeout: 3) { Self.fastFirst($0) == false }
            #expect(flipped.held, "t again: smallest throughput first:\n\(flipped.screen)")
            #expect(flipped.screen.contains("sort: THRU asc"), "\(flipped.screen)")

            try pane.send(["Enter"])
            let detail = pane.wait(timeout: 3) { $0.contains("tcp_info (kernel units") && $0.contains("snd_cwnd ") }
            #expect(detail.held, "Enter: the detail view:\n\(detail.screen)")
            #expect(detail.screen.contains("verdict: ") && detail.screen.contains("rtt ") && detail.screen.contains("bytes_acked "),
                    "\(detail.screen)")
            try pane.send(["Escape"])
            let back = pane.wait(timeout: 3) { $0.contains("LOCAL") && !$0.contains("tcp_info (kernel units") }
            #expect(back.held, "Esc: back to the table:\n\(back.screen)")

            try pane.send(["q"])
            let exited = pane.wait(timeout: 5) { $0.contains("top exited 0") }
            #expect(exited.held, "q exits 0:\n\(exited.screen)")
            #expect(!exited.screen.contains("conns ") && !exited.screen.contains("REMOTE"),
                    "the alternate screen is gone, the shell is back:\n\(exited.screen)")
            print("top 100x30: table \(String(format: "%.2f", upAt.timeIntervalSince(typed))) s after the command, both verdicts "
                + "\(String(format: "%.2f", judgedSeconds)) s later; frame:\n\(frame100)\ndetail:\n\(detail.screen)")
        }

        /// 80x24 without colour (NO_COLOR): the essential columns fit, no colour at all; SIGTERM exits 0
        /// and gives the shell back.
        @Test(.enabled(if: KernelGate.canRun(needing: ["tmux"])))
        func noColourOn80x24AndSIGTERMRestoresTheTerminal() throws {
            try KernelGate.require(needing: ["tmux"])
            let cgroup = try TestCgroup(name: "top-80x24")
            defer { cgroup.restore() }
            let flows = try TwoFlows()
            defer { flows.stop() }
            let pane = try TmuxPane(width: 80, height: 24, name: "top-80x24")
            defer { pane.kill() }
            let pidFile = "/tmp/tcpnotify-top-80x24-\(getpid()).pid"
            defer { unlink(pidFile) }
            try pane.type(Self.commandLine(cgroup: cgroup, pidFile: pidFile, environment: "NO_COLOR=1"))
            let judged = pane.wait(timeout: commandStartSeconds, Self.bothJudged)
            try #require(judged.held, "\(judged.screen)")
            let lines = judged.screen.split(separator: "\n", omittingEmptySubsequences: false)
            let header = lines.first { $0.hasPrefix("LOCAL") } ?? ""
            for title in ["REMOTE", "VERDICT", "HELD", "SRTT", "THRU", "RETX"] { #expect(header.contains(title), "\(header)") }
            #expect(lines.contains { $0.hasPrefix("< > or letter: sort") }, "the keys on the last line:\n\(judged.screen)")
            let colours = colourParameters(in: pane.capture(escapes: true))
            #expect(colours.isEmpty, "NO_COLOR: no colour codes, found \(colours)")

            let pidText = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let pid = try #require(Int32(pidText))
            kill(pid, SIGTERM)
            let exited = pane.wait(timeout: 5) { $0.contains("top exited 0") }
            #expect(exited.held, "SIGTERM exits 0:\n\(exited.screen)")
            #expect(!exited.screen.contains("conns ") && !exited.screen.contains("REMOTE"), "the shell is back:\n\(exited.screen)")
            print("top 80x24 NO_COLOR frame:\n\(judged.screen)")
        }

        /// An unknown $TERM is refused before anything is loaded; the crash path: SIGSEGV (as a fault would
        /// raise it) gives the terminal back before the default action ends the process (Swift's backtracer
        /// off, to keep the test short).
        @Test(.enabled(if: KernelGate.canRun(needing: ["tmux"])))
        func aCrashSignalRestoresTheTerminal() throws {
            try KernelGate.require(needing: ["tmux"])
            let cgroup = try TestCgroup(name: "top-crash")
            defer { cgroup.restore() }
            let pane = try TmuxPane(width: 80, height: 24, name: "top-crash")
            defer { pane.kill() }
            let pidFile = "/tmp/tcpnotify-top-crash-\(getpid()).pid"
            defer { unlink(pidFile) }
            // A terminal terminfo does not know: refused at once, with what to do (exit 2, nothing loaded).
            try pane.type("TERM=nosuchterm \(try KernelSuite.CLI.tcpnotify()) top --cgroup \(cgroup.path); echo \"unknown exited $?\"")
            let refused = pane.wait(timeout: 10) { $0.contains("unknown exited 2") }
            #expect(refused.held && refused.screen.contains("unknown to terminfo"), "\(refused.screen)")
            #expect(!refused.screen.contains("watching cgroup"), "refused before loading: \(refused.screen)")
            try pane.type("clear")
            try pane.type(Self.commandLine(cgroup: cgroup, pidFile: pidFile, environment: "SWIFT_BACKTRACE=enable=no"))
            let up = pane.wait(timeout: commandStartSeconds) { $0.contains("conns ") && $0.contains("LOCAL") }
            try #require(up.held, "\(up.screen)")
            let pidText = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            kill(try #require(Int32(pidText)), SIGSEGV)
            let exited = pane.wait(timeout: 10) { $0.contains("top exited 139") }
            #expect(exited.held, "killed by SIGSEGV (128 + 11):\n\(exited.screen)")
            #expect(!exited.screen.contains("conns ") && !exited.screen.contains("REMOTE"), "the shell is back:\n\(exited.screen)")
        }

        /// TERM=dumb on a terminal: plain frames one after another (no full screen, no colour), then exit 0.
        @Test(.enabled(if: KernelGate.canRun(needing: ["tmux"])))
        func aDumbTerminalGetsPlainFrames() throws {
            try KernelGate.require(needing: ["tmux"])
            let cgroup = try TestCgroup(name: "top-dumb")
            defer { cgroup.restore() }
            let flows = try TwoFlows()
            defer { flows.stop() }
            let pane = try TmuxPane(width: 100, height: 30, name: "top-dumb")
            defer { pane.kill() }
            let pidFile = "/tmp/tcpnotify-top-dumb-\(getpid()).pid"
            defer { unlink(pidFile) }
            try pane.type(Self.commandLine(cgroup: cgroup, pidFile: pidFile, environment: "TERM=dumb",
                                           arguments: "--iterations 2 --width 100 2>/dev/null"))
            let exited = pane.wait(timeout: commandStartSeconds) { $0.contains("top exited 0") }
            #expect(exited.held, "\(exited.screen)")
            let frames = exited.screen.split(separator: "\n").filter { $0.hasPrefix("tcpnotify top ") }
            #expect(frames.count == 2, "two frames left on the terminal:\n\(exited.screen)")
            #expect(Self.row(exited.screen, port: Self.fastPort) != nil, "\(exited.screen)")
            #expect(colourParameters(in: pane.capture(escapes: true)).isEmpty)
        }

        /// --batch --iterations 2: two plain frames on stdout (no escape sequence), both flows in them, exit 0.
        @Test(.enabled(if: KernelGate.canRun))
        func batchPrintsPlainFrames() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "top-batch")
            defer { cgroup.restore() }
            let flows = try TwoFlows()
            defer { flows.stop() }
            let started = Date()
            let top = try CLIProcess(KernelSuite.CLI.tcpnotify(),
                                     ["top", "--batch", "--iterations", "2", "--width", "100", "--cgroup", cgroup.path, Self.filter])
            defer { top.signal(SIGKILL) }
            #expect(top.waitForExit(timeout: commandStartSeconds) == 0, "\(top.standardError)")
            let seconds = Date().timeIntervalSince(started)
            let text = top.outputLines.map(\.text).joined(separator: "\n")
            #expect(top.outputLines.filter { $0.text.hasPrefix("tcpnotify top ") }.count == 2, "\(text)")
            #expect(top.outputLines.filter { $0.text.hasPrefix("LOCAL ") }.count == 2, "\(text)")
            #expect(!text.contains("\u{1b}"), "plain text only")
            #expect(top.outputLines.allSatisfy { $0.text.count <= 100 }, "\(text)")
            for port in [Self.fastPort, Self.slowPort] { #expect(Self.row(text, port: port) != nil, "\(port): \(text)") }
            #expect(top.standardError.contains("enrolled"), "the session's messages on stderr: \(top.standardError)")
            print("top --batch --iterations 2 took \(String(format: "%.2f", seconds)) s:\n\(text)")
        }
    }
}
