import Foundation
import Glibc
import TCPNotifyCore

/// A cgroup v2 directory for one kernel test, `<mount>/tcpnotify-test/<name>-<pid>`, with this process moved
/// into it, so a program attached to `path` sees the sockets the test creates afterwards (a socket's cgroup is
/// fixed when it is created). The whole process moves, so suites using it must be `.serialized`.
///
/// `restore()` (also run on deinit) moves the process back and removes the directory.
public final class TestCgroup: @unchecked Sendable {
    public static let parentDirectoryName = "tcpnotify-test"

    /// Absolute file-system path of the test cgroup (open it to attach programs).
    public let path: String
    /// Absolute file-system path of the cgroup the process was in before.
    public let originalPath: String
    private let lock = NSLock()
    /// Whether this process was moved in (and so has to move back).
    private let isMember: Bool
    private var isRestored = false

    /// Creates the cgroup, removes stale siblings left by dead processes, and (unless `movingThisProcess` is
    /// false, for tests that only put subprocesses in with `wrapping(_:)`) moves this process in.
    /// `name` should say which test it is; characters other than letters, digits, '-' and '_' become '_'.
    public init(name: String, movingThisProcess: Bool = true) throws {
        let mount = try Self.mountPoint()
        let procCgroup = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        guard let relative = CgroupMount.cgroup2Path(procCgroup: procCgroup) else {
            throw LabError.invalidArgument("this process has no cgroup v2 path in /proc/self/cgroup")
        }
        originalPath = Self.join(mount, relative)

        let parent = Self.join(mount, Self.parentDirectoryName)
        try Self.makeDirectory(parent, allowExisting: true)
        Self.removeStale(in: parent)
        path = Self.join(parent, "\(Self.sanitized(name))-\(getpid())")
        try Self.makeDirectory(path, allowExisting: true)
        isMember = movingThisProcess
        guard movingThisProcess else { return }
        do {
            try Self.movePID(getpid(), into: path)
        } catch {
            _ = rmdir(path)
            throw error
        }
    }

    deinit { restore() }

    /// Moves this process back to its original cgroup and removes the test cgroup. Idempotent, and safe in
    /// `defer`: a failure is reported on stderr (use `restoreOrThrow()` to handle it).
    public func restore() {
        do {
            try restoreOrThrow()
        } catch {
            FileHandle.standardError.write(Data("warning: TestCgroup.restore: \(error)\n".utf8))
        }
    }

    /// `restore()`, throwing on failure; removing the directory is retried for up to `timeoutSeconds`
    /// while it is busy (children still exiting).
    public func restoreOrThrow(timeoutSeconds: Double = 3) throws {
        try lock.withLock {
            if isRestored { return }
            if isMember { try Self.movePID(getpid(), into: originalPath) }
            isRestored = true
            try Self.removeDirectory(path, timeoutSeconds: timeoutSeconds)
        }
    }

    /// `arguments` wrapped so they run inside this cgroup without moving the calling process:
    /// `sh -c 'echo $$ > "$0"/cgroup.procs && exec "$@"' <path> ARGS...`. Wrap `ip netns exec` rather than
    /// run this inside it: `ip netns exec` mounts a fresh /sys, which hides the cgroup file system (membership
    /// itself survives setns and exec). `NetworkLab.run/spawn(in:_:cgroup:)` does that.
    public func wrapping(_ arguments: [String]) -> [String] {
        ["sh", "-c", "echo $$ > \"$0\"/cgroup.procs && exec \"$@\"", path] + arguments
    }

    /// Runs a command inside this cgroup (see `wrapping(_:)`).
    public func run(_ arguments: [String], timeoutSeconds: Double = 30) throws -> CommandResult {
        try Subprocess.run(wrapping(arguments), timeoutSeconds: timeoutSeconds)
    }

    /// Opens the cgroup directory (for `bpf_program__attach_cgroup`); the caller closes the descriptor.
    public func openDirectory() throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw LabError.cgroup(operation: "open", path: path, errno: errno) }
        return fd
    }

    /// The cgroup v2 mount point, from /proc/self/mountinfo.
    public static func mountPoint() throws -> String {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        guard let mount = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo) else {
            throw LabError.prerequisitesMissing(["a cgroup v2 mount (none in /proc/self/mountinfo)"])
        }
        return mount
    }

    /// Removes `tcpnotify-test/*-<pid>` directories whose process is gone.
    public static func cleanupStale() {
        guard let mount = try? mountPoint() else { return }
        removeStale(in: join(mount, parentDirectoryName))
    }

    // MARK: - Helpers

    private static func removeStale(in parent: String) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        for entry in entries {
            guard let pidText = entry.split(separator: "-").last, let pid = Int32(pidText), pid > 0,
                  !ProcessLiveness.isAlive(pid)
            else { continue }
            try? removeDirectory(join(parent, entry), timeoutSeconds: 0)
        }
    }

    private static func movePID(_ pid: Int32, into cgroup: String) throws {
        let procs = join(cgroup, "cgroup.procs")
        let fd = open(procs, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw LabError.cgroup(operation: "open", path: procs, errno: errno) }
        defer { close(fd) }
        let text = "\(pid)\n"
        let written = text.withCString { write(fd, $0, strlen($0)) }
        if written < 0 { throw LabError.cgroup(operation: "write pid \(pid) to", path: procs, errno: errno) }
    }

    private static func makeDirectory(_ directory: String, allowExisting: Bool) throws {
        if mkdir(directory, 0o755) == 0 || (allowExisting && errno == EEXIST) { return }
        throw LabError.cgroup(operation: "mkdir", path: directory, errno: errno)
    }

    /// rmdir fails with EBUSY while member processes are still exiting; retry until the deadline.
    private static func removeDirectory(_ directory: String, timeoutSeconds: Double) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while rmdir(directory) != 0 {
            let code = errno
            if code == ENOENT { return }
            if code != EBUSY || Date() >= deadline {
                throw LabError.cgroup(operation: "rmdir", path: directory, errno: code)
            }
            usleep(20_000)
        }
    }

    private static func sanitized(_ name: String) -> String {
        let cleaned = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) || $0 == "-" || $0 == "_" ? $0 : "_" })
        return cleaned.isEmpty ? "test" : String(cleaned.prefix(64))
    }

    private static func join(_ base: String, _ component: String) -> String {
        let trimmedBase = base.hasSuffix("/") ? String(base.dropLast()) : base
        let trimmedComponent = component.hasPrefix("/") ? String(component.dropFirst()) : component
        return trimmedComponent.isEmpty ? trimmedBase : trimmedBase + "/" + trimmedComponent
    }
}
