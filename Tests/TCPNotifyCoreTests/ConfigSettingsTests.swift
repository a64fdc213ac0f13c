import Testing
@testable import TCPNotifyCore

private func scalar(_ text: String, _ line: Int) -> ConfigNode { ConfigNode(.scalar(text), line: line) }
private func entry(_ key: String, _ value: ConfigNode) -> ConfigEntry { ConfigEntry(key: key, value: value, line: value.line) }
private func map(_ entries: [ConfigEntry], _ line: Int) -> ConfigNode { ConfigNode(.map(entries), line: line) }

/// The config file's structure, as the YAML reader hands it over.
@Suite struct ConfigSettingsTests {
    @Test func fullDocument() throws {
        let root = map([
            entry("filter", scalar("dport = :443", 1)),
            entry("tuples", scalar("endpoints.txt", 2)),
            entry("rules", ConfigNode(.list([
                scalar("lossy=increase(total_retrans, 1s) > 16", 4),
                scalar("bufferbloat", 5),
                map([entry("name", scalar("slow", 6)), entry("when", scalar("rate(bytes_acked, 1s) < 1Mbit", 7)),
                     entry("for", scalar("2s", 8)), entry("every", scalar("10s", 9)), entry("once", scalar("false", 10))], 6),
                map([entry("when", scalar("state == CLOSE_WAIT", 11)), entry("once", scalar("true", 12))], 11),
            ]), line: 3)),
        ], 1)
        let settings = try ConfigSettings.read(root)
        #expect(settings.filter == "dport = :443")
        #expect(settings.tuplesPath == "endpoints.txt")
        #expect(settings.rules == ["lossy=increase(total_retrans, 1s) > 16", "bufferbloat",
                                   "slow=rate(bytes_acked, 1s) < 1Mbit for 2s every 10s", "state == CLOSE_WAIT once"])
        #expect(settings.ruleLines == [4, 5, 6, 11])
        let compiled = try settings.compileRules()
        #expect(compiled.rules.map(\.name) == ["lossy", "bufferbloat", "slow", "state == CLOSE_WAIT once"])
        #expect(compiled.rules[2].control == RuleControl(forMilliseconds: 2000, everyMilliseconds: 10_000))
    }

    @Test func emptyAndNullDocuments() throws {
        #expect(try ConfigSettings.read(ConfigNode(.null)) == ConfigSettings())
        let nulls = map([entry("filter", ConfigNode(.null, line: 1)), entry("rules", ConfigNode(.null, line: 2))], 1)
        #expect(try ConfigSettings.read(nulls) == ConfigSettings())
        // A single rule written as a string instead of a list is accepted.
        #expect(try ConfigSettings.read(map([entry("rules", scalar("stalled", 1))], 1)).rules == ["stalled"])
    }

    static let bad: [(ConfigNode, String, Int?)] = [
        (scalar("rtt > 5", 1), "the file must be a map with the keys filter, tuples, rules", 1),
        (map([entry("filtr", scalar("x", 3))], 1), "unknown key 'filtr'; did you mean 'filter'? (known: filter, tuples, rules)", 3),
        (map([entry("when", scalar("x", 2))], 1), "unknown key 'when'", 2),
        (map([entry("filter", scalar("a", 1)), entry("filter", scalar("b", 2))], 1), "'filter' is given twice", 2),
        (map([entry("filter", ConfigNode(.list([]), line: 4))], 1), "'filter' must be a string", 4),
        (map([entry("rules", map([], 2))], 1), "'rules' must be a list", 2),
        (map([entry("rules", ConfigNode(.list([scalar("  ", 5)]), line: 4))], 1), "empty rule", 5),
        (map([entry("rules", ConfigNode(.list([ConfigNode(.null, line: 5)]), line: 4))], 1), "empty rule", 5),
        (map([entry("rules", ConfigNode(.list([map([entry("wen", scalar("rtt > 1ms", 6))], 6)]), line: 4))], 1),
         "unknown rule key 'wen'; did you mean 'when'?", 6),
        (map([entry("rules", ConfigNode(.list([map([entry("name", scalar("x", 6))], 6)]), line: 4))], 1),
         "a rule given as a map needs 'when: EXPRESSION'", 6),
        (map([entry("rules", ConfigNode(.list([map([entry("name", scalar("9x", 6)), entry("when", scalar("rtt > 1ms", 7))], 6)]), line: 4))], 1),
         "invalid rule name '9x'", 6),
        (map([entry("rules", ConfigNode(.list([map([entry("when", scalar("rtt > 1ms", 6)), entry("once", scalar("maybe", 7))], 6)]), line: 4))], 1),
         "'once' must be true or false, not 'maybe'", 7),
        (map([entry("rules", ConfigNode(.list([map([entry("when", ConfigNode(.list([]), line: 6))], 6)]), line: 4))], 1),
         "rule key 'when' must be a single value", 6),
    ]

    @Test func structuralErrorsNameTheKeyAndLine() {
        for (root, fragment, line) in Self.bad {
            do {
                let settings = try ConfigSettings.read(root)
                Issue.record("read \(settings)")
            } catch {
                #expect(error.message.contains(fragment), "\(error)")
                #expect(error.line == line, "\(error)")
            }
        }
    }

    @Test func ruleErrorsPointAtTheRulesLine() throws {
        let settings = ConfigSettings(rules: ["bufferbloat", "rtt > 5Mbit", "lossy"], ruleLines: [3, 4, 5])
        do {
            _ = try settings.compileRules()
            Issue.record("compiled")
        } catch {
            #expect(error.line == 4)
            #expect(error.description.hasPrefix("line 4: invalid rule: unit 'Mbit' does not fit field 'rtt'"))
            #expect(error.description.contains("^~~~~"))
        }
        // A map entry's controls are checked by the rule compiler too.
        let twice = try ConfigSettings.read(map([entry("rules", ConfigNode(.list([
            map([entry("when", scalar("rtt > 1ms for 1s", 6)), entry("for", scalar("2s", 7))], 6),
        ]), line: 5))], 1))
        #expect(throws: ConfigError.self) { try twice.compileRules() }
    }

    @Test func errorDescriptions() {
        #expect(ConfigError("bad", line: 3, column: 7).description == "line 3, column 7: bad")
        #expect(ConfigError("bad", line: 3).description == "line 3: bad")
        #expect(ConfigError("bad").description == "bad")
    }
}
