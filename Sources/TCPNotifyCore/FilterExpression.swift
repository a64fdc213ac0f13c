/// One condition of a compiled filter (`struct tcpnotify_filter_predicate`).
/// Prefix predicates leave `op` at `.eq` and `port` at 0; port predicates leave the address zero.
public struct FilterPredicate: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable {
        case sourcePrefix = 1       // local address within address/prefixLength
        case destinationPrefix = 2  // remote address within address/prefixLength
        case sourcePort = 3         // local port <op> port
        case destinationPort = 4    // remote port <op> port
    }

    public var kind: Kind
    public var op: ComparisonOperator
    /// 0...128 over the 16-byte address; IPv4 /n is 96+n.
    public var prefixLength: UInt8
    /// 16 bytes, network order, zero past `prefixLength`.
    public var address: [UInt8]
    /// Host order.
    public var port: UInt16

    public init(kind: Kind, op: ComparisonOperator, prefixLength: UInt8, address: [UInt8], port: UInt16) {
        self.kind = kind
        self.op = op
        self.prefixLength = prefixLength
        self.address = address
        self.port = port
    }

    static func prefix(_ kind: Kind, _ prefix: AddressPrefix) -> FilterPredicate {
        FilterPredicate(kind: kind, op: .eq, prefixLength: prefix.length, address: prefix.address, port: 0)
    }

    static func port(_ kind: Kind, _ op: ComparisonOperator, _ port: UInt16) -> FilterPredicate {
        FilterPredicate(kind: kind, op: op, prefixLength: 0, address: [UInt8](repeating: 0, count: 16), port: port)
    }

    var isPrefix: Bool { kind == .sourcePrefix || kind == .destinationPrefix }

    var addressPrefix: AddressPrefix { AddressPrefix(address: address, length: prefixLength) }

    /// Filter-language text: "src 10.0.0.0/8", "dst 2001:db8::/32", "sport >= 1024".
    public var description: String {
        switch kind {
        case .sourcePrefix: "src " + addressPrefix.text
        case .destinationPrefix: "dst " + addressPrefix.text
        case .sourcePort: "sport \(op.symbol) \(port)"
        case .destinationPort: "dport \(op.symbol) \(port)"
        }
    }

    /// The kernel's `tn_predicate_holds` for one connection.
    public func holds(localAddress: [UInt8], localPort: UInt16, remoteAddress: [UInt8], remotePort: UInt16) -> Bool {
        switch kind {
        case .sourcePrefix: Self.prefixMatches(localAddress, address, prefixLength)
        case .destinationPrefix: Self.prefixMatches(remoteAddress, address, prefixLength)
        case .sourcePort: op.holds(UInt64(localPort), UInt64(port))
        case .destinationPort: op.holds(UInt64(remotePort), UInt64(port))
        }
    }

    /// Byte for byte the kernel's `tn_prefix_match` (the prefix is expected to be masked already).
    private static func prefixMatches(_ candidate: [UInt8], _ prefix: [UInt8], _ length: UInt8) -> Bool {
        guard length <= 128, candidate.count == 16, prefix.count == 16 else { return false }
        for index in 0..<16 {
            let bit = index * 8
            if bit >= Int(length) { return true }
            let remaining = Int(length) - bit
            let mask: UInt8 = remaining >= 8 ? 0xff : UInt8(truncatingIfNeeded: 0xff << (8 - remaining))
            if candidate[index] & mask != prefix[index] { return false }
        }
        return true
    }
}

/// A filter compiled to the kernel's table (`struct tcpnotify_filter`).
public struct CompiledFilter: Sendable, Equatable {
    /// True for the empty expression: every socket is selected, the tables are empty.
    public var matchAll: Bool
    /// At most 32 (TCPNOTIFY_MAX_FILTER_PREDICATES), no duplicates; clause bit i is predicate i.
    public var predicates: [FilterPredicate]
    /// At most 32 (TCPNOTIFY_MAX_FILTER_CLAUSES), disjunctive normal form; `rule` is 0.
    public var clauses: [Clause]
    /// Canonical text of the expression (recompiles to the same filter).
    public var source: String

    public init(matchAll: Bool, predicates: [FilterPredicate], clauses: [Clause], source: String) {
        self.matchAll = matchAll
        self.predicates = predicates
        self.clauses = clauses
        self.source = source
    }

    /// Reference evaluator with the kernel's semantics (`tn_filter_matches`). Addresses are 16 bytes
    /// (IPv4 v4-mapped), ports host order; local is `src`, remote is `dst`.
    public func matches(localAddress: [UInt8], localPort: UInt16, remoteAddress: [UInt8], remotePort: UInt16) -> Bool {
        if matchAll { return true }
        var bits: UInt32 = 0
        for (index, predicate) in predicates.prefix(32).enumerated()
        where predicate.holds(localAddress: localAddress, localPort: localPort,
                              remoteAddress: remoteAddress, remotePort: remotePort) {
            bits |= 1 << UInt32(index)
        }
        return clauses.prefix(32).contains { $0.holds(forBits: bits) }
    }
}

/// The ss-style selection language.
///
///     dst 10.0.0.0/8 dport = :443            juxtaposition means 'and'
///     src [2001:db8::1]:5000 or not dport https
///     sport >= :1024 and sport <= :2048
///
/// `src` is the local endpoint and `dst` the remote one, as in ss. Addresses: IPv4/IPv6, with an
/// optional prefix and port (`10.0.0.0/8`, `10.0.0.1:443`, `[2001:db8::1]:443`, `*:443`, `:443`).
/// Ports are numbers or a name from `ServicePorts.all`. Operators: `= == eq`, `!= ne neq`, `< lt`,
/// `<= le`, `> gt`, `>= ge`; `and && &`, `or || |`, `not !`; precedence not > and > or.
public enum FilterExpression {
    public static let maxPredicates = 32  // TCPNOTIFY_MAX_FILTER_PREDICATES
    public static let maxClauses = 32     // TCPNOTIFY_MAX_FILTER_CLAUSES

    private static let tuplesHint = "for long lists of exact endpoints use --tuples FILE"

    public static func compile(_ text: String) throws(ExpressionError) -> CompiledFilter {
        guard let expression = try parse(text) else {
            return CompiledFilter(matchAll: true, predicates: [], clauses: [], source: "")
        }
        let atoms = expression.atoms
        guard atoms.count <= maxPredicates else {
            throw ExpressionTokenCursor.errorForWholeInput(
                "the filter has \(atoms.count) distinct conditions; at most \(maxPredicates) fit the kernel table (TCPNOTIFY_MAX_FILTER_PREDICATES)",
                input: text, hint: tuplesHint)
        }
        let bits = Dictionary(uniqueKeysWithValues: atoms.enumerated().map { ($1, $0) })
        let normalForm = DisjunctiveNormalForm<FilterPredicate>(bits: bits) { clause in
            FilterSatisfiability.isSatisfiable(clause, predicates: atoms)
        }
        let clauses: [Clause]
        do {
            clauses = try normalForm.clauses(of: expression)
        } catch {
            throw tooManyClauses(text, count: nil)
        }
        guard !clauses.isEmpty else {
            throw ExpressionTokenCursor.errorForWholeInput(
                "the filter can never match: every alternative contradicts itself", input: text)
        }
        guard clauses.count <= maxClauses else { throw tooManyClauses(text, count: clauses.count) }
        let (predicates, compacted) = ClauseTable.compact(atoms: atoms, clauses: clauses)
        return CompiledFilter(matchAll: false, predicates: predicates, clauses: compacted,
                              source: expression.rendered { $0.description })
    }

    /// The syntax tree, or nil for an empty (all whitespace) expression.
    static func parse(_ text: String) throws(ExpressionError) -> LogicExpression<FilterPredicate>? {
        let cursor = try ExpressionTokenCursor(input: text)
        if cursor.current.kind == .end { return nil }
        var parser = LogicParser<FilterPredicate>(
            cursor: cursor, juxtapositionMeansAnd: true,
            operandDescription: "src, dst, sport, dport, 'not' or '('",
            parseLeaf: FilterLeafParser.parse)
        return try parser.parseExpression()
    }

    private static func tooManyClauses(_ text: String, count: Int?) -> ExpressionError {
        let size = count.map { "\($0) alternatives" } ?? "too many alternatives"
        return ExpressionTokenCursor.errorForWholeInput(
            "the filter expands to \(size) in disjunctive normal form; at most \(maxClauses) fit the kernel table (TCPNOTIFY_MAX_FILTER_CLAUSES)",
            input: text, hint: "factor out shared conditions, or " + tuplesHint)
    }
}

/// Drops atoms no clause uses any more and renumbers the bits; shared by filters and rules.
enum ClauseTable {
    static func compact<Atom>(atoms: [Atom], clauses: [Clause]) -> (atoms: [Atom], clauses: [Clause]) {
        let used = clauses.reduce(UInt32(0)) { $0 | $1.literals }
        var kept: [Atom] = []
        var newBit = [Int: Int]()
        for (bit, atom) in atoms.enumerated() where bit < 32 && used & (1 << UInt32(bit)) != 0 {
            newBit[bit] = kept.count
            kept.append(atom)
        }
        let remap = { (mask: UInt32) -> UInt32 in
            newBit.reduce(UInt32(0)) { result, entry in
                mask & (1 << UInt32(entry.key)) != 0 ? result | (1 << UInt32(entry.value)) : result
            }
        }
        return (kept, clauses.map { Clause(mustBeTrue: remap($0.mustBeTrue), mustBeFalse: remap($0.mustBeFalse), rule: $0.rule) })
    }
}

/// Semantic contradictions between filter predicates (the DNF only sees bit contradictions).
enum FilterSatisfiability {
    static func isSatisfiable(_ clause: Clause, predicates: [FilterPredicate]) -> Bool {
        var sourcePorts = ValueRangeCheck(maximum: UInt64(UInt16.max))
        var destinationPorts = ValueRangeCheck(maximum: UInt64(UInt16.max))
        var required: [FilterPredicate.Kind: [AddressPrefix]] = [:]
        var excluded: [FilterPredicate.Kind: [AddressPrefix]] = [:]
        for (bit, predicate) in predicates.enumerated() where bit < 32 {
            let mask = UInt32(1) << UInt32(bit)
            guard clause.literals & mask != 0 else { continue }
            let mustHold = clause.mustBeTrue & mask != 0
            switch predicate.kind {
            case .sourcePort:
                sourcePorts.require(mustHold ? predicate.op : predicate.op.negated, UInt64(predicate.port))
            case .destinationPort:
                destinationPorts.require(mustHold ? predicate.op : predicate.op.negated, UInt64(predicate.port))
            case .sourcePrefix, .destinationPrefix:
                if mustHold {
                    required[predicate.kind, default: []].append(predicate.addressPrefix)
                } else {
                    excluded[predicate.kind, default: []].append(predicate.addressPrefix)
                }
            }
        }
        return sourcePorts.isSatisfiable && destinationPorts.isSatisfiable
            && prefixesSatisfiable(required[.sourcePrefix] ?? [], excluded[.sourcePrefix] ?? [])
            && prefixesSatisfiable(required[.destinationPrefix] ?? [], excluded[.destinationPrefix] ?? [])
    }

    /// Required prefixes must nest (their intersection is the narrowest one); an excluded prefix
    /// covering that intersection leaves nothing. Unions of exclusions are not checked (still sound).
    private static func prefixesSatisfiable(_ required: [AddressPrefix], _ excluded: [AddressPrefix]) -> Bool {
        guard let narrowest = required.max(by: { $0.length < $1.length }) else {
            return !excluded.contains { $0.length == 0 }
        }
        return required.allSatisfy { $0.contains(narrowest) } && !excluded.contains { $0.contains(narrowest) }
    }
}
