import ArgumentParser
import Foundation
import TCPNotifyCore
import TCPNotifyLab

struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Diagnose a flow from the tcp_info JSON lines a traffic program printed (for recording fixtures).")

    @Argument(help: "Files of tcp_info JSON lines.")
    var files: [String]

    @Option(help: "Which side's samples to judge.")
    var side = "client"

    @Option(help: "Window in seconds.")
    var window: Double = 3

    @Option(help: "Also print a verdict every this many seconds of the series.")
    var every: Double?

    @Option(help: "Output format: json or text.")
    var format: NotificationFormatter.Format = .text

    func run() throws {
        var configuration = DiagnosisConfiguration()
        configuration.windowSeconds = window
        let classifier = BottleneckClassifier(configuration: configuration)
        let formatter = DiagnosisFormatter(format: format)
        for file in files {
            let series = try TCPInfoSeries(jsonLines: String(contentsOfFile: file, encoding: .utf8)).side(side)
            guard let first = series.entries.first else { continue }
            var cutoffs: [UInt64] = []
            if let every, let start = series.samples.first?.monotonicNanoseconds, let end = series.samples.last?.monotonicNanoseconds {
                var cutoff = start + UInt64(every * 1e9)
                while cutoff < end { cutoffs.append(cutoff); cutoff += UInt64(every * 1e9) }
            }
            cutoffs.append(UInt64.max)
            for cutoff in cutoffs {
                let samples = series.samples.filter { $0.monotonicNanoseconds <= cutoff }
                let report = DiagnosisReport(
                    cookie: first.cookie, local: Self.endpoint(first.local), remote: Self.endpoint(first.remote),
                    isClosed: false, diagnosis: classifier.diagnose(samples))
                if cutoff != UInt64.max, let start = series.samples.first?.monotonicNanoseconds {
                    print("t=\(Double(cutoff - start) / 1e9)s")
                }
                print(formatter.text(for: report))
            }
        }
    }

    /// The printed endpoint back as an `Endpoint` (for the report's header only).
    static func endpoint(_ text: String) -> Endpoint {
        let unbracketed = text.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "")
        guard let colon = unbracketed.lastIndex(of: ":"), let port = UInt16(unbracketed[unbracketed.index(after: colon)...]),
              let address = IPAddressText.parse(String(unbracketed[..<colon])) else {
            return Endpoint(address: Array(repeating: 0, count: 16), port: 0)
        }
        return Endpoint(address: address, port: port)
    }
}

extension NotificationFormatter.Format: ExpressibleByArgument {}
