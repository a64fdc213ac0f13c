import Foundation
import Glibc
import Testing

extension KernelSuite.CLI {
    /// Every command's options, as its help lists them (the shared option groups must give each command
    /// exactly its own options, under the names scripts use).
    static let commandOptions: [(command: String, options: Set<String>, phrases: [String])] = [
        ("watch", ["--when", "--tuples", "--config", "--cgroup", "--unit", "--pid", "--format", "--fields", "--ring-bytes", "--sweep-interval", "--sweep-precision", "--duration",
                   "--no-existing", "--no-close-records", "--diagnose", "--verbose", "--mode", "--interval", "--metrics-address",
                   "--metrics-labels", "--otlp-endpoint", "--report"],
         ["<filter>", "Socket filter, ss style", "A rule or a preset name (repeatable)", "Stop after this many seconds",
          "0 turns it off", "(default: 5%)", "(default: 1s)", "(default: auto)", "Poll interval for --mode poll", "(default: 4194304)",
          "--metrics-address <host:port>", "--metrics-labels <labels>", "--otlp-endpoint <url>", "--interval <duration>"]),
        ("serve", ["--config", "--socket", "--socket-group", "--cgroup", "--unit", "--pid", "--metrics-address", "--metrics-labels",
                   "--otlp-endpoint", "--queue-bytes", "--max-clients", "--client-idle-timeout", "--ring-bytes", "--sweep-interval", "--sweep-precision",
                   "--history", "--history-connections", "--history-verdicts", "--history-retention", "--metrics-connections", "--log-level", "--verbose",
                   "--mode", "--interval"],
         ["(default: /run/tcpnotify/tcpnotify.sock)", "127.0.0.1:9464", "'off' serves none", "(default: info)",
          "Per-subscriber queue in bytes", "0 turns it off", "(default: 5%)", "--history <filter>", "(default: 4096)",
          "(default: 8)", "(default: 10m)"]),
        ("subscribe", ["--when", "--socket", "--cgroup", "--unit", "--pid"], ["<filter>", "(default: /run/tcpnotify/tcpnotify.sock)", "none: the built-in rules"]),
        ("snapshot", ["--tuples", "--cgroup", "--unit", "--pid", "--format", "--own-namespace", "--verbose"], ["<filter>", "(values: json, text)"]),
        ("diagnose", ["--for", "--cgroup", "--unit", "--pid", "--format", "--window", "--verbose", "--once", "--interval", "--report"],
         ["<filter>", "--for <duration>", "--window <seconds>", "(default: 3)", "Stop after this long", "--interval <duration>",
          "--report <file.html>"]),
        ("doctor", ["--format", "--no-connection", "--verbose"], ["(default: table)"]),
        ("top", ["--tuples", "--when", "--cgroup", "--unit", "--pid", "--ring-bytes", "--sweep-interval", "--verbose", "--mode",
                 "--interval", "--window", "--batch", "--iterations", "--width", "--sort"],
         ["<filter>", "(default: auto)", "(default: 3)", "(default: THRU)", "--iterations <n>", "--sort <column>"]),
    ]

    /// The long options a help text lists (the first name of each OPTIONS entry).
    static func listedOptions(_ help: String) -> Set<String> {
        var options = Set<String>()
        for line in help.split(separator: "\n") {
            var text = line.drop { $0 == " " }
            if text.hasPrefix("-h, ") { text = text.dropFirst(4) }
            guard text.hasPrefix("--"), line.hasPrefix("  --") || line.hasPrefix("  -h") else { continue }
            options.insert(String(text.prefix { $0 != " " }))
        }
        return options.subtracting(["--help"])
    }

    @Test(arguments: commandOptions.indices)
    func helpListsEachCommandsOwnOptions(index: Int) throws {
        let (command, options, phrases) = Self.commandOptions[index]
        let result = try CLIProcess.run(Self.tcpnotify(), [command, "--help"])
        #expect(result.status == 0, "\(command) --help: \(result.status) \(result.stderr)")
        let help = result.stdout.replacingOccurrences(of: "\n                          ", with: " ") // unwrap
        #expect(Self.listedOptions(result.stdout) == options, "\(command): \(help)")
        for phrase in phrases {
            #expect(help.contains(phrase), "\(command) --help lacks '\(phrase)': \(help)")
        }
    }

    /// A bad value or combination: exit 2 and a message naming the option and what it takes, before
    /// anything is loaded (nothing is attached, no socket is created).
    static let badOptions: [(arguments: [String], fragments: [String])] = [
        (["watch", "--duration", "-5"], ["--duration", "'-5' is negative", "500ms, 2s, 1m, 1h30m", "plain number of seconds"]),
        (["watch", "--duration", "0"], ["--duration", "longer than zero"]),
        (["top", "--iterations", "0"], ["--iterations", "1 or more"]),
        (["top", "--sort", "zz"], ["--sort", "'zz' is no column", "THRU (t)"]),
        (["top", "--batch", "dport = :"], ["invalid filter"]),
        (["watch", "--duration", "5x"], ["--duration", "unknown time unit 'x'"]),
        (["watch", "--duration"], ["Missing value for '--duration"]),
        (["watch", "--sweep-interval", "1h30"], ["--sweep-interval", "'30' in '1h30' needs a time unit", "0 to turn it off"]),
        (["watch", "--sweep-interval", "500us"], ["--sweep-interval", "at least 1ms"]),
        (["watch", "--sweep-interval", "-1s"], ["--sweep-interval", "negative"]),
        (["watch", "--sweep-precision", "80%"], ["--sweep-precision", "between 0.1% and 50%"]),
        (["serve", "--sweep-precision", "fast"], ["--sweep-precision", "not a share"]),
        (["watch", "--interval", "2h"], ["--interval", "at most 1h"]),
        (["watch", "--interval", "30m1h"], ["--interval", "out of order"]),
        (["watch", "--ring-bytes", "3"], ["--ring-bytes", "power of two"]),
        (["watch", "--ring-bytes", "5000"], ["--ring-bytes", "power of two"]),
        (["watch", "--ring-bytes", "-1"], ["--ring-bytes"]),
        (["watch", "--ring-bytes", "lots"], ["--ring-bytes"]),
        (["watch", "--format", "xml"], ["--format", "'json' and 'text'"]),
        (["watch", "--mode", "push"], ["--mode", "auto, bpf or poll"]),
        (["watch", "--cgroup", "/nonexistent-tcpnotify-cgroup"], ["--cgroup", "not a directory"]),
        (["watch", "--config", "/nonexistent.yaml", "--when", "rtt > 1ms"], ["--config holds the filter, tuples and rules"]),
        (["watch", "--metrics-address", "off", "--metrics-labels", "cgroup"], ["needs --metrics-address"]),
        (["watch", "--bogus"], ["Unknown option '--bogus'"]),
        (["serve", "--ring-bytes", "3"], ["--ring-bytes", "power of two"]),
        (["serve", "--queue-bytes", "1"], ["--queue-bytes", "between 4096"]),
        (["serve", "--max-clients", "0"], ["--max-clients", "between 1 and 65536"]),
        (["serve", "--client-idle-timeout", "10ms"], ["--client-idle-timeout", "at least 100ms"]),
        (["serve", "--sweep-interval", "fast"], ["--sweep-interval", "not a duration"]),
        (["serve", "--socket", "/nonexistent-tcpnotify/sub/tcpnotify.sock"], ["--socket", "nor its parent directory exists"]),
        (["serve", "--socket", "/tmp/" + String(repeating: "s", count: 120)], ["--socket", "at most 107"]),
        (["serve", "--socket", "/etc/passwd"], ["--socket", "not a socket"]),
        (["serve", "--socket", "/tmp/"], ["--socket", "names a directory"]),
        (["serve", "--log-level", "loud"], ["--log-level"]),
        (["serve", "--metrics-address", "off", "--metrics-labels", "cgroup"], ["needs --metrics-address"]),
        (["serve", "--metrics-address", "example.com:80"], ["numeric"]),
        (["subscribe", "--socket", ""], ["--socket", "empty"]),
        (["diagnose", "--for", "-1"], ["--for", "negative"]),
        (["diagnose", "--for", "1Mbit"], ["--for", "'Mbit' is a rate, not a time unit"]),
        (["diagnose", "--interval", "100ms"], ["--interval", "at least 500ms"]),
        (["diagnose", "--once", "--interval", "2s"], ["--once", "--interval does not apply"]),
        (["diagnose", "--window", "0.5"], ["--window", "at least 1s"]),
        (["diagnose", "--window", "2h"], ["--window", "at most 1h"]),
        (["snapshot", "--format", "yaml"], ["--format"]),
        (["doctor", "--format", "xml"], ["--format"]),
    ]

    @Test(arguments: badOptions.indices)
    func badOptionValuesExitWith2(index: Int) throws {
        let (arguments, fragments) = Self.badOptions[index]
        let started = Date()
        let result = try CLIProcess.run(Self.tcpnotify(), arguments)
        #expect(result.status == 2, "\(arguments): status \(result.status), stderr: \(result.stderr)")
        for fragment in fragments {
            #expect(result.stderr.contains(fragment), "\(arguments) lacks '\(fragment)': \(result.stderr)")
        }
        #expect(!result.stderr.contains("watching") && !result.stderr.contains("serving"), "started: \(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 10, "refused at once, before loading anything")
    }

    /// Hostile config files: an alias bomb (301 bytes standing for 9^8 values; it used to exhaust memory
    /// after 30 s) and a file too large to be a config are refused at once, by watch and by serve.
    @Test(arguments: ["watch", "serve"])
    func hostileConfigFilesAreRefused(command: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-config-\(getpid())-\(command)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n"
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"]
        for (previous, name) in zip(names, names.dropFirst()) {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        bomb += "rules: [*h]\n"
        let bombPath = directory.appendingPathComponent("bomb.yaml").path
        try bomb.write(toFile: bombPath, atomically: true, encoding: .utf8)
        let hugePath = directory.appendingPathComponent("huge.yaml").path
        try String(repeating: "# comment\n", count: 120_000).write(toFile: hugePath, atomically: true, encoding: .utf8)

        for (path, fragment) in [(bombPath, "YAML aliases"), (hugePath, "more than the 1048576 a config may have")] {
            let started = Date()
            let result = try CLIProcess.run(Self.tcpnotify(), [command, "--config", path], timeout: 20)
            #expect(result.status == 2, "\(command) \(path): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(path) && result.stderr.contains(fragment), "\(result.stderr)")
            #expect(Date().timeIntervalSince(started) < 5, "refused at once")
        }
    }

    /// What worked before keeps working: plain seconds for --duration and --window, `0` for no sweep,
    /// and the new compound forms (poll mode: nothing is loaded).
    @Test(arguments: [
        ["--duration", "0.3"], ["--duration", "300ms", "--sweep-interval", "0"], ["--duration", "0.3", "--sweep-interval", "1m30s"],
        ["--duration", "300ms", "--interval", "0.1s"], ["--duration", "300ms", "--ring-bytes", "65536", "--metrics-address", "off"],
    ])
    func goodDurationsRun(arguments: [String]) throws {
        let result = try CLIProcess.run(Self.tcpnotify(), ["watch", "--mode", "poll", "--format", "json"] + arguments, timeout: 20)
        #expect(result.status == 0, "\(arguments): \(result.status) \(result.stderr)")
        #expect(result.stdout.contains("\"type\":\"stats\""), "\(arguments): \(result.stdout)")
    }
}
