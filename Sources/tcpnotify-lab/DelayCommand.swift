import ArgumentParser
import Glibc
import TCPNotifyLab

struct DelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delay",
        abstract: "Hold every packet routed to a TUN device for a fixed time, then send it on; runs until killed.",
        discussion: """
            Attaches to (or creates) the TUN device and prints "ready" once it is attached. Route traffic into the \
            device (the lab policy-routes everything the router forwards); what it writes back arrives on the \
            device and is routed normally.
            """)

    @Option(name: .customLong("dev"), help: "The TUN device name.")
    var device: String

    @Option(help: "Delay in milliseconds.")
    var ms: Double

    func validate() throws {
        if !(ms >= 0 && ms <= 10_000) { throw ValidationError("--ms must be within 0...10000") }
    }

    func run() throws {
        try PacketDelayLine(deviceName: device, delayMilliseconds: ms).run {
            _ = write(1, "ready\n", 6) // unbuffered: the lab waits for this line
        }
    }
}
