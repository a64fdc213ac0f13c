import Testing
@testable import TCPNotifyCore

/// One good `--when` string: the single term it compiles to and its canonical text.
struct GoodRule: Sendable, CustomTestStringConvertible {
    var text: String
    var term: RuleTerm
    var canonical: String
    var control = RuleControl()
    var testDescription: String { text }
}

private func compare(_ field: TCPInfoField, _ op: ComparisonOperator, _ value: UInt64) -> RuleTerm {
    RuleTerm(field: field, op: op, value: value)
}

private func binary(_ kind: RuleTerm.Kind, _ a: RuleOperand, _ b: RuleOperand, _ op: ComparisonOperator,
                    _ value: UInt64) -> RuleTerm {
    RuleTerm(kind: kind, operand: a, operand2: b, op: op, value: value)
}

private func windowed(_ kind: RuleTerm.Kind, _ field: TCPInfoField, seconds: Double, _ op: ComparisonOperator,
                      _ value: UInt64) -> RuleTerm {
    RuleTerm(kind: kind, operand: .field(field), windowWidthNanoseconds: UInt64(seconds * 1e9), op: op, value: value)
}

/// Issue 3's language: units, derived metrics, windows, controls and their errors.
@Suite struct RuleLanguageTests {
    /// Every example of issue 3, and the corners of each feature.
    static let good: [GoodRule] = [
        // Units on fields.
        GoodRule(text: "rtt > 50ms", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms"),
        GoodRule(text: "rttvar > 10ms", term: compare(.rttvar, .gt, 10_000), canonical: "rttvar > 10ms"),
        GoodRule(text: "min_rtt < 200us", term: compare(.minRtt, .lt, 200), canonical: "min_rtt < 200us"),
        GoodRule(text: "rtt > 1.5ms", term: compare(.rtt, .gt, 1500), canonical: "rtt > 1500us"),
        GoodRule(text: "rtt > 2s", term: compare(.rtt, .gt, 2_000_000), canonical: "rtt > 2s"),
        GoodRule(text: "rtt > 1m", term: compare(.rtt, .gt, 60_000_000), canonical: "rtt > 1m"),
        GoodRule(text: "rtt > 1h", term: compare(.rtt, .gt, 3_600_000_000), canonical: "rtt > 1h"),
        GoodRule(text: "rtt > 0.4us", term: compare(.rtt, .gt, 0), canonical: "rtt > 0"),
        GoodRule(text: "rtt > 0.5us", term: compare(.rtt, .gt, 1), canonical: "rtt > 1us"),
        GoodRule(text: "rtt > 5", term: compare(.rtt, .gt, 5), canonical: "rtt > 5us"),
        GoodRule(text: "last_data_sent > 1.5s", term: compare(.lastDataSent, .gt, 1500), canonical: "last_data_sent > 1500ms"),
        GoodRule(text: "last_data_recv > 1500us", term: compare(.lastDataRecv, .gt, 2), canonical: "last_data_recv > 2ms"),
        GoodRule(text: "total_rto_time >= 1min", term: compare(.totalRtoTime, .ge, 60_000), canonical: "total_rto_time >= 1m"),
        GoodRule(text: "delivery_rate < 5Mbit", term: compare(.deliveryRate, .lt, 625_000), canonical: "delivery_rate < 5Mbit"),
        GoodRule(text: "delivery_rate < 5mbit", term: compare(.deliveryRate, .lt, 625_000), canonical: "delivery_rate < 5Mbit"),
        GoodRule(text: "delivery_rate < 5Mbit/s", term: compare(.deliveryRate, .lt, 625_000), canonical: "delivery_rate < 5Mbit"),
        GoodRule(text: "pacing_rate > 1Gbit", term: compare(.pacingRate, .gt, 125_000_000), canonical: "pacing_rate > 1Gbit"),
        GoodRule(text: "delivery_rate < 100kbit", term: compare(.deliveryRate, .lt, 12_500), canonical: "delivery_rate < 100kbit"),
        GoodRule(text: "delivery_rate < 12bit", term: compare(.deliveryRate, .lt, 2), canonical: "delivery_rate < 2"),
        GoodRule(text: "delivery_rate < 10MBps", term: compare(.deliveryRate, .lt, 10_000_000), canonical: "delivery_rate < 80Mbit"),
        GoodRule(text: "delivery_rate < 10MB/s", term: compare(.deliveryRate, .lt, 10_000_000), canonical: "delivery_rate < 80Mbit"),
        GoodRule(text: "delivery_rate < 3KBps", term: compare(.deliveryRate, .lt, 3000), canonical: "delivery_rate < 24kbit"),
        GoodRule(text: "delivery_rate < 2KiBps", term: compare(.deliveryRate, .lt, 2048), canonical: "delivery_rate < 2KiBps"),
        GoodRule(text: "delivery_rate < 1MiBps", term: compare(.deliveryRate, .lt, 1 << 20), canonical: "delivery_rate < 1MiBps"),
        GoodRule(text: "delivery_rate < 2GBps", term: compare(.deliveryRate, .lt, 2_000_000_000), canonical: "delivery_rate < 16Gbit"),
        GoodRule(text: "notsent_bytes > 4MiB", term: compare(.notsentBytes, .gt, 4 << 20), canonical: "notsent_bytes > 4MiB"),
        GoodRule(text: "notsent_bytes > 64KiB", term: compare(.notsentBytes, .gt, 65_536), canonical: "notsent_bytes > 64KiB"),
        GoodRule(text: "bytes_acked > 1.5KB", term: compare(.bytesAcked, .gt, 1500), canonical: "bytes_acked > 1500"),
        GoodRule(text: "bytes_acked > 2GB", term: compare(.bytesAcked, .gt, 2_000_000_000), canonical: "bytes_acked > 2GB"),
        GoodRule(text: "bytes_acked > 3GiB", term: compare(.bytesAcked, .gt, 3 << 30), canonical: "bytes_acked > 3GiB"),
        GoodRule(text: "bytes_sent > 1MB", term: compare(.bytesSent, .gt, 1_000_000), canonical: "bytes_sent > 1MB"),
        GoodRule(text: "snd_wnd < 100B", term: compare(.sndWnd, .lt, 100), canonical: "snd_wnd < 100"),
        GoodRule(text: "state == CLOSE_WAIT", term: compare(.state, .eq, 8), canonical: "state == CLOSE_WAIT"),
        GoodRule(text: "ca_state == Loss", term: compare(.caState, .eq, 4), canonical: "ca_state == Loss"),
        GoodRule(text: "delivery_rate_app_limited", term: compare(.deliveryRateAppLimited, .eq, 1),
                 canonical: "delivery_rate_app_limited"),
        GoodRule(text: "delivery_rate_app_limited == 0", term: compare(.deliveryRateAppLimited, .eq, 0),
                 canonical: "delivery_rate_app_limited == 0"),
        GoodRule(text: "total_retrans > 0x10", term: compare(.totalRetrans, .gt, 16), canonical: "total_retrans > 16"),
        GoodRule(text: "age > 5s", term: RuleTerm(kind: .compare, operand: .age, op: .gt, value: 5_000_000), canonical: "age > 5s"),
        GoodRule(text: "AGE > 1.5h", term: RuleTerm(kind: .compare, operand: .age, op: .gt, value: 5_400_000_000),
                 canonical: "age > 90m"),
        // Derived metrics and arithmetic.
        GoodRule(text: "rtt / min_rtt > 4", term: binary(.ratio, .field(.rtt), .field(.minRtt), .gt, 4_000_000),
                 canonical: "rtt_inflation > 4"),
        GoodRule(text: "rtt/min_rtt > 1.5", term: binary(.ratio, .field(.rtt), .field(.minRtt), .gt, 1_500_000),
                 canonical: "rtt_inflation > 1.5"),
        GoodRule(text: "rtt_inflation > 150%", term: binary(.ratio, .field(.rtt), .field(.minRtt), .gt, 1_500_000),
                 canonical: "rtt_inflation > 1.5"),
        GoodRule(text: "retrans_rate > 1%", term: binary(.ratio, .field(.bytesRetrans), .field(.bytesSent), .gt, 10_000),
                 canonical: "retrans_rate > 1%"),
        GoodRule(text: "retrans_rate > 0.01", term: binary(.ratio, .field(.bytesRetrans), .field(.bytesSent), .gt, 10_000),
                 canonical: "retrans_rate > 1%"),
        GoodRule(text: "retrans_rate > 0.25%", term: binary(.ratio, .field(.bytesRetrans), .field(.bytesSent), .gt, 2500),
                 canonical: "retrans_rate > 0.25%"),
        GoodRule(text: "bytes_retrans / bytes_sent > 2%",
                 term: binary(.ratio, .field(.bytesRetrans), .field(.bytesSent), .gt, 20_000), canonical: "retrans_rate > 2%"),
        GoodRule(text: "rwnd_limited_pct > 50%", term: binary(.ratio, .field(.rwndLimited), .field(.busyTime), .gt, 500_000),
                 canonical: "rwnd_limited_pct > 50%"),
        GoodRule(text: "sndbuf_limited_pct > 50%",
                 term: binary(.ratio, .field(.sndbufLimited), .field(.busyTime), .gt, 500_000), canonical: "sndbuf_limited_pct > 50%"),
        GoodRule(text: "busy_pct < 20%", term: binary(.ratio, .field(.busyTime), .age, .lt, 200_000), canonical: "busy_pct < 20%"),
        GoodRule(text: "busy_time / age < 0.2", term: binary(.ratio, .field(.busyTime), .age, .lt, 200_000),
                 canonical: "busy_pct < 20%"),
        GoodRule(text: "queue_delay > 20ms", term: binary(.difference, .field(.rtt), .field(.minRtt), .gt, 20_000),
                 canonical: "queue_delay > 20ms"),
        GoodRule(text: "rtt - min_rtt > 20ms", term: binary(.difference, .field(.rtt), .field(.minRtt), .gt, 20_000),
                 canonical: "queue_delay > 20ms"),
        GoodRule(text: "rtt-min_rtt > 20ms", term: binary(.difference, .field(.rtt), .field(.minRtt), .gt, 20_000),
                 canonical: "queue_delay > 20ms"),
        GoodRule(text: "rtt -min_rtt > 20ms", term: binary(.difference, .field(.rtt), .field(.minRtt), .gt, 20_000),
                 canonical: "queue_delay > 20ms"),
        GoodRule(text: "rttvar - rtt > 0", term: binary(.difference, .field(.rttvar), .field(.rtt), .gt, 0),
                 canonical: "rttvar - rtt > 0"),
        GoodRule(text: "snd_cwnd + unacked > 20", term: binary(.sum, .field(.sndCwnd), .field(.unacked), .gt, 20),
                 canonical: "snd_cwnd + unacked > 20"),
        GoodRule(text: "total_retrans + retransmits > 3", term: binary(.sum, .field(.totalRetrans), .field(.retransmits), .gt, 3),
                 canonical: "total_retrans + retransmits > 3"),
        GoodRule(text: "bytes_acked / segs_out > 1000", term: binary(.ratio, .field(.bytesAcked), .field(.segsOut), .gt, 1_000_000_000),
                 canonical: "bytes_acked / segs_out > 1000"),
        GoodRule(text: "busy_time + rwnd_limited > 1s", term: binary(.sum, .field(.busyTime), .field(.rwndLimited), .gt, 1_000_000),
                 canonical: "busy_time + rwnd_limited > 1s"),
        // Windows.
        GoodRule(text: "increase(total_retrans, 1s) > 16", term: windowed(.increase, .totalRetrans, seconds: 1, .gt, 16),
                 canonical: "increase(total_retrans, 1s) > 16"),
        GoodRule(text: "increase(total_rto, 10s) >= 1", term: windowed(.increase, .totalRto, seconds: 10, .ge, 1),
                 canonical: "increase(total_rto, 10s) >= 1"),
        GoodRule(text: "rate(bytes_acked, 1s) < 1Mbit", term: windowed(.rate, .bytesAcked, seconds: 1, .lt, 125_000),
                 canonical: "rate(bytes_acked, 1s) < 1Mbit"),
        GoodRule(text: "rate(bytes_acked,500ms)<1MB/s", term: windowed(.rate, .bytesAcked, seconds: 0.5, .lt, 1_000_000),
                 canonical: "rate(bytes_acked, 500ms) < 8Mbit"),
        GoodRule(text: "increase(busy_time, 1s) > 500ms", term: windowed(.increase, .busyTime, seconds: 1, .gt, 500_000),
                 canonical: "increase(busy_time, 1s) > 500ms"),
        GoodRule(text: "rate(busy_time, 2s) > 250ms", term: windowed(.rate, .busyTime, seconds: 2, .gt, 250_000),
                 canonical: "rate(busy_time, 2s) > 250ms"),
        GoodRule(text: "increase(bytes_retrans, 1m) > 1MB", term: windowed(.increase, .bytesRetrans, seconds: 60, .gt, 1_000_000),
                 canonical: "increase(bytes_retrans, 1m) > 1MB"),
        GoodRule(text: "rate(segs_out, 1.5s) > 1000", term: windowed(.rate, .segsOut, seconds: 1.5, .gt, 1000),
                 canonical: "rate(segs_out, 1500ms) > 1000"),
        GoodRule(text: "INCREASE(Total_Retrans, 1s) > 1", term: windowed(.increase, .totalRetrans, seconds: 1, .gt, 1),
                 canonical: "increase(total_retrans, 1s) > 1"),
        // Controls.
        GoodRule(text: "rtt > 50ms for 500ms", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms for 500ms",
                 control: RuleControl(forMilliseconds: 500)),
        GoodRule(text: "rtt > 50ms every 1s", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms every 1s",
                 control: RuleControl(everyMilliseconds: 1000)),
        GoodRule(text: "rtt > 50ms once", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms once",
                 control: RuleControl(once: true)),
        GoodRule(text: "rtt > 50ms every 10s for 2s", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms for 2s every 10s",
                 control: RuleControl(forMilliseconds: 2000, everyMilliseconds: 10_000)),
        GoodRule(text: "rtt > 50ms once FOR 1.5s", term: compare(.rtt, .gt, 50_000), canonical: "rtt > 50ms for 1500ms once",
                 control: RuleControl(forMilliseconds: 1500, once: true)),
        GoodRule(text: "delivery_rate_app_limited for 2s", term: compare(.deliveryRateAppLimited, .eq, 1),
                 canonical: "delivery_rate_app_limited for 2s", control: RuleControl(forMilliseconds: 2000)),
        GoodRule(text: "state=ESTABLISHED once", term: compare(.state, .eq, 1), canonical: "state == ESTABLISHED once",
                 control: RuleControl(once: true)),
        GoodRule(text: "rtt > 0 each", term: compare(.rtt, .gt, 0), canonical: "rtt > 0 each",
                 control: RuleControl(each: true)),
        GoodRule(text: "rtt > 0 EVERY Event", term: compare(.rtt, .gt, 0), canonical: "rtt > 0 each",
                 control: RuleControl(each: true)),
    ]

    @Test(arguments: good)
    func goodRulesCompile(_ rule: GoodRule) throws {
        let compiled = try RuleExpression.compile([rule.text])
        #expect(compiled.terms == [rule.term])
        #expect(compiled.rules == [RuleInfo(name: rule.canonical, expression: compiled.rules.first?.expression ?? "",
                                            control: rule.control)])
        #expect(compiled.rules.first?.expressionWithControl == rule.canonical)
        #expect(compiled.windows == (rule.term.window.map { [$0] } ?? []))
        #expect(compiled.timedRules == (rule.control.isTimed ? [0] : []))
        // The canonical text is stable: it compiles to the same table.
        let again = try RuleExpression.compile(compiled.rules.map(\.text))
        #expect(again == compiled)
    }

    @Test func bareBooleanAndItsNegationShareOneTerm() throws {
        let compiled = try RuleExpression.compile(["not delivery_rate_app_limited", "x=delivery_rate_app_limited and rtt > 1ms"])
        #expect(compiled.terms == [compare(.deliveryRateAppLimited, .eq, 1), compare(.rtt, .gt, 1000)])
        #expect(compiled.rules.map(\.expression) == ["not delivery_rate_app_limited", "delivery_rate_app_limited and rtt > 1ms"])
        #expect(compiled.clauses == [Clause(mustBeFalse: 0b01, rule: 0), Clause(mustBeTrue: 0b11, rule: 1)])
        #expect(compiled.evaluate(RuleFieldValues([.deliveryRateAppLimited: 0]).callAsFunction) == 0b01)
        #expect(compiled.evaluate(RuleFieldValues([.deliveryRateAppLimited: 1, .rtt: 1001]).callAsFunction) == 0b10)
    }

    @Test func controlsApplyToEachSplitAlternative() throws {
        let compiled = try RuleExpression.compile(["rtt > 50ms or lost > 0 for 2s", "rtt > 50ms"])
        #expect(compiled.rules.map(\.name) == ["rtt > 50ms for 2s", "lost > 0 for 2s", "rtt > 50ms"])
        #expect(compiled.rules.map(\.control) == [RuleControl(forMilliseconds: 2000), RuleControl(forMilliseconds: 2000), RuleControl()])
        #expect(compiled.timedRules == [0, 1])
        #expect(compiled.terms.count == 2)
    }

    @Test func namedRulesKeepTheirControls() throws {
        let compiled = try RuleExpression.compile(["bloat=queue_delay > 20ms and rtt_inflation > 4 for 2s every 10s"])
        #expect(compiled.rules == [RuleInfo(name: "bloat", expression: "queue_delay > 20ms and rtt_inflation > 4",
                                            control: RuleControl(forMilliseconds: 2000, everyMilliseconds: 10_000))])
        #expect(compiled.rules.first?.text == "bloat=queue_delay > 20ms and rtt_inflation > 4 for 2s every 10s")
    }

    @Test func windowsAreSharedAndIndexedInOrderOfUse() throws {
        let compiled = try RuleExpression.compile([
            "increase(total_retrans, 1s) > 16", "rate(total_retrans, 1s) > 20", "rate(bytes_acked, 1s) < 1Mbit",
            "increase(total_retrans, 10s) > 100",
        ])
        #expect(compiled.windows == [
            RuleWindow(operand: .field(.totalRetrans), widthNanoseconds: 1_000_000_000),
            RuleWindow(operand: .field(.bytesAcked), widthNanoseconds: 1_000_000_000),
            RuleWindow(operand: .field(.totalRetrans), widthNanoseconds: 10_000_000_000),
        ])
        #expect(compiled.terms.compactMap { $0.window.flatMap(compiled.windows.firstIndex(of:)) } == [0, 0, 1, 2])
        #expect(compiled.operands == [.field(.totalRetrans), .field(.bytesAcked)])
    }

    @Test func contradictionsAcrossDerivedTerms() {
        for text in ["queue_delay > 20ms and queue_delay < 10ms", "increase(total_rto, 1s) > 65535",
                     "retrans_rate > 18446744073709.551615", "rate(bytes_acked, 1s) > 1Mbit and not rate(bytes_acked, 1s) > 8bit"] {
            #expect(throws: ExpressionError.self, "\(text)") { try RuleExpression.compile([text]) }
        }
        // Different windows or operands are different values: no contradiction.
        #expect((try? RuleExpression.compile(["x=increase(total_rto, 1s) > 5 and increase(total_rto, 2s) < 3"])) != nil)
        #expect((try? RuleExpression.compile(["x=rtt / min_rtt > 5 and rtt - min_rtt < 3"])) != nil)
    }

    static let bad: [MalformedRule] = [
        // Units that do not fit.
        MalformedRule(text: "rtt > 5Mbit", fragment: "unit 'Mbit' does not fit field 'rtt' (a time in microseconds)", position: 6),
        MalformedRule(text: "total_retrans > 5ms", fragment: "unit 'ms' does not fit field 'total_retrans' (segments)", position: 16),
        MalformedRule(text: "last_data_sent > 1MB", fragment: "does not fit field 'last_data_sent' (a time in milliseconds)", position: 17),
        MalformedRule(text: "notsent_bytes > 4Mbit", fragment: "does not fit field 'notsent_bytes' (a size in bytes)", position: 16),
        MalformedRule(text: "delivery_rate < 5MB", fragment: "(a rate in bytes per second)", position: 16),
        MalformedRule(text: "state == 5s", fragment: "does not fit field 'state' (a TCP state)", position: 9),
        MalformedRule(text: "rtt / min_rtt > 4ms", fragment: "unit 'ms' does not fit 'rtt_inflation' (a ratio)", position: 16),
        MalformedRule(text: "rate(bytes_acked, 1s) < 1MB", fragment: "does not fit 'rate(bytes_acked, 1s)' (a rate in bytes per second)", position: 24),
        MalformedRule(text: "increase(total_retrans, 1s) > 5%", fragment: "(segments)", position: 30),
        MalformedRule(text: "delivery_rate < 5Mbps", fragment: "ambiguous unit 'Mbps'", position: 16),
        MalformedRule(text: "rtt > 5mss", fragment: "unknown unit 'mss'; did you mean 'ms'?", position: 6),
        MalformedRule(text: "rtt > 5S", fragment: "unknown unit 'S'; did you mean 's'?", position: 6),
        MalformedRule(text: "notsent_bytes > 4mib", fragment: "unknown unit 'mib'; did you mean 'MiB'?", position: 16),
        MalformedRule(text: "rtt > 5 ms", fragment: "write the unit right after the number", position: 8),
        MalformedRule(text: "rtt > 1.5", fragment: "'1.5' is not a whole number: 'rtt' is a time in microseconds; give a unit", position: 6),
        MalformedRule(text: "total_retrans > 1.5", fragment: "'1.5' is not a whole number", position: 16),
        MalformedRule(text: "busy_pct < 20", fragment: "'busy_pct' is a percentage: write the value with '%'", position: 11),
        MalformedRule(text: "retrans_rate > 1%%", fragment: "unknown unit '%%'", position: 15),
        MalformedRule(text: "rtt > 1.ms", fragment: "invalid number '1.ms'", position: 6),
        MalformedRule(text: "rtt > 1.0000000000000000001ms", fragment: "too many digits after the point", position: 6),
        MalformedRule(text: "rtt > 4295s", fragment: "value 4295000000 is too large for 'rtt' (32-bit field, at most 4294967295)", position: 6),
        MalformedRule(text: "age > 99999999999999h", fragment: "does not fit in 64 bits", position: 6),
        MalformedRule(text: "retrans_rate > 18446744073709.551616", fragment: "does not fit in 64 bits", position: 15),
        MalformedRule(text: "queue_delay > 4295s", fragment: "too large for 'queue_delay' (at most 4294967295)", position: 14),
        // Arithmetic.
        MalformedRule(text: "rtt / min_rtt / 2 > 1", fragment: "only one operator per term: 'rtt_inflation'", position: 14),
        MalformedRule(text: "rtt - min_rtt - rttvar > 1", fragment: "only one operator per term", position: 14),
        MalformedRule(text: "queue_delay / rtt > 1", fragment: "only one operator per term: 'queue_delay'", position: 12),
        MalformedRule(text: "rtt / 2 > 1ms", fragment: "not with the number '2'", position: 6),
        MalformedRule(text: "rtt * 2 > 1ms", fragment: "'*' is not supported", position: 4),
        MalformedRule(text: "rtt / > 1", fragment: "expected a field after 'rtt /', found '>'", position: 6),
        MalformedRule(text: "rtt / queue_delay > 1", fragment: "'queue_delay' is already computed", position: 6),
        MalformedRule(text: "rtt + snd_cwnd > 5", fragment: "cannot add 'snd_cwnd' (segments) to 'rtt' (microseconds)", position: 6),
        MalformedRule(text: "rtt - last_data_sent > 5", fragment: "cannot subtract 'last_data_sent' (milliseconds) from 'rtt'", position: 6),
        MalformedRule(text: "rtt / last_data_sent > 1", fragment: "their ratio would be off by 1000", position: 6),
        MalformedRule(text: "state + rtt > 1", fragment: "'state' is a TCP state, not an amount", position: 0),
        MalformedRule(text: "rtt / rtvar > 1", fragment: "unknown field 'rtvar'; did you mean 'rttvar'?", position: 6),
        MalformedRule(text: "(rtt - min_rtt) / min_rtt > 1", fragment: "expected a comparison", position: 14),
        MalformedRule(text: "rtt > rttvar", fragment: "only be compared with a constant", position: 6),
        // Windows.
        MalformedRule(text: "increase(total_retrans 1s) > 1", fragment: "expected ',' and a duration after 'increase(total_retrans'", position: 23),
        MalformedRule(text: "increase(total_retrans, 1) > 1", fragment: "a duration needs a unit", position: 24),
        MalformedRule(text: "increase(total_retrans, 1Mbit) > 1", fragment: "unit 'Mbit' is a rate, not a duration", position: 24),
        MalformedRule(text: "increase(total_retrans, 0.1ms) > 1", fragment: "shorter than 1ms", position: 24),
        MalformedRule(text: "increase(total_retrans, 50d) > 1", fragment: "unknown unit 'd'", position: 24),
        MalformedRule(text: "increase(total_retrans, 50days) > 1", fragment: "unknown unit 'days'", position: 24),
        MalformedRule(text: "increase(total_retrans, 5000000000ms) > 1", fragment: "is too long", position: 24),
        MalformedRule(text: "increase(total_retrans, 1s > 1", fragment: "expected ')' to close 'increase('", position: 27),
        MalformedRule(text: "increase(, 1s) > 1", fragment: "expected a field inside 'increase(', found ','", position: 9),
        MalformedRule(text: "increase(retrans_rate, 1s) > 1", fragment: "not the derived metric 'retrans_rate'", position: 9),
        MalformedRule(text: "increase(state, 1s) > 1", fragment: "'state' is a TCP state, not an amount", position: 9),
        MalformedRule(text: "increase(age, 1s) > 1", fragment: "always the window's width", position: 9),
        MalformedRule(text: "increase(totl_retrans, 1s) > 1", fragment: "did you mean 'total_retrans'?", position: 9),
        MalformedRule(text: "increse(total_retrans, 1s) > 1", fragment: "unknown function 'increse'; did you mean 'increase'?", position: 0),
        MalformedRule(text: "increase > 5", fragment: "'increase' needs its arguments", position: 9),
        MalformedRule(text: "rtt(5) > 1", fragment: "'rtt' is not a function", position: 0),
        MalformedRule(text: "increase(total_retrans, 1s) + rtt > 1", fragment: "only one operator per term", position: 28),
        // Controls.
        MalformedRule(text: "rtt > 5ms for", fragment: "expected a duration after 'for', found end of input", position: 13),
        MalformedRule(text: "rtt > 5ms for 2", fragment: "a duration needs a unit", position: 14),
        MalformedRule(text: "rtt > 5ms for 2s for 3s", fragment: "'for' is given twice", position: 17),
        MalformedRule(text: "rtt > 5ms once every 1s", fragment: "'once' and 'every' contradict each other", position: 15),
        MalformedRule(text: "rtt > 5ms every 1s once", fragment: "'once' and 'every' contradict each other", position: 19),
        MalformedRule(text: "rtt > 5ms each every 1s", fragment: "it cannot be combined with 'every'", position: 15),
        MalformedRule(text: "rtt > 5ms once each", fragment: "it cannot be combined with 'once'", position: 15),
        MalformedRule(text: "rtt > 5ms every event for 1s", fragment: "it cannot be combined with 'for'", position: 22),
        MalformedRule(text: "rtt > 5ms each every event", fragment: "'every event' is given twice", position: 15),
        MalformedRule(text: "each", fragment: "expected a condition before 'each'", position: 0),
        MalformedRule(text: "rtt > 5ms for 2s and rto > 3", fragment: "unexpected 'and' after the rule's controls", position: 17),
        MalformedRule(text: "rtt > 5ms for 2s lost > 0", fragment: "unexpected 'lost' after the rule's controls", position: 17),
        MalformedRule(text: "(rtt > 5ms for 2s)", fragment: "unexpected 'for' inside parentheses", position: 11),
        MalformedRule(text: "for 2s", fragment: "expected a condition before 'for'", position: 0),
        MalformedRule(text: "x=once", fragment: "expected a condition before 'once'", position: 2),
        MalformedRule(text: "rtt > 5ms every 0ms", fragment: "shorter than 1ms", position: 16),
        MalformedRule(text: "rtt > 5ms for 50d", fragment: "unknown unit 'd'", position: 14),
        MalformedRule(text: "rtt > 5ms for -1s", fragment: "invalid duration '-1s'", position: 14),
        // Names and presets.
        MalformedRule(text: "bufferbloat and rtt > 5", fragment: "'bufferbloat' is a preset", position: 0),
        MalformedRule(text: "bufferblot", fragment: "did you mean 'bufferbloat' (a preset)?", position: 0),
        MalformedRule(text: "preset:bufferblot", fragment: "unknown preset 'bufferblot'; did you mean 'bufferbloat'?", position: 7),
        MalformedRule(text: "retrans_rat > 1%", fragment: "unknown field 'retrans_rat'; did you mean 'retrans_rate' (a derived metric)?", position: 0),
        MalformedRule(text: "queue_dlay > 1ms", fragment: "did you mean 'queue_delay' (a derived metric)?", position: 0),
        MalformedRule(text: "rtt > 1,5ms", fragment: "unexpected ','", position: 7),
        MalformedRule(text: "rtt > 5ms and delivery_rate_app_limited rto > 1", fragment: "unexpected 'rto' after a complete condition", position: 40),
    ]

    @Test(arguments: bad)
    func badRulesAreReported(_ testCase: MalformedRule) {
        do {
            let compiled = try RuleExpression.compile([testCase.text])
            Issue.record("compiled to \(compiled.rules)")
        } catch {
            #expect(error.message.contains(testCase.fragment), "\(error)")
            #expect(error.position == testCase.position, "\(error)")
        }
    }

    @Test func unitErrorRendersWithACaret() {
        do {
            _ = try RuleExpression.compile(["rtt > 5Mbit"])
            Issue.record("compiled")
        } catch {
            #expect(error.description == """
                unit 'Mbit' does not fit field 'rtt' (a time in microseconds)
                  rtt > 5Mbit
                        ^~~~~
                  hint: 'rtt' takes a time in microseconds, e.g. 50ms, 200us or 1.5s
                """)
        }
    }

    @Test func windowLimit() throws {
        let four = ["increase(total_retrans, 1s) > 1", "increase(total_retrans, 2s) > 1", "rate(bytes_acked, 1s) > 1",
                    "increase(bytes_acked, 2s) > 1"]
        #expect(try RuleExpression.compile(four + ["rate(total_retrans, 2s) > 1"]).windows.count == 4)
        do {
            _ = try RuleExpression.compile(four + ["increase(total_rto, 1s) > 1"])
            Issue.record("5 windows compiled")
        } catch {
            #expect(error.message.contains("more than 4 distinct windows"))
            #expect(error.message.contains("TCPNOTIFY_MAX_WINDOWS"))
            #expect(error.input == "increase(total_rto, 1s) > 1")
        }
    }

    @Test func timedRuleLimit() throws {
        let eight = (0..<8).map { "r\($0)=rtt > \($0 + 1)ms for 1s" }
        #expect(try RuleExpression.compile(eight + ["rtt > 1ms once"]).timedRules == Array(0..<8))
        do {
            _ = try RuleExpression.compile(eight + ["rto > 1s every 10s"])
            Issue.record("9 timed rules compiled")
        } catch {
            #expect(error.message.contains("more than 8 rules with 'for' or 'every'"))
            #expect(error.message.contains("TCPNOTIFY_MAX_TIMED_RULES"))
        }
    }

    @Test func operandLimit() throws {
        let fields: [TCPInfoField] = [.rtt, .rttvar, .rto, .ato, .sndMss, .rcvMss, .unacked, .sacked, .lost, .retrans,
                                      .pmtu, .rcvSsthresh, .sndSsthresh, .sndCwnd, .advmss, .reordering, .rcvRtt]
        let sixteen = fields.prefix(16).map { "\($0.name) > 1" }
        #expect(try RuleExpression.compile(sixteen).operands.count == 16)
        do {
            _ = try RuleExpression.compile(sixteen + ["rcv_rtt > 1"])
            Issue.record("17 operands compiled")
        } catch {
            #expect(error.message.contains("more than 16 different fields"))
            #expect(error.message.contains("TCPNOTIFY_MAX_OPERANDS"))
        }
    }

    @Test func literalsScaleExactly() throws {
        let cases: [(String, Rational, UInt64?)] = [
            ("1", Rational(1, 1), 1), ("1.5", Rational(1000, 1), 1500), ("0.0005", Rational(1000, 1), 1),
            ("0.0004999", Rational(1000, 1), 0), ("12", Rational(1, 8), 2), ("4", Rational(1, 8), 1),
            ("3", Rational(1, 8), 0), ("18446744073709551615", Rational(1, 1), .max), ("18446744073709551615", Rational(2, 1), nil),
            ("18446744073709551615.5", Rational(1, 1), nil), ("18446744073709551614.5", Rational(1, 1), .max),
            ("0.000000000000000001", Rational(3_600_000_000, 1), 0), ("5124095576.5", Rational(3_600_000_000, 1), nil),
            ("5124095576.030431", Rational(3_600_000_000, 1), 18_446_744_073_709_551_600),
            ("5124095576.0304311", Rational(3_600_000_000, 1), nil), ("1.25", Rational(1, 1000), 0),
            ("1500.5", Rational(1, 1000), 2), ("1499.9", Rational(1, 1000), 1),
        ]
        for (text, scale, expected) in cases {
            let literal = try NumericLiteral.parse(text)
            #expect(literal.scaled(by: scale) == expected, "\(text) x \(scale)")
        }
        #expect(try NumericLiteral.parse("1.50000000000000000000000ms").fractionDigits == 1)
        #expect(try NumericLiteral.parse("0x1F").integer == 31)
        #expect(throws: NumericLiteral.Failure.notANumber) { try NumericLiteral.parse("0x") }
        #expect(throws: NumericLiteral.Failure.tooLarge) { try NumericLiteral.parse("18446744073709551616") }
    }

    @Test func renderedValuesParseBack() throws {
        let kinds: [RuleValueKind] = [.microseconds, .milliseconds, .bytes, .bytesPerSecond, .ratio, .percentage]
        var random = ExpressionTestRandom(seed: 5)
        for kind in kinds {
            for _ in 0..<2000 {
                let magnitude = UInt64(1) << UInt64(random.next(40))
                let value = random.next(4) == 0 ? magnitude * UInt64(random.next(1000)) : random.nextUInt64() % magnitude
                let text = ValueText.render(value, as: kind)
                let literal = try NumericLiteral.parse(text)
                let scale: Rational
                if literal.unit.isEmpty {
                    scale = kind.bareScale
                } else {
                    let unit = try #require(ValueUnit.named(String(literal.unit)), "\(text)")
                    scale = unit.scale.dividing(by: kind.baseScale)
                }
                #expect(literal.scaled(by: scale) == value, "\(value) rendered as \(text) for \(kind)")
            }
        }
    }
}
