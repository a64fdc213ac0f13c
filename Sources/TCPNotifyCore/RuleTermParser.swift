/// Parses one term: `LEFT OP VALUE`, or a bare boolean field (`delivery_rate_app_limited` means `== 1`).
///
///     LEFT := OPERAND | OPERAND ('/' | '+' | '-') OPERAND | METRIC | ('increase' | 'rate') '(' FIELD ',' DURATION ')'
///     OPERAND := a tcp_info field | 'age'
///
/// One operator between two operands is all the kernel's term table holds; deeper arithmetic is refused.
enum RuleTermParser {
    static let functions = ["increase", "rate"]

    static func parseTerm(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> LogicExpression<RuleTerm> {
        let start = cursor.current
        var term = try parseLeft(&cursor)
        // `busy_pct < 20` is ambiguous, `busy_time / age < 0.2` is not: only the named form needs '%'.
        let percentOnly = DerivedMetric.named(start.text.lowercased())?.isPercentage == true
        let opToken = cursor.current
        guard case .comparison(let op) = opToken.kind else {
            if term.kind == .compare, term.operand.unit == .boolean {
                term.op = .eq
                term.value = 1
                return .atom(term)
            }
            throw cursor.error(
                "expected a comparison (==, !=, <, <=, >, >=) after '\(term.leftText)', found \(opToken.quoted)",
                at: opToken, hint: "terms are written FIELD OP VALUE, e.g. \(term.leftText) \(example(for: term))")
        }
        cursor.advance()
        term.op = op
        term.value = try RuleValueParser.parseValue(&cursor, for: term, after: opToken, percentOnly: percentOnly)
        return .atom(term)
    }

    /// Fields, derived metrics and `age`: anything that can stand on the left.
    static func isOperandName(_ name: String) -> Bool {
        RuleOperand.named(name) != nil || DerivedMetric.named(name) != nil
    }

    // MARK: - The compared side

    private static func parseLeft(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> RuleTerm {
        let token = cursor.advance()
        let word = token.text.lowercased()
        if cursor.current.kind == .leftParen {
            guard functions.contains(word) else { throw notAFunction(token, cursor) }
            return try parseWindowFunction(&cursor, function: token)
        }
        if functions.contains(word) {
            throw cursor.error("'\(word)' needs its arguments: \(word)(FIELD, DURATION)", at: cursor.current,
                               hint: "for example: \(word)(total_retrans, 1s)")
        }
        if let metric = DerivedMetric.named(word) {
            let term = RuleTerm(kind: metric.kind, operand: metric.operand, operand2: metric.operand2, op: .eq, value: 0)
            try refuseMoreArithmetic(cursor, after: term)
            return term
        }
        if let operand = RuleOperand.named(word) {
            return try parseArithmetic(&cursor, first: operand, firstToken: token)
        }
        if let (left, right) = splitDifference(token) {
            // `rtt-min_rtt` lexes as one word: read it as `rtt - min_rtt`.
            let term = try binaryTerm(.difference, left.operand, left.token, right.operand, right.token, cursor)
            try refuseMoreArithmetic(cursor, after: term)
            return term
        }
        throw unknownName(token, cursor)
    }

    /// After an operand: nothing (a plain comparison), or one operator and a second operand.
    private static func parseArithmetic(_ cursor: inout ExpressionTokenCursor, first: RuleOperand,
                                        firstToken: ExpressionToken) throws(ExpressionError) -> RuleTerm {
        let sign = cursor.current
        let kind: RuleTerm.Kind
        var secondToken: ExpressionToken
        if sign.kind == .arithmetic {
            guard sign.text != "*" else {
                throw cursor.error("'*' is not supported: terms compute a / b, a + b or a - b", at: sign,
                                   hint: "compare a ratio instead: 'rtt > 2 * min_rtt' is 'rtt / min_rtt > 2'")
            }
            kind = sign.text == "/" ? .ratio : .sum
            cursor.advance()
            secondToken = cursor.current
        } else if sign.kind == .word, sign.text == "-" {
            kind = .difference
            cursor.advance()
            secondToken = cursor.current
        } else if sign.kind == .word, sign.text.hasPrefix("-"), sign.text.count > 1,
                  RuleOperand.named(String(sign.text.dropFirst()).lowercased()) != nil {
            // `rtt -min_rtt`: the sign is glued to the second operand.
            kind = .difference
            secondToken = ExpressionToken(kind: .word, text: String(sign.text.dropFirst()), offset: sign.offset + 1,
                                          length: sign.length - 1)
        } else {
            return RuleTerm(kind: .compare, operand: first, op: .eq, value: 0)
        }
        guard secondToken.kind == .word else {
            throw cursor.error("expected a field after '\(first.name) \(kind == .ratio ? "/" : kind == .sum ? "+" : "-")', found \(secondToken.quoted)",
                               at: secondToken, hint: "arithmetic is between two fields (or age): rtt - min_rtt > 10ms")
        }
        cursor.advance()
        let secondName = secondToken.text.lowercased()
        guard let second = RuleOperand.named(secondName) else {
            if secondToken.text.first?.isNumber == true {
                throw cursor.error(
                    "arithmetic is between two fields (or age), not with the number '\(secondToken.text)'", at: secondToken,
                    hint: "compare with a constant instead: 'rtt / 2 > 5ms' is 'rtt > 10ms'")
            }
            if DerivedMetric.named(secondName) != nil || functions.contains(secondName) {
                throw cursor.error("'\(secondToken.text)' is already computed; a term holds one operator between two fields",
                                   at: secondToken, hint: "write it with the fields it is made of, or split the condition")
            }
            throw unknownName(secondToken, cursor)
        }
        let term = try binaryTerm(kind, first, firstToken, second, secondToken, cursor)
        try refuseMoreArithmetic(cursor, after: term)
        return term
    }

    /// Checks that the two operands can be combined this way.
    private static func binaryTerm(_ kind: RuleTerm.Kind, _ first: RuleOperand, _ firstToken: ExpressionToken,
                                   _ second: RuleOperand, _ secondToken: ExpressionToken,
                                   _ cursor: ExpressionTokenCursor) throws(ExpressionError) -> RuleTerm {
        for (operand, token) in [(first, firstToken), (second, secondToken)] where !operand.isQuantity {
            throw cursor.error("'\(operand.name)' is \(operand.unit.spelledOut), not an amount: it cannot take part in arithmetic",
                               at: token)
        }
        let timeUnits: Set<FieldUnit> = [.microseconds, .milliseconds]
        switch kind {
        case .ratio where timeUnits.contains(first.unit) && timeUnits.contains(second.unit) && first.unit != second.unit:
            throw cursor.error(
                "'\(first.name)' is in \(first.unit.spelledOut) and '\(second.name)' in \(second.unit.spelledOut): their ratio would be off by 1000",
                at: secondToken, hint: "divide times of the same resolution")
        case .sum where !first.isAdditive(with: second), .difference where !first.isAdditive(with: second):
            throw cursor.error(
                "cannot \(kind == .sum ? "add" : "subtract") '\(second.name)' (\(second.unit.spelledOut)) \(kind == .sum ? "to" : "from") '\(first.name)' (\(first.unit.spelledOut))",
                at: secondToken, hint: "both sides must have the same unit")
        default:
            break
        }
        return RuleTerm(kind: kind, operand: first, operand2: second, op: .eq, value: 0)
    }

    private static func refuseMoreArithmetic(_ cursor: ExpressionTokenCursor, after term: RuleTerm) throws(ExpressionError) {
        let token = cursor.current
        let isSign = token.kind == .arithmetic || (token.kind == .word && token.text.hasPrefix("-"))
        guard isSign else { return }
        throw cursor.error(
            "only one operator per term: '\(term.leftText)' cannot be combined further", at: token,
            hint: "the kernel computes a / b, a + b or a - b between two fields; compare each part on its own")
    }

    /// `rtt-min_rtt` as two operands, when both halves are names.
    private static func splitDifference(_ token: ExpressionToken) -> (left: (operand: RuleOperand, token: ExpressionToken),
                                                                     right: (operand: RuleOperand, token: ExpressionToken))? {
        let text = token.text
        for index in text.indices where text[index] == "-" {
            let leftText = String(text[..<index]), rightText = String(text[text.index(after: index)...])
            guard let left = RuleOperand.named(leftText.lowercased()), let right = RuleOperand.named(rightText.lowercased())
            else { continue }
            let leftToken = ExpressionToken(kind: .word, text: leftText, offset: token.offset, length: leftText.count)
            let rightToken = ExpressionToken(kind: .word, text: rightText, offset: token.offset + leftText.count + 1,
                                             length: rightText.count)
            return ((left, leftToken), (right, rightToken))
        }
        return nil
    }

    // MARK: - increase(FIELD, DURATION), rate(FIELD, DURATION)

    private static func parseWindowFunction(_ cursor: inout ExpressionTokenCursor,
                                            function: ExpressionToken) throws(ExpressionError) -> RuleTerm {
        let name = function.text.lowercased()
        let usage = "\(name)(FIELD, DURATION), e.g. \(name)(\(name == "rate" ? "bytes_acked" : "total_retrans"), 1s)"
        cursor.advance()  // '('
        let fieldToken = cursor.current
        guard fieldToken.kind == .word else {
            throw cursor.error("expected a field inside '\(name)(', found \(fieldToken.quoted)", at: fieldToken, hint: usage)
        }
        cursor.advance()
        let fieldName = fieldToken.text.lowercased()
        guard let operand = RuleOperand.named(fieldName), case .field = operand else {
            if fieldName == "age" {
                throw cursor.error("'\(name)(age, ...)' is always the window's width: follow a tcp_info field", at: fieldToken)
            }
            if DerivedMetric.named(fieldName) != nil {
                throw cursor.error("'\(name)()' follows a tcp_info field, not the derived metric '\(fieldName)'",
                                   at: fieldToken, hint: usage)
            }
            throw unknownName(fieldToken, cursor)
        }
        guard operand.isQuantity else {
            throw cursor.error("'\(operand.name)' is \(operand.unit.spelledOut), not an amount: '\(name)()' needs a counter or a time",
                               at: fieldToken, hint: usage)
        }
        let comma = cursor.current
        guard comma.kind == .comma else {
            throw cursor.error("expected ',' and a duration after '\(name)(\(operand.name)', found \(comma.quoted)",
                               at: comma, hint: usage)
        }
        cursor.advance()
        let milliseconds = try RuleValueParser.parseDuration(&cursor, after: comma)
        let closing = cursor.current
        guard closing.kind == .rightParen else {
            throw cursor.error("expected ')' to close '\(name)(', found \(closing.quoted)", at: closing, hint: usage)
        }
        cursor.advance()
        let term = RuleTerm(kind: name == "rate" ? .rate : .increase, operand: operand,
                            windowWidthNanoseconds: UInt64(milliseconds) * 1_000_000, op: .eq, value: 0)
        try refuseMoreArithmetic(cursor, after: term)
        return term
    }

    // MARK: - Errors

    private static func notAFunction(_ token: ExpressionToken, _ cursor: ExpressionTokenCursor) -> ExpressionError {
        let word = token.text.lowercased()
        if isOperandName(word) {
            return cursor.error("'\(token.text)' is not a function; the functions are increase() and rate()", at: token)
        }
        let suggestion = NameSuggestion.nearest(to: word, among: functions, name: { $0 })
        return cursor.error("unknown function '\(token.text)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                            at: token, hint: "the functions are increase(FIELD, DURATION) and rate(FIELD, DURATION)")
    }

    static func unknownName(_ token: ExpressionToken, _ cursor: ExpressionTokenCursor) -> ExpressionError {
        if token.text.first?.isNumber == true {
            return cursor.error("expected a field name, found '\(token.text)'", at: token,
                                hint: "terms are written FIELD OP VALUE, e.g. rtt > 200ms")
        }
        let word = token.text.lowercased()
        if let preset = RulePresets.named(word) {
            return cursor.error("'\(preset.name)' is a preset: it is a whole rule, not part of one", at: token,
                                hint: "give it alone: --when \(preset.name)")
        }
        let message = "unknown \(cursor.isSingleWord ? "field or preset" : "field") '\(token.text)'"
        var key = String(word.map { $0 == "-" ? "_" : $0 })
        if key.hasPrefix("tcpi_") { key.removeFirst(5) }
        let suggestion = RuleVocabulary.nearest(to: key, includingPresets: cursor.isSingleWord)
        if let suggestion {
            return cursor.error(message + "; did you mean \(suggestion.described)?", at: token,
                                hint: "'tcpnotify fields' lists the fields and metrics, 'tcpnotify rules --presets' the presets")
        }
        return cursor.error(message, at: token, hint: "'tcpnotify fields' lists the fields and metrics")
    }

    private static func example(for term: RuleTerm) -> String {
        switch term.valueKind {
        case .microseconds: "> 200ms"
        case .milliseconds: "> 1s"
        case .bytes: "> 1MB"
        case .bytesPerSecond: "< 5Mbit"
        case .ratio: "> 1.5"
        case .percentage: "> 50%"
        case .tcpState: "== ESTABLISHED"
        case .congestionState: "== Loss"
        case .boolean: "== 1"
        case .plain: "> 0"
        }
    }
}

/// Every name a rule can use, for "did you mean".
enum RuleVocabulary {
    struct Name: Sendable {
        var name: String
        var what: String
        var described: String { "'\(name)'" + (what.isEmpty ? "" : " (\(what))") }
    }

    /// The exact or nearest name, presets only where a whole rule could be one.
    static func nearest(to key: String, includingPresets: Bool) -> Name? {
        let names = includingPresets ? withPresets : withoutPresets
        if let exact = names.first(where: { $0.name == key }) { return exact }
        return NameSuggestion.nearestIndex(to: key, among: includingPresets ? presetKeys : keys).map { names[$0] }
    }

    private static let withoutPresets: [Name] = RuleOperand.allCases.map { Name(name: $0.name, what: "") }
        + DerivedMetric.all.map { Name(name: $0.name, what: "a derived metric") }
        + RuleTermParser.functions.map { Name(name: $0, what: "a function") }

    private static let withPresets = withoutPresets + RulePresets.all.map { Name(name: $0.name, what: "a preset") }
    private static let keys = withoutPresets.map { NameSuggestion.key($0.name) }
    private static let presetKeys = withPresets.map { NameSuggestion.key($0.name) }
}

