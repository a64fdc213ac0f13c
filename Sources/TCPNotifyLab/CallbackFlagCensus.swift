import TCPNotifyBPF
import TCPNotifyCore

/// How many of the selected sockets carry tcpnotify's sock_ops callback flags (RTO, RETRANS, STATE, RTT),
/// read with the snapshot iterator (attaches nothing). For `scripts/soak`: after a clean stop none may;
/// after `kill -9` they stay until the sockets close.
public enum CallbackFlagCensus {
    public static let tcpnotifyFlags: UInt32 = 0x1 | 0x2 | 0x4 | 0x8

    public static func count(filter: String) throws -> (sockets: Int, withTCPNotifyFlags: Int) {
        let program = try TCPNotifyProgram(
            configuration: WatchConfiguration(filter: try FilterExpression.compile(filter), rules: try RuleExpression.compile([])),
            purpose: .snapshot)
        let sockets = try program.snapshot(in: NetworkNamespaces.all()).sockets
        return (sockets.count, sockets.filter { $0.socket.callbackFlags & tcpnotifyFlags != 0 }.count)
    }
}
