/// Parses one `--when` string: an optional `NAME=` and a rule expression.
enum RuleParser {
    static func parse(_ text: String) throws(ExpressionError) -> (name: String?, expression: LogicExpression<RuleTerm>) {
        var cursor = try ExpressionTokenCursor(input: text)
        if cursor.current.kind == .end {
            throw cursor.error("empty rule: expected FIELD OP VALUE", at: cursor.current, hint: "for example: rtt > 200000")
        }
        let name = try parseName(&cursor)
        var parser = LogicParser<RuleTerm>(
            cursor: cursor, juxtapositionMeansAnd: false,
            operandDescription: "a field name, 'not' or '('", parseLeaf: parseTerm)
        return (name, try parser.parseExpression())
    }

    /// `NAME=EXPR`. Told apart from the term `state=ESTABLISHED` by what follows the '=': an expression
    /// starts with '(', 'not', or a word followed by a comparison.
    private static func parseName(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> String? {
        let nameToken = cursor.peek(0), equals = cursor.peek(1), next = cursor.peek(2)
        guard nameToken.kind == .word, equals.kind == .comparison(.eq), equals.text == "=" else { return nil }
        let isField = TCPInfoField.named(nameToken.text.lowercased()) != nil
        let startsExpression = next.kind == .leftParen || next.kind == .not
            || (next.kind == .word && cursor.peek(3).kind.isComparison)
        if !startsExpression {
            guard next.kind == .end, !isField else { return nil }
            throw cursor.error("expected a rule expression after '\(nameToken.text)='", at: next,
                               hint: "for example: \(nameToken.text)=rtt > 200000")
        }
        guard isValidName(nameToken.text) else {
            throw cursor.error("invalid rule name '\(nameToken.text)'", at: nameToken,
                               hint: "names are a letter or '_' followed by letters, digits, '_' or '-'")
        }
        cursor.advance()
        cursor.advance()
        return nameToken.text
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// `FIELD OP VALUE`.
    private static func parseTerm(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> LogicExpression<RuleTerm> {
        let fieldToken = cursor.advance()
        guard let field = TCPInfoField.named(fieldToken.text.lowercased()) else { throw unknownField(fieldToken, cursor) }
        let opToken = cursor.current
        guard case .comparison(let op) = opToken.kind else {
            throw cursor.error("expected a comparison (==, !=, <, <=, >, >=) after '\(fieldToken.text)', found \(opToken.quoted)",
                               at: opToken, hint: "terms are written FIELD OP VALUE, e.g. \(field.name) \(example(for: field))")
        }
        cursor.advance()
        let valueToken = cursor.current
        guard valueToken.kind == .word else {
            throw cursor.error("expected a value after '\(fieldToken.text) \(opToken.text)', found \(valueToken.quoted)",
                               at: valueToken, hint: valueHint(for: field))
        }
        cursor.advance()
        let value = try parseValue(valueToken, for: field, cursor: cursor)
        return .atom(RuleTerm(field: field, op: op, value: value))
    }

    private static func unknownField(_ token: ExpressionToken, _ cursor: ExpressionTokenCursor) -> ExpressionError {
        if token.text.first?.isNumber == true {
            return cursor.error("expected a field name, found '\(token.text)'", at: token,
                                hint: "terms are written FIELD OP VALUE, e.g. rtt > 200000")
        }
        let suggestion = TCPInfoField.nearest(to: token.text)
        return cursor.error(
            "unknown field '\(token.text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
            at: token, hint: "'tcpnotify fields' lists the fields")
    }

    private static func parseValue(_ token: ExpressionToken, for field: TCPInfoField,
                                   cursor: ExpressionTokenCursor) throws(ExpressionError) -> UInt64 {
        let text = token.text
        if field == .state, let state = TCPState.named(text) { return UInt64(state.rawValue) }
        if field == .caState, let state = TCPCongestionState.named(text) { return UInt64(state.rawValue) }
        guard let first = text.first, first.isNumber else {
            throw notANumber(token, for: field, cursor: cursor)
        }
        let isHex = text.lowercased().hasPrefix("0x")
        let digits = isHex ? text.dropFirst(2) : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && (isHex ? $0.isHexDigit : $0.isNumber) }) else {
            throw cursor.error("invalid number '\(text)'", at: token,
                               hint: "values are plain integers (decimal or 0x hex) in the field's unit; " + valueHint(for: field))
        }
        guard let value = UInt64(digits, radix: isHex ? 16 : 10) else {
            throw cursor.error("value '\(text)' does not fit in 64 bits", at: token)
        }
        guard value <= field.maxValue else {
            throw cursor.error(
                "value \(value) is too large for '\(field.name)' (\(field.bitWidth)-bit field, at most \(field.maxValue))",
                at: token)
        }
        return value
    }

    private static func notANumber(_ token: ExpressionToken, for field: TCPInfoField,
                                   cursor: ExpressionTokenCursor) -> ExpressionError {
        let text = token.text
        if text.hasPrefix("-") {
            return cursor.error("values are unsigned; '\(text)' is negative", at: token, hint: valueHint(for: field))
        }
        switch field {
        case .state:
            let suggestion = NameSuggestion.nearest(to: text, among: TCPState.allCases, name: \.name)
            return cursor.error("unknown TCP state '\(text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
                                at: token, hint: valueHint(for: field))
        case .caState:
            let suggestion = NameSuggestion.nearest(to: text, among: TCPCongestionState.allCases, name: \.name)
            return cursor.error(
                "unknown congestion state '\(text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
                at: token, hint: valueHint(for: field))
        default:
            if TCPInfoField.named(text.lowercased()) != nil {
                return cursor.error("a field can only be compared with a constant, not with '\(text)'", at: token,
                                    hint: valueHint(for: field))
            }
            return cursor.error("expected a number, found '\(text)'", at: token, hint: valueHint(for: field))
        }
    }

    private static func valueHint(for field: TCPInfoField) -> String {
        switch field {
        case .state: "'state' takes a number or one of " + TCPState.allCases.map(\.name).joined(separator: ", ")
        case .caState: "'ca_state' takes a number or one of " + TCPCongestionState.allCases.map(\.name).joined(separator: ", ")
        default: "'\(field.name)' takes \(field.unit.spelledOut), an integer 0-\(field.maxValue)"
        }
    }

    private static func example(for field: TCPInfoField) -> String {
        switch field.unit {
        case .microseconds: "> 200000"
        case .milliseconds: "> 1000"
        case .state: "== ESTABLISHED"
        case .caState: "== Loss"
        default: "> 0"
        }
    }
}

extension ExpressionToken.Kind {
    var isComparison: Bool {
        if case .comparison = self { return true }
        return false
    }
}
