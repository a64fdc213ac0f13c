import Testing
@testable import TCPNotifyCore

/// A connection for the reference evaluator, written as text: local is `src`, remote is `dst`.
struct FilterConnection: Sendable, CustomTestStringConvertible {
    var local: String
    var localPort: UInt16
    var remote: String
    var remotePort: UInt16

    init(_ local: String, _ localPort: UInt16, _ remote: String, _ remotePort: UInt16) {
        (self.local, self.localPort, self.remote, self.remotePort) = (local, localPort, remote, remotePort)
    }

    var testDescription: String { "\(local):\(localPort) -> \(remote):\(remotePort)" }

    func matches(_ filter: CompiledFilter) -> Bool {
        filter.matches(localAddress: IPAddressText.parse(local) ?? [], localPort: localPort,
                       remoteAddress: IPAddressText.parse(remote) ?? [], remotePort: remotePort)
    }
}

struct FilterCase: Sendable, CustomTestStringConvertible {
    var filter: String
    var matching: [FilterConnection]
    var notMatching: [FilterConnection]
    var testDescription: String { filter }
}

struct MalformedFilter: Sendable, CustomTestStringConvertible {
    var text: String
    var fragment: String
    var position: Int
    var testDescription: String { text }
}

@Suite struct FilterExpressionTests {
    static let goodFilters: [FilterCase] = [
        FilterCase(filter: "dst 10.0.0.0/8",
                   matching: [FilterConnection("192.168.0.1", 5000, "10.1.2.3", 443)],
                   notMatching: [FilterConnection("192.168.0.1", 5000, "11.0.0.1", 443),
                                 FilterConnection("::1", 5000, "2001:db8::1", 443)]),
        FilterCase(filter: "src 192.168.1.0/24",
                   matching: [FilterConnection("192.168.1.7", 1, "8.8.8.8", 53)],
                   notMatching: [FilterConnection("192.168.2.7", 1, "8.8.8.8", 53)]),
        // v4-mapped: an IPv6 socket talking to an IPv4 peer reports ::ffff:a.b.c.d, which is what we store.
        FilterCase(filter: "dst 10.0.0.0/8",
                   matching: [FilterConnection("::ffff:192.168.0.1", 5000, "::ffff:10.9.9.9", 80)],
                   notMatching: [FilterConnection("::ffff:192.168.0.1", 5000, "::10.9.9.9", 80)]),
        FilterCase(filter: "dst 0.0.0.0/0",
                   matching: [FilterConnection("1.1.1.1", 1, "2.2.2.2", 2)],
                   notMatching: [FilterConnection("::1", 1, "::2", 2)]),
        FilterCase(filter: "dst 2001:db8::/32",
                   matching: [FilterConnection("::1", 1, "2001:db8:1::5", 2)],
                   notMatching: [FilterConnection("::1", 1, "2001:db9::1", 2), FilterConnection("1.1.1.1", 1, "10.0.0.1", 2)]),
        FilterCase(filter: "dst ::1", matching: [FilterConnection("::1", 1, "::1", 2)],
                   notMatching: [FilterConnection("::1", 1, "::2", 2)]),
        FilterCase(filter: "dst [::1]", matching: [FilterConnection("::1", 1, "::1", 2)],
                   notMatching: [FilterConnection("::1", 1, "::2", 2)]),
        FilterCase(filter: "src ::ffff:10.0.0.1", matching: [FilterConnection("10.0.0.1", 1, "::2", 2)],
                   notMatching: [FilterConnection("10.0.0.2", 1, "::2", 2)]),
        FilterCase(filter: "dst 10.0.0.1:443",
                   matching: [FilterConnection("1.1.1.1", 40000, "10.0.0.1", 443)],
                   notMatching: [FilterConnection("1.1.1.1", 40000, "10.0.0.1", 80), FilterConnection("1.1.1.1", 40000, "10.0.0.2", 443)]),
        FilterCase(filter: "dst [2001:db8::1]:443",
                   matching: [FilterConnection("::1", 40000, "2001:db8::1", 443)],
                   notMatching: [FilterConnection("::1", 40000, "2001:db8::1", 80), FilterConnection("::1", 443, "2001:db8::2", 443)]),
        FilterCase(filter: "dst [2001:db8::]/32:443",
                   matching: [FilterConnection("::1", 40000, "2001:db8:5::1", 443)],
                   notMatching: [FilterConnection("::1", 40000, "2001:db8::1", 80)]),
        FilterCase(filter: "dst *:443", matching: [FilterConnection("::1", 1, "::2", 443), FilterConnection("1.1.1.1", 1, "2.2.2.2", 443)],
                   notMatching: [FilterConnection("::1", 443, "::2", 80)]),
        FilterCase(filter: "src :22", matching: [FilterConnection("::1", 22, "::2", 40000)],
                   notMatching: [FilterConnection("::1", 40000, "::2", 22)]),
        FilterCase(filter: "src 10.0.0.1:*", matching: [FilterConnection("10.0.0.1", 7, "::2", 8)],
                   notMatching: [FilterConnection("10.0.0.2", 7, "::2", 8)]),
        FilterCase(filter: "sport >= :1024 and sport <= :2048",
                   matching: [FilterConnection("::1", 1024, "::2", 1), FilterConnection("::1", 2048, "::2", 1), FilterConnection("::1", 1500, "::2", 1)],
                   notMatching: [FilterConnection("::1", 1023, "::2", 1500), FilterConnection("::1", 2049, "::2", 1500)]),
        FilterCase(filter: "sport ge 1024 && sport le 2048",
                   matching: [FilterConnection("::1", 1024, "::2", 1)], notMatching: [FilterConnection("::1", 2049, "::2", 1)]),
        FilterCase(filter: "sport > :1023 & sport < 2049",
                   matching: [FilterConnection("::1", 1024, "::2", 1)], notMatching: [FilterConnection("::1", 1023, "::2", 1)]),
        FilterCase(filter: "not dport = :22",
                   matching: [FilterConnection("::1", 1, "::2", 80)], notMatching: [FilterConnection("::1", 1, "::2", 22)]),
        FilterCase(filter: "! dport == 22",
                   matching: [FilterConnection("::1", 1, "::2", 80)], notMatching: [FilterConnection("::1", 1, "::2", 22)]),
        FilterCase(filter: "dport != 22 and dport ne 23 and dport neq 24",
                   matching: [FilterConnection("::1", 1, "::2", 25)],
                   notMatching: [FilterConnection("::1", 1, "::2", 22), FilterConnection("::1", 1, "::2", 23), FilterConnection("::1", 1, "::2", 24)]),
        FilterCase(filter: "dport eq 443 or dport lt 10 or dport gt 60000",
                   matching: [FilterConnection("::1", 1, "::2", 443), FilterConnection("::1", 1, "::2", 9), FilterConnection("::1", 1, "::2", 60001)],
                   notMatching: [FilterConnection("::1", 1, "::2", 10), FilterConnection("::1", 1, "::2", 60000)]),
        // ss-style juxtaposition means 'and'.
        FilterCase(filter: "dst 10.0.0.0/8 dport = :443",
                   matching: [FilterConnection("1.1.1.1", 1, "10.0.0.9", 443)],
                   notMatching: [FilterConnection("1.1.1.1", 1, "10.0.0.9", 80), FilterConnection("1.1.1.1", 1, "11.0.0.9", 443)]),
        // not > and > or.
        FilterCase(filter: "dport 80 or dport 443 and src 10.0.0.1",
                   matching: [FilterConnection("9.9.9.9", 1, "8.8.8.8", 80), FilterConnection("10.0.0.1", 1, "8.8.8.8", 443)],
                   notMatching: [FilterConnection("9.9.9.9", 1, "8.8.8.8", 443)]),
        FilterCase(filter: "(dport 80 or dport 443) and src 10.0.0.1",
                   matching: [FilterConnection("10.0.0.1", 1, "8.8.8.8", 80)],
                   notMatching: [FilterConnection("9.9.9.9", 1, "8.8.8.8", 80)]),
        FilterCase(filter: "not dport 80 and dport < 100",
                   matching: [FilterConnection("::1", 1, "::2", 81)], notMatching: [FilterConnection("::1", 1, "::2", 80)]),
        FilterCase(filter: "not (dport 80 or dport 443)",
                   matching: [FilterConnection("::1", 1, "::2", 81)],
                   notMatching: [FilterConnection("::1", 1, "::2", 80), FilterConnection("::1", 1, "::2", 443)]),
        FilterCase(filter: "!(dst 10.0.0.0/8) || dport == 53",
                   matching: [FilterConnection("::1", 1, "11.0.0.1", 80), FilterConnection("::1", 1, "10.0.0.1", 53)],
                   notMatching: [FilterConnection("::1", 1, "10.0.0.1", 80)]),
        FilterCase(filter: "dst != 10.0.0.1 | dst == 10.0.0.1:22",
                   matching: [FilterConnection("::1", 1, "10.0.0.2", 80), FilterConnection("::1", 1, "10.0.0.1", 22)],
                   notMatching: [FilterConnection("::1", 1, "10.0.0.1", 80)]),
        FilterCase(filter: "dport = :https or dport ssh or dport :iperf3",
                   matching: [FilterConnection("::1", 1, "::2", 443), FilterConnection("::1", 1, "::2", 22), FilterConnection("::1", 1, "::2", 5201)],
                   notMatching: [FilterConnection("::1", 1, "::2", 80)]),
        FilterCase(filter: "SRC 10.0.0.1 AND DPORT = :HTTP",
                   matching: [FilterConnection("10.0.0.1", 1, "::2", 80)], notMatching: [FilterConnection("10.0.0.1", 1, "::2", 81)]),
        FilterCase(filter: "not not dport 80",
                   matching: [FilterConnection("::1", 1, "::2", 80)], notMatching: [FilterConnection("::1", 1, "::2", 81)]),
    ]

    @Test(arguments: goodFilters)
    func referenceEvaluator(_ testCase: FilterCase) throws {
        let filter = try FilterExpression.compile(testCase.filter)
        #expect(!filter.matchAll)
        for connection in testCase.matching {
            #expect(connection.matches(filter), "should match: \(connection.testDescription)")
        }
        for connection in testCase.notMatching {
            #expect(!connection.matches(filter), "should not match: \(connection.testDescription)")
        }
    }

    /// The canonical text recompiles to exactly the same tables.
    @Test(arguments: goodFilters)
    func canonicalTextRoundTrips(_ testCase: FilterCase) throws {
        let filter = try FilterExpression.compile(testCase.filter)
        #expect(try FilterExpression.compile(filter.source) == filter)
    }

    @Test(arguments: [
        ("dst 10.0.0.0/8 dport = :443", "dst 10.0.0.0/8 and dport == 443"),
        ("src [2001:DB8:0:0::1]:5000", "src 2001:db8::1 and sport == 5000"),
        ("not dst 10.0.0.1:443", "not (dst 10.0.0.1 and dport == 443)"),
        ("dport 1 or (dport 2 or dport 3) and sport 4", "dport == 1 or (dport == 2 or dport == 3) and sport == 4"),
        ("dst ::ffff:0:0/96", "dst 0.0.0.0/0"),
        ("dst != 10.1.2.3/8", "not dst 10.0.0.0/8"),
    ])
    func canonicalText(input: String, canonical: String) throws {
        #expect(try FilterExpression.compile(input).source == canonical)
    }

    @Test func emptyExpressionMatchesAll() throws {
        for text in ["", "   ", "\t\n"] {
            let filter = try FilterExpression.compile(text)
            #expect(filter.matchAll && filter.predicates.isEmpty && filter.clauses.isEmpty)
            #expect(FilterConnection("::1", 1, "::2", 2).matches(filter))
        }
    }

    @Test func ipv4PrefixesAreV4MappedAndMasked() throws {
        let filter = try FilterExpression.compile("dst 10.1.2.3/8")
        #expect(filter.predicates == [FilterPredicate(kind: .destinationPrefix, op: .eq, prefixLength: 104,
                                                      address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0], port: 0)])
        #expect(filter.clauses == [Clause(mustBeTrue: 1)])
        let host = try FilterExpression.compile("src 192.168.1.1")
        #expect(host.predicates.first?.prefixLength == 128)
        #expect(host.predicates.first?.kind == .sourcePrefix)
    }

    @Test func ipv6PrefixesAreMasked() throws {
        let filter = try FilterExpression.compile("dst 2001:db8:ffff::1/33")
        #expect(filter.predicates.first?.address == IPAddressText.parse("2001:db8:8000::"))
        #expect(filter.predicates.first?.prefixLength == 33)
    }

    @Test func portPredicates() throws {
        let filter = try FilterExpression.compile("sport >= :1024")
        #expect(filter.predicates == [FilterPredicate(kind: .sourcePort, op: .ge, prefixLength: 0,
                                                      address: [UInt8](repeating: 0, count: 16), port: 1024)])
        #expect(try FilterExpression.compile("dport https").predicates.first?.port == 443)
        #expect(try FilterExpression.compile("dport 0").predicates.first?.port == 0)
        #expect(try FilterExpression.compile("dport 65535").predicates.first?.port == 65535)
    }

    @Test func everyServiceNameCompiles() throws {
        for service in ServicePorts.all {
            let filter = try FilterExpression.compile("dport = :\(service.name)")
            #expect(filter.predicates.first?.port == service.port)
        }
    }

    @Test func predicatesAndClausesAreDeduplicated() throws {
        let same = try FilterExpression.compile("dport 443 or dport 443 or (dport 443)")
        #expect(same.predicates.count == 1 && same.clauses.count == 1)
        let shared = try FilterExpression.compile("dst 10.0.0.1 and dport 1 or dst 10.0.0.1 and dport 2")
        #expect(shared.predicates.count == 3)
        #expect(shared.clauses == [Clause(mustBeTrue: 0b011), Clause(mustBeTrue: 0b101)])
        // Absorption: a or (a and b) is a.
        let absorbed = try FilterExpression.compile("dport 1 or dport 1 and sport 2")
        #expect(absorbed.clauses == [Clause(mustBeTrue: 1)])
        #expect(absorbed.predicates.count == 1)
    }

    @Test func deMorganPushesNotToTheLeaves() throws {
        let filter = try FilterExpression.compile("not (dport 1 or dport 2)")
        #expect(filter.clauses == [Clause(mustBeFalse: 0b11)])
        let conjunction = try FilterExpression.compile("not (dport 1 and sport 2)")
        #expect(conjunction.clauses == [Clause(mustBeFalse: 0b01), Clause(mustBeFalse: 0b10)])
    }

    @Test func contradictoryClausesAreDropped() throws {
        let ports = try FilterExpression.compile("dport 1 and dport 2 or dport 3")
        #expect(ports.clauses.count == 1)
        #expect(ports.predicates == [.port(.destinationPort, .eq, 3)])
        let prefixes = try FilterExpression.compile("dst 10.0.0.0/8 and not dst 10.0.0.0/16 or dst 10.0.0.0/16 and not dst 10.0.0.0/8")
        #expect(prefixes.clauses.count == 1)
        let ranges = try FilterExpression.compile("(sport > 100 and sport < 50) or sport 7")
        #expect(ranges.clauses.count == 1)
    }

    @Test(arguments: [
        "dport 1 and not dport 1", "dport 1 and dport 2", "src 10.0.0.0/8 and src 2001:db8::/32",
        "src 10.0.0.0/8 and not src 0.0.0.0/0", "sport < 0", "sport > 65535", "dst 10.0.0.1 and dst 10.0.0.2",
        "(dport 1 or dport 2) and not dport 1 and not dport 2",
    ])
    func expressionsThatNeverMatchAreErrors(_ text: String) {
        #expect(throws: ExpressionError.self) { try FilterExpression.compile(text) }
        do {
            _ = try FilterExpression.compile(text)
        } catch {
            #expect(error.message.contains("never match"))
        }
    }

    static let malformed: [MalformedFilter] = [
        MalformedFilter(text: "dst", fragment: "expected an address after 'dst'", position: 3),
        MalformedFilter(text: "dst 10.0.0.256", fragment: "octet 256 is out of range (0-255)", position: 11),
        MalformedFilter(text: "dst 10.0.0.0/33", fragment: "prefix length '33' is out of range (0-32)", position: 13),
        MalformedFilter(text: "dst 2001:db8::/129", fragment: "prefix length '129' is out of range (0-128)", position: 15),
        MalformedFilter(text: "dst 10.0.0.0/", fragment: "expected a prefix length after '/'", position: 12),
        MalformedFilter(text: "dport = :70000", fragment: "port 70000 is out of range (0-65535)", position: 9),
        MalformedFilter(text: "dst 10.0.0.1:99999", fragment: "port 99999 is out of range", position: 13),
        MalformedFilter(text: "dport > ", fragment: "expected a port after 'dport >'", position: 8),
        MalformedFilter(text: "sport", fragment: "expected a port after 'sport'", position: 5),
        MalformedFilter(text: "dport = :htps", fragment: "unknown port 'htps'; did you mean 'https'?", position: 9),
        MalformedFilter(text: "dprot 443", fragment: "unknown condition 'dprot'; did you mean 'dport'?", position: 0),
        MalformedFilter(text: "dev eth0", fragment: "unknown condition 'dev'", position: 0),
        MalformedFilter(text: "10.0.0.1", fragment: "expected src, dst, sport or dport before '10.0.0.1'", position: 0),
        MalformedFilter(text: "dst 10.0.0.1 and", fragment: "'and' needs an operand", position: 16),
        MalformedFilter(text: "dst 10.0.0.1 or or dport 1", fragment: "'or' needs an operand", position: 16),
        MalformedFilter(text: "not", fragment: "'not' needs an operand", position: 3),
        MalformedFilter(text: "()", fragment: "'(' needs an operand", position: 1),
        MalformedFilter(text: "(dst 10.0.0.1", fragment: "unclosed '('", position: 0),
        MalformedFilter(text: "dst 10.0.0.1)", fragment: "unbalanced ')'", position: 12),
        MalformedFilter(text: "and dport 1", fragment: "unexpected 'and'", position: 0),
        MalformedFilter(text: "dst 1.2.3", fragment: "is not an IPv4 address", position: 4),
        MalformedFilter(text: "dst 01.2.3.4", fragment: "leading zero", position: 4),
        MalformedFilter(text: "dst 1..3.4", fragment: "empty octet", position: 6),
        MalformedFilter(text: "dst 1.2.3.x", fragment: "is not an IP address", position: 4),
        MalformedFilter(text: "dst localhost", fragment: "host names are not resolved", position: 4),
        MalformedFilter(text: "dst localhost:80", fragment: "host names are not resolved", position: 4),
        MalformedFilter(text: "dst 2001:db8:::1", fragment: "'::' may appear only once", position: 4),
        MalformedFilter(text: "dst 1::2::3", fragment: "'::' may appear only once", position: 4),
        MalformedFilter(text: "dst 1:2:3:4:5:6:7", fragment: "expected 8 groups", position: 4),
        MalformedFilter(text: "dst 1:2:3:4:5:6:7:8:9", fragment: "expected 8 groups", position: 4),
        MalformedFilter(text: "dst 12345::1", fragment: "'12345' is not a group of 1-4 hex digits", position: 4),
        MalformedFilter(text: "dst fe80:1", fragment: "write an IPv6 address with a port as [addr]:port", position: 4),
        MalformedFilter(text: "dst [::1", fragment: "missing ']'", position: 4),
        MalformedFilter(text: "dst [::1]x", fragment: "unexpected 'x' after ']'", position: 9),
        MalformedFilter(text: "dst [::1/64]/64", fragment: "the prefix length is given twice", position: 12),
        MalformedFilter(text: "dst 10.0.0.1:", fragment: "expected a port number or service name", position: 12),
        MalformedFilter(text: "dst *", fragment: "matches every endpoint", position: 4),
        MalformedFilter(text: "dst *:*", fragment: "matches every endpoint", position: 4),
        MalformedFilter(text: "dst *x", fragment: "expected ':' and a port after '*'", position: 5),
        MalformedFilter(text: "dst < 10.0.0.1", fragment: "addresses can only be compared with == or !=", position: 4),
        MalformedFilter(text: "dport => 22", fragment: "unknown operator '=>'; did you mean '>='?", position: 6),
        MalformedFilter(text: "dport 1 &&& dport 2", fragment: "unknown operator '&&&'", position: 8),
        MalformedFilter(text: "dst 10.0.0.1 ~", fragment: "unexpected character '~'", position: 13),
        MalformedFilter(text: "dst fe80::1%eth0", fragment: "unexpected character '%'", position: 11),
        MalformedFilter(text: "dport = *", fragment: "'*' is not a port here", position: 8),
        MalformedFilter(text: "dport = :", fragment: "expected a port number or service name", position: 8),
        MalformedFilter(text: "dport 1 dport", fragment: "expected a port after 'dport'", position: 13),
    ]

    @Test(arguments: malformed)
    func malformedFiltersAreReported(_ testCase: MalformedFilter) {
        do {
            let filter = try FilterExpression.compile(testCase.text)
            Issue.record("compiled to \(filter.source)")
        } catch {
            #expect(error.description.contains(testCase.fragment), "\(error)")
            #expect(error.position == testCase.position, "\(error)")
            #expect(error.input == testCase.text)
        }
    }

    @Test func nestingIsCapped() throws {
        let ok = String(repeating: "(", count: 64) + "dport 1" + String(repeating: ")", count: 64)
        #expect(try FilterExpression.compile(ok).predicates.count == 1)
        let deep = String(repeating: "(", count: 65) + "dport 1" + String(repeating: ")", count: 65)
        #expect(throws: ExpressionError.self) { try FilterExpression.compile(deep) }
        do { _ = try FilterExpression.compile(deep) } catch {
            #expect(error.message.contains("nests too deeply"))
            #expect(error.position == 64)
        }
        // not chains add no depth; long and/or chains are flat.
        let negations = String(repeating: "not ", count: 1001) + "dport 1"
        #expect(try FilterExpression.compile(negations).clauses == [Clause(mustBeFalse: 1)])
        let chain = Array(repeating: "dport 1", count: 1000).joined(separator: " and ")
        #expect(try FilterExpression.compile(chain).clauses == [Clause(mustBeTrue: 1)])
    }

    @Test func predicateLimit() throws {
        let thirtyTwo = (1...32).map { "dport \($0)" }.joined(separator: " or ")
        #expect(try FilterExpression.compile(thirtyTwo).predicates.count == 32)
        let thirtyThree = (1...33).map { "dport \($0)" }.joined(separator: " or ")
        do {
            _ = try FilterExpression.compile(thirtyThree)
            Issue.record("33 predicates compiled")
        } catch {
            #expect(error.message.contains("at most 32"))
            #expect(error.message.contains("TCPNOTIFY_MAX_FILTER_PREDICATES"))
            #expect(error.hint?.contains("--tuples FILE") == true)
        }
    }

    @Test func clauseLimit() throws {
        // Each group doubles the alternatives: 2^5 = 32 fit, 2^6 = 64 do not.
        let groups = (1...6).map { "(dport > \($0) or sport > \($0))" }
        #expect(try FilterExpression.compile(groups.prefix(5).joined(separator: " and ")).clauses.count == 32)
        for count in [6, 14] {
            let text = (1...count).map { "(dport > \($0) or sport > \($0))" }.joined(separator: " ")
            do {
                _ = try FilterExpression.compile(text)
                Issue.record("\(count) groups compiled")
            } catch {
                #expect(error.message.contains("TCPNOTIFY_MAX_FILTER_CLAUSES"))
                #expect(error.hint?.contains("--tuples FILE") == true)
            }
        }
    }

    @Test func overlongInputIsRefused() {
        let text = String(repeating: "dport 1 or ", count: 2000) + "dport 1"
        #expect(throws: ExpressionError.self) { try FilterExpression.compile(text) }
    }

    @Test func predicateDescriptions() {
        #expect(FilterPredicate.port(.sourcePort, .ge, 1024).description == "sport >= 1024")
        #expect(FilterPredicate.prefix(.destinationPrefix, AddressPrefix(address: IPAddressText.parse("2001:db8::") ?? [], length: 32))
            .description == "dst 2001:db8::/32")
    }

    @Test(arguments: [
        ("10.0.0.1", "10.0.0.1"), ("::1", "::1"), ("::", "::"), ("2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), ("fe80::", "fe80::"), ("::ffff:1.2.3.4", "1.2.3.4"),
        ("64:ff9b::1.2.3.4", "64:ff9b::102:304"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
    ])
    func addressText(input: String, formatted: String) {
        let bytes = IPAddressText.parse(input)
        #expect(bytes?.count == 16)
        #expect(bytes.map(IPAddressText.format) == formatted)
    }

    @Test func addressParsingRejectsJunk() {
        for text in ["", "1.2.3", "1.2.3.4/8", "::1::", "g::1", "1.2.3.4.5", "[::1]", ":::", "1:2:3:4:5:6:7:8:9"] {
            #expect(IPAddressText.parse(text) == nil, "\(text)")
        }
    }

    /// The compiled DNF must agree with direct evaluation of the syntax tree, for random expressions.
    @Test func compiledFormAgreesWithTheSyntaxTree() throws {
        let leaves = ["dst 10.0.0.0/8", "dst 10.1.0.0/16", "src 192.168.0.0/16", "dport 443", "dport > 1000",
                      "sport <= 2000", "dst 2001:db8::/32", "src ::1", "sport 22", "dport != 80"]
        let connections = (0..<64).map { index -> FilterConnection in
            let remotes = ["10.1.2.3", "10.2.0.1", "11.0.0.1", "2001:db8::5", "::1"]
            let locals = ["192.168.3.4", "::1", "172.16.0.1"]
            let ports: [UInt16] = [22, 80, 443, 999, 1001, 2000, 2001, 65535]
            return FilterConnection(locals[index % 3], ports[index % 8], remotes[index % 5], ports[(index / 8) % 8])
        }
        var random = ExpressionTestRandom(seed: 42)
        var compiledCount = 0
        for _ in 0..<400 {
            let text = randomTestExpression(leaves: leaves, depth: 3, random: &random)
            guard let tree = try FilterExpression.parse(text) else { continue }
            let filter: CompiledFilter
            do { filter = try FilterExpression.compile(text) } catch {
                // Only limits or a filter that never matches may fail.
                let neverMatches = connections.allSatisfy { connection in
                    !tree.evaluate { $0.holds(localAddress: IPAddressText.parse(connection.local) ?? [], localPort: connection.localPort,
                                              remoteAddress: IPAddressText.parse(connection.remote) ?? [], remotePort: connection.remotePort) }
                }
                #expect(neverMatches || error.message.contains("TCPNOTIFY_MAX"), "\(text): \(error)")
                continue
            }
            compiledCount += 1
            for connection in connections {
                let expected = tree.evaluate {
                    $0.holds(localAddress: IPAddressText.parse(connection.local) ?? [], localPort: connection.localPort,
                             remoteAddress: IPAddressText.parse(connection.remote) ?? [], remotePort: connection.remotePort)
                }
                #expect(connection.matches(filter) == expected, "\(text) on \(connection.testDescription)")
            }
        }
        #expect(compiledCount > 200)
    }
}

/// Builds random expressions over `leaves` with and/or/not/parentheses (and ss-style juxtaposition).
func randomTestExpression(leaves: [String], depth: Int, juxtaposition: Bool = true, random: inout ExpressionTestRandom) -> String {
    func operand() -> String { randomTestExpression(leaves: leaves, depth: depth - 1, juxtaposition: juxtaposition, random: &random) }
    if depth == 0 || random.next(4) == 0 { return leaves[random.next(leaves.count)] }
    switch random.next(4) {
    case 0: return "not (" + operand() + ")"
    case 1: return "(" + operand() + " and " + operand() + ")"
    case 2: return operand() + " or " + operand()
    default: return operand() + (juxtaposition ? " " : " && ") + operand()
    }
}

/// SplitMix64: deterministic, so a failing fuzz case reproduces.
struct ExpressionTestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform-enough in 0..<bound (bound > 0).
    mutating func next(_ bound: Int) -> Int { Int(nextUInt64() % UInt64(max(1, bound))) }
}

/// Feeds random and mutated strings to both compilers: every outcome must be a value or an ExpressionError
/// whose position lies within the input; compiled tables must respect the kernel limits.
@Suite struct ExpressionFuzzTests {
    static let filterSeeds = [
        "dst 10.0.0.0/8 dport = :443", "src [2001:db8::1]:5000 or not dport https", "sport >= :1024 and sport <= :2048",
        "!(dst 10.0.0.0/8) || dport == 53", "dst *:443", "(src ::1 or src 127.0.0.1) and dport != 22",
    ]
    static let ruleSeeds = [
        "rttvar > 10000 or total_retrans > 16", "stalled=retransmits >= 3 and snd_wnd == 0", "state == close-wait",
        "not (ca_state == Loss or rtt < 0x10)", "x=(rtt > 5 || rto >= 3) && !(lost == 0)",
    ]
    static let alphabet = Array("  ()!=<>&|:./[]*-_0123456789abcdefxyzABCSDTPORTLst")
    static let words = ["src", "dst", "sport", "dport", "and", "or", "not", "rtt", "state", "(", ")", "==", "!=", ">=",
                        "10.0.0.1", "::1", "[::1]:80", "*:443", ":https", "0x", "ESTABLISHED", "=", "&&", "||", "!"]

    static func mutations(of seeds: [String], seed: UInt64, count: Int) -> [String] {
        var random = ExpressionTestRandom(seed: seed)
        return (0..<count).map { index in
            if index % 3 == 0 {
                return String((0..<random.next(40)).map { _ in alphabet[random.next(alphabet.count)] })
            }
            if index % 3 == 1 {
                return (0..<random.next(12)).map { _ in words[random.next(words.count)] }.joined(separator: " ")
            }
            var characters = Array(seeds[random.next(seeds.count)])
            for _ in 0..<(1 + random.next(4)) {
                let position = random.next(characters.count + 1)
                switch random.next(3) {
                case 0 where position < characters.count: characters.remove(at: position)
                case 1: characters.insert(alphabet[random.next(alphabet.count)], at: position)
                default:
                    if position < characters.count { characters[position] = alphabet[random.next(alphabet.count)] }
                }
            }
            return String(characters)
        }
    }

    @Test func filterCompilerNeverCrashes() {
        var compiled = 0
        for text in Self.mutations(of: Self.filterSeeds, seed: 7, count: 3000) {
            do {
                let filter = try FilterExpression.compile(text)
                compiled += 1
                #expect(filter.predicates.count <= 32 && filter.clauses.count <= 32)
                let usable = filter.predicates.count >= 32 ? UInt32.max : (UInt32(1) << UInt32(filter.predicates.count)) - 1
                #expect(filter.clauses.allSatisfy { ($0.mustBeTrue | $0.mustBeFalse) & ~usable == 0 })
            } catch {
                #expect((0...text.count).contains(error.position), "\(text)")
                #expect(!error.description.isEmpty)
            }
        }
        #expect(compiled > 0)
    }

    @Test func ruleCompilerNeverCrashes() {
        var compiled = 0
        for text in Self.mutations(of: Self.ruleSeeds, seed: 11, count: 3000) {
            do {
                let rules = try RuleExpression.compile([text])
                compiled += 1
                #expect(rules.rules.count <= 32 && rules.terms.count <= 32 && rules.clauses.count <= 32)
                #expect(rules.clauses.allSatisfy { Int($0.rule) < rules.rules.count })
            } catch {
                #expect((0...text.count).contains(error.position), "\(text)")
                #expect(!error.description.isEmpty)
            }
        }
        #expect(compiled > 0)
    }

    @Test func tupleParserNeverCrashes() {
        let seeds = ["10.0.0.1:40001 10.0.0.2:443", "[2001:db8::1]:5000 [2001:db8::2]:443", "10.0.0.1:* 10.0.0.2:1 # c"]
        for text in Self.mutations(of: seeds, seed: 13, count: 2000) {
            do {
                let entries = try TupleFile.parse(text)
                #expect(entries.allSatisfy { $0.localAddress.count == 16 && $0.remoteAddress.count == 16 })
            } catch {
                #expect(error.line >= 1)
            }
        }
    }
}
