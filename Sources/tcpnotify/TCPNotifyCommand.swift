import ArgumentParser
import Foundation
import TCPNotifyRuntime

@main
struct TCPNotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpnotify",
        abstract: "Push notifications of TCP trouble from the kernel: selected sockets, rules checked in eBPF.",
        subcommands: [WatchCommand.self, ServeCommand.self, SubscribeCommand.self, SnapshotCommand.self, DiagnoseCommand.self, TopCommand.self, DoctorCommand.self, FieldsCommand.self, RulesCommand.self],
        defaultSubcommand: WatchCommand.self
    )

    /// ArgumentParser's `main`, except that bad input exits 2 (as a filter, rule or file that does not
    /// parse does) instead of its EX_USAGE (64): an unknown option, a missing or invalid value, or an
    /// option combination `validate()` refuses.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
