import Testing
@testable import TCPNotifyCore

/// The sweep's period derived from the rules: clamp(min time scale × precision, 100 ms, 60 s).
@Suite struct SweepScheduleTests {
    private func schedule(_ rules: [String], precision: Double = SweepSchedule.defaultPrecision) throws -> SweepSchedule {
        SweepSchedule.derived(from: try RuleExpression.compile(rules), precision: precision)
    }

    @Test func eventRulesNeedNoSweep() throws {
        let derived = try schedule(["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16"])
        #expect(derived.intervalMilliseconds == nil)
        #expect(try !RuleExpression.compile(["rtt > 200ms"]).needsSweep)
    }

    @Test func anHourOfSilenceIsSweptAtTheCeiling() throws {
        // 1 h × 5 % = 180 s, above the 60 s ceiling.
        #expect(try schedule(["stall=last_ack_recv > 1h"]).intervalMilliseconds == 60_000)
    }

    @Test func fiveSecondsIsSweptEvery250Milliseconds() throws {
        let derived = try schedule(["last_ack_recv > 5s"])
        #expect(derived.intervalMilliseconds == 250)
        #expect(derived.description == "every 250ms (last_ack_recv > 5s × 5 %)")
    }

    @Test func theTightestRuleWins() throws {
        #expect(try schedule(["last_ack_recv > 1h", "last_data_recv > 20s", "rtt > 1s"]).intervalMilliseconds == 1000)
    }

    @Test func precisionScalesTheInterval() throws {
        #expect(try schedule(["last_ack_recv > 10s"], precision: 0.01).intervalMilliseconds == 100)
        #expect(try schedule(["last_ack_recv > 10s"], precision: 0.2).intervalMilliseconds == 2000)
    }

    @Test func shortThresholdsStopAtTheFloor() throws {
        #expect(try schedule(["last_ack_recv > 1s"]).intervalMilliseconds == 100)
        #expect(try schedule(["last_ack_recv > 0"]).intervalMilliseconds == 100)
    }

    @Test func stateFieldsAloneAreSweptEveryTenSeconds() throws {
        let derived = try schedule(["rtt > 200ms", "retransmits >= 3"])
        #expect(derived.intervalMilliseconds == SweepSchedule.stateIntervalMilliseconds)
        #expect(derived.reason.contains("retransmits"))
        // The benchmark's rule set: the state field is tighter than the hour of silence.
        let bench = try schedule(["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16", "retransmits >= 3",
                                  "stall=last_ack_recv > 1h"])
        #expect(bench.intervalMilliseconds == 10_000)
    }

    @Test func ageForEveryAndWindowsAreTimeScales() throws {
        #expect(try schedule(["age > 40s"]).intervalMilliseconds == 2000)
        #expect(try schedule(["rtt > 200ms for 10s"]).intervalMilliseconds == 500)
        #expect(try schedule(["rtt > 200ms every 4s"]).intervalMilliseconds == 200)
        #expect(try schedule(["increase(total_retrans, 30s) > 16"]).intervalMilliseconds == 1500)
    }

    @Test func theDefaultRulesAreSweptForTheirFiveSecondSilence() throws {
        #expect(try schedule(RuleExpression.defaultRules).intervalMilliseconds == 250)
    }

    @Test func forcedIntervals() {
        #expect(SweepSchedule.forced(milliseconds: 0, by: "--sweep-interval").intervalMilliseconds == nil)
        #expect(SweepSchedule.forced(milliseconds: 500, by: "--sweep-interval").intervalMilliseconds == 500)
    }
}

extension SweepScheduleTests {
    /// `needsSweep` (asked before every sweep) agrees with the derived schedule.
    @Test(arguments: [["rtt > 200ms"], ["last_ack_recv > 1h"], ["retransmits >= 3"], ["age > 1s"], ["rtt > 1ms for 1s"],
                      ["increase(total_retrans, 1s) > 1"], ["snd_wnd == 0"], RuleExpression.defaultRules])
    func needsSweepAgreesWithTheSchedule(rules: [String]) throws {
        let compiled = try RuleExpression.compile(rules)
        #expect(compiled.needsSweep == (SweepSchedule.derived(from: compiled, precision: 0.05).intervalMilliseconds != nil))
    }
}
