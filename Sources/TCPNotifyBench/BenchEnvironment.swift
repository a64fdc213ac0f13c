import Foundation
import TCPNotifyLab
import Glibc
import TCPNotifyCore

/// What the benchmark changes on the machine, and how it puts everything back on every exit path:
///
/// - a cgroup `<cgroup2 mount>/tcpnotify-bench-<pid>` that the watchers attach to, with two leaves:
///   `self` (this process, for the sockets the latency test makes itself) and `children` (every child:
///   watchers, connection holders, iperf3, ss), so `cgroup.kill` ends them all at once;
/// - kernel.bpf_stats_enabled, on for the run (BPF run-time statistics) and restored afterwards.
///
/// A watcher's bpf_link dies with its process, so killing the children detaches every program.
public final class BenchEnvironment: @unchecked Sendable {
    /// The attach point: covers `self` and `children`.
    public let cgroupPath: String
    public var childrenCgroup: String { cgroupPath + "/children" }
    private let selfCgroup: String
    private let originalCgroup: String
    private let previousStatsSetting: String?
    private let lock = NSLock()
    private var restored = false
    private var signalSources: [DispatchSourceSignal] = []
    nonisolated(unsafe) private static var current: BenchEnvironment?

    static let statsSetting = "/proc/sys/kernel/bpf_stats_enabled"

    public init() throws {
        let mount = try TestCgroup.mountPoint()
        Self.removeStale(mount: mount)
        let procCgroup = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        guard let relative = CgroupMount.cgroup2Path(procCgroup: procCgroup) else {
            throw LabError.invalidArgument("this process has no cgroup v2 path in /proc/self/cgroup")
        }
        originalCgroup = relative == "/" ? mount : mount + relative
        cgroupPath = mount + "/tcpnotify-bench-\(getpid())"
        selfCgroup = cgroupPath + "/self"
        for directory in [cgroupPath, selfCgroup, cgroupPath + "/children"] where mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw LabError.cgroup(operation: "mkdir", path: directory, errno: errno)
        }
        previousStatsSetting = (try? String(contentsOfFile: Self.statsSetting, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try Self.writeFile(selfCgroup + "/cgroup.procs", "\(getpid())")
        try Self.writeFile(Self.statsSetting, "1")
        Self.current = self
        installSignalHandlers()
    }

    deinit { restore() }

    /// Kills every child, restores the sysctl, moves this process back and removes the cgroups. Idempotent.
    public func restore() {
        let first = lock.withLock { () -> Bool in
            defer { restored = true }
            return !restored
        }
        guard first else { return }
        _ = try? Self.writeFile(childrenCgroup + "/cgroup.kill", "1")
        if let previousStatsSetting { _ = try? Self.writeFile(Self.statsSetting, previousStatsSetting) }
        _ = try? Self.writeFile(originalCgroup + "/cgroup.procs", "\(getpid())")
        let deadline = Date().addingTimeInterval(5)
        for directory in [childrenCgroup, selfCgroup, cgroupPath] {
            while rmdir(directory) != 0 && errno == EBUSY && Date() < deadline { usleep(20_000) }
        }
    }

    /// SIGINT/SIGTERM/SIGHUP: clean up, then exit 130.
    private func installSignalHandlers() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("tcpnotify-lab bench: interrupted; cleaning up\n".utf8))
                BenchEnvironment.current?.restore()
                exit(130)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Removes `tcpnotify-bench-<pid>` cgroups of benchmarks that died without cleaning up.
    private static func removeStale(mount: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: mount)) ?? []
        for entry in entries where entry.hasPrefix("tcpnotify-bench-") {
            guard let pid = Int32(entry.dropFirst("tcpnotify-bench-".count)), kill(pid, 0) != 0 else { continue }
            let base = mount + "/" + entry
            _ = try? writeFile(base + "/children/cgroup.kill", "1")
            usleep(200_000)
            for directory in [base + "/children", base + "/self", base] { _ = rmdir(directory) }
        }
    }

    static func writeFile(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw LabError.cgroup(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        let written = text.withCString { write(fd, $0, strlen($0)) }
        if written < 0 { throw LabError.cgroup(operation: "write '\(text)' to", path: path, errno: errno) }
    }
}
