import Testing
@testable import TCPNotifyCore

/// Feeds 100,000 generated and mutated rule strings to the compiler (8 seeded chunks, run in
/// parallel): no input may crash it, every failure is an ExpressionError pointing inside the input,
/// and every success respects the kernel's limits and recompiles from its canonical text unchanged.
@Suite struct RuleFuzzTests {
    static let chunks = 8
    static let perChunk = 12_500

    static let fields = ["rtt", "rttvar", "min_rtt", "total_retrans", "state", "ca_state", "delivery_rate", "bytes_acked",
                         "snd_cwnd", "unacked", "delivery_rate_app_limited", "busy_time", "age", "last_data_sent",
                         "retransmits", "total_rto", "bytes_sent", "bytes_retrans", "notsent_bytes", "rwnd_limited"]
    static let metrics = DerivedMetric.all.map(\.name)
    static let values = ["0", "1", "16", "1.5", "0x10", "-1", "18446744073709551615", "99999999999999999999", "50ms", "2s",
                         "200us", "1.5ms", "1m", "1h", "5Mbit", "10MBps", "10MB/s", "4MiB", "1MB", "2%", "0.5%", "150%",
                         "0.1us", "5Mbps", "ESTABLISHED", "close-wait", "Loss", "1e6", "4295s", "0.0000000000000000001"]
    static let durations = ["1s", "500ms", "10s", "1.5s", "0ms", "2", "1Mbit", "60m", "5000000000ms", "0.4ms"]
    static let operators = ["==", "!=", "<", "<=", ">", ">=", "=", "=>", "<>"]
    static let words = fields + metrics + values + operators + [
        "and", "or", "not", "!", "&&", "||", "(", ")", ",", "/", "+", "-", "*", "%", "increase(", "rate(", "for", "every",
        "once", "x=", "=", "preset:", "bufferbloat", "lossy", "receiver-limited", "increase", "rate", "rtt-min_rtt",
    ]
    static let alphabet = Array("  ()!=<>&|,/+-*%.:_0123456789abcdefimnorstuxyzABMGKS\t\u{e9}")

    static let seeds = [
        "rtt > 50ms", "rttvar > 10ms or total_retrans > 16", "min_rtt < 200us", "delivery_rate < 5Mbit",
        "notsent_bytes > 4MiB", "state == CLOSE_WAIT", "ca_state == Loss", "delivery_rate_app_limited",
        "rtt / min_rtt > 4", "retrans_rate > 1%", "rwnd_limited_pct > 50%", "busy_pct < 20%",
        "increase(total_retrans, 1s) > 16", "increase(total_rto, 10s) >= 1", "rate(bytes_acked, 1s) < 1Mbit",
        "rtt > 50ms for 500ms", "rtt > 50ms every 1s", "state == FIN_WAIT1 once", "x=queue_delay > 20ms and rtt_inflation > 4 for 2s every 10s",
        "snd_cwnd + unacked > 20", "rtt - min_rtt > 10ms", "not (rtt > 5ms and rto > 3ms) or lost > 0",
    ] + RulePresets.all.map(\.text)

    /// Values that fit each kind of left side, so most structured rules compile.
    static let fitting: [(left: [String], values: [String])] = [
        (["rtt", "rttvar", "min_rtt", "busy_time", "rwnd_limited", "age", "queue_delay", "rtt - min_rtt",
          "increase(busy_time, 1s)", "rate(rwnd_limited, 2s)"], ["50ms", "200us", "1.5ms", "2s", "5000", "0"]),
        (["last_data_sent"], ["500ms", "2s", "100"]),
        (["total_retrans", "snd_cwnd", "unacked", "retransmits", "total_rto", "snd_cwnd + unacked",
          "increase(total_retrans, 1s)", "increase(total_rto, 10s)", "rate(total_retrans, 500ms)"], ["0", "1", "16", "0x10"]),
        (["bytes_acked", "bytes_sent", "notsent_bytes", "increase(bytes_acked, 1s)"], ["1MB", "4MiB", "1500", "1.5KB"]),
        (["delivery_rate", "rate(bytes_acked, 1s)", "rate(bytes_sent, 500ms)"], ["5Mbit", "10MBps", "125000", "1Gbit"]),
        (["state"], ["ESTABLISHED", "close-wait", "1", "LISTEN"]),
        (["ca_state"], ["Loss", "Open", "2"]),
        (["rtt_inflation", "retrans_rate", "rtt / min_rtt", "bytes_retrans / bytes_sent"], ["4", "1.5", "2%", "0.5%"]),
        (["busy_pct", "rwnd_limited_pct", "sndbuf_limited_pct"], ["50%", "20%", "0.1%"]),
    ]

    /// A random term, usually well-formed, with units that may or may not fit.
    static func term(_ random: inout ExpressionTestRandom) -> String {
        func pick(_ list: [String]) -> String { list[random.next(list.count)] }
        let op = random.next(10) == 0 ? pick(operators) : pick(["<", "<=", ">", ">=", "==", "!="])
        switch random.next(10) {
        case 0: return "\(pick(fields)) \(op) \(pick(values))"
        case 1: return "\(pick(metrics)) \(op) \(pick(values))"
        case 2: return "\(pick(fields)) \(pick(["/", "+", "-", "*"])) \(pick(fields)) \(op) \(pick(values))"
        case 3: return "\(pick(["increase", "rate"]))(\(pick(fields)), \(pick(durations))) \(op) \(pick(values))"
        case 4: return pick(["delivery_rate_app_limited", "not delivery_rate_app_limited", pick(fields)])
        default:
            let kind = fitting[random.next(fitting.count)]
            return "\(pick(kind.left)) \(op) \(pick(kind.values))"
        }
    }

    static func expression(_ random: inout ExpressionTestRandom, depth: Int) -> String {
        if depth == 0 || random.next(3) == 0 { return term(&random) }
        let left = expression(&random, depth: depth - 1), right = expression(&random, depth: depth - 1)
        switch random.next(4) {
        case 0: return "not (\(left))"
        case 1: return "(\(left) and \(right))"
        case 2: return "\(left) or \(right)"
        default: return "\(left) && \(right)"
        }
    }

    static func rule(_ random: inout ExpressionTestRandom) -> String {
        var text = expression(&random, depth: random.next(4))
        if random.next(3) == 0 { text = "r\(random.next(5))=" + text }
        for control in ["for", "every", "once"] where random.next(4) == 0 {
            text += control == "once" ? " once" : " \(control) \(durations[random.next(durations.count)])"
        }
        return text
    }

    static func mutated(_ text: String, _ random: inout ExpressionTestRandom) -> String {
        var characters = Array(text)
        for _ in 0..<(1 + random.next(4)) {
            let position = random.next(characters.count + 1)
            switch random.next(4) {
            case 0 where position < characters.count: characters.remove(at: position)
            case 1: characters.insert(alphabet[random.next(alphabet.count)], at: position)
            case 2 where position < characters.count: characters[position] = alphabet[random.next(alphabet.count)]
            default:
                let word = Array(" " + words[random.next(words.count)] + " ")
                characters.insert(contentsOf: word, at: position)
            }
        }
        return String(characters)
    }

    /// The n-th input of a chunk: structured rules, mutated seeds and rules, token soup, random characters.
    static func input(_ random: inout ExpressionTestRandom) -> [String] {
        switch random.next(10) {
        case 0, 1, 2: return [rule(&random)]
        case 3, 4: return [mutated(seeds[random.next(seeds.count)], &random)]
        case 5, 6: return [mutated(rule(&random), &random)]
        case 7: return [(0..<random.next(14)).map { _ in words[random.next(words.count)] }.joined(separator: random.next(3) == 0 ? "" : " ")]
        case 8: return [String((0..<random.next(50)).map { _ in alphabet[random.next(alphabet.count)] })]
        default: return (0..<(2 + random.next(3))).map { _ in random.next(2) == 0 ? rule(&random) : seeds[random.next(seeds.count)] }
        }
    }

    struct Tally: Sendable {
        var compiled = 0
        var failed = 0
    }

    static func run(chunk: Int) -> Tally {
        var random = ExpressionTestRandom(seed: 0xF022 + UInt64(chunk))
        var tally = Tally()
        for _ in 0..<perChunk {
            let texts = input(&random)
            do {
                let rules = try RuleExpression.compile(texts)
                tally.compiled += 1
                check(rules, from: texts)
            } catch {
                tally.failed += 1
                // Plain checks in the loop: #expect's bookkeeping would dominate the run time.
                let pointsInside = (0...error.input.count).contains(error.position)
                let knownInput = texts.contains(error.input) || texts.contains { (try? RulePresets.expand($0)) == error.input }
                if !pointsInside || !knownInput || error.message.isEmpty || error.description.isEmpty {
                    Issue.record("bad error for \(texts): \(error)")
                }
            }
        }
        return tally
    }

    static func check(_ rules: CompiledRules, from texts: [String]) {
        let withinLimits = rules.rules.count <= 32 && rules.terms.count <= 32 && rules.clauses.count <= 32
            && rules.windows.count <= 4 && rules.timedRules.count <= 8 && rules.operands.count <= 16
        let consistent = rules.clauses.allSatisfy { Int($0.rule) < rules.rules.count }
            && rules.terms.allSatisfy { $0.window.map(rules.windows.contains) ?? true }
            && rules.timedRules == rules.rules.indices.filter { rules.rules[$0].control.isTimed }
        if !withinLimits || !consistent { Issue.record("inconsistent table for \(texts): \(rules)") }
        let again = try? RuleExpression.compile(rules.rules.map(\.text))
        if again != rules { Issue.record("canonical text of \(texts) does not recompile to the same table") }
    }

    @Test(arguments: 0..<chunks)
    func compilerNeverCrashes(chunk: Int) {
        let tally = Self.run(chunk: chunk)
        #expect(tally.compiled + tally.failed == Self.perChunk)
        // Both outcomes must be common, or the generator is not exercising the compiler.
        #expect(tally.compiled > Self.perChunk / 10, "\(tally)")
        #expect(tally.failed > Self.perChunk / 10, "\(tally)")
    }
}
