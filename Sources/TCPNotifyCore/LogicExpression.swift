/// The boolean structure shared by filters and rules: atoms combined with not/and/or.
/// `and`/`or` are n-ary and flattened, so the tree is only as deep as the parentheses (which the
/// parser caps), never as long as the expression.
indirect enum LogicExpression<Atom: Hashable & Sendable>: Sendable, Hashable {
    case atom(Atom)
    case not(LogicExpression)
    case all([LogicExpression])
    case any([LogicExpression])

    /// `and` of the operands, flattening nested `and`s; a single operand stands alone.
    static func conjunction(_ operands: [LogicExpression]) -> LogicExpression {
        let flat = operands.flatMap { operand -> [LogicExpression] in
            if case .all(let inner) = operand { return inner }
            return [operand]
        }
        return flat.count == 1 ? flat[0] : .all(flat)
    }

    /// `or` of the operands, flattening nested `or`s; a single operand stands alone.
    static func disjunction(_ operands: [LogicExpression]) -> LogicExpression {
        let flat = operands.flatMap { operand -> [LogicExpression] in
            if case .any(let inner) = operand { return inner }
            return [operand]
        }
        return flat.count == 1 ? flat[0] : .any(flat)
    }

    /// `not`, cancelling a double negation.
    static func negation(_ operand: LogicExpression) -> LogicExpression {
        if case .not(let inner) = operand { return inner }
        return .not(operand)
    }

    /// The top-level `or` alternatives (the expression itself when it is not an `or`).
    var alternatives: [LogicExpression] {
        if case .any(let operands) = self { return operands }
        return [self]
    }

    /// Every distinct atom, in order of first appearance.
    var atoms: [Atom] {
        var seen = Set<Atom>()
        var ordered: [Atom] = []
        collectAtoms(into: &ordered, seen: &seen)
        return ordered
    }

    private func collectAtoms(into ordered: inout [Atom], seen: inout Set<Atom>) {
        switch self {
        case .atom(let atom):
            if seen.insert(atom).inserted { ordered.append(atom) }
        case .not(let operand):
            operand.collectAtoms(into: &ordered, seen: &seen)
        case .all(let operands), .any(let operands):
            for operand in operands { operand.collectAtoms(into: &ordered, seen: &seen) }
        }
    }

    /// Direct evaluation of the tree (tests compare it with the compiled DNF).
    func evaluate(_ holds: (Atom) -> Bool) -> Bool {
        switch self {
        case .atom(let atom): holds(atom)
        case .not(let operand): !operand.evaluate(holds)
        case .all(let operands): operands.allSatisfy { $0.evaluate(holds) }
        case .any(let operands): operands.contains { $0.evaluate(holds) }
        }
    }

    /// Canonical text: `not` > `and` > `or`, parentheses only where precedence needs them.
    func rendered(_ atomText: (Atom) -> String) -> String {
        switch self {
        case .atom(let atom):
            return atomText(atom)
        case .not(let operand):
            if case .atom = operand { return "not " + operand.rendered(atomText) }
            return "not (" + operand.rendered(atomText) + ")"
        case .all(let operands):
            return operands.map { operand in
                if case .any = operand { return "(" + operand.rendered(atomText) + ")" }
                return operand.rendered(atomText)
            }.joined(separator: " and ")
        case .any(let operands):
            return operands.map { $0.rendered(atomText) }.joined(separator: " or ")
        }
    }
}

/// Recursive-descent parser for the boolean layer; each language supplies the leaf parser.
///
///     expression := or
///     or         := and ( ('or' | '||' | '|') and )*
///     and        := unary ( ('and' | '&&' | '&')? unary )*     -- juxtaposition only for filters
///     unary      := ('not' | '!')* primary
///     primary    := '(' or ')' | leaf
struct LogicParser<Atom: Hashable & Sendable> {
    typealias LeafParser = (inout ExpressionTokenCursor) throws(ExpressionError) -> LogicExpression<Atom>

    /// Deepest parenthesis nesting accepted; keeps every recursion (here, DNF, rendering) shallow.
    static var maximumDepth: Int { 64 }

    var cursor: ExpressionTokenCursor
    /// ss-style: two conditions side by side mean `and`.
    let juxtapositionMeansAnd: Bool
    /// What may start an operand, for messages: "a field name, 'not' or '('".
    let operandDescription: String
    let parseLeaf: LeafParser
    /// Lowercased words that end the expression at the top level (the rule language's `for`,
    /// `every`, `once`); the caller parses what follows.
    var stopWords: Set<String> = []
    private var depth = 0

    init(cursor: ExpressionTokenCursor, juxtapositionMeansAnd: Bool, operandDescription: String,
         parseLeaf: @escaping LeafParser) {
        self.cursor = cursor
        self.juxtapositionMeansAnd = juxtapositionMeansAnd
        self.operandDescription = operandDescription
        self.parseLeaf = parseLeaf
    }

    /// Parses up to the end of the input.
    mutating func parseExpression() throws(ExpressionError) -> LogicExpression<Atom> {
        let expression = try parseOr()
        let token = cursor.current
        switch token.kind {
        case .end:
            return expression
        case .word where stopWords.contains(token.text.lowercased()):
            return expression
        case .rightParen:
            throw cursor.error("unbalanced ')': there is no '(' to close", at: token)
        default:
            throw cursor.error("unexpected \(token.quoted) after a complete condition", at: token,
                               hint: "join conditions with 'and' or 'or'")
        }
    }

    private mutating func parseOr() throws(ExpressionError) -> LogicExpression<Atom> {
        var operands = [try parseAnd()]
        while cursor.current.kind == .or {
            cursor.advance()
            operands.append(try parseAnd())
        }
        return .disjunction(operands)
    }

    private mutating func parseAnd() throws(ExpressionError) -> LogicExpression<Atom> {
        var operands = [try parseUnary()]
        while true {
            if cursor.current.kind == .and {
                cursor.advance()
            } else if !(juxtapositionMeansAnd && cursor.current.startsOperand) {
                break
            }
            operands.append(try parseUnary())
        }
        return .conjunction(operands)
    }

    /// `not` chains are counted, not recursed into: only parentheses add depth.
    private mutating func parseUnary() throws(ExpressionError) -> LogicExpression<Atom> {
        var negations = 0
        while cursor.current.kind == .not {
            cursor.advance()
            negations += 1
        }
        let operand = try parsePrimary()
        return negations % 2 == 1 ? .negation(operand) : operand
    }

    private mutating func parsePrimary() throws(ExpressionError) -> LogicExpression<Atom> {
        let token = cursor.current
        switch token.kind {
        case .word:
            return try parseLeaf(&cursor)
        case .leftParen:
            guard depth < Self.maximumDepth else {
                throw cursor.error("expression nests too deeply (more than \(Self.maximumDepth) levels of parentheses)",
                                   at: token)
            }
            depth += 1
            cursor.advance()
            let inner = try parseOr()
            let closing = cursor.current
            switch closing.kind {
            case .rightParen:
                cursor.advance()
            case .end:
                throw cursor.error("unclosed '(': expected ')' before the end", at: token,
                                   hint: "add the missing ')'")
            case .word where stopWords.contains(closing.text.lowercased()):
                throw cursor.error("unexpected \(closing.quoted) inside parentheses; expected 'and', 'or' or ')'",
                                   at: closing, hint: "'\(closing.text)' goes after the whole expression")
            default:
                throw cursor.error("unexpected \(closing.quoted); expected 'and', 'or' or ')'", at: closing)
            }
            depth -= 1
            return inner
        default:
            throw missingOperand(at: token)
        }
    }

    private func missingOperand(at token: ExpressionToken) -> ExpressionError {
        let expected = "expected \(operandDescription)"
        if let previous = cursor.previous, [.and, .or, .not, .leftParen].contains(previous.kind) {
            let context = token.kind == .end ? "at the end" : "but found \(token.quoted)"
            return cursor.error("\(previous.quoted) needs an operand: \(expected) \(context)", at: token)
        }
        if token.kind == .end { return cursor.error("empty expression: \(expected)", at: token) }
        return cursor.error("unexpected \(token.quoted); \(expected)", at: token)
    }
}
