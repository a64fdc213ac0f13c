import Foundation
import Glibc

/// How a session waits for the end: SIGINT/SIGTERM (and SIGHUP, when asked for) are blocked in every
/// thread (threads started later inherit the mask) and taken here with sigtimedwait, so no handler runs
/// on a random thread. SIGUSR2 only wakes the wait (`wake()`), to check whether to stop.
public struct StopSignals {
    private var signals = sigset_t()

    /// Blocks the signals; call before starting any thread.
    public init(reload: Bool) {
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGUSR2)
        if reload { sigaddset(&signals, SIGHUP) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Wakes a `wait` (from any thread) so that it checks `shouldStop` now.
    public static func wake() { kill(getpid(), SIGUSR2) }

    /// Returns on SIGINT or SIGTERM, after `duration` seconds, once stdout is gone, or once `shouldStop`
    /// says so; runs `onReload` for each SIGHUP, and `onTick` every `tickSeconds()` seconds while it
    /// gives one (on this thread, between signals; asked again after each tick and reload, since the
    /// rules that set it can change).
    public func wait(duration: Double?, output: LineOutput, tickSeconds: () -> Double? = { nil }, onTick: () -> Void = {},
                     onReload: () -> Void = {}, shouldStop: () -> Bool = { false }) {
        var signals = signals
        let deadline = duration.map { Date().addingTimeInterval($0) }
        var period = tickSeconds()
        var nextTick = period.map { Date().addingTimeInterval($0) }
        while !shouldStop() {
            // No deadline and no tick: sleep until a signal (a broken stdout raises SIGTERM itself).
            var wait = Double.infinity
            if let deadline {
                let left = deadline.timeIntervalSinceNow
                if left <= 0 { return }
                wait = min(wait, left)
            }
            if let tick = nextTick, let seconds = period {
                let left = tick.timeIntervalSinceNow
                if left <= 0 {
                    onTick()
                    // Ticks keep their phase; a slow tick skips the missed ones rather than bunching them.
                    var next = tick.addingTimeInterval(seconds)
                    while next.timeIntervalSinceNow <= 0 { next = next.addingTimeInterval(seconds) }
                    nextTick = next
                    reschedule(&period, &nextTick, tickSeconds)
                    continue
                }
                wait = min(wait, left)
            }
            let received: Int32
            if wait.isFinite {
                var timeout = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - Double(Int(wait))) * 1e9))
                received = sigtimedwait(&signals, nil, &timeout)
            } else {
                received = sigtimedwait(&signals, nil, nil)
            }
            if received == SIGINT || received == SIGTERM { return }
            if received == SIGHUP {
                onReload()
                reschedule(&period, &nextTick, tickSeconds)
            }
            if output.isBroken { return } // stdout closed: nobody is listening
        }
    }

    /// A changed period takes effect now: none stops the ticks, a new one starts from now.
    private func reschedule(_ period: inout Double?, _ nextTick: inout Date?, _ tickSeconds: () -> Double?) {
        let now = tickSeconds()
        guard now != period else { return }
        period = now
        nextTick = now.map { Date().addingTimeInterval($0) }
    }
}
