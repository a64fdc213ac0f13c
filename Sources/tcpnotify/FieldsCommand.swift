import ArgumentParser
import TCPNotifyCore

struct FieldsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fields",
        abstract: "List what rules can test: tcp_info fields with the kernel's units, age, derived metrics, functions and units.")

    func run() {
        print("tcp_info fields (values without a unit are in the field's kernel unit):")
        printTable(TCPInfoField.allCases.map { [$0.name, $0.unit.description, $0.summary] })
        print("\nbeside tcp_info:")
        printTable([[RuleOperand.age.name, RuleOperand.age.unit.description, RuleOperand.age.summary]])
        print("\nderived metrics (computed in the kernel, integer arithmetic):")
        printTable(DerivedMetric.all.map { [$0.name, $0.unitText, "\($0.formula): \($0.summary)"] })
        print("\narithmetic: one of a / b (ratio), a + b, a - b between two fields or age, e.g. rtt / min_rtt > 4")
        print("\nfunctions (per-socket windows, at most \(RuleExpression.maxWindows) distinct (FIELD, DURATION)):")
        printTable([
            ["increase(FIELD, DURATION)", "FIELD's unit", "how much FIELD grew over the last DURATION"],
            ["rate(FIELD, DURATION)", "FIELD's unit/s", "that growth per second: rate(bytes_acked, 1s) < 1Mbit"],
        ])
        print("\nunits on values:")
        for group in RuleUnitGroup.all {
            print("  \(group.kind): \(group.spellings.joined(separator: " "))")
            print("      \(group.appliesTo)")
        }
        print("""

            states: state == ESTABLISHED, CLOSE_WAIT, ...; ca_state == Open, Disorder, CWR, Recovery, Loss
            booleans: delivery_rate_app_limited alone means == 1, 'not delivery_rate_app_limited' means == 0
            controls after a rule: for DURATION (held that long), every DURATION (re-notify while true), once
            """)
    }
}

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Show the built-in rules used when no --when is given, or the presets.")

    @Flag(name: .long, help: "List the presets (--when NAME) with their exact expressions.")
    var presets = false

    func run() {
        guard presets else {
            for rule in RuleExpression.defaultRules { print(rule) }
            return
        }
        let width = RulePresets.all.map(\.name.count).max() ?? 0
        for preset in RulePresets.all {
            print(preset.name + String(repeating: " ", count: width - preset.name.count) + "  " + preset.expression)
            print(String(repeating: " ", count: width + 2) + preset.summary)
        }
    }
}

/// Left-aligned columns; the last one runs free.
private func printTable(_ rows: [[String]]) {
    guard let columns = rows.map(\.count).max() else { return }
    let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
    for row in rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }
        print("  " + cells.joined(separator: "  "))
    }
}
