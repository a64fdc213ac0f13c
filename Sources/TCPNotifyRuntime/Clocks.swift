import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// The clocks and places a session starts from.
public enum Clocks {
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC: turns record timestamps into wall-clock time.
    public static func realtimeOffsetNanoseconds() -> Int64 {
        var realtime = timespec(), monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        clock_gettime(CLOCK_REALTIME, &realtime)
        let real = Int64(realtime.tv_sec) * 1_000_000_000 + Int64(realtime.tv_nsec)
        let mono = Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec)
        return real - mono
    }

    /// When this process was started (exec), on CLOCK_MONOTONIC; now if /proc does not say.
    public static func processStartMonotonicNanoseconds() -> UInt64 {
        let now = MonotonicClock.nanoseconds()
        let age = StartupTimer.processAgeNanoseconds() ?? 0
        return now > age ? now - age : 0
    }

    /// The cgroup v2 hierarchy's root (from /proc/self/mountinfo): the default attach point.
    public static func defaultCgroup() throws -> String {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        guard let mountPoint = CgroupMount.cgroup2MountPoint(mountinfo: mountinfo) else {
            throw BPFError.notSupported(
                feature: "a cgroup v2 hierarchy", minimumKernel: "4.5",
                detail: "no cgroup2 mount in /proc/self/mountinfo; mount one (mount -t cgroup2 none /sys/fs/cgroup) or pass --cgroup")
        }
        return mountPoint
    }
}

/// Start-up time by part, from the process's start (`/proc/self/stat`, 10 ms resolution) to ready.
public struct StartupTimer: Sendable {
    private let startedNanoseconds = DispatchTime.now().uptimeNanoseconds
    private var last = DispatchTime.now().uptimeNanoseconds
    private var parts: [(String, UInt64)] = []

    public init() {}

    public mutating func mark(_ part: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        parts.append((part, now - last))
        last = now
    }

    /// "ready in 312 ms since exec (before main 20 ms, load and verify 190 ms, ...)".
    public var summary: String {
        let beforeMain = Self.processAgeNanoseconds().map { $0 > (last - startedNanoseconds) ? $0 - (last - startedNanoseconds) : 0 } ?? 0
        let total = beforeMain + (last - startedNanoseconds)
        let list = [("before main", beforeMain)] + parts
        return "ready in \(total / 1_000_000) ms since exec ("
            + list.map { "\($0.0) \($0.1 / 1_000_000) ms" }.joined(separator: ", ") + ")"
    }

    /// How long this process has run: now minus its start time in /proc/self/stat (clock ticks since boot).
    public static func processAgeNanoseconds() -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after the command: state is field 3, starttime field 22.
        guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
        let hertz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        let uptime = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        let started = ticks * (1_000_000_000 / hertz)
        return uptime > started ? uptime - started : nil
    }
}
