import Testing
@testable import TCPNotifyCore

struct MalformedRule: Sendable, CustomTestStringConvertible {
    var text: String
    var fragment: String
    var position: Int
    var testDescription: String { text }
}

/// Field values for the reference evaluator; unset fields (and age) are 0.
struct RuleFieldValues {
    var values: [TCPInfoField: UInt64]
    init(_ values: [TCPInfoField: UInt64]) { self.values = values }
    func callAsFunction(_ operand: RuleOperand) -> UInt64 {
        if case .field(let field) = operand { return values[field] ?? 0 }
        return 0
    }
}

@Suite struct RuleExpressionTests {
    @Test func topLevelOrSplitsIntoRules() throws {
        let compiled = try RuleExpression.compile(["rttvar > 10000 or total_retrans > 16"])
        #expect(compiled.rules == [RuleInfo(name: "rttvar > 10ms", expression: "rttvar > 10ms"),
                                   RuleInfo(name: "total_retrans > 16", expression: "total_retrans > 16")])
        #expect(compiled.terms == [RuleTerm(field: .rttvar, op: .gt, value: 10000),
                                   RuleTerm(field: .totalRetrans, op: .gt, value: 16)])
        #expect(compiled.clauses == [Clause(mustBeTrue: 1, rule: 0), Clause(mustBeTrue: 2, rule: 1)])
    }

    @Test func namedExpressionIsOneRule() throws {
        let compiled = try RuleExpression.compile(["stalled=retransmits >= 3 and snd_wnd == 0 or rtt > 5"])
        #expect(compiled.rules == [RuleInfo(name: "stalled", expression: "retransmits >= 3 and snd_wnd == 0 or rtt > 5us")])
        #expect(compiled.clauses == [Clause(mustBeTrue: 0b011, rule: 0), Clause(mustBeTrue: 0b100, rule: 0)])
    }

    @Test func nestedOrStaysInsideItsRule() throws {
        let compiled = try RuleExpression.compile(["(rtt > 1 or rto > 2) and lost > 0 or state == LISTEN"])
        #expect(compiled.rules.map(\.name) == ["(rtt > 1us or rto > 2us) and lost > 0", "state == LISTEN"])
        #expect(compiled.clauses.map(\.rule) == [0, 0, 1])
    }

    @Test func severalStringsAddRules() throws {
        let compiled = try RuleExpression.compile(["a=rtt > 5", "b=rtt > 5 and rto > 1", "rtt > 5", "a=rtt > 5"])
        #expect(compiled.rules.map(\.name) == ["a", "b", "rtt > 5us"])
        #expect(compiled.terms.count == 2)  // shared across rules
        #expect(compiled.clauses.map(\.rule) == [0, 1, 2])
    }

    @Test func defaultRules() throws {
        #expect(RuleExpression.defaultRules == [
            "retrans_burst=total_retrans > 16", "rto_stall=retransmits >= 3", "high_rtt=rtt > 200ms",
            "rtt_jitter=rttvar > 50ms", "silent_peer=last_ack_recv > 5s and unacked > 0",
        ])
        let compiled = try RuleExpression.compile(RuleExpression.defaultRules)
        #expect(compiled.rules.map(\.name) == ["retrans_burst", "rto_stall", "high_rtt", "rtt_jitter", "silent_peer"])
        #expect(compiled.needsSweep, "silent_peer is checked by the sweep")
        #expect(try !RuleExpression.compile(["rtt > 200ms", "total_retrans > 16"]).needsSweep)
        #expect(try RuleExpression.compile(["rtt > 200ms for 1s"]).needsSweep)
        #expect(try RuleExpression.compile(["increase(total_retrans, 1s) > 3"]).needsSweep)
        #expect(compiled.rules.map(\.expression) == [
            "total_retrans > 16", "retransmits >= 3", "rtt > 200ms", "rttvar > 50ms",
            "last_ack_recv > 5s and unacked > 0",
        ])
        #expect(compiled.terms.count == 6 && compiled.clauses.count == 5)
        #expect(compiled.evaluate(RuleFieldValues([.lastAckRecv: 5001, .unacked: 1]).callAsFunction) == 0b10000)
        #expect(compiled.evaluate(RuleFieldValues([.lastAckRecv: 5001]).callAsFunction) == 0)
        #expect(compiled.evaluate(RuleFieldValues([.sndWnd: 1, .rtt: 200_001]).callAsFunction) == 0b0100)
        #expect(compiled.evaluate(RuleFieldValues([:]).callAsFunction) == 0)
        #expect(compiled.evaluate(RuleFieldValues([.totalRetrans: 17, .rttvar: 50_001]).callAsFunction) == 0b1001)
    }

    @Test func noRulesIsAnEmptyTable() throws {
        let compiled = try RuleExpression.compile([])
        #expect(compiled.rules.isEmpty && compiled.terms.isEmpty && compiled.clauses.isEmpty)
        #expect(compiled.evaluate { _ in 1 } == 0)
    }

    @Test(arguments: [
        ("state == ESTABLISHED", RuleTerm(field: .state, op: .eq, value: 1), "state == ESTABLISHED"),
        ("state=close-wait", RuleTerm(field: .state, op: .eq, value: 8), "state == CLOSE_WAIT"),
        ("state != time_wait", RuleTerm(field: .state, op: .ne, value: 6), "state != TIME_WAIT"),
        ("state == 13", RuleTerm(field: .state, op: .eq, value: 13), "state == BOUND_INACTIVE"),
        ("state == 0", RuleTerm(field: .state, op: .eq, value: 0), "state == 0"),
        ("ca_state == loss", RuleTerm(field: .caState, op: .eq, value: 4), "ca_state == Loss"),
        ("ca_state >= Recovery", RuleTerm(field: .caState, op: .ge, value: 3), "ca_state >= Recovery"),
        ("ca_state = CWR", RuleTerm(field: .caState, op: .eq, value: 2), "ca_state == CWR"),
        ("snd_wnd == 0x10", RuleTerm(field: .sndWnd, op: .eq, value: 16), "snd_wnd == 16"),
        ("rtt<=200000", RuleTerm(field: .rtt, op: .le, value: 200_000), "rtt <= 200ms"),
        ("RTT < 7", RuleTerm(field: .rtt, op: .lt, value: 7), "rtt < 7us"),
        ("retransmits > 255", RuleTerm(field: .retransmits, op: .gt, value: 254), ""),
        ("pacing_rate >= 18446744073709551615", RuleTerm(field: .pacingRate, op: .ge, value: .max),
         "pacing_rate >= 18446744073709551615"),
        ("snd_wscale == 15", RuleTerm(field: .sndWscale, op: .eq, value: 15), "snd_wscale == 15"),
        ("total_rto >= 0xFFFF", RuleTerm(field: .totalRto, op: .ge, value: 65535), "total_rto >= 65535"),
    ])
    func terms(text: String, term: RuleTerm, canonical: String) throws {
        if canonical.isEmpty {
            // retransmits > 255 is well-formed but can never hold on a u8: reported, not compiled.
            #expect(throws: ExpressionError.self) { try RuleExpression.compile([text]) }
            return
        }
        let compiled = try RuleExpression.compile([text])
        #expect(compiled.terms == [term])
        #expect(compiled.rules.first?.name == canonical)
        #expect(term.description == canonical)
    }

    @Test func canonicalTextRecompiles() throws {
        let texts = ["not (rtt > 5 and rto > 3)", "!(a_b=rtt > 1)", "x=(rtt > 1 || rto >= 3) && !(lost == 0) || state == LISTEN",
                     "not not rtt > 1", "rtt > 1 and (rto > 1 or (lost > 1 and sacked > 2))"]
        for text in texts {
            guard let compiled = try? RuleExpression.compile([text]) else { continue }
            // Named rules keep their name so their 'or's are not split again.
            let again = try RuleExpression.compile(compiled.rules.map(\.text))
            #expect(again.rules == compiled.rules)
            #expect(again.terms == compiled.terms)
            #expect(again.clauses == compiled.clauses)
        }
        let rendered = try RuleExpression.compile(["x=(rtt > 1 || rto >= 3) && !(lost == 0) || state == LISTEN"])
        #expect(rendered.rules.first?.expression == "(rtt > 1us or rto >= 3us) and not lost == 0 or state == LISTEN")
    }

    @Test func namesAreToldApartFromStateTerms() throws {
        #expect(try RuleExpression.compile(["state=ESTABLISHED"]).rules.first?.name == "state == ESTABLISHED")
        #expect(try RuleExpression.compile(["state=rtt > 5"]).rules.first?.name == "state")
        #expect(try RuleExpression.compile(["slow-path = (rtt > 5)"]).rules.first?.name == "slow-path")
        #expect(try RuleExpression.compile(["_x=not rtt > 5"]).rules.first?.expression == "not rtt > 5us")
        #expect(try RuleExpression.compile(["state=ESTABLISHED for 2s"]).rules.first?.name == "state == ESTABLISHED for 2s")
        #expect(try RuleExpression.compile(["rtt=5ms"]).rules.first?.name == "rtt == 5ms")
        #expect(try RuleExpression.compile(["rtt=increase(total_retrans, 1s) > 1"]).rules.first?.name == "rtt")
        #expect(try RuleExpression.compile(["rtt=rttvar - rtt > 1"]).rules.first?.name == "rtt")
        let named = try RuleExpression.compile(["state=delivery_rate_app_limited"])
        #expect(named.rules.first?.name == "state")
        #expect(try RuleExpression.compile(named.rules.map(\.text)) == named)
    }

    /// Truth table of the reference evaluator.
    @Test(arguments: [
        (UInt64(0), UInt64(0), UInt32(0b00)), (10_001, 0, 0b01), (0, 17, 0b10), (10_001, 17, 0b11), (10_000, 16, 0b00),
    ])
    func evaluatorTruthTable(rttvar: UInt64, totalRetrans: UInt64, expected: UInt32) throws {
        let compiled = try RuleExpression.compile(["rttvar > 10000 or total_retrans > 16"])
        #expect(compiled.evaluate(RuleFieldValues([.rttvar: rttvar, .totalRetrans: totalRetrans]).callAsFunction) == expected)
    }

    @Test(arguments: [
        (UInt64(0), UInt64(0), true), (6, 0, true), (0, 4, true), (6, 4, false), (5, 4, true),
    ])
    func negatedConjunction(rtt: UInt64, rto: UInt64, holds: Bool) throws {
        let compiled = try RuleExpression.compile(["not (rtt > 5 and rto > 3)"])
        #expect(compiled.clauses.count == 2)
        #expect(compiled.evaluate(RuleFieldValues([.rtt: rtt, .rto: rto]).callAsFunction) == (holds ? 1 : 0))
    }

    @Test func stateRules() throws {
        let compiled = try RuleExpression.compile(["closing=state == CLOSE_WAIT or state == LAST_ACK", "ca_state == Loss"])
        #expect(compiled.evaluate(RuleFieldValues([.state: 8]).callAsFunction) == 0b01)
        #expect(compiled.evaluate(RuleFieldValues([.state: 9, .caState: 4]).callAsFunction) == 0b11)
        #expect(compiled.evaluate(RuleFieldValues([.state: 1, .caState: 0]).callAsFunction) == 0b00)
    }

    static let malformed: [MalformedRule] = [
        MalformedRule(text: "rtvar > 10", fragment: "unknown field 'rtvar'; did you mean 'rttvar'?", position: 0),
        MalformedRule(text: "tcpi_rtt > 10", fragment: "did you mean 'rtt'?", position: 0),
        MalformedRule(text: "frobnicate > 10", fragment: "unknown field 'frobnicate'", position: 0),
        MalformedRule(text: "rtt >> 5", fragment: "unknown operator '>>'", position: 4),
        MalformedRule(text: "rtt => 5", fragment: "did you mean '>='?", position: 4),
        MalformedRule(text: "rtt <> 5", fragment: "did you mean '!='?", position: 4),
        MalformedRule(text: "rtt ~ 5", fragment: "unexpected character '~'", position: 4),
        MalformedRule(text: "rtt 5", fragment: "expected a comparison (==, !=, <, <=, >, >=) after 'rtt', found '5'", position: 4),
        MalformedRule(text: "rtt gt 5", fragment: "expected a comparison", position: 4),
        MalformedRule(text: "rtt", fragment: "expected a comparison", position: 3),
        MalformedRule(text: "rtt >", fragment: "expected a value after 'rtt >', found end of input", position: 5),
        MalformedRule(text: "rtt > )", fragment: "expected a value after 'rtt >'", position: 6),
        MalformedRule(text: "retransmits > 256", fragment: "value 256 is too large for 'retransmits' (8-bit field, at most 255)", position: 14),
        MalformedRule(text: "snd_wscale == 16", fragment: "(4-bit field, at most 15)", position: 14),
        MalformedRule(text: "delivery_rate_app_limited == 2", fragment: "(1-bit field, at most 1)", position: 29),
        MalformedRule(text: "total_rto > 65536", fragment: "(16-bit field, at most 65535)", position: 12),
        MalformedRule(text: "rtt > 4294967296", fragment: "(32-bit field, at most 4294967295)", position: 6),
        MalformedRule(text: "rtt > 99999999999999999999", fragment: "does not fit in 64 bits", position: 6),
        MalformedRule(text: "bytes_acked > 0x10000000000000000", fragment: "does not fit in 64 bits", position: 14),
        MalformedRule(text: "rtt > 0x", fragment: "invalid number '0x'", position: 6),
        MalformedRule(text: "rtt > 0xfg", fragment: "invalid number '0xfg'", position: 6),
        MalformedRule(text: "rtt > 200mss", fragment: "unknown unit 'mss'; did you mean 'ms'?", position: 6),
        MalformedRule(text: "rtt > -1", fragment: "'-1' is negative", position: 6),
        MalformedRule(text: "rtt > rttvar", fragment: "only be compared with a constant", position: 6),
        MalformedRule(text: "rtt > ESTABLISHED", fragment: "expected a number, found 'ESTABLISHED'", position: 6),
        MalformedRule(text: "state == ESTABLISHD", fragment: "unknown TCP state 'ESTABLISHD'; did you mean 'ESTABLISHED'?", position: 9),
        MalformedRule(text: "ca_state == lost", fragment: "unknown congestion state 'lost'; did you mean 'Loss'?", position: 12),
        MalformedRule(text: "state == 256", fragment: "too large for 'state'", position: 9),
        MalformedRule(text: "5 > rtt", fragment: "expected a field name, found '5'", position: 0),
        MalformedRule(text: "rtt > 5 and", fragment: "'and' needs an operand", position: 11),
        MalformedRule(text: "rtt > 5 ||", fragment: "'||' needs an operand", position: 10),
        MalformedRule(text: "rtt > 5 and and rto > 3", fragment: "'and' needs an operand", position: 12),
        MalformedRule(text: "or rtt > 5", fragment: "unexpected 'or'", position: 0),
        MalformedRule(text: "not", fragment: "'not' needs an operand", position: 3),
        MalformedRule(text: "(rtt > 5", fragment: "unclosed '('", position: 0),
        MalformedRule(text: "((rtt > 5) or (rto > 1)", fragment: "unclosed '('", position: 0),
        MalformedRule(text: "rtt > 5)", fragment: "unbalanced ')'", position: 7),
        MalformedRule(text: "(rtt > 5 rto > 1)", fragment: "unexpected 'rto'; expected 'and', 'or' or ')'", position: 9),
        MalformedRule(text: "rtt > 5 rto > 3", fragment: "unexpected 'rto' after a complete condition", position: 8),
        MalformedRule(text: "rtt > 5 > 6", fragment: "unexpected '>'", position: 8),
        MalformedRule(text: "", fragment: "empty rule", position: 0),
        MalformedRule(text: "   ", fragment: "empty rule", position: 3),
        MalformedRule(text: "x=", fragment: "expected a rule expression after 'x='", position: 2),
        MalformedRule(text: "9x=rtt > 5", fragment: "invalid rule name '9x'", position: 0),
        MalformedRule(text: "a.b=rtt > 5", fragment: "invalid rule name 'a.b'", position: 0),
        MalformedRule(text: "rtt=", fragment: "expected a value after 'rtt ='", position: 4),
        MalformedRule(text: "rtt > 5 and rtt < 3", fragment: "can never be true", position: 0),
        MalformedRule(text: "state == LISTEN and state == CLOSE", fragment: "can never be true", position: 0),
        MalformedRule(text: "rtt > 5 and not rtt > 5", fragment: "can never be true", position: 0),
        MalformedRule(text: "rtt < 0", fragment: "can never be true", position: 0),
        MalformedRule(text: "pacing_rate > 18446744073709551615", fragment: "can never be true", position: 0),
        MalformedRule(text: "rtt > 5 or rtt > 5 and rtt < 5", fragment: "can never be true", position: 0),
    ]

    @Test(arguments: malformed)
    func malformedRulesAreReported(_ testCase: MalformedRule) {
        do {
            let compiled = try RuleExpression.compile([testCase.text])
            Issue.record("compiled to \(compiled.rules)")
        } catch {
            #expect(error.message.contains(testCase.fragment), "\(error)")
            #expect(error.position == testCase.position, "\(error)")
            #expect(error.input == testCase.text)
        }
    }

    @Test func unknownFieldErrorRendersASuggestion() {
        do {
            _ = try RuleExpression.compile(["rttvar > 10000 or totl_retrans > 16"])
            Issue.record("compiled")
        } catch {
            #expect(error.description.hasPrefix("""
                unknown field 'totl_retrans'; did you mean 'total_retrans'?
                  rttvar > 10000 or totl_retrans > 16
                                    ^~~~~~~~~~~~
                """))
        }
    }

    @Test func nestingIsCapped() throws {
        let ok = String(repeating: "(", count: 64) + "rtt > 1" + String(repeating: ")", count: 64)
        #expect(try RuleExpression.compile([ok]).terms.count == 1)
        let deep = String(repeating: "(", count: 65) + "rtt > 1" + String(repeating: ")", count: 65)
        do {
            _ = try RuleExpression.compile([deep])
            Issue.record("65 levels compiled")
        } catch {
            #expect(error.message.contains("nests too deeply"))
        }
        let bangs = String(repeating: "!", count: 5000) + "rtt > 1"
        #expect(try RuleExpression.compile([bangs]).terms.count == 1)
    }

    @Test func duplicateNamesWithDifferentExpressionsAreErrors() {
        do {
            _ = try RuleExpression.compile(["a=rtt > 1", "a=rtt > 2"])
            Issue.record("compiled")
        } catch {
            #expect(error.message.contains("rule name 'a' is already used for 'rtt > 1us'"))
            #expect(error.input == "a=rtt > 2")
        }
    }

    @Test func ruleLimit() throws {
        let thirtyTwo = (0..<32).map { "rtt > \($0)" }
        #expect(try RuleExpression.compile(thirtyTwo).rules.count == 32)
        do {
            _ = try RuleExpression.compile(thirtyTwo + ["rto > 1"])
            Issue.record("33 rules compiled")
        } catch {
            #expect(error.message.contains("more than 32 rules"))
            #expect(error.message.contains("TCPNOTIFY_MAX_RULES"))
            #expect(error.input == "rto > 1")
        }
        // One string splitting into 33 rules.
        do {
            _ = try RuleExpression.compile([(0..<33).map { "rtt > \($0)" }.joined(separator: " or ")])
            Issue.record("33 rules compiled")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_RULES"))
        }
    }

    @Test func termLimit() {
        let many = "big=" + (0..<33).map { "rtt == \($0)" }.joined(separator: " or ")
        do {
            _ = try RuleExpression.compile([many])
            Issue.record("33 terms compiled")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_RULE_TERMS"))
        }
    }

    @Test func clauseLimit() throws {
        // 2^5 = 32 clauses fit in one rule, 2^6 do not.
        let groups = [TCPInfoField.rtt, .rto, .ato, .lost, .sacked, .unacked].map { "(\($0.name) > 1 or \($0.name) < 1000)" }
        let fits = try RuleExpression.compile(["x=" + groups.prefix(5).joined(separator: " and ")])
        #expect(fits.clauses.count == 32)
        do {
            _ = try RuleExpression.compile(["x=" + groups.joined(separator: " and ")])
            Issue.record("64 clauses compiled")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_RULE_CLAUSES"))
        }
        // Across rules: 17 rules of 2 clauses each.
        let rules = (0..<17).map { "r\($0)=(rtt > 1 or rto > 1) and lost > \($0)" }
        do {
            _ = try RuleExpression.compile(rules)
            Issue.record("34 clauses compiled")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_RULE_CLAUSES"))
            #expect(error.input == rules[16])
        }
    }

    /// The compiled table must agree with direct evaluation of each rule's syntax tree.
    @Test func compiledFormAgreesWithTheSyntaxTree() throws {
        let leaves = ["rtt > 100", "rtt <= 50", "rto >= 3", "lost == 0", "lost != 2", "state == ESTABLISHED",
                      "ca_state == Loss", "snd_wnd < 10", "retransmits > 1"]
        let fieldChoices: [TCPInfoField: [UInt64]] = [
            .rtt: [0, 50, 51, 100, 101], .rto: [2, 3], .lost: [0, 1, 2], .state: [1, 8], .caState: [0, 4],
            .sndWnd: [9, 10], .retransmits: [1, 2],
        ]
        var random = ExpressionTestRandom(seed: 99)
        var compiledCount = 0
        for _ in 0..<300 {
            let text = "r=" + randomTestExpression(leaves: leaves, depth: 3, juxtaposition: false, random: &random)
            guard let tree = try? RuleParser.parse(text).expression, let compiled = try? RuleExpression.compile([text]) else {
                continue
            }
            compiledCount += 1
            for _ in 0..<40 {
                let values = RuleFieldValues(fieldChoices.mapValues { $0[random.next($0.count)] })
                let expected = tree.evaluate { $0.op.holds(values($0.operand), $0.value) }
                #expect(compiled.evaluate(values.callAsFunction) == (expected ? 1 : 0), "\(text)")
            }
        }
        #expect(compiledCount > 150)
    }
}
