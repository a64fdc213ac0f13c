import CNcurses
import Glibc

/// Gives the terminal back even when `top` does not end normally: on a crash signal (a Swift trap is
/// SIGILL or SIGTRAP; SIGSEGV, SIGBUS, SIGABRT, SIGFPE) the screen is closed before the previous handler
/// (Swift's backtracer, or the default action) runs; at exit() too. SIGINT and SIGTERM need nothing here:
/// the session takes them and ends normally, closing the screen.
enum TerminalRestore {
    static let crashSignals: [Int32] = [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE]

    /// Written once before any crash handler can run, read only in handlers.
    nonisolated(unsafe) private static var previous: [Int32: sigaction] = [:]
    nonisolated(unsafe) private static var installed = false
    nonisolated(unsafe) private static let open = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)

    static func screenOpened() {
        open.pointee = 1
        guard !installed else { return }
        installed = true
        var handler = sigaction()
        handler.__sigaction_handler.sa_handler = { signal in TerminalRestore.crashed(signal) }
        sigemptyset(&handler.sa_mask)
        handler.sa_flags = 0
        for signal in crashSignals {
            var old = sigaction()
            sigaction(signal, &handler, &old)
            previous[signal] = old
        }
        atexit { TerminalRestore.restoreIfOpen() }
    }

    static func screenClosed() { open.pointee = 0 }

    private static func restoreIfOpen() {
        guard open.pointee != 0 else { return }
        open.pointee = 0
        endwin()
    }

    /// Not async-signal-safe in theory (endwin writes and resets the tty), but the process is dying:
    /// a usable terminal is worth it. Then the previous handler runs, as if this one had not been there.
    private static func crashed(_ signal: Int32) {
        restoreIfOpen()
        var old = previous[signal] ?? sigaction()
        sigaction(signal, &old, nil)
        raise(signal)
    }
}
