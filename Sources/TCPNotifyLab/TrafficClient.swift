import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// What a traffic client does: where it connects, its socket settings and its phases.
public struct TrafficClientSettings: Sendable {
    public var server: LabSocketAddress
    public var localPort: UInt16?
    /// SO_SNDBUF (the kernel doubles it); nil keeps autotuning.
    public var sendBufferBytes: Int?
    /// TCP_CONGESTION; nil keeps the namespace default.
    public var congestionControl: String?
    public var phases: [TrafficPhase]
    public var sampleIntervalSeconds = 0.1
    /// After the last phase, how long to wait for queued data to be delivered before resetting the connection.
    public var drainSeconds = 1.0

    public init(server: LabSocketAddress, phases: [TrafficPhase]) {
        self.server = server
        self.phases = phases
    }
}

/// Connects, writes phase by phase while a sampler prints the socket's tcp_info every 100 ms, then closes:
/// with a FIN once everything is delivered, or a reset when data is still stuck after `drainSeconds`.
public struct TrafficClient {
    public let settings: TrafficClientSettings
    /// Writes are chunked into ticks so a rate is met smoothly and a phase ends on time.
    static let tickSeconds = 0.005
    static let chunkBytes = 64 * 1024

    public init(settings: TrafficClientSettings) { self.settings = settings }

    public func run() throws {
        let settings = settings
        let socket = try LabSocket.connect(to: settings.server, localPort: settings.localPort) { socket in
            if let bytes = settings.sendBufferBytes { try socket.setOption(SOL_SOCKET, SO_SNDBUF, Int32(clamping: bytes)) }
            if let name = settings.congestionControl { try socket.setCongestionControl(name) }
        }
        try socket.setTimeouts(seconds: 0.05)
        let sampler = TCPInfoSampler(socket: socket, side: "client", intervalSeconds: settings.sampleIntervalSeconds, output: LineWriter())
        sampler.start()
        defer { sampler.stop() }
        let payload = [UInt8](repeating: 0x5a, count: Self.chunkBytes)
        for phase in settings.phases {
            sampler.setPhase(phase.name)
            try write(phase, on: socket, payload: payload)
        }
        sampler.setPhase("drain")
        let drained = waitUntilDelivered(socket, seconds: settings.drainSeconds)
        sampler.stop()
        if drained {
            socket.shutdownWrite()
            waitForPeerClose(socket, seconds: 1)
            socket.close()
        } else {
            socket.abort()
        }
    }

    private func write(_ phase: TrafficPhase, on socket: LabSocket, payload: [UInt8]) throws {
        let start = MonotonicClock.nanoseconds()
        let end = start + UInt64(phase.seconds * 1e9)
        var written = 0.0
        try payload.withUnsafeBytes { bytes in
            while MonotonicClock.nanoseconds() < end {
                switch phase.mode {
                case .idle:
                    MonotonicClock.sleep(until: min(end, MonotonicClock.nanoseconds() + 50_000_000))
                case .bulk:
                    _ = try socket.send(bytes, count: bytes.count)
                case .rate(let bytesPerSecond):
                    let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
                    var due = bytesPerSecond * elapsed - written
                    while due >= 1 {
                        let sent = try socket.send(bytes, count: Int(min(due, Double(bytes.count))))
                        if sent == 0 { break }
                        written += Double(sent)
                        due -= Double(sent)
                    }
                    MonotonicClock.sleep(seconds: Self.tickSeconds)
                }
            }
        }
    }

    /// True once nothing is unsent or unacknowledged.
    private func waitUntilDelivered(_ socket: LabSocket, seconds: Double) -> Bool {
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
        repeat {
            if let info = try? socket.tcpInfo(), info[.unacked] == 0, info[.notsentBytes] == 0 { return true }
            MonotonicClock.sleep(seconds: 0.01)
        } while MonotonicClock.nanoseconds() < deadline
        return false
    }

    private func waitForPeerClose(_ socket: LabSocket, seconds: Double) {
        var poller = pollfd(fd: socket.fd, events: Int16(POLLIN) | LabSocket.peerClosedEvent, revents: 0)
        _ = poll(&poller, 1, Int32(seconds * 1000))
    }
}
