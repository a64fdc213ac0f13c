import Foundation
import Glibc

/// How `watch` and `diagnose` wait for the end: SIGINT/SIGTERM (and SIGHUP, when asked for) are blocked
/// in every thread (threads started later inherit the mask) and taken here with sigtimedwait, so no
/// handler runs on a random thread.
struct StopSignals {
    private var signals = sigset_t()

    /// Blocks the signals; call before starting any thread.
    init(reload: Bool) {
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        if reload { sigaddset(&signals, SIGHUP) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Returns on SIGINT or SIGTERM, after `duration` seconds, or once stdout is gone; runs `onReload`
    /// for each SIGHUP.
    func wait(duration: Double?, output: LineOutput, onReload: () -> Void = {}) {
        var signals = signals
        let deadline = duration.map { Date().addingTimeInterval($0) }
        while true {
            var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            if let deadline {
                let left = deadline.timeIntervalSinceNow
                if left <= 0 { return }
                if left < 0.2 { timeout.tv_nsec = Int(left * 1e9) }
            }
            let received = sigtimedwait(&signals, nil, &timeout)
            if received == SIGINT || received == SIGTERM { return }
            if received == SIGHUP { onReload() }
            if output.isBroken { return } // stdout closed: nobody is listening
        }
    }
}
