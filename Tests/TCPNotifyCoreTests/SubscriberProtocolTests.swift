import Testing
@testable import TCPNotifyCore

@Suite struct SubscriberProtocolTests {
    private func parse(_ text: String) -> Result<SubscriberProtocol.Request, SubscriberProtocol.RequestError> {
        SubscriberProtocol.parse(Array(text.utf8))
    }

    @Test func subscribeRequests() throws {
        #expect(try parse(#"{"type":"subscribe","filter":"dport = :443","rules":["rtt > 50ms","lossy"]}"#).get()
            == .subscribe(filter: "dport = :443", rules: ["rtt > 50ms", "lossy"]))
        #expect(try parse(#"  {"type":"subscribe"}  "#).get() == .subscribe(filter: "", rules: []))
        #expect(try parse(#"{"type":"stats"}"#).get() == .stats)
        // The client's own encoder round-trips, escapes included.
        let line = SubscriberProtocol.subscribeLine(filter: "dst \"x\"\\", rules: ["a=rtt > 1ms\n"])
        #expect(try parse(line).get() == .subscribe(filter: "dst \"x\"\\", rules: ["a=rtt > 1ms\n"]))
    }

    @Test(arguments: [
        (#"{"type":"subscribe","filtr":"x"}"#, "did you mean 'filter'"),
        (#"{"type":"subscribe","rules":"rtt > 1ms"}"#, "array of strings"),
        (#"{"type":"subscribe","rules":[1]}"#, "array of strings"),
        (#"{"type":"subscribe","filter":null}"#, "must be a string"),
        (#"{"type":"nope"}"#, "unknown request type"),
        (#"{"type":7}"#, "missing \"type\""),
        (#"{"type":"stats","x":1}"#, "unknown field 'x'"),
    ])
    func recoverableErrorsKeepTheConnection(request: String, fragment: String) {
        guard case .failure(let error) = parse(request) else {
            Issue.record("accepted \(request)")
            return
        }
        #expect(!error.closesConnection, "\(request)")
        #expect(error.message.contains(fragment), "\(request): \(error.message)")
    }

    @Test(arguments: ["hello", "", "[1]", "\"text\"", "{", "{\"type\":\"subscribe\"} x", "{'type':'stats'}",
                      String(repeating: "[", count: 100_000), String(repeating: "{\"a\":", count: 1000) + "1" + String(repeating: "}", count: 1000)])
    func garbageClosesTheConnection(request: String) {
        guard case .failure(let error) = parse(request) else {
            Issue.record("accepted \(request.prefix(40))")
            return
        }
        #expect(error.closesConnection, "\(request.prefix(40))")
    }

    @Test func oversizedRequestClosesTheConnection() {
        let line = #"{"type":"subscribe","filter":""# + String(repeating: "x", count: SubscriberProtocol.maxRequestBytes) + #""}"#
        guard case .failure(let error) = parse(line) else {
            Issue.record("accepted an oversized line")
            return
        }
        #expect(error.closesConnection)
        #expect(error.message.contains("longer than"))
    }

    /// Random bytes and mutations of valid requests: always a result, never a trap.
    @Test func randomInputNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let seeds = [#"{"type":"subscribe","filter":"dport = :443","rules":["rtt > 50ms"]}"#, #"{"type":"stats"}"#, #"["\ud83d\ude00",1e999,-0.5]"#]
        var accepted = 0
        for round in 0..<5000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            } else {
                bytes = Array(seeds[round % seeds.count].utf8)
                for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    switch Int.random(in: 0..<3, using: &generator) {
                    case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.remove(at: index)
                    default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: index)
                    }
                }
            }
            if case .success = SubscriberProtocol.parse(bytes) { accepted += 1 }
        }
        #expect(accepted < 5000)
    }

    @Test func requestsAreTheClientsWireMessages() throws {
        #expect(try parse(Wire.line(Wire.Subscribe(filter: "sport = :22", rules: []))).get() == .subscribe(filter: "sport = :22", rules: []))
        #expect(try parse(Wire.line(Wire.StatsRequest())).get() == .stats)
        // Scopes, each width of integer included (an Int32 once recursed in the line encoder until the stack ran out).
        for scope in [SubscriptionScope(cgroup: "/sys/fs/cgroup/a"), SubscriptionScope(unit: "nginx.service"), SubscriptionScope(pid: 4242)] {
            let line = Wire.line(Wire.Subscribe(filter: "", rules: [], scope: scope))
            #expect(try parse(line).get() == .subscribe(filter: "", rules: [], scope: scope), "\(line)")
        }
        #expect(Wire.line(Wire.Subscribe(filter: "", rules: [])) == #"{"type":"subscribe","filter":"","rules":[]}"#, "no scope, no keys")
        for bad in [#"{"type":"subscribe","pid":"x"}"#, #"{"type":"subscribe","pid":1,"unit":"a.service"}"#, #"{"type":"subscribe","cgroup":7}"#] {
            guard case .failure(let error) = SubscriberProtocol.parse(Array(bad.utf8)) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(!error.closesConnection && (error.message.contains("pid") || error.message.contains("cgroup") || error.message.contains("at most one")), "\(error)")
        }
        #expect(try Wire.decode(Wire.Subscribe.self, from: #"{"type":"subscribe","rules":["x"]}"#) == Wire.Subscribe(filter: "", rules: ["x"]))
        let tooMany = Wire.line(Wire.Subscribe(rules: Array(repeating: "rtt > 1ms", count: Wire.Subscribe.maxRules + 1)))
        guard case .failure(let error) = parse(tooMany) else {
            Issue.record("accepted \(Wire.Subscribe.maxRules + 1) rules")
            return
        }
        #expect(error.message.contains("more than 64 rules") && !error.closesConnection)
    }
}

@Suite struct SubscriberQueueTests {
    @Test func dropsWhenFullAndReportsWhereLinesWentMissing() {
        var queue = SubscriberQueue(capacityBytes: 30)
        do { let queued = queue.offer("0123456789"); #expect(queued) } // 11 bytes with the newline
        do { let queued = queue.offer("0123456789"); #expect(queued) }
        do { let queued = queue.offer("0123456789"); #expect(!queued) } // 33 > 30
        do { let queued = queue.offer("x".padding(20)); #expect(!queued) }
        #expect(queue.droppedTotal == 2 && queue.acceptedTotal == 2)
        var lines = queue.take(maxBytes: 11)
        #expect(lines == ["0123456789"])
        do { let queued = queue.offer("after"); #expect(queued) }
        lines = queue.take(maxBytes: 1 << 20)
        #expect(lines == ["0123456789", #"{"type":"dropped","count":2,"total":2}"#, "after"])
        #expect(queue.isEmpty && queue.queuedBytes == 0)
        // A later overflow is a separate report, with the running total.
        var big = SubscriberQueue(capacityBytes: 12)
        big.offer("0123456789")
        big.offer("lost")
        _ = big.take(maxBytes: 100)
        big.offer("0123456789")
        big.offer("lost")
        #expect(big.take(maxBytes: 100) == ["0123456789", #"{"type":"dropped","count":1,"total":2}"#])
    }

    @Test func oneLineAlwaysFitsAnEmptyQueue() {
        var queue = SubscriberQueue(capacityBytes: 4)
        do { let queued = queue.offer("longer than the capacity"); #expect(queued) }
        do { let queued = queue.offer("x"); #expect(!queued) }
        queue.append("end") // the last words bypass the bound
        #expect(queue.take(maxBytes: 1) == ["longer than the capacity"])
        #expect(queue.take(maxBytes: 100) == [#"{"type":"dropped","count":1,"total":1}"#, "end"])
    }

    @Test func manyLinesKeepTheirOrder() {
        var queue = SubscriberQueue(capacityBytes: 1 << 20)
        var taken: [String] = []
        for index in 0..<10_000 {
            queue.offer(String(index))
            if index % 7 == 0 { taken += queue.take(maxBytes: 64) }
        }
        while !queue.isEmpty { taken += queue.take(maxBytes: 1000) }
        #expect(taken == (0..<10_000).map(String.init))
    }
}

@Suite struct SharedTablesTests {
    private func subscription(_ filter: String, _ rules: [String]) throws -> Subscription {
        Subscription(filter: try FilterExpression.compile(filter), rules: try RuleExpression.compile(rules))
    }

    /// `watch` is subscriber 0 alone: the shared tables are its own tables, index for index.
    @Test func aLoneSubscriberKeepsItsTables() throws {
        var set = SubscriptionSet()
        let own = try subscription("dst 10.0.0.0/8 and dport = :443 or sport = :22",
                                   ["rtt > 50ms or rttvar > 10ms", "bufferbloat", "lossy", "x=increase(total_retrans, 1s) > 3 every 2s"])
        set[0] = own
        let tables = try set.tables()
        #expect(tables.predicates == own.filter.predicates)
        #expect(tables.filterClauses.map(\.clause) == own.filter.clauses)
        #expect(tables.filterClauses.allSatisfy { $0.subscribers == 1 })
        #expect(tables.rules == own.rules)
        #expect(tables.subscriberRules[0] == UInt32((1 << own.rules.rules.count) - 1))
        #expect(tables.names(for: 0) == own.rules.rules.map(\.name))
    }

    @Test func subscribersShareConditionsAndIdenticalRules() throws {
        var set = SubscriptionSet()
        set[1] = try subscription("dport = :443", ["slow=rtt > 50ms", "rto=retransmits >= 3"])
        set[2] = try subscription("dport = :443 or dport = :80", ["mine=rtt > 50ms", "state == FIN_WAIT1"])
        set[3] = try subscription("", [])
        let tables = try set.tables()
        #expect(tables.predicates.count == 2)
        // dport 443 is one clause selecting for 1 and 2; dport 80 only 2; the empty filter always holds.
        #expect(tables.filterClauses.count == 3)
        #expect(tables.filterClauses[0].subscribers == 0b0110)
        #expect(tables.filterClauses[1].subscribers == 0b0100)
        #expect(tables.filterClauses[2] == TaggedClause(clause: Clause(), subscribers: 0b1000))
        // rtt > 50ms is one rule bit, named differently for each owner.
        #expect(tables.rules.rules.count == 3)
        #expect(tables.subscriberRules[1] == 0b011 && tables.subscriberRules[2] == 0b101 && tables.subscriberRules[3] == 0)
        #expect(tables.names(for: 1) == ["slow", "rto", ""])
        #expect(tables.names(for: 2) == ["mine", "", "state == FIN_WAIT1"])
        #expect(tables.rules.terms.count == 3)
    }

    @Test func aRuleTwiceForOneSubscriberKeepsBothNames() throws {
        var set = SubscriptionSet()
        set[1] = try subscription("", ["a=rtt > 1ms", "b=rtt > 1ms"])
        set[2] = try subscription("", ["c=rtt > 1ms"])
        let tables = try set.tables()
        #expect(tables.rules.rules.count == 2)
        #expect(tables.names(for: 1) == ["a", "b"])
        #expect(tables.names(for: 2) == ["c", ""])
    }

    @Test func sharedLimitsAreNamed() throws {
        var set = SubscriptionSet()
        set[1] = try subscription((0..<20).map { "dport = :\($0 + 1)" }.joined(separator: " or "), ["rtt > 1ms"])
        set[2] = try subscription((0..<20).map { "sport = :\($0 + 1)" }.joined(separator: " or "), ["rtt > 1ms"])
        #expect(throws: SharedTableError.self) { try set.tables() }
        do {
            _ = try set.tables()
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_FILTER_PREDICATES"), "\(error)")
        }
        var rules = SubscriptionSet()
        rules[1] = try subscription("", (0..<20).map { "rtt > \($0 + 1)ms" })
        rules[2] = try subscription("", (0..<20).map { "rttvar > \($0 + 1)ms" })
        do {
            _ = try rules.tables()
            Issue.record("40 rules fit a 32-rule table")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_RULES"), "\(error)")
        }
        var windows = SubscriptionSet()
        windows[1] = try subscription("", ["increase(total_retrans, 1s) > 1", "increase(total_rto, 1s) > 1", "increase(bytes_sent, 1s) > 1"])
        windows[2] = try subscription("", ["increase(bytes_acked, 2s) > 1", "increase(total_retrans, 3s) > 1"])
        do {
            _ = try windows.tables()
            Issue.record("5 windows fit a 4-window table")
        } catch {
            #expect(error.message.contains("TCPNOTIFY_MAX_WINDOWS"), "\(error)")
        }
    }

    @Test func freeSlotsAreTheLowest() {
        var set = SubscriptionSet()
        let any = Subscription(filter: CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""),
                               rules: CompiledRules(rules: [], terms: [], clauses: []))
        set[1] = any
        set[2] = any
        #expect(set.freeSlot(from: 1) == 3)
        set[1] = nil
        #expect(set.freeSlot(from: 1) == 1)
        #expect(set.mask == 0b100)
    }
}

private extension String {
    func padding(_ count: Int) -> String { self + String(repeating: " ", count: count) }
}
