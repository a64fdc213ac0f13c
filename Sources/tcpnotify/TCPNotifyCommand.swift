import ArgumentParser

@main
struct TCPNotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpnotify",
        abstract: "Push notifications of TCP trouble from the kernel: selected sockets, rules checked in eBPF.",
        subcommands: [WatchCommand.self, ServeCommand.self, SubscribeCommand.self, SnapshotCommand.self, DiagnoseCommand.self, DoctorCommand.self, FieldsCommand.self, RulesCommand.self],
        defaultSubcommand: WatchCommand.self
    )
}
