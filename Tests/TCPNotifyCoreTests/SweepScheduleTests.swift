import Testing
@testable import TCPNotifyCore

/// The sweep's period derived from the rules: clamp(min time scale × precision, 100 ms, 5 min).
@Suite struct SweepScheduleTests {
    private func schedule(_ rules: [String], precision: Double = SweepSchedule.defaultPrecision,
                          coverage: EventCoverage = .sockOpsCallbacks) throws -> SweepSchedule {
        SweepSchedule.derived(from: try RuleExpression.compile(rules), precision: precision, coverage: coverage)
    }

    @Test func eventRulesNeedNoSweep() throws {
        let derived = try schedule(["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16"])
        #expect(derived.intervalMilliseconds == nil)
        #expect(try !RuleExpression.compile(["rtt > 200ms"]).needsSweep)
    }

    @Test func anHourOfSilenceIsSweptEveryThreeMinutes() throws {
        // 1 h × 5 % = 180 s, under the 5 min ceiling.
        let derived = try schedule(["stall=last_ack_recv > 1h"])
        #expect(derived.intervalMilliseconds == 180_000)
        #expect(derived.description == "every 3m (last_ack_recv > 1h × 5 %)")
    }

    @Test func daysOfSilenceAreSweptAtTheCeiling() throws {
        #expect(try schedule(["last_ack_recv > 24h"]).intervalMilliseconds == SweepSchedule.ceilingMilliseconds)
        #expect(SweepSchedule.ceilingMilliseconds == 300_000)
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
        let derived = try schedule(["rtt > 200ms", "snd_wnd == 0"])
        #expect(derived.intervalMilliseconds == SweepSchedule.stateIntervalMilliseconds)
        #expect(derived.reason.contains("snd_wnd"))
        for rule in ["probes > 0", "backoff >= 2", "notsent_bytes > 1000", "unacked > 0"] {
            #expect(try schedule([rule]).intervalMilliseconds == SweepSchedule.stateIntervalMilliseconds, "\(rule)")
        }
    }

    @Test func retransmitsIsCheckedAtTheRTONotBySweep() throws {
        let derived = try schedule(["rtt > 200ms", "retransmits >= 3"])
        #expect(derived.intervalMilliseconds == nil)
        #expect(derived.description == "none (retransmits checked at TCP's RTO and retransmit callbacks)")
        // The benchmark's rule set: only the hour of silence needs the sweep.
        let bench = try schedule(["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16", "retransmits >= 3",
                                  "stall=last_ack_recv > 1h"])
        #expect(bench.intervalMilliseconds == 180_000)
        #expect(bench.description
            == "every 3m (last_ack_recv > 1h × 5 %; retransmits checked at TCP's RTO and retransmit callbacks)")
    }

    @Test func withoutTheCallbacksRetransmitsIsSweptEveryTenSeconds() throws {
        // Sockets enrolled through the tracepoint fallback (before 6.12) get no RTO callback.
        let derived = try schedule(["retransmits >= 3", "last_ack_recv > 1h"], coverage: .none)
        #expect(derived.intervalMilliseconds == SweepSchedule.stateIntervalMilliseconds)
        #expect(derived.reason == "retransmits (no time threshold)")
    }

    @Test func aForcedIntervalStillSweepsEventCoveredRules() throws {
        let rules = try RuleExpression.compile(["retransmits >= 3"])
        #expect(rules.needsSweep)
        #expect(SweepPolicy.forced(milliseconds: 1000).schedule(for: rules).intervalMilliseconds == 1000)
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
    /// `needsSweep` (asked before every sweep) agrees with the derived schedule when no event checks a
    /// field (`.none`); with the callbacks, a derived schedule implies `needsSweep`.
    @Test(arguments: [["rtt > 200ms"], ["last_ack_recv > 1h"], ["retransmits >= 3"], ["age > 1s"], ["rtt > 1ms for 1s"],
                      ["increase(total_retrans, 1s) > 1"], ["snd_wnd == 0"], RuleExpression.defaultRules])
    func needsSweepAgreesWithTheSchedule(rules: [String]) throws {
        let compiled = try RuleExpression.compile(rules)
        #expect(compiled.needsSweep == (SweepSchedule.derived(from: compiled, precision: 0.05, coverage: .none).intervalMilliseconds != nil))
        if SweepSchedule.derived(from: compiled, precision: 0.05).intervalMilliseconds != nil { #expect(compiled.needsSweep) }
    }
}
