import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyLab

/// A benchmarked child process: stdout is a pipe read promptly by a thread (each line stamped with
/// CLOCK_MONOTONIC when read, for detection latency), stderr is collected, and the exit is taken with
/// wait4 so the child's own CPU time (rusage) is known. Starts in its own process group, optionally inside a
/// cgroup (through `sh -c 'echo $$ > cgroup.procs; exec ...'`, so the pid is the command's own).
public final class BenchProcess: @unchecked Sendable {
    public typealias LineHandler = @Sendable (_ line: Substring, _ readNanoseconds: UInt64) -> Void

    public let command: [String]
    public let pid: Int32
    private let lock = NSLock()
    private let exitGroup = DispatchGroup()
    private let readersDone = DispatchGroup()
    private var exitStatus: Int32?
    private var usage = rusage()
    private var stderrText = ""
    private var notificationLines: UInt64 = 0
    private var otherLines: [String] = []
    private var firstNotificationNanoseconds: UInt64?
    private var lastNotificationNanoseconds: UInt64?
    private let onNotificationIsNil: Bool

    /// `onNotification` sees every `{"type":"notification"...}` line on the reader thread; other stdout
    /// lines (the final stats line) are kept.
    public init(_ arguments: [String], cgroup: String? = nil, onNotification: LineHandler? = nil) throws {
        let full = cgroup.map { ["sh", "-c", "echo $$ > \"$0\"/cgroup.procs && exec \"$@\"", $0] + arguments } ?? arguments
        guard let name = full.first, let executable = Subprocess.executablePath(name) else {
            throw LabError.launchFailed(command: arguments, reason: "\(arguments.first ?? "") not found on PATH")
        }
        command = arguments
        onNotificationIsNil = onNotification == nil
        let out = try Self.makePipe(), err = try Self.makePipe()
        do {
            pid = try Spawn.start(executable: executable, arguments: full, stdoutFD: out.write, stderrFD: err.write)
        } catch {
            [out.read, out.write, err.read, err.write].forEach { close($0) }
            throw error
        }
        close(out.write)
        close(err.write)

        exitGroup.enter()
        let reaper = Thread { [self] in
            var status: Int32 = 0
            var used = rusage()
            while wait4(pid, &status, 0, &used) < 0 && errno == EINTR {}
            lock.withLock {
                exitStatus = status
                usage = used
            }
            exitGroup.leave()
        }
        reaper.name = "bench reaper \(pid)"
        reaper.start()
        startReader(fd: out.read, name: "stdout") { [self] line, now in
            if line.hasPrefix("{\"type\":\"notification\"") {
                countNotifications(1, at: now)
                onNotification?(line, now)
            } else if !line.isEmpty {
                let text = String(line)
                lock.withLock { otherLines.append(text) }
            }
        }
        startReader(fd: err.read, name: "stderr") { [self] line, _ in
            let text = String(line)
            lock.withLock { stderrText += text + "\n" }
        }
    }

    public var isRunning: Bool { lock.withLock { exitStatus == nil } }
    public var stderr: String { lock.withLock { stderrText } }
    /// Notification lines read so far.
    public var notificationCount: UInt64 { lock.withLock { notificationLines } }
    /// When the first and the last notification line were read (CLOCK_MONOTONIC ns).
    public var notificationSpan: (first: UInt64, last: UInt64)? {
        lock.withLock { firstNotificationNanoseconds.flatMap { first in lastNotificationNanoseconds.map { (first, $0) } } }
    }
    /// Stdout lines that were not notifications (e.g. the final `{"type":"stats",...}`).
    public var otherStdoutLines: [String] { lock.withLock { otherLines } }

    /// CPU time of the process so far: the sum of its threads' on-CPU time from /proc/PID/task/*/schedstat
    /// (nanosecond precision, unlike the tick-based /proc/PID/stat). Threads that already exited are missed,
    /// so compare values taken while the same threads run.
    public func cpuNanoseconds() -> UInt64 { BenchProcess.cpuNanoseconds(pid: pid) }

    public static func cpuNanoseconds(pid: Int32) -> UInt64 {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.reduce(0) { sum, task in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? ""
            return sum + (text.split(separator: " ").first.flatMap { UInt64($0) } ?? 0)
        }
    }

    /// Peak resident set size (VmHWM) in bytes, from /proc/PID/status.
    public func peakResidentBytes() -> UInt64? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
    }

    /// Waits until stderr contains `text`, the process exits, or the timeout passes; true if it appeared.
    public func waitForStderr(containing text: String, timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            if stderr.contains(text) { return true }
            if !isRunning { return stderr.contains(text) }
            usleep(5_000)
        }
        return stderr.contains(text)
    }

    public func signal(_ number: Int32) {
        lock.withLock {
            guard exitStatus == nil else { return }
            if kill(-pid, number) != 0 { kill(pid, number) }
        }
    }

    /// Sends `signalNumber` (SIGINT: tcpnotify detaches and prints its stats line), waits up to
    /// `graceSeconds`, then SIGKILLs. Returns the exit status and the child's CPU time from wait4, in ns.
    @discardableResult
    public func stop(signal signalNumber: Int32 = SIGINT, graceSeconds: Double = 5) -> (status: Int32, cpuNanoseconds: UInt64) {
        signal(signalNumber)
        if exitGroup.wait(timeout: .now() + graceSeconds) == .timedOut {
            signal(SIGKILL)
            exitGroup.wait()
        }
        _ = readersDone.wait(timeout: .now() + 2)
        return lock.withLock {
            let cpu = UInt64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000_000
                + UInt64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1_000
            return (exitStatus ?? -1, cpu)
        }
    }

    /// Waits for a process that ends by itself (e.g. `ss`); SIGKILL past the timeout.
    @discardableResult
    public func wait(timeoutSeconds: Double) -> (status: Int32, cpuNanoseconds: UInt64) {
        if exitGroup.wait(timeout: .now() + timeoutSeconds) == .timedOut { return stop(signal: SIGKILL) }
        return stop(signal: 0)
    }

    // MARK: - Helpers

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw LabError.launchFailed(command: [], reason: "pipe: \(ErrnoText.describe(errno))") }
        // Only the child's stdout/stderr copies (made by dup2 at spawn) survive exec.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    /// Reads `fd` until EOF in large chunks and calls `onLine` per line; the timestamp is taken when read()
    /// returns. Notification lines without a handler are only counted (memchr over bytes, no String), so the
    /// sink keeps up with the watcher instead of competing with it for the CPU.
    private func startReader(fd: Int32, name: String, onLine: @escaping @Sendable (Substring, UInt64) -> Void) {
        readersDone.enter()
        let countsOnly = name == "stdout" && onNotificationIsNil
        let thread = Thread { [self, readersDone] in
            let capacity = 1 << 20
            let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
            defer { buffer.deallocate() }
            let prefix = Array("{\"type\":\"notification\"".utf8)
            var filled = 0
            while true {
                if filled == capacity { filled = 0 } // a line longer than 1 MiB: not ours, drop it
                let count = read(fd, buffer + filled, capacity - filled)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                let now = MonotonicClock.nanoseconds()
                let end = filled + count
                var start = 0
                var counted: UInt64 = 0
                while start < end, let newline = memchr(buffer + start, 0x0A, end - start) {
                    let lineEnd = buffer.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                    let length = lineEnd - start
                    if countsOnly && length >= prefix.count && memcmp(buffer + start, prefix, prefix.count) == 0 {
                        counted += 1
                    } else {
                        let line = String(decoding: UnsafeBufferPointer(start: buffer + start, count: length), as: UTF8.self)
                        onLine(Substring(line), now)
                    }
                    start = lineEnd + 1
                }
                if counted > 0 { countNotifications(counted, at: now) }
                if start < end { memmove(buffer, buffer + start, end - start) }
                filled = end - start
            }
            if filled > 0 {
                onLine(Substring(String(decoding: UnsafeBufferPointer(start: buffer, count: filled), as: UTF8.self)),
                       MonotonicClock.nanoseconds())
            }
            close(fd)
            readersDone.leave()
        }
        thread.name = "bench \(name) \(pid)"
        thread.start()
    }

    private func countNotifications(_ count: UInt64, at now: UInt64) {
        lock.withLock {
            notificationLines += count
            if firstNotificationNanoseconds == nil { firstNotificationNanoseconds = now }
            lastNotificationNanoseconds = now
        }
    }
}

public enum BenchClock {
    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
