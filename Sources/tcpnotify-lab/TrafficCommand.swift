import ArgumentParser
import TCPNotifyLab

struct TrafficCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "traffic",
        abstract: "One TCP flow with a chosen behaviour; both ends print their tcp_info every 100 ms as JSON lines.",
        discussion: """
            Each line is {"type":"tcp_info","side":…,"phase":…,"ts_mono_ns":…,"src":…,"dst":…,"cookie":…,"tcp_info":{…}}, \
            getsockopt(TCP_INFO) on the flow's socket: the ground truth tcpnotify's diagnosis is checked against. \
            Both programs stop by themselves.
            """,
        subcommands: [TrafficServerCommand.self, TrafficClientCommand.self])
}

struct TrafficServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server", abstract: "Accept one connection and read it at a chosen pace until the client closes.")

    @Option(help: "TCP port to listen on ([::], IPv4 too).")
    var port: UInt16

    @Option(help: "SO_RCVBUF in bytes (k, M suffixes; the kernel doubles it). Default: autotuning.")
    var rcvbuf: String?

    @Option(help: "Read at most this many bytes per second (k, M suffixes). Default: as fast as data comes.")
    var readRate: String?

    @Option(help: "Stop reading this many seconds after accepting (the receive window closes).")
    var readPauseAfter: Double?

    @Option(help: "Resume reading after pausing this long (default: never).")
    var readPauseFor: Double?

    @Option(help: "Exit after this many seconds whatever happens.")
    var maxSeconds: Double = 30

    func run() throws {
        var settings = TrafficServerSettings(port: port)
        settings.receiveBufferBytes = try rcvbuf.map { Int(try ByteCount.parse($0)) }
        settings.readRateBytesPerSecond = try readRate.map { try ByteCount.parse($0) }
        settings.readPauseAfterSeconds = readPauseAfter
        settings.readPauseSeconds = readPauseFor
        settings.maximumSeconds = maxSeconds
        try TrafficServer(settings: settings).run()
    }
}

struct TrafficClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client", abstract: "Connect and write phase by phase, then close.")

    @Option(help: "The server, ADDR:PORT or [ADDR]:PORT.")
    var to: String

    @Option(help: "Local port to connect from.")
    var cport: UInt16?

    @Option(help: "SO_SNDBUF in bytes (k, M suffixes; the kernel doubles it). Default: autotuning.")
    var sndbuf: String?

    @Option(help: "Congestion control (cubic, reno, bbr). Default: the namespace's.")
    var congestion: String?

    @Option(help: "Write at this many bytes per second (k, M suffixes).")
    var writeRate: String?

    @Flag(help: "Write as fast as the socket takes data (the default).")
    var bulk = false

    @Option(help: "Seconds to write for (with --write-rate or --bulk).")
    var duration: Double = 5

    @Option(help: "Phases instead of one behaviour: MODE:SECONDS,... with MODE bulk, idle or rate=BYTES_PER_S (rate=500k:4,bulk:4).")
    var phases: String?

    @Option(help: "After the last phase, seconds to wait for queued data to be delivered before resetting.")
    var drainSeconds: Double = 1

    func validate() throws {
        if bulk && writeRate != nil { throw ValidationError("give --bulk or --write-rate, not both") }
        if phases != nil && (bulk || writeRate != nil) { throw ValidationError("--phases replaces --bulk and --write-rate") }
        if !(duration >= 0) { throw ValidationError("--duration must not be negative") }
    }

    func run() throws {
        let phaseList: [TrafficPhase]
        if let phases {
            phaseList = try TrafficPhase.parseList(phases)
        } else if let writeRate {
            phaseList = [TrafficPhase(.rate(bytesPerSecond: try ByteCount.parse(writeRate)), seconds: duration)]
        } else {
            phaseList = [TrafficPhase(.bulk, seconds: duration)]
        }
        var settings = TrafficClientSettings(server: try LabSocketAddress(parsing: to), phases: phaseList)
        settings.localPort = cport
        settings.sendBufferBytes = try sndbuf.map { Int(try ByteCount.parse($0)) }
        settings.congestionControl = congestion
        settings.drainSeconds = drainSeconds
        try TrafficClient(settings: settings).run()
    }
}
