/// The conditions of the filter language: `src|dst ENDPOINT` and `sport|dport [OP] PORT`.
enum FilterLeafParser {
    private static let keywords = ["src", "dst", "sport", "dport"]

    /// ss also spells comparisons as words.
    private static let operatorWords: [String: ComparisonOperator] = [
        "eq": .eq, "ne": .ne, "neq": .ne, "lt": .lt, "le": .le, "gt": .gt, "ge": .ge,
    ]

    static func parse(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> LogicExpression<FilterPredicate> {
        let keyword = cursor.advance()
        switch keyword.text.lowercased() {
        case "src": return try parseEndpoint(&cursor, after: keyword, prefixKind: .sourcePrefix, portKind: .sourcePort)
        case "dst": return try parseEndpoint(&cursor, after: keyword, prefixKind: .destinationPrefix, portKind: .destinationPort)
        case "sport": return try parsePortComparison(&cursor, after: keyword, kind: .sourcePort)
        case "dport": return try parsePortComparison(&cursor, after: keyword, kind: .destinationPort)
        default: throw unknownKeyword(keyword, cursor: cursor)
        }
    }

    /// `src ADDR[/len][:port]`; an optional `=`/`==` (or `!=`, meaning not) may precede the address.
    private static func parseEndpoint(_ cursor: inout ExpressionTokenCursor, after keyword: ExpressionToken,
                                      prefixKind: FilterPredicate.Kind,
                                      portKind: FilterPredicate.Kind) throws(ExpressionError) -> LogicExpression<FilterPredicate> {
        let negated = try parseAddressEquality(&cursor)
        let operand = cursor.current
        guard operand.kind == .word else {
            throw cursor.error("expected an address after '\(keyword.text)', found \(operand.quoted)", at: operand,
                               hint: "for example: \(keyword.text) 10.0.0.0/8, \(keyword.text) [2001:db8::1]:443, \(keyword.text) *:443")
        }
        cursor.advance()
        let bytes = Array(operand.text.utf8)
        var conditions: [LogicExpression<FilterPredicate>] = []
        do {
            let endpoint = try AddressSyntax.parseEndpoint(bytes)
            if let prefix = endpoint.prefix { conditions.append(.atom(.prefix(prefixKind, prefix))) }
            if let portRange = endpoint.portRange,
               let port = try PortSyntax.parse(bytes, portRange, allowsWildcard: true) {
                conditions.append(.atom(.port(portKind, .eq, port)))
            }
        } catch {
            throw ExpressionError(error, in: operand, input: cursor.input)
        }
        guard !conditions.isEmpty else {
            throw cursor.error("'\(operand.text)' matches every endpoint", at: operand,
                               hint: "give an address or a port ('*:443'), or leave the condition out")
        }
        let condition = LogicExpression.conjunction(conditions)
        return negated ? .negation(condition) : condition
    }

    /// Consumes `=`, `==`, `eq` (false) or `!=`, `ne`, `neq` (true) after src/dst.
    private static func parseAddressEquality(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> Bool {
        let token = cursor.current
        let op: ComparisonOperator
        switch token.kind {
        case .comparison(let symbolic): op = symbolic
        case .word:
            guard let named = operatorWords[token.text.lowercased()] else { return false }
            op = named
        default: return false
        }
        guard op == .eq || op == .ne else {
            throw cursor.error("addresses can only be compared with == or !=", at: token,
                               hint: "compare ports with sport/dport, e.g. dport >= :1024")
        }
        cursor.advance()
        return op == .ne
    }

    /// `sport [OP] PORT`; without an operator it means equality (`dport 443`, `sport :ssh`).
    private static func parsePortComparison(_ cursor: inout ExpressionTokenCursor, after keyword: ExpressionToken,
                                            kind: FilterPredicate.Kind) throws(ExpressionError) -> LogicExpression<FilterPredicate> {
        var op = ComparisonOperator.eq
        var last = keyword
        switch cursor.current.kind {
        case .comparison(let symbolic):
            op = symbolic
            last = cursor.advance()
        case .word:
            if let named = operatorWords[cursor.current.text.lowercased()] {
                op = named
                last = cursor.advance()
            }
        default:
            break
        }
        let operand = cursor.current
        guard operand.kind == .word else {
            let context = last.offset == keyword.offset ? "'\(keyword.text)'" : "'\(keyword.text) \(last.text)'"
            throw cursor.error("expected a port after \(context), found \(operand.quoted)", at: operand,
                               hint: "for example: \(keyword.text) = :443, \(keyword.text) >= 1024, \(keyword.text) https")
        }
        cursor.advance()
        let bytes = Array(operand.text.utf8)
        let port: UInt16?
        do {
            port = try PortSyntax.parse(bytes, bytes.indices, allowsWildcard: false)
        } catch {
            throw ExpressionError(error, in: operand, input: cursor.input)
        }
        guard let port else { throw cursor.error("expected a port number", at: operand) }
        return .atom(.port(kind, op, port))
    }

    private static func unknownKeyword(_ token: ExpressionToken, cursor: ExpressionTokenCursor) -> ExpressionError {
        let looksLikeEndpoint = token.text.first.map { $0.isNumber || ":[*".contains($0) } ?? false
        if looksLikeEndpoint {
            return cursor.error("expected src, dst, sport or dport before '\(token.text)'", at: token,
                                hint: "say which end: 'src \(token.text)' (local) or 'dst \(token.text)' (remote)")
        }
        let suggestion = NameSuggestion.nearest(to: token.text, among: keywords) { $0 }
        return cursor.error(
            "unknown condition '\(token.text)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
            at: token, hint: "conditions are src ADDR, dst ADDR, sport OP PORT, dport OP PORT")
    }
}

extension ExpressionError {
    /// Places an error found inside one word at its spot in the whole expression.
    init(_ error: LiteralError, in token: ExpressionToken, input: String) {
        let start = min(max(0, error.range.lowerBound), token.length)
        self.init(message: error.message, input: input, position: token.offset + start,
                  length: max(1, min(error.range.count, token.length - start)), hint: error.hint)
    }
}
