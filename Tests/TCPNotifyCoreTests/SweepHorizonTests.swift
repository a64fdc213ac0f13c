import Testing
@testable import TCPNotifyCore

/// When the derived schedule's ticks may skip the sweep: every term that needs the sweep is a positive
/// `time > constant`, and no rule keeps a window, waits or notifies at every event.
@Suite struct SweepHorizonTests {
    private func horizon(_ rules: [String], coverage: EventCoverage = .sockOpsCallbacks) throws -> SweepHorizon? {
        SweepHorizon.of(try RuleExpression.compile(rules), coverage: coverage)
    }

    @Test func theBenchmarksRulesSkipUntilTheHourOfSilence() throws {
        let rules = ["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16", "retransmits >= 3", "stall=last_ack_recv > 1h"]
        let found = try #require(try horizon(rules))
        #expect(found.shortestThresholdNanoseconds == 3_600_000_000_000)
        #expect(found.terms.nonzeroBitCount == 1)
    }

    @Test func theShortestThresholdBoundsSocketsEnrolledLater() throws {
        let found = try #require(try horizon(["last_ack_recv > 1h", "quiet=last_data_recv >= 20s", "young=age > 30s"]))
        #expect(found.shortestThresholdNanoseconds == 20_000_000_000)
        #expect(found.terms.nonzeroBitCount == 3)
    }

    @Test func termUnits() throws {
        let rules = try RuleExpression.compile(["last_ack_recv > 1s", "age > 1s", "rtt > 1s", "last_ack_recv < 1s"])
        let units = rules.terms.map(SweepHorizon.unit(of:))
        #expect(units == [.milliseconds, .microseconds, nil, nil])
    }

    @Test(arguments: [
        ["last_ack_recv > 1h for 2s"],          // waits: every tick matters
        ["last_ack_recv > 1h every 1m"],
        ["last_ack_recv > 1s each"],            // each sweep is an event
        ["increase(total_retrans, 10s) > 3"],   // a window
        ["last_ack_recv > 1h", "probes > 0"],   // a silence field without a time threshold
        ["not last_ack_recv > 1h"],             // can become true at an unreported ACK
        ["last_ack_recv < 1s"],
    ])
    func rulesThatNeedEveryTick(_ rules: [String]) throws {
        #expect(try horizon(rules) == nil, "\(rules)")
    }

    @Test func retransmitsNeedEveryTickWithoutTheRTOCallbacks() throws {
        let rules = ["retransmits >= 3", "last_ack_recv > 1h"]
        #expect(try horizon(rules) != nil)
        #expect(try horizon(rules, coverage: .none) == nil)
    }

    @Test func eventRulesAloneHaveNoHorizon() throws {
        #expect(try horizon(["rtt > 200ms"]) == nil)
    }

    @Test func nextSweepIsTheEarliestCrossingOrAnUnseenSocketsLessTheMargin() {
        let found = SweepHorizon(terms: 1, shortestThresholdNanoseconds: 10_000_000_000)
        let margin = SweepHorizon.marginNanoseconds
        // A checked socket crosses first.
        #expect(found.nextSweepNanoseconds(earliestCrossing: 5_000_000_000, coveredFrom: 1_000_000_000) == 5_000_000_000 - margin)
        // A socket enrolled after the sweep started could cross first.
        #expect(found.nextSweepNanoseconds(earliestCrossing: 20_000_000_000, coveredFrom: 1_000_000_000) == 11_000_000_000 - margin)
        // Nothing checked.
        #expect(found.nextSweepNanoseconds(earliestCrossing: nil, coveredFrom: 2_000_000_000) == 12_000_000_000 - margin)
        // No overflow past the clock's end.
        let long = SweepHorizon(terms: 1, shortestThresholdNanoseconds: .max)
        #expect(long.nextSweepNanoseconds(earliestCrossing: nil, coveredFrom: 5) == .max - margin)
    }
}
