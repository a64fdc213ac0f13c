import Glibc

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and so of every record's timestamp and the sweep
/// horizon. The one reading of it every target uses.
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
