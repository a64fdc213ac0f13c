import CLibbpf
import CTCPNotify
import Foundation
import Synchronization
import TCPNotifyCore

/// Reads notification records from the kernel's ring buffer on a dedicated thread and hands them to
/// `handler` one batch per wakeup (at most `maxBatchRecords` a batch).
///
/// The kernel wakes the reader at most once per interval and otherwise writes without waking; so after
/// every batch the reader polls again briefly (1 ms) and only then goes back to a long sleep. A record
/// written without a wakeup is therefore picked up within that short poll: a record written after it
/// is more than one wakeup interval (200 µs) past the last wakeup, so it wakes the reader itself. The
/// long sleep therefore costs nothing while sockets are quiet; `stop()` ends it through an eventfd.
public final class RingBufferReader: @unchecked Sendable {
    // Touched only by the reader thread after start(), except the atomics.
    private let ring: OpaquePointer
    private let sink: Unmanaged<Sink>
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private var thread: Thread?

    /// How long the reader sleeps when nothing is happening: a safety net only (see above).
    public var idlePollMilliseconds: Int32 = 60_000
    /// Wakes the reader from its long sleep when stopping; -1 if it could not be made (then the sleep
    /// is short, as stop() waits for it).
    private let wakeFD: Int32
    /// The short poll after a batch.
    public var busyPollMilliseconds: Int32 = 1

    /// Records received and records that could not be decoded, for the final statistics.
    public var receivedCount: UInt64 { sink.takeUnretainedValue().received.load(ordering: .relaxed) }
    public var malformedCount: UInt64 { sink.takeUnretainedValue().malformed.load(ordering: .relaxed) }

    /// The most records handed over at once. A reader that fell behind finds the whole ring full (4 MiB:
    /// ~11,000 records; 178,000 in 64 MiB) and would build that batch, and its consumer the batch's output,
    /// in one piece: tens of MB allocated at once, which glibc's malloc then keeps (its mmap and trim
    /// thresholds rise to the largest block freed), so RSS grew with the worst backlog seen. Batches of
    /// this size keep every per-batch allocation below 1 MiB, and the consumer starts early.
    public static let maximumBatchRecords = 1024

    final class Sink {
        let handler: @Sendable ([SocketNotification]) -> Void
        var batch: [SocketNotification] = []
        var addresses = RecordAddressCache()
        let received = Atomic<UInt64>(0)
        let malformed = Atomic<UInt64>(0)

        init(handler: @escaping @Sendable ([SocketNotification]) -> Void) {
            self.handler = handler
            batch.reserveCapacity(RingBufferReader.maximumBatchRecords)
        }

        func deliver() {
            guard !batch.isEmpty else { return }
            let full = batch
            // A fresh array, sized for what came last: the consumer owns `full` (it may keep it), and a
            // batch that grows element by element would be copied at every doubling.
            batch = []
            batch.reserveCapacity(full.count)
            handler(full)
        }
    }

    init(mapFD: Int32, handler: @escaping @Sendable ([SocketNotification]) -> Void) throws(BPFError) {
        let sink = Unmanaged.passRetained(Sink(handler: handler))
        let callback: ring_buffer_sample_fn = { context, data, size in
            guard let context, let data else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            sink.received.add(1, ordering: .relaxed)
            if let notification = SocketNotification(
                sample: UnsafeRawBufferPointer(start: data, count: size), addresses: &sink.addresses) {
                sink.batch.append(notification)
                if sink.batch.count >= RingBufferReader.maximumBatchRecords { sink.deliver() }
            } else {
                sink.malformed.add(1, ordering: .relaxed)
            }
            return 0
        }
        guard let ring = ring_buffer__new(mapFD, callback, sink.toOpaque(), nil) else {
            let code = errno
            sink.release()
            throw BPFError.libbpf(function: "ring_buffer__new", errno: code)
        }
        self.ring = ring
        self.sink = sink
        let wake = CTCPNotify_ring_add_wakeup(ring)
        wakeFD = wake >= 0 ? wake : -1
        if wakeFD < 0 { idlePollMilliseconds = 100 }
    }

    deinit {
        stop()
        ring_buffer__free(ring)
        if wakeFD >= 0 { close(wakeFD) }
        sink.release()
    }

    /// Starts the reader thread.
    public func start() {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let thread = Thread { [self] in
            self.run()
            self.finished.signal()
        }
        thread.name = "tcpnotify-ring"
        self.thread = thread
        thread.start()
    }

    /// Stops the thread after it has drained what is in the ring; returns once it has.
    public func stop() {
        guard running.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged
        else { return }
        if wakeFD >= 0 { CTCPNotify_wake(wakeFD) }
        finished.wait()
        thread = nil
    }

    /// Consumes whatever is in the ring now (used by stop and by tests that drive the reader by hand).
    public func drain() {
        _ = ring_buffer__consume(ring)
        deliver()
    }

    private func run() {
        var timeout = idlePollMilliseconds
        while running.load(ordering: .acquiring) {
            let polled = ring_buffer__poll(ring, timeout)
            // Records written without a wakeup do not show up in epoll: consume explicitly.
            let consumed = ring_buffer__consume(ring)
            let got = max(Int(polled), 0) + max(Int(consumed), 0)
            deliver()
            timeout = got > 0 ? busyPollMilliseconds : idlePollMilliseconds
        }
        drain()
    }

    private func deliver() { sink.takeUnretainedValue().deliver() }
}
