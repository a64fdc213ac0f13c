// tcpnotify-lab: test-lab helpers that must run inside a network namespace (`ip netns exec NS tcpnotify-lab ...`).
import Glibc
import TCPNotifyLab

LibbpfWarnings.startCollecting()
do {
    var command = try LabCommand.parseAsRoot()
    try command.run()
} catch {
    // libbpf's account (verifier log, kernel messages) explains the failure that follows.
    for line in LibbpfWarnings.take() {
        var text = line + "\n"
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }
    LabCommand.exit(withError: error)
}
