import Testing
@testable import TCPNotifyCore

/// The kernel's side of inet_diag bytecode, in Swift: `inet_diag_bc_audit` (what it refuses) and
/// `inet_diag_bc_run` (which sockets it accepts), from net/ipv4/inet_diag.c.
enum InetDiagBytecodeInterpreter {
    /// One socket as the kernel's `struct inet_diag_entry` sees it: AF_INET sockets have 4-byte addresses.
    struct Entry: CustomStringConvertible {
        var family: UInt8
        var sourceAddress: [UInt8]
        var destinationAddress: [UInt8]
        var sourcePort: UInt16
        var destinationPort: UInt16

        var description: String {
            "family \(family) \(sourceAddress):\(sourcePort) -> \(destinationAddress):\(destinationPort)"
        }
    }

    static func u16(_ bytes: [UInt8], _ offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }

    /// nil when the kernel would accept the program, else why it would return EINVAL.
    static func auditFailure(_ bytes: [UInt8]) -> String? {
        guard bytes.count >= 4 else { return "shorter than one op" }
        var position = 0
        var length = bytes.count
        while length > 0 {
            guard position + 4 <= bytes.count else { return "op past the end at \(position)" }
            let code = bytes[position], yes = Int(bytes[position + 1]), no = u16(bytes, position + 2)
            var minimum = 4
            switch code {
            case 7, 8:
                minimum += 8
                guard length >= minimum else { return "hostcond truncated at \(position)" }
                let family = bytes[position + 4], prefixLength = Int(bytes[position + 5])
                let addressLength: Int
                switch family {
                case 0: addressLength = 0
                case 2: addressLength = 4
                case 10: addressLength = 16
                default: return "bad family \(family) at \(position)"
                }
                minimum += addressLength
                guard length >= minimum else { return "address truncated at \(position)" }
                guard prefixLength <= 8 * addressLength else { return "prefix too long at \(position)" }
            case 2, 3, 4, 5, 11, 12:
                minimum += 4
                guard length >= minimum else { return "port op truncated at \(position)" }
            case 0, 1, 6:
                break
            default:
                return "unknown op \(code) at \(position)"
            }
            if code != 0 {
                guard no >= minimum, no <= length + 4, no & 3 == 0 else { return "bad no \(no) at \(position)" }
                if no < length && !validTarget(bytes, target: position + no) { return "no target \(position + no) off the yes chain" }
            }
            guard yes >= minimum, yes <= length, yes & 3 == 0 else { return "bad yes \(yes) at \(position)" }
            position += yes
            length -= yes
        }
        return length == 0 ? nil : "does not end on an op boundary"
    }

    /// `valid_cc`: following `yes` from the start reaches `target` exactly.
    private static func validTarget(_ bytes: [UInt8], target: Int) -> Bool {
        var position = 0
        while position <= bytes.count {
            if position > target { return false }
            if position == target { return true }
            let yes = Int(bytes[position + 1])
            if yes < 4 || yes & 3 != 0 { return false }
            position += yes
        }
        return false
    }

    /// `inet_diag_bc_run`: true when the socket is selected.
    static func run(_ bytes: [UInt8], _ entry: Entry) -> Bool {
        var position = 0
        var length = bytes.count
        while length > 0 {
            let code = bytes[position]
            var yes = true
            switch code {
            case 1: yes = false
            case 2: yes = Int(entry.sourcePort) >= u16(bytes, position + 6)
            case 3: yes = Int(entry.sourcePort) <= u16(bytes, position + 6)
            case 4: yes = Int(entry.destinationPort) >= u16(bytes, position + 6)
            case 5: yes = Int(entry.destinationPort) <= u16(bytes, position + 6)
            case 11: yes = Int(entry.sourcePort) == u16(bytes, position + 6)
            case 12: yes = Int(entry.destinationPort) == u16(bytes, position + 6)
            case 7, 8:
                let family = bytes[position + 4], prefixLength = Int(bytes[position + 5])
                let port = Int32(bitPattern: UInt32(bytes[position + 8]) | UInt32(bytes[position + 9]) << 8
                    | UInt32(bytes[position + 10]) << 16 | UInt32(bytes[position + 11]) << 24)
                let entryPort = code == 7 ? entry.sourcePort : entry.destinationPort
                let address = code == 7 ? entry.sourceAddress : entry.destinationAddress
                let addressLength = family == 2 ? 4 : family == 10 ? 16 : 0
                let condition = Array(bytes[(position + 12)..<(position + 12 + addressLength)])
                if port != -1 && port != Int32(entryPort) {
                    yes = false
                } else if family != 0 && family != entry.family {
                    yes = entry.family == 10 && family == 2 && Array(address[0..<12]) == SockDiagBytecode.mappedPrefix.prefix(12).map { $0 }
                        && bitstringMatch(Array(address[12..<16]), condition, prefixLength)
                } else if prefixLength != 0 {
                    yes = bitstringMatch(address, condition, prefixLength)
                }
            default:
                break
            }
            let step = yes ? Int(bytes[position + 1]) : u16(bytes, position + 2)
            position += step
            length -= step
        }
        return length == 0
    }

    private static func bitstringMatch(_ a: [UInt8], _ b: [UInt8], _ bits: Int) -> Bool {
        SockDiagBytecode.bitsEqual(a, b, count: bits)
    }
}

/// A small seeded generator, so a failure can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct SockDiagBytecodeTests {
    typealias Interpreter = InetDiagBytecodeInterpreter

    static func mapped(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
    }

    static func address(_ text: String) -> [UInt8] {
        guard let address = IPAddressText.parse(text) else { fatalError("bad test address \(text)") }
        return address
    }

    /// The kernel's view of a connection given as 16-byte addresses: AF_INET when asked and both are v4-mapped.
    static func entry(_ local: [UInt8], _ localPort: UInt16, _ remote: [UInt8], _ remotePort: UInt16, asIPv4: Bool) -> Interpreter.Entry {
        let v4 = asIPv4 && IPAddressText.isV4Mapped(local) && IPAddressText.isV4Mapped(remote)
        return Interpreter.Entry(
            family: v4 ? 2 : 10, sourceAddress: v4 ? Array(local[12..<16]) : local,
            destinationAddress: v4 ? Array(remote[12..<16]) : remote, sourcePort: localPort, destinationPort: remotePort)
    }

    @Test func everySocketNeedsNoBytecode() throws {
        #expect(try SockDiagBytecode.compile(FilterExpression.compile("")) == [])
        #expect(try SockDiagBytecode.compile(FilterExpression.compile("src 0.0.0.0/0 or src ::/0")) == [])
    }

    @Test func portEqualityIsOneComparisonWithThePortInTheNextOp() throws {
        let bytes = try SockDiagBytecode.compile(FilterExpression.compile("dport = :443"))
        // D_EQ, yes 8, no 12 (reject = end + 4); then the port in `no`.
        #expect(bytes == [12, 8, 12, 0, 0, 0, 0xbb, 0x01])
        #expect(Interpreter.auditFailure(bytes) == nil)
    }

    @Test func ipv4PrefixIsAnIPv4HostCondition() throws {
        let bytes = try SockDiagBytecode.compile(FilterExpression.compile("src 10.0.0.0/8"))
        #expect(bytes == [7, 16, 20, 0, 2, 8, 0, 0, 0xff, 0xff, 0xff, 0xff, 10, 0, 0, 0])
        #expect(Interpreter.auditFailure(bytes) == nil)
        let v4 = Self.entry(Self.mapped(10, 1, 2, 3), 1, Self.mapped(1, 1, 1, 1), 2, asIPv4: true)
        let mappedV6 = Self.entry(Self.mapped(10, 1, 2, 3), 1, Self.mapped(1, 1, 1, 1), 2, asIPv4: false)
        let other = Self.entry(Self.mapped(11, 1, 2, 3), 1, Self.mapped(1, 1, 1, 1), 2, asIPv4: true)
        #expect(Interpreter.run(bytes, v4))
        #expect(Interpreter.run(bytes, mappedV6), "an AF_INET condition matches v4-mapped AF_INET6 sockets")
        #expect(!Interpreter.run(bytes, other))
    }

    @Test func ipv6PrefixIsAnIPv6HostCondition() throws {
        let bytes = try SockDiagBytecode.compile(FilterExpression.compile("dst 2001:db8::/32"))
        #expect(bytes.count == 28)
        #expect(Array(bytes[0..<6]) == [8, 28, 32, 0, 10, 32])
        #expect(Array(bytes[12..<16]) == [0x20, 0x01, 0x0d, 0xb8])
    }

    @Test func negationJumpsOverAFailingJump() throws {
        let bytes = try SockDiagBytecode.compile(FilterExpression.compile("not dport = :80"))
        // D_EQ 80 (no: skip the JMP), JMP to reject.
        #expect(bytes == [12, 8, 12, 0, 0, 0, 80, 0, 1, 4, 8, 0])
        #expect(Interpreter.auditFailure(bytes) == nil)
    }

    /// `< :0` and `> :65535` hold for no port; `<= :65535` and `>= :0` for every one.
    @Test(arguments: [("dport < :0", false), ("dport > :65535", false), ("dport <= :65535", true), ("dport >= :0", true),
                      ("sport < :0", false), ("sport > :65535", false), ("sport >= :0", true), ("sport <= :65535", true)])
    func portEdgeCases(filter: String, selectsAll: Bool) throws {
        // A filter that can never match is refused by the compiler; build the table by hand then.
        let predicate = FilterExpression.predicateForTests(filter)
        let compiled = CompiledFilter(matchAll: false, predicates: [predicate], clauses: [Clause(mustBeTrue: 1)], source: filter)
        let bytes = try SockDiagBytecode.compile(compiled)
        #expect(Interpreter.auditFailure(bytes) == nil)
        for port: UInt16 in [0, 1, 80, 65534, 65535] {
            let entry = Self.entry(Self.mapped(127, 0, 0, 1), port, Self.mapped(127, 0, 0, 1), port, asIPv4: true)
            #expect(Interpreter.run(bytes, entry) == selectsAll, "\(filter) at port \(port)")
            #expect(compiled.matches(localAddress: Self.mapped(127, 0, 0, 1), localPort: port,
                                     remoteAddress: Self.mapped(127, 0, 0, 1), remotePort: port) == selectsAll)
        }
    }

    /// Prefixes around the v4-mapped range: an IPv6 prefix covering ::ffff:0:0/96 matches AF_INET sockets too.
    @Test func ipv6PrefixesCoveringMappedAddressesMatchIPv4Sockets() throws {
        for (filter, matchesIPv4) in [("dst ::/80", true), ("dst ::/1", true), ("dst 8000::/1", false),
                                      ("dst ::ffff:0:0/96", true), ("dst 2001:db8::/32", false)] {
            let compiled = try FilterExpression.compile(filter)
            let bytes = try SockDiagBytecode.compile(compiled)
            #expect(Interpreter.auditFailure(bytes) == nil, "\(filter)")
            let v4 = Self.entry(Self.mapped(10, 0, 0, 1), 1000, Self.mapped(10, 0, 0, 2), 80, asIPv4: true)
            #expect(Interpreter.run(bytes, v4) == matchesIPv4, "\(filter)")
            #expect(compiled.matches(localAddress: Self.mapped(10, 0, 0, 1), localPort: 1000,
                                     remoteAddress: Self.mapped(10, 0, 0, 2), remotePort: 80) == matchesIPv4, "\(filter)")
        }
    }

    @Test func tooManyAlternativesStayWithinTheJumpRange() throws {
        // The largest tables the filter compiler allows still fit 16-bit jumps.
        let terms = (0..<16).map { "(dst 2001:db8::\($0)/128 and not src 2001:db8:1::\($0)/128)" }
        let compiled = try FilterExpression.compile(terms.joined(separator: " or "))
        let bytes = try SockDiagBytecode.compile(compiled)
        #expect(Interpreter.auditFailure(bytes) == nil)
        #expect(bytes.count <= SockDiagBytecode.maximumBytes)
    }

    // MARK: - Differential

    static let prefixes = ["10.0.0.0/8", "10.1.2.3", "10.1.0.0/16", "192.168.1.0/24", "0.0.0.0/0", "127.0.0.0/8",
                           "::/0", "::1", "2001:db8::/32", "2001:db8::5", "::ffff:0:0/96", "::/80", "::/1", "8000::/1",
                           "fe80::/10", "2001:db8:1::/48", "10.1.2.128/25"]
    static let ports: [UInt16] = [0, 1, 80, 443, 1023, 1024, 1025, 8080, 65534, 65535]
    static let operators = ["=", "!=", "<", "<=", ">", ">="]

    static func randomFilter(_ rng: inout SplitMix64, depth: Int) -> String {
        if depth == 0 || Int.random(in: 0..<3, using: &rng) == 0 {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: return "src \(prefixes.randomElement(using: &rng)!)"
            case 1: return "dst \(prefixes.randomElement(using: &rng)!)"
            case 2: return "sport \(operators.randomElement(using: &rng)!) :\(ports.randomElement(using: &rng)!)"
            default: return "dport \(operators.randomElement(using: &rng)!) :\(ports.randomElement(using: &rng)!)"
            }
        }
        let left = randomFilter(&rng, depth: depth - 1), right = randomFilter(&rng, depth: depth - 1)
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: return "(\(left)) and (\(right))"
        case 1: return "(\(left)) or (\(right))"
        case 2: return "not (\(left))"
        default: return "\(left) \(right)"
        }
    }

    static let addresses: [[UInt8]] = [
        mapped(10, 1, 2, 3), mapped(10, 1, 2, 200), mapped(10, 2, 0, 1), mapped(192, 168, 1, 7), mapped(8, 8, 8, 8),
        mapped(127, 0, 0, 1), address("::1"), address("2001:db8::5"), address("2001:db8:1::1"), address("fe80::1"),
        address("9000::1"), address("::2"),
    ]

    /// Over thousands of random filters and random connections, the kernel's interpretation of the bytecode
    /// selects exactly what the filter's own evaluator selects, and the audit accepts every program.
    @Test func bytecodeAgreesWithTheFilterEvaluator() throws {
        var rng = SplitMix64(state: 0x7c9_5d1a_2b)
        var compiledCount = 0, comparisons = 0, selected = 0
        for _ in 0..<3000 {
            let text = Self.randomFilter(&rng, depth: 3)
            guard let filter = try? FilterExpression.compile(text) else { continue }
            compiledCount += 1
            let bytes = try SockDiagBytecode.compile(filter)
            if !bytes.isEmpty {
                let failure = Interpreter.auditFailure(bytes)
                #expect(failure == nil, "audit refuses '\(text)': \(failure ?? "")")
                if failure != nil { continue }
            }
            for _ in 0..<40 {
                let local = Self.addresses.randomElement(using: &rng)!
                let remote = Self.addresses.randomElement(using: &rng)!
                let localPort = Bool.random(using: &rng) ? Self.ports.randomElement(using: &rng)! : UInt16.random(in: 0...65535, using: &rng)
                let remotePort = Bool.random(using: &rng) ? Self.ports.randomElement(using: &rng)! : UInt16.random(in: 0...65535, using: &rng)
                let expected = filter.matches(localAddress: local, localPort: localPort, remoteAddress: remote, remotePort: remotePort)
                for asIPv4 in [true, false] {
                    let entry = Self.entry(local, localPort, remote, remotePort, asIPv4: asIPv4)
                    let kernel = bytes.isEmpty || Interpreter.run(bytes, entry)
                    #expect(kernel == expected, "'\(text)' (\(filter.source)) on \(entry): bytecode \(kernel), filter \(expected)")
                    comparisons += 1
                    if kernel { selected += 1 }
                }
            }
        }
        print("sock_diag bytecode: \(compiledCount) random filters, \(comparisons) comparisons, \(selected) selected")
        #expect(compiledCount > 1500)
        #expect(selected > comparisons / 10 && selected < comparisons * 9 / 10, "both outcomes are exercised")
    }
}

extension FilterExpression {
    /// The single predicate of a one-condition filter text, even one the compiler refuses as unsatisfiable.
    static func predicateForTests(_ text: String) -> FilterPredicate {
        guard let expression = try? parse(text), let atom = expression.atoms.first else { fatalError("bad test filter \(text)") }
        return atom
    }
}
