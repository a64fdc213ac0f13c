import Testing
@testable import TCPNotifyCore

@Suite struct RulePresetsTests {
    @Test func theSixPresetsExist() {
        #expect(RulePresets.all.map(\.name) == ["bufferbloat", "lossy", "stalled", "receiver-limited", "sender-limited", "app-limited"])
        #expect(RulePresets.all.allSatisfy { !$0.summary.isEmpty })
    }

    /// Each preset is one rule named after it, and its expression is already canonical.
    @Test(arguments: RulePresets.all.map(\.name))
    func presetCompilesAlone(_ name: String) throws {
        let preset = try #require(RulePresets.named(name))
        for spelling in [name, "preset:\(name)", "  \(name) ", "PRESET:\(name.uppercased())", name.replacingOccurrences("-", "_")] {
            let compiled = try RuleExpression.compile([spelling])
            #expect(compiled.rules.count == 1, "\(spelling)")
            #expect(compiled.rules.first?.name == name)
            #expect(compiled.rules.first?.expressionWithControl == preset.expression)
        }
    }

    @Test func allPresetsFitTogether() throws {
        let compiled = try RuleExpression.compile(RulePresets.all.map(\.name))
        #expect(compiled.rules.map(\.name) == RulePresets.all.map(\.name))
        #expect(compiled.windows.count == 3)
        #expect(compiled.timedRules == [0])
        #expect(compiled.operands.count == 11)
        #expect(compiled.rules[0].control == RuleControl(forMilliseconds: 2000))
        // And beside the default rules.
        #expect(try RuleExpression.compile(RulePresets.all.map(\.name) + RuleExpression.defaultRules).rules.count == 11)
    }

    @Test func presetTermsAreWhatTheyClaim() throws {
        let lossy = try RuleExpression.compile(["lossy"])
        #expect(lossy.terms == [
            RuleTerm(kind: .increase, operand: .field(.totalRetrans), windowWidthNanoseconds: 1_000_000_000, op: .gt, value: 16),
            RuleTerm(kind: .ratio, operand: .field(.bytesRetrans), operand2: .field(.bytesSent), op: .gt, value: 20_000),
            RuleTerm(field: .bytesSent, op: .gt, value: 1_000_000),
        ])
        #expect(lossy.clauses == [Clause(mustBeTrue: 0b001), Clause(mustBeTrue: 0b110)])
        let bloat = try RuleExpression.compile(["bufferbloat"])
        #expect(bloat.evaluate(RuleFieldValues([.rtt: 100_000, .minRtt: 20_000]).callAsFunction) == 1)
        #expect(bloat.evaluate(RuleFieldValues([.rtt: 24_000, .minRtt: 5_000]).callAsFunction) == 0, "inflated, but queues add only 19 ms")
        let appLimited = try RuleExpression.compile(["app-limited"])
        #expect(appLimited.evaluate { $0 == .age ? 10_000_000 : ($0 == .field(.busyTime) ? 1_000_000 : 0) } == 1)
        #expect(appLimited.evaluate { $0 == .age ? 4_000_000 : 0 } == 0, "too young")
    }

    @Test func aFieldNamedAloneStaysACondition() throws {
        #expect(try RuleExpression.compile(["delivery_rate_app_limited"]).rules.first?.name == "delivery_rate_app_limited")
    }

    @Test func presetNamesAreReservedForThePreset() {
        do {
            _ = try RuleExpression.compile(["bufferbloat", "bufferbloat=rtt > 1ms"])
            Issue.record("compiled")
        } catch {
            #expect(error.message.contains("rule name 'bufferbloat' is already used"))
        }
        // The same preset twice is one rule.
        #expect((try? RuleExpression.compile(["lossy", "preset:lossy"]))?.rules.count == 1)
    }

    @Test func unknownPresetsSuggestTheNearest() {
        do {
            _ = try RuleExpression.compile(["preset:sender-limted"])
            Issue.record("compiled")
        } catch {
            #expect(error.message == "unknown preset 'sender-limted'; did you mean 'sender-limited'?")
            #expect(error.position == 7)
            #expect(error.hint?.contains("bufferbloat, lossy") == true)
        }
    }
}

extension String {
    func replacingOccurrences(_ target: Character, _ replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
