import ArgumentParser
import TCPNotifyLab

/// `tcpnotify-lab callback-flags FILTER`: {"sockets":N,"with_tcpnotify_flags":M} (scripts/soak).
struct CallbackFlagsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callback-flags",
        abstract: "Count the sockets a filter selects that carry tcpnotify's callback flags (RTO, RETRANS, STATE, RTT).")

    @Argument(help: "A tcpnotify filter, e.g. 'sport = :5000 or dport = :5000'.")
    var filter: [String]

    func run() throws {
        let census = try CallbackFlagCensus.count(filter: filter.joined(separator: " "))
        print("{\"sockets\":\(census.sockets),\"with_tcpnotify_flags\":\(census.withTCPNotifyFlags)}")
    }
}
