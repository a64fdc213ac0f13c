import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// Polls `getsockopt(TCP_INFO)` on one socket at a fixed interval on its own thread and prints each answer
/// as a JSON line (`TCPInfoSeries` reads them back): the traffic programs' ground truth.
///
///     {"type":"tcp_info","side":"client","phase":"bulk","ts_mono_ns":…,"src":…,"dst":…,"cookie":…,"tcp_info":{…}}
final class TCPInfoSampler: Sendable {
    private let socket: LabSocket
    private let side: String
    private let intervalNanoseconds: UInt64
    private let output: LineWriter
    private let phaseName = Mutex("start")
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(socket: LabSocket, side: String, intervalSeconds: Double, output: LineWriter) {
        self.socket = socket
        self.side = side
        intervalNanoseconds = UInt64(max(intervalSeconds, 0.001) * 1e9)
        self.output = output
    }

    /// Names the phase written with the following samples.
    func setPhase(_ name: String) { phaseName.withLock { $0 = name } }

    func start() {
        running.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            var next = MonotonicClock.nanoseconds()
            while running.load(ordering: .acquiring) {
                sample()
                next += intervalNanoseconds
                MonotonicClock.sleep(until: next)
            }
            finished.signal()
        }
        thread.name = "tcp_info sampler"
        thread.start()
    }

    /// Stops the thread, then takes one last sample.
    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
        sample()
    }

    private func sample() {
        guard let info = try? socket.tcpInfo() else { return }
        let time = MonotonicClock.nanoseconds()
        output.write(Wire.line(TCPInfoSampleLine(
            side: side, phase: phaseName.withLock { $0 }, tsMonoNs: time, src: socket.localEndpoint()?.description,
            dst: socket.remoteEndpoint()?.description, cookie: try? socket.cookie(), tcpInfo: Wire.TCPInfoObject(info))))
    }
}

/// Whole lines to a file descriptor (stdout by default), one write(2) each, from any thread.
final class LineWriter: Sendable {
    private let fd: Int32
    private let lock = Mutex<Void>(())

    init(fd: Int32 = 1) { self.fd = fd }

    func write(_ line: String) {
        var text = line + "\n"
        lock.withLock { _ in
            text.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count, let base = bytes.baseAddress {
                    let written = Glibc.write(fd, base + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }
}

/// The lab's pacing: sleeps on the clock of the kernel's record timestamps.
extension MonotonicClock {
    static func sleep(until deadline: UInt64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }

    static func sleep(seconds: Double) {
        sleep(until: nanoseconds() + UInt64(max(seconds, 0) * 1e9))
    }
}
