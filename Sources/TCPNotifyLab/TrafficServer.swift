import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// What a traffic server does: its port, receive buffer and reading pace.
public struct TrafficServerSettings: Sendable {
    public var port: UInt16
    /// SO_RCVBUF (the kernel doubles it); nil keeps autotuning.
    public var receiveBufferBytes: Int?
    /// Read at most this many bytes per second; nil reads as fast as data comes.
    public var readRateBytesPerSecond: Double?
    /// Stop reading this many seconds after the connection is accepted (the window closes)...
    public var readPauseAfterSeconds: Double?
    /// ...for this long (nil: for good).
    public var readPauseSeconds: Double?
    /// The server exits by itself after this long, whatever the client does.
    public var maximumSeconds = 30.0
    public var sampleIntervalSeconds = 0.1

    public init(port: UInt16) { self.port = port }
}

/// Accepts one connection and reads it at the configured pace while a sampler prints the socket's
/// tcp_info every 100 ms, until the client closes or `maximumSeconds` pass.
public struct TrafficServer {
    public let settings: TrafficServerSettings
    static let tickSeconds = 0.005

    public init(settings: TrafficServerSettings) { self.settings = settings }

    public func run() throws {
        let settings = settings
        let started = MonotonicClock.nanoseconds()
        let deadline = started + UInt64(settings.maximumSeconds * 1e9)
        let listener = try LabSocket.listen(port: settings.port) { socket in
            if let bytes = settings.receiveBufferBytes { try socket.setOption(SOL_SOCKET, SO_RCVBUF, Int32(clamping: bytes)) }
        }
        let socket = try listener.accept(timeoutSeconds: settings.maximumSeconds)
        listener.close()
        try socket.setTimeouts(seconds: 0.05)
        let sampler = TCPInfoSampler(socket: socket, side: "server", intervalSeconds: settings.sampleIntervalSeconds, output: LineWriter())
        sampler.start()
        defer { sampler.stop() }
        let accepted = MonotonicClock.nanoseconds()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var readBytes = 0.0
        try buffer.withUnsafeMutableBytes { bytes in
            while MonotonicClock.nanoseconds() < deadline {
                let elapsed = Double(MonotonicClock.nanoseconds() - accepted) / 1e9
                if isPaused(atSeconds: elapsed) {
                    sampler.setPhase("paused")
                    if peerHasGone(socket) { return }
                    continue
                }
                sampler.setPhase("reading")
                guard let rate = settings.readRateBytesPerSecond else {
                    if try socket.receive(bytes, count: bytes.count) == nil { return }
                    continue
                }
                var due = rate * elapsed - readBytes
                while due >= 1 {
                    guard let read = try socket.receive(bytes, count: Int(min(due, Double(bytes.count)))) else { return }
                    if read == 0 { break }
                    readBytes += Double(read)
                    due -= Double(read)
                }
                MonotonicClock.sleep(seconds: Self.tickSeconds)
            }
        }
    }

    private func isPaused(atSeconds elapsed: Double) -> Bool {
        guard let pauseStart = settings.readPauseAfterSeconds, elapsed >= pauseStart else { return false }
        guard let pause = settings.readPauseSeconds else { return true }
        return elapsed < pauseStart + pause
    }

    /// Waits briefly for the peer to finish or reset, without reading (so the window stays closed).
    private func peerHasGone(_ socket: LabSocket) -> Bool {
        var poller = pollfd(fd: socket.fd, events: LabSocket.peerClosedEvent, revents: 0)
        guard poll(&poller, 1, 20) > 0 else { return false }
        return poller.revents & (LabSocket.peerClosedEvent | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }
}
