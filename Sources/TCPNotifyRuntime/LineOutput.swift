import Glibc
import Synchronization
import TCPNotifyCore

/// Writes whole lines to stdout, one write(2) per batch, from any thread.
public final class LineOutput: Sendable {
    private let broken = Atomic<Bool>(false)
    private let lock = Mutex<Void>(())

    public init() {}

    public var isBroken: Bool { broken.load(ordering: .relaxed) }

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
                    // Wake the main thread's signal wait (it may sleep with no timeout): nobody
                    // reads any more, so stop as on SIGTERM.
                    if !broken.exchange(true, ordering: .relaxed) { kill(getpid(), SIGTERM) }
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
