import Foundation
import Glibc

/// How a finished command went. `status` is the exit status, or 128 + signal number for a killed process.
public struct CommandResult: Sendable {
    public let command: [String]
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// True when the command outlived its time limit and was killed.
    public let timedOut: Bool

    public var succeeded: Bool { status == 0 && !timedOut }

    /// Returns self when the command succeeded, else throws with its stderr.
    @discardableResult
    public func checked() throws -> CommandResult {
        if timedOut {
            throw LabError.commandFailed(command: command, status: status, stderr: "killed at its time limit. " + stderr)
        }
        if status != 0 { throw LabError.commandFailed(command: command, status: status, stderr: stderr) }
        return self
    }
}

/// Runs commands with captured output. Output goes to unlinked temporary files rather than pipes, so a
/// chatty child never blocks and a grandchild holding stdout open never stalls the reader.
public enum Subprocess {
    /// Runs `arguments` (the first is looked up on PATH and in the sbin directories) to completion.
    /// Throws only if it cannot start; a command still running after `timeoutSeconds` is killed.
    public static func run(_ arguments: [String], timeoutSeconds: Double = 30) throws -> CommandResult {
        try LabProcess(arguments).waitForExit(timeoutSeconds: timeoutSeconds)
    }

    /// The absolute path of an executable: `name` itself if it has a slash, else the first match on PATH,
    /// then /usr/sbin, /sbin, /usr/bin, /bin (test runners often drop the sbin directories).
    public static func executablePath(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A started child process. Stop it with `terminate()` or collect it with `waitForExit(timeoutSeconds:)`;
/// both may be called repeatedly and from any thread.
///
/// Spawned with posix_spawn rather than Foundation's `Process`, which passes on the spawning thread's signal
/// mask: test code runs on pool threads that block most signals, so its children ignored SIGTERM and SIGINT.
/// Here a child starts with no blocked signals and default dispositions, in its own process group (so a
/// signal reaches anything it started too), with stdin on /dev/null and no other inherited descriptors.
public final class LabProcess: @unchecked Sendable {
    public let command: [String]
    public let pid: Int32
    private let stdoutCapture: OutputCapture
    private let stderrCapture: OutputCapture
    /// Left when the process has been reaped; a group (unlike a semaphore) can be waited on many times.
    private let exitGroup = DispatchGroup()
    private let lock = NSLock()
    private var waitStatus: Int32?
    private var timedOut = false

    public init(_ arguments: [String]) throws {
        guard let name = arguments.first else { throw LabError.invalidArgument("empty command") }
        guard let executable = Subprocess.executablePath(name) else {
            throw LabError.launchFailed(command: arguments, reason: "\(name) not found on PATH")
        }
        command = arguments
        stdoutCapture = try OutputCapture()
        stderrCapture = try OutputCapture()
        pid = try Spawn.start(
            executable: executable, arguments: arguments, stdoutFD: stdoutCapture.fd, stderrFD: stderrCapture.fd)

        exitGroup.enter()
        let reaper = Thread { [self] in
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            lock.withLock { waitStatus = status }
            exitGroup.leave()
        }
        reaper.name = "LabProcess \(pid)"
        reaper.start()
    }

    public var isRunning: Bool { lock.withLock { waitStatus == nil } }

    /// Output written so far (complete once the process has exited).
    public var stdout: String { stdoutCapture.contents() }
    public var stderr: String { stderrCapture.contents() }

    /// Sends `signal` to the process and its process group, if it is still running.
    public func signal(_ signal: Int32) {
        lock.withLock {
            guard waitStatus == nil else { return }
            if kill(-pid, signal) != 0 { kill(pid, signal) }
        }
    }

    /// Waits for the process to exit; past `timeoutSeconds` it is terminated and the result says so.
    public func waitForExit(timeoutSeconds: Double) -> CommandResult {
        if exitGroup.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            lock.withLock { timedOut = true }
            return terminate()
        }
        return result()
    }

    /// SIGTERM, then SIGKILL if it is still running after `graceSeconds`; returns how it ended.
    @discardableResult
    public func terminate(graceSeconds: Double = 1) -> CommandResult {
        signal(SIGTERM)
        if exitGroup.wait(timeout: .now() + graceSeconds) == .timedOut {
            signal(SIGKILL)
            exitGroup.wait()
        }
        return result()
    }

    private func result() -> CommandResult {
        let (status, timedOut) = lock.withLock { (waitStatus ?? 0, self.timedOut) }
        let terminatingSignal = status & 0x7f // WTERMSIG; 0 means it exited normally
        return CommandResult(
            command: command,
            status: terminatingSignal == 0 ? (status >> 8) & 0xff : 128 + terminatingSignal,
            stdout: stdoutCapture.contents(), stderr: stderrCapture.contents(),
            timedOut: timedOut)
    }
}

/// posix_spawn with a clean signal state, a new process group and only stdin/stdout/stderr open.
package enum Spawn {
    package static func start(executable: String, arguments: [String], stdoutFD: Int32, stderrFD: Int32) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
        closeInheritedDescriptors(&actions)

        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var standardSignals = sigset_t()
        sigemptyset(&standardSignals)
        for number in 1..<32 { sigaddset(&standardSignals, Int32(number)) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &standardSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        var pid: Int32 = 0
        let result = withCStringArray(arguments) { argv in
            withCStringArray(environment) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        if result != 0 { throw LabError.launchFailed(command: arguments, reason: ErrnoText.describe(result)) }
        return pid
    }

    /// Closes descriptors 3 and up in the child, so it cannot hold another process's pipe open. glibc 2.34+
    /// has posix_spawn_file_actions_addclosefrom_np, which Swift does not import (_GNU_SOURCE): look it up;
    /// else close what is open now.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let address = closeFromAddress {
            typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
            let addCloseFrom = unsafeBitCast(address, to: AddCloseFrom.self)
            if addCloseFrom(&actions, 3) == 0 { return }
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap({ Int32($0) }) where fd >= 3 {
            posix_spawn_file_actions_addclose(&actions, fd) // one closed meanwhile is ignored at spawn
        }
    }

    private static let closeFromAddress: UInt? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return UInt(bitPattern: symbol)
    }()

    /// NULL-terminated `char *[]` for the duration of `body`.
    private static func withCStringArray<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }
}

/// A temporary file, unlinked at once, that a child writes its output to.
private final class OutputCapture: @unchecked Sendable {
    let fd: Int32

    init() throws {
        var template = Array("/tmp/tcpnotify-lab-output-XXXXXX".utf8CString)
        let opened = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let path = buffer.baseAddress else { return -1 }
            return mkstemp(path)
        }
        guard opened >= 0 else {
            throw LabError.launchFailed(command: [], reason: "cannot create an output file: \(ErrnoText.describe(errno))")
        }
        template.withUnsafeBufferPointer { buffer in
            if let path = buffer.baseAddress { unlink(path) }
        }
        // mkostemp (atomic O_CLOEXEC) is not imported; children only get it as their stdout/stderr.
        _ = fcntl(opened, F_SETFD, FD_CLOEXEC)
        fd = opened
    }

    deinit { close(fd) }

    func contents() -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            offset += off_t(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
