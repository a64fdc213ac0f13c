import Foundation
import Glibc
import TCPNotifyCore

/// Cancels the connection once neither the subscription nor an iterator uses it.
final class ChannelOwner: Sendable {
    let channel: LineChannel
    init(_ channel: LineChannel) { self.channel = channel }
    deinit { channel.cancel() }
}

/// The connection's lines, read on a dedicated thread into a small bounded buffer. When the buffer is
/// full the thread stops reading, so the daemon sees a slow reader (and counts drops for it) instead of
/// this process growing without bound.
final class LineChannel: @unchecked Sendable {
    /// A notification line is about 2 KiB; a peer that sends this much without a newline is not a
    /// tcpnotify daemon (or is broken), and buffering it would grow this process without bound.
    static let maximumLineBytes = 1 << 20

    private let fd: Int32
    private let limit: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var lines: [String] = []
    private var head = 0
    private var finished = false
    private var failure: Error?
    private var waiter: CheckedContinuation<String?, Error>?
    private var cancelled = false

    init(fd: Int32, limit: Int) {
        self.fd = fd
        self.limit = max(limit, 1)
    }

    func start() {
        let thread = Thread { [self] in readLoop() }
        thread.name = "tcpnotify-subscription"
        thread.start()
    }

    func send(_ line: String) throws {
        var text = line
        text += "\n"
        try text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw SubscriptionError.disconnected("cannot send to the daemon: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    func cancel() {
        condition.lock()
        let first = !cancelled
        cancelled = true
        condition.broadcast()
        condition.unlock()
        // Wakes the reader thread; it closes the descriptor when it leaves.
        if first { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func next() async throws -> String? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String?, Error>) in
                condition.lock()
                if head < lines.count {
                    let line = lines[head]
                    head += 1
                    if head == lines.count {
                        lines.removeAll(keepingCapacity: true)
                        head = 0
                    }
                    condition.broadcast()
                    condition.unlock()
                    continuation.resume(returning: line)
                } else if finished || cancelled {
                    let failure = cancelled ? nil : self.failure
                    condition.unlock()
                    if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: nil) }
                } else {
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            cancel()
            condition.lock()
            let waiting = waiter
            waiter = nil
            condition.unlock()
            waiting?.resume(returning: nil)
        }
    }

    private func deliver(_ line: String) {
        condition.lock()
        while lines.count - head >= limit && !cancelled { condition.wait() }
        if cancelled {
            condition.unlock()
            return
        }
        if let waiting = waiter {
            waiter = nil
            condition.unlock()
            waiting.resume(returning: line)
            return
        }
        lines.append(line)
        condition.unlock()
    }

    private func finish(_ error: Error?) {
        condition.lock()
        finished = true
        failure = error
        let waiting = waiter
        waiter = nil
        condition.unlock()
        if let waiting {
            if let error { waiting.resume(throwing: error) } else { waiting.resume(returning: nil) }
        }
    }

    private func readLoop() {
        defer { close(fd) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                condition.lock()
                let wasCancelled = cancelled
                condition.unlock()
                finish(count < 0 && !wasCancelled
                    ? SubscriptionError.disconnected("connection to the daemon failed: \(String(cString: strerror(errno)))") : nil)
                return
            }
            var start = 0
            for index in 0..<count where chunk[index] == UInt8(ascii: "\n") {
                pending.append(contentsOf: chunk[start..<index])
                deliver(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
                start = index + 1
            }
            pending.append(contentsOf: chunk[start..<count])
            if pending.count > Self.maximumLineBytes {
                finish(SubscriptionError.protocolViolation(
                    "the daemon sent more than \(Self.maximumLineBytes) bytes without a newline: is --socket a tcpnotify serve socket?"))
                return
            }
        }
    }
}
