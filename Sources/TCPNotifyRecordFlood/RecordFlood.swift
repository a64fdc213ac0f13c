import CTCPNotify
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// A producer that only produces: `record_flood.bpf.c` copies one record into tcpnotify's own `events`
/// ring buffer as fast as the kernel can (BPF_PROG_TEST_RUN, bpf_loop), so the reader's capacity can be
/// measured apart from the sweep or sock_ops, whose per-record cost is far higher.
/// Test and bench support: this target is linked by the tests and `tcpnotify-lab` only, never by `tcpnotify`.
package final class RecordFlood {
    /// Mirrors `struct flood_request` in record_flood.bpf.c.
    struct Request {
        var records: UInt64 = 0
        var pauseAboveBytes: UInt64 = 0
        var wakeupWatermarkBytes: UInt64 = 0
        var firstSequence: UInt64 = 0
        var written: UInt64 = 0
        var dropped: UInt64 = 0
        var wakeups: UInt64 = 0
    }

    /// What one run wrote; records are numbered (`notifications`) from the run's first sequence number.
    package struct Run: Sendable, Equatable {
        package var written: UInt64
        /// Reservations that failed because the ring was full (the reader is far behind).
        package var dropped: UInt64
        package var wakeups: UInt64
    }

    private let object: BPFObject
    private let programFD: Int32
    /// The next sequence number: records carry 0, 1, 2, … in `notifications` across runs.
    package private(set) var nextSequence: UInt64 = 0

    /// Loads the producer onto `program`'s ring buffer, with `template` as the record to copy.
    package init(sharingRingOf program: TCPNotifyProgram, template: tcpnotify_record) throws(BPFError) {
        object = try BPFObject(embeddedBase64: BPFObject_record_flood.base64, name: "record_flood")
        try object.reuseMaps(of: program.coreObject)
        try object.load()
        programFD = try object.programFD("record_flood")
        try MapAccess.update(fd: object.mapFD("flood_template"), key: UInt32(0), value: template, name: "flood_template")
    }

    /// Writes up to `records` records, stopping early while more than `pauseAboveBytes` wait in the ring
    /// (so a paced caller loses nothing); forces a wakeup as the backlog crosses `wakeupWatermarkBytes`, and on the last.
    package func run(records: Int, pauseAboveBytes: UInt64, wakeupWatermarkBytes: UInt64) throws(BPFError) -> Run {
        var request = Request(records: UInt64(records), pauseAboveBytes: pauseAboveBytes,
                              wakeupWatermarkBytes: wakeupWatermarkBytes, firstSequence: nextSequence)
        let result = CTCPNotify_test_run(programFD, &request, UInt32(MemoryLayout<Request>.size))
        if result < 0 { throw BPFError.libbpf(function: "bpf_prog_test_run(record_flood)", errno: -result) }
        if result != 0 { throw BPFError.invalidArgument("record_flood found no template record") }
        nextSequence += request.written
        return Run(written: request.written, dropped: request.dropped, wakeups: request.wakeups)
    }

    /// A real record: a sweep notification carrying a live loopback socket's `tcp_info`, addresses and
    /// cookie (`fd` is that socket).
    package static func template(socket fd: Int32) throws(BPFError) -> tcpnotify_record {
        var record = tcpnotify_record()
        record.type = UInt16(TCPNOTIFY_RECORD_NOTIFICATION.rawValue)
        record.size = UInt16(MemoryLayout<tcpnotify_record>.size)
        record.trigger = UInt8(TCPNOTIFY_TRIGGER_SWEEP.rawValue)
        record.family = UInt8(AF_INET)
        record.rules_fired = 1
        record.rules_true = 1
        record.rule_generation = 1
        record.subscribers = 1
        record.cookie = try SocketInfo.cookie(fd: fd)
        var length = socklen_t(MemoryLayout<tcpnotify_tcp_info>.size)
        if getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &record.info, &length) != 0 {
            throw BPFError.libbpf(function: "getsockopt(TCP_INFO)", errno: errno)
        }
        var local = sockaddr_in(), remote = sockaddr_in()
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &size) } }
        size = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getpeername(fd, $0, &size) } }
        record.local_addr = mapped(local.sin_addr)
        record.remote_addr = mapped(remote.sin_addr)
        record.local_port = UInt16(bigEndian: local.sin_port)
        record.remote_port = UInt16(bigEndian: remote.sin_port)
        record.timestamp_ns = UInt64(clock_gettime_nsec_np_monotonic())
        return record
    }

    /// ::ffff:a.b.c.d, as the kernel program writes IPv4 addresses.
    private static func mapped(_ address: in_addr) -> (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) {
        let v4 = withUnsafeBytes(of: address.s_addr) { Array($0) }
        return (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3])
    }

    private static func clock_gettime_nsec_np_monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
