import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyLab

/// Detection latency: from the send() that makes `bytes_acked > 1000` true (its ACK follows within
/// microseconds on loopback) to the moment the bench reads the matching JSON line from the watcher's stdout
/// pipe. The same trigger for push and for polling at 1 s and 100 ms.
extension Benchmark {
    static let latencyRule = "acked=bytes_acked > 1000"

    func runLatency(progress: (String) -> Void) throws {
        var section = BenchSection(
            title: "Detection latency: kernel event to JSON line read (µs)",
            columns: ["mode", "samples", "missed", "p50 µs", "p99 µs", "max µs"])
        section.notes.append("Trigger: a fresh loopback connection (selected by `dport = :\(Self.latencyPort)`) sends 2,000 "
            + "bytes; rule `\(Self.latencyRule)`. t0 = CLOCK_MONOTONIC just before send(), so each figure includes the "
            + "~10-30 µs loopback round trip that produces the ACK. Push: one trigger at a time; polling: triggers "
            + "spread evenly (with jitter) over 10 s, so they land at random points of the poll cycle.")
        var modes: [(name: String, extra: [String], interval: Double?)] = [("push", newConnectionsOnly, nil)]
        if features.pollMode {
            modes += [("poll 1s", ["--mode", "poll", "--interval", "1s"] + newConnectionsOnly, 1),
                      ("poll 100ms", ["--mode", "poll", "--interval", "100ms"] + newConnectionsOnly, 0.1)]
        } else {
            section.notes.append("This build has no --mode poll: polling rows are missing.")
        }
        let server = try LatencyServer(port: Self.latencyPort)
        defer { server.close() }
        for mode in modes {
            progress("   \(mode.name): \(settings.latencySamples) samples")
            let samples = try measureLatency(extra: mode.extra, pollInterval: mode.interval)
            let micros = samples.latencies.map { $0 / 1_000 }
            let cells = [0.5, 0.99, 1.0].map { micros.quantile($0).map { BenchFormat.number($0) } ?? "n/a" }
            section.rows.append([mode.name, "\(micros.count)", "\(samples.missed)"] + cells)
            let key = mode.name.replacingOccurrences(of: " ", with: "_")
            for (label, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
                if let value = micros.quantile(q) { section.figures["latency_\(key)_\(label)_us"] = value }
            }
            if mode.name == "push" {
                measured["latency_push_p99_us"] = micros.quantile(0.99)
                measured["latency_push_missed"] = Double(samples.missed)
            }
        }
        sections.append(section)
        var target = BenchTarget(name: "detection latency p99 (push)", target: "< 1 ms", measured: "not measured", met: nil)
        if let p99 = measured["latency_push_p99_us"] {
            let missed = Int(measured["latency_push_missed"] ?? 0)
            target.measured = String(format: "%.0f µs", p99) + (missed > 0 ? ", \(missed) missed" : "")
            target.met = p99 < 1_000 && missed == 0
        }
        addTarget(target)
    }

    private func measureLatency(extra: [String], pollInterval: Double?) throws -> (latencies: [Double], missed: Int) {
        let book = LatencyBook()
        let watcher = try startWatcher(
            filter: "dport = :\(Self.latencyPort)", rules: [Self.latencyRule], extra: extra
        ) { line, readNanoseconds in
            if let port = LatencyBook.sourcePort(in: line) { book.arrived(port: port, at: readNanoseconds) }
        }
        defer { _ = stopWatcher(watcher) }
        BenchClock.sleep(seconds: 0.5)
        var clients: [Int32] = []
        defer {
            var reset = linger(l_onoff: 1, l_linger: 0)
            for fd in clients {
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
                close(fd)
            }
        }
        let payload = [UInt8](repeating: 0x61, count: 2_000)
        let samples = settings.latencySamples
        let spacingSeconds = 10.0 / Double(samples)
        for _ in 0..<samples {
            let fd = try IdleConnections.connect(port: Self.latencyPort)
            clients.append(fd)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let port = IdleConnections.localPort(fd)
            // Let the handshake's callbacks (and the server's accept) settle before the measured event.
            BenchClock.sleep(seconds: 0.002)
            book.sent(port: port, at: MonotonicClock.nanoseconds())
            _ = payload.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            if pollInterval == nil {
                _ = book.wait(port: port, timeoutSeconds: 1)
            } else {
                BenchClock.sleep(seconds: spacingSeconds * Double.random(in: 0.5...1.5))
            }
        }
        if let pollInterval { BenchClock.sleep(seconds: 2 * pollInterval + 0.5) }
        return book.results()
    }
}

/// Send and arrival times by client port.
final class LatencyBook: @unchecked Sendable {
    private let condition = NSCondition()
    private var sentAt: [UInt16: UInt64] = [:]
    private var arrivedAt: [UInt16: UInt64] = [:]

    func sent(port: UInt16, at nanoseconds: UInt64) {
        condition.withLock { sentAt[port] = nanoseconds }
    }

    func arrived(port: UInt16, at nanoseconds: UInt64) {
        condition.withLock {
            if arrivedAt[port] == nil { arrivedAt[port] = nanoseconds }
            condition.broadcast()
        }
    }

    func wait(port: UInt16, timeoutSeconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        condition.lock()
        defer { condition.unlock() }
        while arrivedAt[port] == nil {
            if !condition.wait(until: deadline) { return false }
        }
        return true
    }

    func results() -> (latencies: [Double], missed: Int) {
        condition.withLock {
            var latencies: [Double] = []
            var missed = 0
            for (port, sent) in sentAt {
                if let arrived = arrivedAt[port], arrived >= sent { latencies.append(Double(arrived - sent)) } else { missed += 1 }
            }
            return (latencies, missed)
        }
    }

    /// The port of `"src":"ADDR:PORT"` in a notification line.
    static func sourcePort(in line: Substring) -> UInt16? {
        guard let key = line.range(of: "\"src\":\"") else { return nil }
        let rest = line[key.upperBound...]
        guard let end = rest.firstIndex(of: "\""), let colon = rest[..<end].lastIndex(of: ":") else { return nil }
        return UInt16(rest[rest.index(after: colon)..<end])
    }
}

/// A loopback listener that accepts and holds connections (the receiving end ACKs at once: quickack at
/// connection start).
final class LatencyServer: @unchecked Sendable {
    private let listener: Int32
    private let lock = NSLock()
    private var accepted: [Int32] = []
    private var closed = false

    init(port: UInt16) throws {
        listener = try IdleConnections.listen(port: port)
        let thread = Thread { [self] in
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return
                }
                let keep = lock.withLock { () -> Bool in
                    if closed { return false }
                    accepted.append(fd)
                    return true
                }
                if !keep { Glibc.close(fd) }
            }
        }
        thread.name = "bench latency server"
        thread.start()
    }

    func close() {
        let fds = lock.withLock { () -> [Int32] in
            closed = true
            defer { accepted = [] }
            return accepted
        }
        shutdown(listener, Int32(SHUT_RDWR)) // wakes accept()
        Glibc.close(listener)
        var reset = linger(l_onoff: 1, l_linger: 0)
        for fd in fds {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            Glibc.close(fd)
        }
    }
}
