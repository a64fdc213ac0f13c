/// One `--when` string, parsed: an optional `NAME=`, the condition, and its notification control.
struct ParsedRule: Sendable {
    var name: String?
    var expression: LogicExpression<RuleTerm>
    var control: RuleControl
}

/// Parses one `--when` string: `[NAME=] EXPRESSION [for DURATION] [every DURATION] [once]`, or
/// `[NAME=] EXPRESSION each` (also written `every event`).
enum RuleParser {
    /// Words that end the condition and start its controls.
    static let controlWords: Set<String> = ["for", "every", "once", "each"]

    static func parse(_ text: String) throws(ExpressionError) -> ParsedRule {
        var cursor = try ExpressionTokenCursor(input: text, dialect: .rule)
        if cursor.current.kind == .end {
            throw cursor.error("empty rule: expected FIELD OP VALUE", at: cursor.current, hint: "for example: rtt > 200ms")
        }
        let name = try parseName(&cursor)
        if cursor.current.kind == .word, controlWords.contains(cursor.current.text.lowercased()) {
            throw cursor.error("expected a condition before '\(cursor.current.text)'", at: cursor.current,
                               hint: "for example: rtt > 200ms \(["once", "each"].contains(cursor.current.text.lowercased()) ? cursor.current.text.lowercased() : "for 2s")")
        }
        var parser = LogicParser<RuleTerm>(
            cursor: cursor, juxtapositionMeansAnd: false,
            operandDescription: "a field name, 'not' or '('", parseLeaf: RuleTermParser.parseTerm)
        parser.stopWords = controlWords
        let expression = try parser.parseExpression()
        cursor = parser.cursor
        let control = try parseControls(&cursor)
        return ParsedRule(name: name, expression: expression, control: control)
    }

    /// `NAME=EXPR`. Told apart from the term `state=ESTABLISHED` by what follows the '=': a field
    /// followed by a single value (and nothing, a control or a connective) is a term.
    private static func parseName(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> String? {
        let nameToken = cursor.peek(0), equals = cursor.peek(1), next = cursor.peek(2)
        guard nameToken.kind == .word, equals.kind == .comparison(.eq), equals.text == "=" else { return nil }
        let isOperand = RuleTermParser.isOperandName(nameToken.text.lowercased())
        if isOperand {
            if next.kind == .end { return nil }  // `rtt=`: a term missing its value
            let after = cursor.peek(3)
            // A field is never a value, so `state=delivery_rate_app_limited` names a rule.
            let valueFollows = next.kind == .word && !RuleTermParser.isOperandName(next.text.lowercased())
                && !after.kind.isComparison && after.kind != .leftParen
                && after.kind != .arithmetic && !(after.kind == .word && after.text == "-")
            if valueFollows { return nil }
        } else if next.kind == .end {
            throw cursor.error("expected a rule expression after '\(nameToken.text)='", at: next,
                               hint: "for example: \(nameToken.text)=rtt > 200ms")
        }
        guard isValidName(nameToken.text) else {
            throw cursor.error("invalid rule name '\(nameToken.text)'", at: nameToken,
                               hint: "names are a letter or '_' followed by letters, digits, '_' or '-'")
        }
        cursor.advance()
        cursor.advance()
        return nameToken.text
    }

    static func isValidName(_ name: String) -> Bool {
        guard let first = name.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    /// `for DURATION`, `every DURATION`, `once`, `each` (`every event`), in any order, each at most once.
    private static func parseControls(_ cursor: inout ExpressionTokenCursor) throws(ExpressionError) -> RuleControl {
        var control = RuleControl()
        var seen: [String: ExpressionToken] = [:]
        while cursor.current.kind != .end {
            let token = cursor.current
            var word = token.text.lowercased()
            guard token.kind == .word, controlWords.contains(word) else {
                throw cursor.error("unexpected \(token.quoted) after the rule's controls", at: token,
                                   hint: "conditions go first, then 'for', 'every', 'once' or 'each': rtt > 50ms and lost > 0 for 2s")
            }
            let next = cursor.peek(1)
            let everyEvent = word == "every" && next.kind == .word && next.text.lowercased() == "event"
            if everyEvent { word = "each" }
            if seen[word] != nil {
                throw cursor.error("'\(everyEvent ? "every event" : word)' is given twice", at: token)
            }
            seen[word] = token
            cursor.advance()
            if everyEvent { cursor.advance() }
            switch word {
            case "for": control.forMilliseconds = try RuleValueParser.parseDuration(&cursor, after: token)
            case "every": control.everyMilliseconds = try RuleValueParser.parseDuration(&cursor, after: token)
            case "each": control.each = true
            default: control.once = true
            }
        }
        if let each = seen["each"], let other = ["for", "every", "once"].compactMap({ seen[$0] }).first {
            let later = each.offset > other.offset ? each : other
            throw cursor.error("'each' notifies at every event at which the rule holds; it cannot be combined with '\(other.text.lowercased())'",
                               at: later, hint: "keep 'each' for a record per event, or drop it for 'for'/'every'/'once'")
        }
        if control.once, control.everyMilliseconds > 0, let later = [seen["every"], seen["once"]].compactMap({ $0 }).max(by: { $0.offset < $1.offset }) {
            throw cursor.error("'once' and 'every' contradict each other: 'every' notifies again, 'once' never does",
                               at: later, hint: "keep one of them")
        }
        return control
    }
}

extension ExpressionToken.Kind {
    var isComparison: Bool {
        if case .comparison = self { return true }
        return false
    }
}
