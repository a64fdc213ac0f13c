/// A token of the filter and rule languages. Offsets and lengths count Characters of the input, so
/// errors can put a caret under the token.
struct ExpressionToken: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Identifiers, numbers, addresses, ports: each language classifies words itself.
        case word
        case comparison(ComparisonOperator)
        case and
        case or
        case not
        case leftParen
        case rightParen
        /// Rule language only: the ',' between function arguments.
        case comma
        /// Rule language only: an arithmetic sign, '/', '+' or '*' (a '-' stays inside words).
        case arithmetic
        case end
    }

    var kind: Kind
    var text: String
    var offset: Int
    var length: Int

    /// The token as messages quote it: "'rtt'" or "end of input".
    var quoted: String { kind == .end ? "end of input" : "'\(text)'" }

    /// Words, '(' and 'not' begin an operand of and/or.
    var startsOperand: Bool {
        switch kind {
        case .word, .leftParen, .not: true
        default: false
        }
    }
}

/// Splits an expression into tokens. Shared by the filter and the rule language.
///
/// A word is a run of letters, digits and `_ . : / [ ] * -`, which keeps addresses (`[::1]:443`,
/// `10.0.0.0/8`), ports (`:443`) and names (`close-wait`) whole. Operators are runs of `= < > !`
/// (or of `&`, `|`), so a typo like `=>` is reported as one unknown operator.
///
/// The rule dialect has arithmetic instead of addresses: `/`, `+` and `*` are signs of their own,
/// `,` separates function arguments, and `%` belongs to words (`2%`). A `-` stays inside words
/// because names use it (`close-wait`, `receiver-limited`); the rule parser splits `rtt-min_rtt`.
enum ExpressionLexer {
    enum Dialect: Sendable {
        case filter
        case rule
    }

    /// Longer expressions are refused up front so no input can make the compilers slow.
    static let maximumLength = 16_384

    static func tokenize(_ input: String, dialect: Dialect = .filter) throws(ExpressionError) -> [ExpressionToken] {
        let characters = Array(input)
        guard characters.count <= maximumLength else {
            throw ExpressionError(
                message: "expression is too long (\(characters.count) characters, at most \(maximumLength))",
                input: input, position: maximumLength, length: 1,
                hint: "for long lists of exact endpoints use --tuples FILE")
        }
        var tokens: [ExpressionToken] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let start = index
            if character.isWhitespace {
                index += 1
            } else if character == "(" || character == ")" {
                tokens.append(ExpressionToken(kind: character == "(" ? .leftParen : .rightParen,
                                              text: String(character), offset: start, length: 1))
                index += 1
            } else if dialect == .rule, character == "," || isArithmeticCharacter(character) {
                tokens.append(ExpressionToken(kind: character == "," ? .comma : .arithmetic,
                                              text: String(character), offset: start, length: 1))
                index += 1
            } else if isWordCharacter(character, dialect: dialect) {
                while index < characters.count, isWordCharacter(characters[index], dialect: dialect) { index += 1 }
                let text = String(characters[start..<index])
                tokens.append(ExpressionToken(kind: keywordKind(text), text: text, offset: start, length: index - start))
            } else if isOperatorCharacter(character) {
                while index < characters.count, isOperatorCharacter(characters[index]) { index += 1 }
                tokens += try operatorTokens(String(characters[start..<index]), at: start, input: input)
            } else if character == "&" || character == "|" {
                while index < characters.count, characters[index] == character { index += 1 }
                let text = String(characters[start..<index])
                guard text.count <= 2 else {
                    throw ExpressionError(message: "unknown operator '\(text)'", input: input,
                                          position: start, length: text.count,
                                          hint: "use 'and' (&&) or 'or' (||)")
                }
                tokens.append(ExpressionToken(kind: character == "&" ? .and : .or, text: text,
                                              offset: start, length: text.count))
            } else {
                throw ExpressionError(message: "unexpected character '\(character)'", input: input,
                                      position: start, length: 1)
            }
        }
        tokens.append(ExpressionToken(kind: .end, text: "", offset: characters.count, length: 1))
        return tokens
    }

    static func isWordCharacter(_ character: Character, dialect: Dialect = .filter) -> Bool {
        // µs (micro sign or Greek mu), the one non-ASCII letter of the rule language's units.
        guard let ascii = character.asciiValue else { return dialect == .rule && (character == "µ" || character == "μ") }
        switch ascii {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"),
             UInt8(ascii: "-"):
            return true
        case UInt8(ascii: "/"), UInt8(ascii: "*"):
            return dialect == .filter
        case UInt8(ascii: "%"):
            return dialect == .rule
        default:
            return false
        }
    }

    private static func isArithmeticCharacter(_ character: Character) -> Bool {
        character == "/" || character == "+" || character == "*"
    }

    private static func isOperatorCharacter(_ character: Character) -> Bool {
        character == "=" || character == "<" || character == ">" || character == "!"
    }

    private static func keywordKind(_ word: String) -> ExpressionToken.Kind {
        guard word.utf8.count <= 3 else { return .word }
        return switch word.lowercased() {
        case "and": .and
        case "or": .or
        case "not": .not
        default: .word
        }
    }

    /// A run of `=<>!`: one comparison, or one or more `!` (negations).
    private static func operatorTokens(_ text: String, at offset: Int,
                                       input: String) throws(ExpressionError) -> [ExpressionToken] {
        if let op = ComparisonOperator.symbolic(text) {
            return [ExpressionToken(kind: .comparison(op), text: text, offset: offset, length: text.count)]
        }
        if text.allSatisfy({ $0 == "!" }) {
            return (0..<text.count).map { ExpressionToken(kind: .not, text: "!", offset: offset + $0, length: 1) }
        }
        let suggestion: [String: String] = ["=>": ">=", "=<": "<=", "<>": "!=", "===": "==", "=!": "!=", "!==": "!="]
        throw ExpressionError(
            message: "unknown operator '\(text)'" + (suggestion[text].map { "; did you mean '\($0)'?" } ?? ""),
            input: input, position: offset, length: text.count,
            hint: "comparisons are ==, !=, <, <=, >, >=")
    }
}

/// Walks a token array; the last token is always `.end`, so `current` never runs off the end.
struct ExpressionTokenCursor {
    let input: String
    private let tokens: [ExpressionToken]
    private(set) var index = 0

    init(input: String, dialect: ExpressionLexer.Dialect = .filter) throws(ExpressionError) {
        self.input = input
        self.tokens = try ExpressionLexer.tokenize(input, dialect: dialect)
    }

    var current: ExpressionToken { peek(0) }

    /// The whole input is one word: where a rule preset's name would fit.
    var isSingleWord: Bool { tokens.count == 2 && tokens[0].kind == .word }

    /// The token `offset` places ahead (clamped to the final `.end`).
    func peek(_ offset: Int) -> ExpressionToken {
        tokens[max(0, min(index + offset, tokens.count - 1))]
    }

    /// The token before `current`, if any.
    var previous: ExpressionToken? { index > 0 ? tokens[min(index - 1, tokens.count - 1)] : nil }

    @discardableResult
    mutating func advance() -> ExpressionToken {
        let token = current
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    func error(_ message: String, at token: ExpressionToken, hint: String? = nil) -> ExpressionError {
        ExpressionError(message: message, input: input, position: token.offset, length: token.length, hint: hint)
    }

    /// An error about the whole input (limits, contradictions): underline all of it.
    func errorForWholeInput(_ message: String, hint: String? = nil) -> ExpressionError {
        Self.errorForWholeInput(message, input: input, hint: hint)
    }

    static func errorForWholeInput(_ message: String, input: String, hint: String? = nil) -> ExpressionError {
        ExpressionError(message: message, input: input, position: 0, length: max(1, input.count), hint: hint)
    }
}
