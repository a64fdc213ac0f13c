import Testing
@testable import TCPNotifyCore

/// One event of a hand-made series: milliseconds since enrollment and the fields that are not 0.
private struct Event {
    var milliseconds: UInt64
    var fields: [TCPInfoField: UInt64] = [:]
}

/// Runs `rules` over `events` with one socket state; returns (rules true, fired) per event.
private func run(_ rules: [String], _ events: [Event]) throws -> [(rulesTrue: UInt32, fired: UInt32)] {
    let compiled = try RuleExpression.compile(rules)
    var state = RuleSocketState()
    return events.map { event in
        compiled.step(&state, nowNanosecondsSinceEnrollment: event.milliseconds * 1_000_000,
                      value: RuleFieldValues(event.fields).callAsFunction)
    }
}

/// A condition that is true exactly when `lost` is 1, over a series of (ms, true?) points.
private func truth(_ points: [(UInt64, Bool)]) -> [Event] {
    points.map { Event(milliseconds: $0.0, fields: [.lost: $0.1 ? 1 : 0]) }
}

/// The reference evaluator follows the kernel's rules.bpf.h step by step; these pin each part.
@Suite struct RuleEvaluatorTests {
    // MARK: - Terms

    @Test func compareRatioSumAndDifference() throws {
        let rules = ["rtt > 50ms", "rtt_inflation > 4", "snd_cwnd + unacked > 20", "queue_delay > 20ms", "busy_pct < 20%"]
        let values: [TCPInfoField: UInt64] = [.rtt: 100_000, .minRtt: 20_000, .sndCwnd: 10, .unacked: 11, .busyTime: 1_000_000]
        // age = 10 s: busy 1 s of 10 s is 10%.
        let results = try run(rules, [Event(milliseconds: 10_000, fields: values)])
        #expect(results[0].rulesTrue == 0b11111)
        // Exactly at the thresholds nothing holds (all strict), and age 5 s makes busy 20%.
        let edge: [TCPInfoField: UInt64] = [.rtt: 50_000, .minRtt: 12_500, .sndCwnd: 10, .unacked: 10, .busyTime: 1_000_000]
        #expect(try run(rules, [Event(milliseconds: 5000, fields: edge)])[0].rulesTrue == 0b01000)
    }

    @Test func ratioOfZeroesAndByZero() throws {
        let compiled = try RuleExpression.compile(["a=retrans_rate > 50%", "b=retrans_rate == 0"])
        #expect(compiled.evaluate(RuleFieldValues([:]).callAsFunction) == 0b10, "0/0 = 0")
        #expect(compiled.evaluate(RuleFieldValues([.bytesRetrans: 1]).callAsFunction) == 0b01, "x/0 = max")
        #expect(compiled.evaluate(RuleFieldValues([.bytesRetrans: 1, .bytesSent: 2]).callAsFunction) == 0b00, "exactly 50%")
        #expect(compiled.evaluate(RuleFieldValues([.bytesRetrans: 500_001, .bytesSent: 1_000_000]).callAsFunction) == 0b01)
    }

    @Test func sumSaturatesAndDifferenceFloorsAtZero() throws {
        let compiled = try RuleExpression.compile(["a=bytes_acked + bytes_received == 18446744073709551615",
                                                   "b=rttvar - rtt == 0", "c=rttvar - rtt > 0"])
        #expect(compiled.evaluate(RuleFieldValues([.bytesAcked: .max - 1, .bytesReceived: 5, .rtt: 9, .rttvar: 3]).callAsFunction) == 0b011)
        #expect(compiled.evaluate(RuleFieldValues([.bytesAcked: 1, .rtt: 3, .rttvar: 9]).callAsFunction) == 0b100)
    }

    @Test func ageIsTheTimeSinceEnrollment() throws {
        let compiled = try RuleExpression.compile(["age > 5s"])
        var state = RuleSocketState()
        // The value closure is not asked for age: the step computes it from the time, like the kernel.
        let never: (RuleOperand) -> UInt64 = { $0 == .age ? .max : 0 }
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 5_000_000_999, value: never).rulesTrue == 0)
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 5_000_001_000, value: never).rulesTrue == 1)
    }

    struct RatioCase: Sendable {
        var a: UInt64
        var b: UInt64
        var partsPerMillion: UInt64
        init(_ a: UInt64, _ b: UInt64, _ partsPerMillion: UInt64) {
            (self.a, self.b, self.partsPerMillion) = (a, b, partsPerMillion)
        }
    }

    /// Expected values follow the kernel's formula.
    static let ratioCases: [RatioCase] = [
        RatioCase(0, 0, 0), RatioCase(5, 0, .max), RatioCase(1, 3, 333_333), RatioCase(2, 3, 666_666),
        RatioCase(3, 3, 1_000_000), RatioCase(7, 2, 3_500_000), RatioCase(.max, 1, .max),
        RatioCase(UInt64.max / 1_000_000, 1, UInt64.max / 1_000_000 * 1_000_000), RatioCase(UInt64.max / 1_000_000 + 1, 1, .max),
        RatioCase(.max, .max, 1_000_000), RatioCase(.max, .max - 1, 1_000_000),
        // A remainder too large to scale exactly is divided by b / 10^6 instead: close, not exact.
        RatioCase(.max - 1, .max, 1_000_000), RatioCase(UInt64.max / 2, .max, 500_000), RatioCase(1 << 63, 3 << 62, 666_666),
        RatioCase(18_446_744_073_709, 1, 18_446_744_073_709_000_000), RatioCase(18_446_744_073_710, 1, .max),
    ]

    @Test(arguments: ratioCases)
    func ratioPartsPerMillion(_ ratio: RatioCase) {
        #expect(RuleArithmetic.ratioPartsPerMillion(ratio.a, ratio.b) == ratio.partsPerMillion, "\(ratio.a) / \(ratio.b)")
    }

    /// Where the remainder times 10^6 fits, the result is exactly floor(a × 10^6 / b).
    @Test func ratioIsExactBelowTheSaturationPoint() {
        var random = ExpressionTestRandom(seed: 77)
        for _ in 0..<20_000 {
            let b = max(1, random.nextUInt64() >> UInt64(random.next(64)))
            let a = random.nextUInt64() >> UInt64(random.next(64))
            let exact = UInt128(a) * 1_000_000 / UInt128(b)
            let result = RuleArithmetic.ratioPartsPerMillion(a, b)
            if a % b <= UInt64.max / 1_000_000, exact <= UInt128(UInt64.max) {
                #expect(UInt128(result) == exact, "\(a) / \(b)")
            } else if exact > UInt128(UInt64.max) {
                #expect(result == .max || UInt128(result) <= exact, "\(a) / \(b)")
            }
        }
    }

    @Test func perSecondAndSaturation() {
        #expect(RuleArithmetic.perSecond(500, elapsedMilliseconds: 0) == 0)
        #expect(RuleArithmetic.perSecond(500, elapsedMilliseconds: 250) == 2000)
        #expect(RuleArithmetic.perSecond(UInt64.max / 1000, elapsedMilliseconds: 1000) == UInt64.max / 1000)
        #expect(RuleArithmetic.perSecond(UInt64.max / 1000 + 1, elapsedMilliseconds: 1000) == .max)
        #expect(RuleArithmetic.saturatingSum(.max, 1) == .max && RuleArithmetic.saturatingSum(2, 3) == 5)
        #expect(RuleArithmetic.flooredDifference(3, 5) == 0 && RuleArithmetic.flooredDifference(5, 3) == 2)
    }

    // MARK: - Windows

    /// total_retrans = the time in ms, so the increase is the age of the baseline snapshot.
    private func clockSeries(_ milliseconds: [UInt64]) -> [Event] {
        milliseconds.map { Event(milliseconds: $0, fields: [.totalRetrans: $0]) }
    }

    @Test func snapshotsAreTakenAWidthThirdApart() throws {
        let compiled = try RuleExpression.compile(["increase(total_retrans, 3s) > 0"])
        var state = RuleSocketState()
        var taken: [[UInt32]] = []
        for event in clockSeries([0, 500, 999, 1000, 1500, 2100, 3000, 3100, 4200]) {
            _ = compiled.step(&state, nowNanosecondsSinceEnrollment: event.milliseconds * 1_000_000,
                              value: RuleFieldValues(event.fields).callAsFunction)
            let window = state.windows[0]
            taken.append((0..<window.count).map { window.atMilliseconds[(window.newest - $0 + 4) % 4] })
        }
        #expect(taken == [
            [0], [0], [0], [1000, 0], [1000, 0], [2100, 1000, 0], [2100, 1000, 0], [3100, 2100, 1000, 0],
            [4200, 3100, 2100, 1000],
        ])
    }

    @Test func baselineIsTheYoungestSnapshotAtLeastAWidthOld() throws {
        let compiled = try RuleExpression.compile(["a=increase(total_retrans, 3s) > 2999", "b=increase(total_retrans, 3s) > 3400"])
        var state = RuleSocketState()
        var increases: [UInt32] = []
        // Snapshots at 0, 1000, 2000, 3000; at 3500 the youngest at least 3 s old is 0 (3500 old).
        for event in clockSeries([0, 1000, 2000, 3000, 3500, 4000, 4100]) {
            increases.append(compiled.step(&state, nowNanosecondsSinceEnrollment: event.milliseconds * 1_000_000,
                                           value: RuleFieldValues(event.fields).callAsFunction).rulesTrue)
        }
        // 3000: baseline 0 (exactly 3 s old) -> 3000. 3500: still 0 -> 3500.
        // 4000: a snapshot at 4000 replaces 0; baseline 1000 -> 3000. 4100: baseline 1000 -> 3100.
        #expect(increases == [0, 0, 0, 0b01, 0b11, 0b01, 0b01])
        #expect(state.windows[0].count == 4)
    }

    @Test func youngSocketsMeasureFromTheOldestSnapshot() throws {
        // Rate over 1 s on a socket 100 ms old: 50 segments in 100 ms is 500 per second.
        let results = try run(["a=rate(total_retrans, 1s) >= 500", "b=increase(total_retrans, 1s) == 50", "c=rate(total_retrans, 1s) == 0"], [
            Event(milliseconds: 0, fields: [.totalRetrans: 10]), Event(milliseconds: 100, fields: [.totalRetrans: 60]),
        ])
        #expect(results.map(\.rulesTrue) == [0b100, 0b011], "the first event has no elapsed time: rate 0")
    }

    @Test func countersGoingBackwardsIncreaseByZero() throws {
        let results = try run(["increase(total_retrans, 1s) == 0"], [
            Event(milliseconds: 0, fields: [.totalRetrans: 100]), Event(milliseconds: 2000, fields: [.totalRetrans: 40]),
        ])
        #expect(results.map(\.rulesTrue) == [1, 1])
    }

    @Test func subMillisecondWidthsCountAsOneMillisecond() {
        let window = RuleWindow(operand: .field(.totalRetrans), widthNanoseconds: 400_000)
        let term = RuleTerm(kind: .increase, operand: .field(.totalRetrans), windowWidthNanoseconds: 400_000, op: .gt, value: 0)
        let compiled = CompiledRules(rules: [RuleInfo(name: "x", expression: "x")], terms: [term],
                                     clauses: [Clause(mustBeTrue: 1)], windows: [window])
        var state = RuleSocketState()
        let first = compiled.step(&state, nowNanosecondsSinceEnrollment: 0) { _ in 5 }
        let second = compiled.step(&state, nowNanosecondsSinceEnrollment: 1_000_000) { _ in 9 }
        #expect(first.rulesTrue == 0 && second.rulesTrue == 1)
        #expect(state.windows[0].count == 2)
    }

    @Test func windowsKeepTheirOwnHistories() throws {
        let compiled = try RuleExpression.compile(["a=increase(total_retrans, 1s) > 5", "b=increase(total_retrans, 10s) > 5",
                                                   "c=rate(bytes_acked, 1s) > 1KBps"])
        #expect(compiled.windows.count == 3)
        var state = RuleSocketState()
        let value = { (retrans: UInt64, acked: UInt64) in RuleFieldValues([.totalRetrans: retrans, .bytesAcked: acked]).callAsFunction }
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 0, value: value(0, 0)).rulesTrue == 0)
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 2_000_000_000, value: value(10, 1000)).rulesTrue == 0b011)
        // 1 s later: the 1 s window measures from 2000 ms (no growth), the 10 s window from 0.
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 3_000_000_000, value: value(10, 5000)).rulesTrue == 0b110)
    }

    // MARK: - Controls

    @Test func edgeFiresOnRisingEdgesOnly() throws {
        let results = try run(["lost > 0"], truth([(0, false), (10, true), (20, true), (30, false), (40, true), (50, true)]))
        #expect(results.map(\.fired) == [0, 1, 0, 0, 1, 0])
        #expect(results.map(\.rulesTrue) == [0, 1, 1, 0, 1, 1])
    }

    @Test func forWaitsUntilTheConditionHasHeld() throws {
        let points: [(UInt64, Bool)] = [(0, false), (100, true), (300, true), (599, true), (600, true), (700, true),
                                        (800, false), (900, true), (1300, true), (1400, true)]
        let results = try run(["lost > 0 for 500ms"], truth(points))
        // Holds from 100: ready at 600. False at 800 re-arms; holds again from 900: ready at 1400.
        #expect(results.map(\.fired) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1])
    }

    @Test func everyRenotifiesWhileTrue() throws {
        let points: [(UInt64, Bool)] = [(0, true), (500, true), (999, true), (1000, true), (1500, true), (2100, true),
                                        (2200, false), (2300, true), (2400, true)]
        let results = try run(["lost > 0 every 1s"], truth(points))
        // 0, 1000, 2100 (1100 after 1000); false at 2200; true again at 2300 fires at once.
        #expect(results.map(\.fired) == [1, 0, 0, 1, 0, 1, 0, 1, 0])
    }

    @Test func eachFiresAtEveryEventItHolds() throws {
        let results = try run(["lost > 0 each"], truth([(0, true), (1, true), (1, true), (5, false), (6, true)]))
        #expect(results.map(\.fired) == [1, 1, 1, 0, 1])
        let compiled = try RuleExpression.compile(["lost > 0 each"])
        #expect(compiled.timedRules.isEmpty, "each needs no per-socket timers")
    }

    @Test func onceNotifiesOncePerSocket() throws {
        let results = try run(["lost > 0 once"], truth([(0, true), (10, false), (20, true), (30, true)]))
        #expect(results.map(\.fired) == [1, 0, 0, 0])
        #expect(results.map(\.rulesTrue) == [1, 0, 1, 1])
    }

    @Test func forAndEveryTogether() throws {
        let points: [(UInt64, Bool)] = [(0, true), (150, true), (200, true), (700, true), (1199, true), (1200, true),
                                        (1300, false), (1400, true), (1500, true), (1600, true)]
        let results = try run(["lost > 0 for 200ms every 1s"], truth(points))
        // Held 200 ms at 200; again 1 s later at 1200. False at 1300; held again from 1400: 1600.
        #expect(results.map(\.fired) == [0, 0, 1, 0, 0, 1, 0, 0, 0, 1])
    }

    @Test func forWithOnce() throws {
        let points: [(UInt64, Bool)] = [(0, true), (100, true), (200, false), (300, true), (400, true), (500, true)]
        let results = try run(["lost > 0 for 100ms once"], truth(points))
        #expect(results.map(\.fired) == [0, 1, 0, 0, 0, 0])
    }

    @Test func timedAndPlainRulesKeepSeparateState() throws {
        let rules = ["a=lost > 0", "b=lost > 0 for 100ms", "c=lost > 0 every 50ms", "d=lost > 0 once"]
        let compiled = try RuleExpression.compile(rules)
        #expect(compiled.timedRules == [1, 2])
        let results = try run(rules, truth([(0, true), (50, true), (100, true), (120, false), (130, true)]))
        #expect(results.map(\.fired) == [0b1101, 0b0100, 0b0110, 0, 0b0101])
    }

    @Test func resetForgetsEverything() throws {
        let compiled = try RuleExpression.compile(["lost > 0 once", "increase(total_retrans, 1s) > 0"])
        var state = RuleSocketState()
        let values = RuleFieldValues([.lost: 1, .totalRetrans: 3])
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 0, value: values.callAsFunction).fired == 0b01)
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 1_000_000, value: values.callAsFunction).fired == 0)
        #expect(state != RuleSocketState())
        compiled.reset(&state)
        #expect(state == RuleSocketState())
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: 2_000_000, value: values.callAsFunction).fired == 0b01)
    }

    @Test func millisecondClockWrapsLikeTheKernels() throws {
        // 2^32 ms after enrollment the kernel's u32 clock wraps; differences stay right across it.
        let compiled = try RuleExpression.compile(["lost > 0 every 1s"])
        var state = RuleSocketState()
        let wrap = UInt64(UInt32.max) * 1_000_000
        let on = RuleFieldValues([.lost: 1]).callAsFunction
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: wrap - 500_000_000, value: on).fired == 1)
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: wrap + 400_000_000, value: on).fired == 0)
        #expect(compiled.step(&state, nowNanosecondsSinceEnrollment: wrap + 600_000_000, value: on).fired == 1)
    }
}
