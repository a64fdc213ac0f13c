import Foundation
import Glibc

/// A real terminal for `tcpnotify top`: a detached tmux session (Debian's tmux) of a fixed size running a
/// plain shell, on a tmux server of its own (`-L`, no config file). Keys go in with `send-keys`, the screen
/// comes out with `capture-pane -p`. `kill()` (also on deinit) ends the server and everything in it.
final class TmuxPane: @unchecked Sendable {
    static let tmux = "/usr/bin/tmux"
    let socketName: String
    let width: Int
    let height: Int
    private var killed = false
    /// The server's and the shell's process ids: killed for sure at the end (the test's cgroup must empty).
    private var processIDs: [pid_t] = []

    init(width: Int, height: Int, name: String) throws {
        socketName = "tcpnotify-\(name)-\(getpid())"
        self.width = width
        self.height = height
        // The server it forks keeps the client's stdout and stderr: no pipes here, or reading them never ends.
        let result = try Self.run(["-L", socketName, "-f", "/dev/null", "new-session", "-d", "-s", "main",
                                   "-x", String(width), "-y", String(height),
                                   "env PS1='$ ' bash --norc --noprofile"], capturing: false)
        guard result.status == 0 else {
            throw SocketError("tmux new-session failed (\(result.status)): \(result.stderr)", EIO)
        }
        let ids = try Self.run(["-L", socketName, "display-message", "-p", "-t", "main", "#{pid} #{pane_pid}"])
        processIDs = ids.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
    }

    deinit { kill() }

    func kill() {
        guard !killed else { return }
        killed = true
        _ = try? Self.run(["-L", socketName, "kill-server"])
        let deadline = Date().addingTimeInterval(2)
        while processIDs.contains(where: { Glibc.kill($0, 0) == 0 }) && Date() < deadline { usleep(20_000) }
        for pid in processIDs where Glibc.kill(pid, 0) == 0 { Glibc.kill(pid, SIGKILL) }
        while processIDs.contains(where: { Glibc.kill($0, 0) == 0 }) && Date() < deadline.addingTimeInterval(2) { usleep(20_000) }
        // A killed server leaves its socket behind.
        unlink("\(ProcessInfo.processInfo.environment["TMUX_TMPDIR"] ?? "/tmp")/tmux-\(getuid())/\(socketName)")
    }

    /// Types a shell command line and Enter.
    func type(_ commandLine: String) throws {
        try send(["-l", commandLine])
        try send(["Enter"])
    }

    /// tmux key names (Enter, Escape, Down) or, with "-l" first, literal text.
    func send(_ keys: [String]) throws {
        let result = try Self.run(["-L", socketName, "send-keys", "-t", "main"] + keys)
        guard result.status == 0 else { throw SocketError("tmux send-keys failed: \(result.stderr)", EIO) }
    }

    /// The screen's text now (with `escapes`, its colours and attributes as SGR sequences).
    func capture(escapes: Bool = false) -> String {
        let result = try? Self.run(["-L", socketName, "capture-pane", "-p", "-t", "main"] + (escapes ? ["-e"] : []))
        return result?.stdout ?? ""
    }

    /// Captures until `condition` holds on the screen's text; the last capture and whether it held.
    @discardableResult
    func wait(timeout: Double, _ condition: (String) -> Bool) -> (screen: String, held: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = capture()
        while !condition(screen) {
            guard Date() < deadline else { return (screen, false) }
            usleep(50_000)
            screen = capture()
        }
        return (screen, true)
    }

    /// Runs a tmux client command (killed after 10 s: a test must not hang on it). posix_spawn and
    /// waitpid, not Foundation's Process: `new-session` forks the server, which keeps whatever the client
    /// inherited, and Process then never sees the client end. Output goes through files for the same reason.
    static func run(_ arguments: [String], capturing: Bool = true) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = "/tmp/tcpnotify-tmux-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let outputPath = capturing ? base + ".out" : "/dev/null", errorPath = capturing ? base + ".err" : "/dev/null"
        defer { if capturing { unlink(outputPath); unlink(errorPath) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = ([tmux] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // Signals as a login shell has them (the test runner may ignore or block some: the pane's shell
        // would then outlive kill-server).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tmux, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw SocketError("cannot run \(tmux)", spawned) }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(10)
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            if Date() > deadline { Glibc.kill(pid, SIGKILL) }
            usleep(2_000)
        }
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
        guard capturing else { return (exitStatus, "", "") }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return (exitStatus, output, errors)
    }
}

/// The SGR parameters of a captured screen that set colours (30-37, 40-47, 38/48 and 90-107; not 39 and 49,
/// tmux's return to the default colours): none without colour.
func colourParameters(in screen: String) -> [String] {
    var found: [String] = []
    var rest = Substring(screen)
    while let start = rest.range(of: "\u{1b}[") {
        rest = rest[start.upperBound...]
        guard let end = rest.firstIndex(where: { $0.isLetter }) else { break }
        if rest[end] == "m" {
            for parameter in rest[..<end].split(separator: ";") {
                if let value = Int(parameter), (30...48).contains(value) && value != 39 || (90...107).contains(value) { found.append(String(parameter)) }
            }
        }
        rest = rest[end...]
    }
    return found
}
