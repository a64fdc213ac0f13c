/// A configuration document as a tree of scalars, lists and maps with their lines; the YAML reader
/// (in the tcpnotify command) builds it, so the rules about keys are tested here without YAML.
public struct ConfigNode: Sendable, Equatable {
    public indirect enum Value: Sendable, Equatable {
        case null
        case scalar(String)
        case list([ConfigNode])
        case map([ConfigEntry])
    }

    public var value: Value
    /// 1-based line in the file, when known.
    public var line: Int?

    public init(_ value: Value, line: Int? = nil) {
        self.value = value
        self.line = line
    }
}

public struct ConfigEntry: Sendable, Equatable {
    public var key: String
    public var value: ConfigNode
    /// Line of the key.
    public var line: Int?

    public init(key: String, value: ConfigNode, line: Int? = nil) {
        self.key = key
        self.value = value
        self.line = line
    }
}

/// A problem in a configuration file, with the line it is on.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var line: Int?
    public var column: Int?

    public init(_ message: String, line: Int? = nil, column: Int? = nil) {
        self.message = message
        self.line = line
        self.column = column
    }

    /// "line 3, column 7: unknown key 'filtr'; did you mean 'filter'?"
    public var description: String {
        switch (line, column) {
        case (let line?, let column?): "line \(line), column \(column): \(message)"
        case (let line?, nil): "line \(line): \(message)"
        default: message
        }
    }
}

/// What a config file selects and watches for:
///
///     filter: "dport = :443"
///     tuples: endpoints.txt              # relative to the config file
///     rules:
///       - bufferbloat                    # a preset
///       - "lossy=increase(total_retrans, 1s) > 16"
///       - name: slow
///         when: rate(bytes_acked, 1s) < 1Mbit
///         for: 2s
///         every: 10s
///         once: false
///
/// Every key is checked: an unknown one is an error naming it, so a typo never goes unnoticed.
public struct ConfigSettings: Sendable, Equatable {
    public var filter: String?
    public var tuplesPath: String?
    /// `--when` strings; a map entry is turned into `NAME=WHEN for X every Y once`.
    public var rules: [String]
    /// The line of each rule, for messages.
    public var ruleLines: [Int?]

    public static let keys = ["filter", "tuples", "rules"]
    public static let ruleKeys = ["name", "when", "for", "every", "once"]

    public init(filter: String? = nil, tuplesPath: String? = nil, rules: [String] = [], ruleLines: [Int?] = []) {
        self.filter = filter
        self.tuplesPath = tuplesPath
        self.rules = rules
        self.ruleLines = ruleLines
    }

    public static func read(_ root: ConfigNode) throws(ConfigError) -> ConfigSettings {
        var settings = ConfigSettings()
        if root.value == .null { return settings }  // an empty file
        guard case .map(let entries) = root.value else {
            throw ConfigError("the file must be a map with the keys \(keys.joined(separator: ", "))", line: root.line)
        }
        for entry in try checkedKeys(entries, allowed: keys, what: "key") {
            switch entry.key {
            case "filter": settings.filter = try optionalString(entry, example: "filter: \"dport = :443\"")
            case "tuples": settings.tuplesPath = try optionalString(entry, example: "tuples: endpoints.txt")
            default: (settings.rules, settings.ruleLines) = try rules(entry)
            }
        }
        return settings
    }

    /// Compiles the rules, reporting an error at the line of the rule it is about.
    public func compileRules() throws(ConfigError) -> CompiledRules {
        do {
            return try RuleExpression.compile(rules)
        } catch {
            let index = rules.firstIndex { $0 == error.input || (try? RulePresets.expand($0)) == error.input }
            throw ConfigError("invalid rule: \(error)", line: index.flatMap { ruleLines.indices.contains($0) ? ruleLines[$0] : nil })
        }
    }

    // MARK: - Pieces

    private static func checkedKeys(_ entries: [ConfigEntry], allowed: [String], what: String) throws(ConfigError) -> [ConfigEntry] {
        var seen = Set<String>()
        for entry in entries {
            guard allowed.contains(entry.key) else {
                let suggestion = NameSuggestion.nearest(to: entry.key, among: allowed, name: { $0 })
                throw ConfigError("unknown \(what) '\(entry.key)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
                                  + " (known: \(allowed.joined(separator: ", ")))", line: entry.line)
            }
            guard seen.insert(entry.key).inserted else {
                throw ConfigError("'\(entry.key)' is given twice", line: entry.line)
            }
        }
        return entries
    }

    private static func optionalString(_ entry: ConfigEntry, example: String) throws(ConfigError) -> String? {
        switch entry.value.value {
        case .null: return nil
        case .scalar(let text): return text
        default: throw ConfigError("'\(entry.key)' must be a string, e.g. \(example)", line: entry.value.line ?? entry.line)
        }
    }

    private static func rules(_ entry: ConfigEntry) throws(ConfigError) -> ([String], [Int?]) {
        let items: [ConfigNode]
        switch entry.value.value {
        case .null: return ([], [])
        case .list(let list): items = list
        case .scalar(let text): items = [ConfigNode(.scalar(text), line: entry.value.line ?? entry.line)]
        case .map: throw ConfigError("'rules' must be a list: one '- RULE' line per rule", line: entry.line)
        }
        var rules: [String] = [], lines: [Int?] = []
        for item in items {
            let line = item.line ?? entry.line
            switch item.value {
            case .scalar(let text):
                guard text.contains(where: { !$0.isWhitespace }) else { throw ConfigError("empty rule", line: line) }
                rules.append(text)
            case .map(let fields):
                rules.append(try ruleText(fields, line: line))
            case .null:
                throw ConfigError("empty rule", line: line)
            case .list:
                throw ConfigError("a rule is a string or a map with the keys \(ruleKeys.joined(separator: ", "))", line: line)
            }
            lines.append(line)
        }
        return (rules, lines)
    }

    /// `{name: x, when: "rtt > 50ms", for: 2s, every: 10s, once: true}` as `x=rtt > 50ms for 2s every 10s once`.
    private static func ruleText(_ fields: [ConfigEntry], line: Int?) throws(ConfigError) -> String {
        var values: [String: (text: String?, line: Int?)] = [:]
        for field in try checkedKeys(fields, allowed: ruleKeys, what: "rule key") {
            switch field.value.value {
            case .null: values[field.key] = (nil, field.line)
            case .scalar(let text): values[field.key] = (text, field.line)
            default: throw ConfigError("rule key '\(field.key)' must be a single value", line: field.line)
            }
        }
        guard let when = values["when"]?.text, when.contains(where: { !$0.isWhitespace }) else {
            throw ConfigError("a rule given as a map needs 'when: EXPRESSION'", line: values["when"]?.line ?? line)
        }
        var text = when
        if let name = values["name"]?.text {
            guard RuleParser.isValidName(name) else {
                throw ConfigError("invalid rule name '\(name)': a letter or '_' followed by letters, digits, '_' or '-'",
                                  line: values["name"]?.line)
            }
            text = "\(name)=\(when)"
        }
        for key in ["for", "every"] {
            guard let duration = values[key]?.text else { continue }
            // The rule language reads it again; checked here so the error names the key's line.
            do {
                _ = try DurationText.parse(duration)
            } catch {
                throw ConfigError("'\(key)': \(error)", line: values[key]?.line)
            }
            text += " \(key) \(duration)"
        }
        if let once = values["once"] {
            switch once.text?.lowercased() {
            case "true", "yes", "on": text += " once"
            case "false", "no", "off", nil: break
            default: throw ConfigError("'once' must be true or false, not '\(once.text ?? "")'", line: once.line)
            }
        }
        return text
    }
}
