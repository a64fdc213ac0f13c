import ArgumentParser
import TCPNotifyCore

struct FieldsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fields",
        abstract: "List the tcp_info fields rules can use, with the kernel's units.")

    func run() {
        let width = TCPInfoField.allCases.map(\.name.count).max() ?? 0
        for field in TCPInfoField.allCases {
            let padding = String(repeating: " ", count: width - field.name.count)
            print("\(field.name)\(padding)  \(field.unit)  \(field.summary)")
        }
    }
}

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Show the built-in rules used when no --when is given.")

    func run() {
        for rule in RuleExpression.defaultRules { print(rule) }
    }
}
