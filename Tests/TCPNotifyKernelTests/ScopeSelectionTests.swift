import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `--unit` and `--pid` end to end: the real binary, real processes in a cgroup the test creates.
    @Suite struct ScopeSelection {
        /// A cgroup named like a systemd service under the test's cgroup, with this process moved in; on
        /// `remove()` the process moves back and both directories go.
        final class FakeUnit {
            let parent: TestCgroup
            let name: String
            let path: String

            init() throws {
                parent = try TestCgroup(name: "scope-unit", movingThisProcess: false)
                name = "tnunit\(getpid()).service"
                path = parent.path + "/" + name
                guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw SocketError("mkdir \(path)") }
                try Self.move(getpid(), into: path)
            }

            static func move(_ pid: Int32, into directory: String) throws {
                try "\(pid)\n".write(toFile: directory + "/cgroup.procs", atomically: false, encoding: .utf8)
            }

            func remove() {
                try? Self.move(getpid(), into: parent.originalPath)
                _ = eventually(timeout: 3) { rmdir(path) == 0 || errno == ENOENT }
                parent.restore()
            }
        }

        static func peerPort(_ socket: TCPSocket) -> UInt16 {
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket.fd, $0, &length) }
            }
            return UInt16(bigEndian: address.sin_port)
        }

        static func sources(_ process: CLIProcess) -> Set<String> {
            Set(process.notifications.map(\.src))
        }

        @Test(.enabled(if: KernelGate.canRun))
        func unitAttachesToTheUnitsCgroup() throws {
            try KernelGate.require()
            let unit = try FakeUnit()
            defer { unit.remove() }
            let watch = try CLIProcess(CLI.tcpnotify(), ["watch", "--unit", unit.name, "--format", "json", "--when", "fin=state == FIN_WAIT1"])
            defer { watch.signal(SIGKILL); _ = watch.waitForExit() }
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            #expect(watch.standardError.contains(unit.path), "attached elsewhere: \(watch.standardError)")
            #expect(try attachedProgramIDs(cgroup: unit.path).count == 1)
            let pair = try ConnectedPair.make()
            try pair.client.shutdownWrite()
            let source = "127.0.0.1:\(try pair.client.localPort())"
            #expect(eventually { Self.sources(watch).contains(source) }, "\(watch.outputLines.map(\.text))")

            // snapshot --unit lists the unit's sockets only: this pair's, not one made outside it.
            try FakeUnit.move(getpid(), into: unit.parent.originalPath)
            let outside = try ConnectedPair.make()
            let snapshot = try CLIProcess.run(CLI.tcpnotify(), ["snapshot", "--unit", unit.name, "--format", "json", "--own-namespace"])
            #expect(snapshot.status == 0, "\(snapshot.stderr)")
            #expect(snapshot.stdout.contains("\"\(source)\""), "\(snapshot.stdout)")
            #expect(!snapshot.stdout.contains("127.0.0.1:\(try outside.client.localPort())"), "\(snapshot.stdout)")
            withExtendedLifetime(outside) {}
        }

        /// A shell holds one connection before `watch --pid` starts and makes another after; this process
        /// holds a third in the same cgroup. Each server end closes: only the shell's two client ends
        /// (CLOSE_WAIT) are reported.
        @Test(.enabled(if: KernelGate.canRun))
        func pidSelectsTheProcessesExistingAndNewSockets() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "scope-pid")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let go = FileManager.default.temporaryDirectory.appendingPathComponent("tn-scope-go-\(getpid())").path
            unlink(go)
            defer { unlink(go) }
            let script = """
                exec 3<>/dev/tcp/127.0.0.1/\(port) || exit 1
                while [ ! -e \(go) ]; do sleep 0.05; done
                exec 4<>/dev/tcp/127.0.0.1/\(port) || exit 1
                sleep 60
                """
            let shell = try CLIProcess("/bin/bash", ["-c", script])
            defer { shell.signal(SIGKILL); _ = shell.waitForExit() }
            let existing = TCPSocket(fd: accept(listener.fd, nil, nil))
            #expect(existing.fd >= 0)
            let mine = try ConnectedPair.connect(to: listener)

            let arguments = ["watch", "--pid", "\(shell.process.processIdentifier)", "--format", "json", "--when", "cw=state == CLOSE_WAIT"]
            let watch = try CLIProcess(CLI.tcpnotify(), arguments)
            defer { watch.signal(SIGKILL); _ = watch.waitForExit() }
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            #expect(watch.standardError.contains(cgroup.path), "attached at the process's cgroup: \(watch.standardError)")
            FileManager.default.createFile(atPath: go, contents: nil)
            let new = TCPSocket(fd: accept(listener.fd, nil, nil))
            #expect(new.fd >= 0)

            // The snapshot sees the shell's two sockets.
            let snapshot = try CLIProcess.run(CLI.tcpnotify(), ["snapshot", "--pid", "\(shell.process.processIdentifier)", "--format", "json"])
            #expect(snapshot.status == 0, "\(snapshot.stderr)")
            #expect(snapshot.stdout.split(separator: "\n").count == 2, "\(snapshot.stdout)")

            for socket in [existing, new, mine.server] { try socket.shutdownWrite() }
            let expected: Set = ["127.0.0.1:\(Self.peerPort(existing))", "127.0.0.1:\(Self.peerPort(new))"]
            #expect(eventually { Self.sources(watch).isSuperset(of: expected) }, "\(watch.outputLines.map(\.text)) \(watch.standardError)")
            usleep(300_000)
            #expect(Self.sources(watch) == expected, "this process's own socket must not be reported")
            withExtendedLifetime((listener, mine)) {}
        }

        static let badScopes: [(arguments: [String], fragment: String)] = [
            (["watch", "--unit", "tcpnotify-no-such-unit.service"], "not running or does not exist"),
            (["diagnose", "--unit", "tcpnotify-no-such-unit"], "tcpnotify-no-such-unit.service"),
            (["watch", "--unit", "backup.timer"], "no cgroup of its own"),
            (["snapshot", "--unit", "/system.slice/x.service"], "not a unit name"),
            (["watch", "--pid", "2147483646"], "no such process"),
            (["snapshot", "--pid", "2147483646"], "no such process"),
            (["watch", "--pid", "0"], "positive"),
            (["watch", "--cgroup", "/sys/fs/cgroup/tcpnotify-no-such-cgroup"], "not a directory"),
            (["watch", "--cgroup", "/tmp", "--pid", "1"], "give one of them"),
            (["serve", "--pid", "1"], "--unit"),
        ]

        @Test(arguments: badScopes.indices)
        func badScopesExitWith2(index: Int) throws {
            let (arguments, fragment) = Self.badScopes[index]
            let result = try CLIProcess.run(CLI.tcpnotify(), arguments, timeout: 20)
            #expect(result.status == 2, "\(arguments): status \(result.status), stderr: \(result.stderr)")
            #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }
    }
}
