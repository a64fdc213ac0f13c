/// Reads rule constants (`50ms`, `5Mbit`, `2%`, `CLOSE_WAIT`) and durations, converting them to the
/// unit the kernel compares in, rounded to the nearest integer.
enum RuleValueParser {
    /// The constant after `LEFT OP`, in the term's kernel unit.
    static func parseValue(_ cursor: inout ExpressionTokenCursor, for term: RuleTerm, after opToken: ExpressionToken,
                           percentOnly: Bool = false) throws(ExpressionError) -> UInt64 {
        var token = cursor.current
        let kind = term.valueKind == .percentage && !percentOnly ? .ratio : term.valueKind
        guard token.kind == .word else {
            throw cursor.error("expected a value after '\(term.leftText) \(opToken.text)', found \(token.quoted)",
                               at: token, hint: valueHint(for: term))
        }
        cursor.advance()
        if kind == .tcpState, let state = TCPState.named(token.text) { return UInt64(state.rawValue) }
        if kind == .congestionState, let state = TCPCongestionState.named(token.text) { return UInt64(state.rawValue) }
        var literal: NumericLiteral
        do {
            literal = try NumericLiteral.parse(token.text)
        } catch {
            throw literalError(error, token, term: term, cursor: cursor)
        }
        // `5Mbit/s`, `10MB/s`: the lexer split off the "/s".
        if !literal.unit.isEmpty, cursor.current.kind == .arithmetic, cursor.current.text == "/",
           cursor.peek(1).kind == .word, cursor.peek(1).text == "s" {
            literal.unit += "/s"
            token.length = cursor.peek(1).offset + 1 - token.offset
            cursor.advance()
            cursor.advance()
        }
        let scale = try scale(of: literal, token, for: term, as: kind, cursor: cursor)
        guard let value = literal.scaled(by: scale) else {
            throw cursor.error("value '\(token.text)' does not fit in 64 bits", at: token)
        }
        if [.compare, .difference, .increase].contains(term.kind), value > term.maximumLeftValue {
            let what = term.kind == .compare && term.operand != .age
                ? "'\(term.leftText)' (\(term.operand.fieldWidthText), at most \(term.maximumLeftValue))"
                : "'\(term.leftText)' (at most \(term.maximumLeftValue))"
            throw cursor.error("value \(value) is too large for \(what)", at: token)
        }
        let next = cursor.current
        if literal.unit.isEmpty, next.kind == .word, ValueUnit.named(next.text) != nil {
            throw cursor.error("unexpected '\(next.text)': write the unit right after the number", at: next,
                               hint: "for example: \(token.text)\(next.text)")
        }
        return value
    }

    /// `500ms`, `2s`, `1.5m`, `1h30m` (the grammar of `DurationText`): whole milliseconds, from 1ms to
    /// 2^32-1 ms (about 49 days).
    static func parseDuration(_ cursor: inout ExpressionTokenCursor,
                              after keyword: ExpressionToken) throws(ExpressionError) -> UInt32 {
        let token = cursor.current
        let hint = "durations take a time unit: \(DurationText.examples)"
        guard token.kind == .word else {
            throw cursor.error("expected a duration after '\(keyword.text)', found \(token.quoted)", at: token, hint: hint)
        }
        cursor.advance()
        let tooLong = "duration '\(token.text)' is too long (at most \(UInt32.max)ms, about 49 days)"
        let duration: TimeSpan
        do {
            duration = try DurationText.parse(token.text)
        } catch {
            switch error.reason {
            case .tooLarge:
                throw cursor.error(tooLong, at: token)
            case .tooManyFractionDigits:
                throw cursor.error("too many digits after the point in '\(token.text)' (at most 18)", at: token)
            case .missingUnit:
                throw cursor.error("a duration needs a unit: '\(token.text)' of what?", at: token, hint: hint)
            case .unknownUnit(let unit):
                throw unknownUnit(Substring(unit), token, fitting: .time, cursor: cursor)
            case .notATimeUnit(let unit, let dimension):
                throw cursor.error("unit '\(unit)' is \(dimension), not a duration", at: token, hint: hint)
            case .unitOrder:
                throw cursor.error(error.problem, at: token, hint: hint)
            case .empty, .negative, .notANumber:
                throw cursor.error("invalid duration '\(token.text)'", at: token, hint: hint)
            }
        }
        let milliseconds = duration.milliseconds
        guard milliseconds <= UInt64(UInt32.max) else { throw cursor.error(tooLong, at: token) }
        guard milliseconds > 0 else {
            throw cursor.error("duration '\(token.text)' is shorter than 1ms; the kernel keeps time in milliseconds",
                               at: token)
        }
        return UInt32(milliseconds)
    }

    // MARK: - Units

    /// How many of the term's kernel unit one unit of the literal is.
    private static func scale(of literal: NumericLiteral, _ token: ExpressionToken, for term: RuleTerm,
                              as kind: RuleValueKind, cursor: ExpressionTokenCursor) throws(ExpressionError) -> Rational {
        guard !literal.unit.isEmpty else {
            if kind == .percentage {
                throw cursor.error("'\(term.leftText)' is a percentage: write the value with '%'", at: token,
                                   hint: "for example: \(term.leftText) \(term.op.symbol) \(token.text)%")
            }
            if !literal.isWhole, kind != .ratio {
                let advice = kind.dimension == nil ? "" : "; give a unit, e.g. \(kind.example)"
                throw cursor.error("'\(token.text)' is not a whole number: '\(term.leftText)' is \(kind.spelledOut)\(advice)",
                                   at: token)
            }
            return kind.bareScale
        }
        let spelling = String(literal.unit)
        guard let unit = ValueUnit.named(spelling) else {
            if ValueUnit.ambiguous.contains(spelling) {
                throw cursor.error(
                    "ambiguous unit '\(spelling)': bits or bytes per second?", at: token,
                    hint: "write 'bit' units for bits per second (5Mbit) or 'Bps' for bytes per second (5MBps)")
            }
            throw unknownUnit(literal.unit, token, fitting: kind.dimension, cursor: cursor)
        }
        guard let dimension = kind.dimension, dimension == unit.dimension else {
            throw cursor.error(
                "unit '\(spelling)' does not fit \(term.kind == .compare ? "field " : "")'\(term.leftText)' (\(kind.spelledOut))",
                at: token, hint: valueHint(for: term))
        }
        return unit.scale.dividing(by: kind.baseScale)
    }

    private static func unknownUnit(_ unit: Substring, _ token: ExpressionToken, fitting dimension: UnitDimension?,
                                    cursor: ExpressionTokenCursor) -> ExpressionError {
        let candidates = dimension.map { wanted in ValueUnit.all.filter { $0.dimension == wanted }.flatMap(\.spellings) }
            ?? ValueUnit.allSpellings
        let exactIgnoringCase = candidates.first { $0.lowercased() == unit.lowercased() }
        let suggestion = exactIgnoringCase ?? NameSuggestion.nearest(to: String(unit), among: candidates, name: { $0 })
        let units = dimension.map { ValueUnit.spellings(of: $0).joined(separator: ", ") }
        return cursor.error("unknown unit '\(unit)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""), at: token,
                            hint: units.map { "units here: \($0)" })
    }

    // MARK: - Messages

    private static func literalError(_ failure: NumericLiteral.Failure, _ token: ExpressionToken, term: RuleTerm,
                                     cursor: ExpressionTokenCursor) -> ExpressionError {
        let text = token.text
        switch failure {
        case .tooLarge:
            return cursor.error("value '\(text)' does not fit in 64 bits", at: token)
        case .tooManyFractionDigits:
            return cursor.error("too many digits after the point in '\(text)' (at most 18)", at: token)
        case .notANumber:
            break
        }
        if text.first?.isNumber == true {
            return cursor.error("invalid number '\(text)'", at: token, hint: valueHint(for: term))
        }
        if text.hasPrefix("-") {
            return cursor.error("values are unsigned; '\(text)' is negative", at: token, hint: valueHint(for: term))
        }
        switch term.valueKind {
        case .tcpState:
            let suggestion = NameSuggestion.nearest(to: text, among: TCPState.allCases, name: \.name)
            return cursor.error("unknown TCP state '\(text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
                                at: token, hint: valueHint(for: term))
        case .congestionState:
            let suggestion = NameSuggestion.nearest(to: text, among: TCPCongestionState.allCases, name: \.name)
            return cursor.error(
                "unknown congestion state '\(text)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
                at: token, hint: valueHint(for: term))
        default:
            if RuleTermParser.isOperandName(text.lowercased()) {
                return cursor.error("a field can only be compared with a constant, not with '\(text)'", at: token,
                                    hint: "compare their difference or ratio instead: \(term.leftText) - \(text.lowercased()) > 0")
            }
            return cursor.error("expected a number, found '\(text)'", at: token, hint: valueHint(for: term))
        }
    }

    static func valueHint(for term: RuleTerm) -> String {
        let kind = term.valueKind
        switch kind {
        case .tcpState: return "'\(term.leftText)' takes a number or one of \(kind.example)"
        case .congestionState: return "'\(term.leftText)' takes a number or one of \(kind.example)"
        case .plain, .boolean: return "'\(term.leftText)' takes \(kind.spelledOut), an integer 0-\(term.maximumLeftValue)"
        default: return "'\(term.leftText)' takes \(kind.spelledOut), e.g. \(kind.example)"
        }
    }
}

extension RuleOperand {
    /// "8-bit field", for messages about values that do not fit.
    var fieldWidthText: String {
        switch self {
        case .field(let field): "\(field.bitWidth)-bit field"
        case .age: "64-bit value"
        }
    }
}
