import Foundation
import TCPNotifyCore
import Yams

/// A `--config` file: which sockets to watch and the rules, in YAML.
///
///     filter: "dport = :443"
///     tuples: endpoints.txt          # relative to this file
///     rules:
///       - bufferbloat
///       - "lossy=increase(total_retrans, 1s) > 16"
///       - {name: slow, when: "rate(bytes_acked, 1s) < 1Mbit", for: 2s, every: 10s}
///
/// `load` checks everything it can without the kernel (keys, filter, rules), so a bad file is refused
/// before anything changes, which is what a SIGHUP reload needs.
struct ConfigFile: Sendable, Equatable {
    /// Config files are a few hundred bytes; a cap keeps a wrong path (a log, a device) from being read whole.
    static let maximumFileBytes = 1 << 20
    /// YAML aliases (`*name`) repeat a subtree without copying it, so 300 bytes can stand for a billion
    /// values ("billion laughs"). Converting the tree visits every repetition, so it stops at this many.
    static let maximumValueCount = 10_000

    var filter: String?
    /// Absolute, or relative to the working directory: a relative path in the file is resolved
    /// against the file's directory.
    var tuplesPath: String?
    /// `--when` strings; empty means the built-in rules.
    var rules: [String]
    /// The line of each rule in the file.
    var ruleLines: [Int?] = []

    static func load(path: String) throws(ConfigFileError) -> ConfigFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigFileError(path: path, ConfigError("no such file"))
        }
        let text: String
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            guard size <= maximumFileBytes else {
                throw ConfigFileError(path: path, ConfigError(
                    "the file has \(size) bytes, more than the \(maximumFileBytes) a config may have; is this the config file?"))
            }
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch let error as ConfigFileError {
            throw error
        } catch {
            throw ConfigFileError(path: path, ConfigError("cannot read the file: \(error.localizedDescription)"))
        }
        return try parse(text, path: path)
    }

    /// Parses and checks a document; `path` names it in errors and anchors a relative `tuples`.
    static func parse(_ yaml: String, path: String) throws(ConfigFileError) -> ConfigFile {
        let settings: ConfigSettings
        do {
            settings = try ConfigSettings.read(try document(yaml))
            _ = try settings.compileRules()
        } catch {
            throw ConfigFileError(path: path, error)
        }
        if let filter = settings.filter {
            do {
                _ = try FilterExpression.compile(filter)
            } catch {
                throw ConfigFileError(path: path, ConfigError("invalid filter: \(error)", line: line(ofKey: "filter", in: yaml)))
            }
        }
        let tuplesPath = settings.tuplesPath.map { tuples in
            tuples.hasPrefix("/") ? tuples
                : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(tuples).path
        }
        return ConfigFile(filter: settings.filter, tuplesPath: tuplesPath, rules: settings.rules, ruleLines: settings.ruleLines)
    }

    /// The YAML tree, with lines, as the core's `ConfigNode`.
    private static func document(_ yaml: String) throws(ConfigError) -> ConfigNode {
        do {
            guard let root = try Yams.compose(yaml: yaml) else { return ConfigNode(.null) }
            var budget = ValueBudget(remaining: maximumValueCount)
            return try node(root, budget: &budget)
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw yamlError(error)
        } catch {
            throw ConfigError("invalid YAML: \(error)")
        }
    }

    /// How many more YAML values the conversion may visit (aliases included, each time they are used).
    private struct ValueBudget {
        var remaining: Int

        mutating func spend(at line: Int?) throws(ConfigError) {
            remaining -= 1
            guard remaining >= 0 else {
                throw ConfigError("the document expands to more than \(ConfigFile.maximumValueCount) values; "
                    + "YAML aliases (*name) that repeat large parts of it are not supported, write the values out", line: line)
            }
        }
    }

    private static func node(_ node: Node, budget: inout ValueBudget) throws(ConfigError) -> ConfigNode {
        let line = node.mark?.line
        try budget.spend(at: line)
        switch node {
        case .scalar(let scalar):
            // A plain `~`, `null` or nothing is YAML's null; a quoted "null" is text.
            let isNull = scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)
            return ConfigNode(isNull ? .null : .scalar(scalar.string), line: line)
        case .sequence(let sequence):
            var items: [ConfigNode] = []
            for item in sequence { items.append(try Self.node(item, budget: &budget)) }
            return ConfigNode(.list(items), line: line)
        case .mapping(let mapping):
            var entries: [ConfigEntry] = []
            for pair in mapping {
                try budget.spend(at: pair.key.mark?.line)
                entries.append(ConfigEntry(
                    key: pair.key.string ?? "\(pair.key.any)", value: try Self.node(pair.value, budget: &budget),
                    line: pair.key.mark?.line))
            }
            return ConfigNode(.map(entries), line: line)
        }
    }

    private static func yamlError(_ error: YamlError) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ConfigError("invalid YAML: \(problem)\(detail)", line: mark.line, column: mark.column)
        case .reader(let problem, _, _, _):
            return ConfigError("invalid YAML: \(problem)")
        default:
            return ConfigError("invalid YAML: \(error)")
        }
    }

    /// The line of a top-level key, for errors found after the tree is gone.
    private static func line(ofKey key: String, in yaml: String) -> Int? {
        yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("\(key):") }.map { $0 + 1 }
    }
}

/// A config file problem: "line 3: unknown key 'filtr'; did you mean 'filter'?". The path is kept
/// apart because callers print it in front.
struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    var path: String
    var error: ConfigError

    init(path: String, _ error: ConfigError) {
        self.path = path
        self.error = error
    }

    var line: Int? { error.line }
    var description: String { error.description }
}
