import Foundation
import Glibc
import Synchronization
import TCPNotifyCore

/// Writes whole lines to stdout, one write(2) per batch, from any thread.
public final class LineOutput: Sendable {
    private let broken = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    public init() {}

    public var isBroken: Bool { broken.load(ordering: .relaxed) }

    /// Stops the session as soon as stdout's reader goes away (`watch | head -1`: head exits), not at
    /// the next write, which may be long after: a thread waits for the error poll(2) reports on a pipe
    /// or socket without a reader. Call after the stop signals are blocked (the thread inherits the mask).
    public func watchReader() {
        var status = stat()
        guard fstat(1, &status) == 0, status.st_mode & S_IFMT == S_IFIFO || status.st_mode & S_IFMT == S_IFSOCK else { return }
        let thread = Thread { [self] in
            var descriptor = pollfd(fd: 1, events: 0, revents: 0)
            while true {
                let ready = poll(&descriptor, 1, -1)
                if ready < 0 && errno == EINTR { continue }
                guard ready > 0 else { return }
                if descriptor.revents & Int16(POLLERR | POLLHUP) != 0 {
                    markBroken()
                    return
                }
                usleep(100_000) // another event (none is asked for): do not spin
            }
        }
        thread.name = "tcpnotify-stdout-reader"
        thread.start()
    }

    /// Nobody reads any more: wake the main thread's signal wait (it may sleep with no timeout) and
    /// stop as on SIGTERM.
    private func markBroken() {
        if !broken.exchange(true, ordering: .relaxed) { kill(getpid(), SIGTERM) }
    }

    public func write(_ lines: [String]) {
        guard !lines.isEmpty, !isBroken else { return }
        var text = lines.joined(separator: "\n")
        text += "\n"
        text.withUTF8 { write(lineBytes: $0) }
    }

    /// Whole lines, each ending in a newline, already encoded (a batch of notification lines).
    public func write(lineBytes bytes: [UInt8]) {
        guard !bytes.isEmpty, !isBroken else { return }
        bytes.withUnsafeBufferPointer { write(lineBytes: $0) }
    }

    private func write(lineBytes buffer: UnsafeBufferPointer<UInt8>) {
        lock.withLock { _ in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 {
                    markBroken()
                    return
                }
                offset += written
            }
        }
    }
}

/// Rule names by rule-table generation: records written just before a reload still carry the old
/// generation and must be named by the old rules.
public final class RuleNameBook: Sendable {
    private let names = Mutex<[UInt32: [String]]>([:])

    public init(generation: UInt32, rules: CompiledRules) { record(generation: generation, rules: rules) }

    public func record(generation: UInt32, rules: CompiledRules) {
        names.withLock { book in
            book[generation] = rules.rules.map(\.name)
            if book.count > 8, let oldest = book.keys.min() { book[oldest] = nil }
        }
    }

    public func names(generation: UInt32) -> [String] { names.withLock { $0[generation] ?? [] } }
}
