import ArgumentParser
import Foundation
import TCPNotifyLab

struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run a diagnosis scenario (builds its own lab; as root) and report the ground truth.",
        discussion: "Scenarios: " + (LabScenario.all + LabScenario.ipv6 + LabScenario.directPath).map(\.name).joined(separator: ", "))

    @Argument(help: "Scenario names (default: all).")
    var names: [String] = []

    @Option(help: "Save each client's tcp_info lines to DIR/<scenario>.jsonl.")
    var save: String?

    func run() throws {
        let scenarios = try names.isEmpty ? LabScenario.all : names.map { name in
            guard let scenario = LabScenario.named(name) else { throw ValidationError("no scenario '\(name)'") }
            return scenario
        }
        var failed = false
        for scenario in scenarios {
            let run = try scenario.run()
            let verdicts = run.groundTruth.map { "\($0.expectation.phase): \($0.diagnosis.bottleneck) (\($0.diagnosis.confidence))" }
                + ["receiving end: \(run.receiverVerdict.bottleneck) (\(run.receiverVerdict.summary))"]
            let failures = run.failures
            failed = failed || !failures.isEmpty
            print("\(scenario.name): \(failures.isEmpty ? "ok" : "FAILED") in \((run.totalSeconds * 10).rounded() / 10) s; "
                + verdicts.joined(separator: "; "))
            for failure in failures { print("  \(failure)") }
            if let save {
                let lines = run.client.entries.map(\.line).joined(separator: "\n") + "\n"
                try lines.write(toFile: "\(save)/\(scenario.name).jsonl", atomically: true, encoding: .utf8)
                let serverLines = run.server.entries.map(\.line).joined(separator: "\n") + "\n"
                try serverLines.write(toFile: "\(save)/\(scenario.name).server.jsonl", atomically: true, encoding: .utf8)
            }
        }
        if failed { throw ExitCode(1) }
    }
}
