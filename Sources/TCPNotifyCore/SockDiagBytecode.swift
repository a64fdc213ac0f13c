/// A compiled filter as inet_diag filter bytecode (`INET_DIAG_REQ_BYTECODE`, linux/inet_diag.h), so a
/// sock_diag dump returns only the selected sockets, as `ss` does with its filters.
///
/// The kernel runs the program once per socket (`inet_diag_bc_run`): each op tests something, then
/// moves `yes` bytes on when it holds and `no` bytes on when not. Reaching exactly the end accepts the
/// socket; jumping past it (end + 4) rejects it. `inet_diag_bc_audit` refuses a program unless
/// every `no` lands on an op boundary reachable by following `yes` from the start, so here every `yes`
/// is the op's own size (a true test falls through), and all branching is done with `no` and
/// unconditional `JMP` ops (which always take `no`). Negation is op ordering: `test; JMP fail` with
/// the test's `no` skipping the JMP.
///
/// The filter's disjunctive normal form becomes: for each clause, its literals in turn (a false one
/// jumps to the next clause, or rejects after the last), then a jump to accept.
public enum SockDiagBytecode {
    /// `INET_DIAG_BC_*` op codes.
    public enum Code: UInt8, Sendable {
        case nop = 0
        case jump = 1
        case sourcePortAtLeast = 2
        case sourcePortAtMost = 3
        case destinationPortAtLeast = 4
        case destinationPortAtMost = 5
        case sourceHost = 7
        case destinationHost = 8
        case sourcePortEquals = 11
        case destinationPortEquals = 12
    }

    /// `struct inet_diag_hostcond` families.
    public static let familyUnspecified: UInt8 = 0
    public static let familyIPv4: UInt8 = 2   // AF_INET
    public static let familyIPv6: UInt8 = 10  // AF_INET6

    /// `struct inet_diag_bc_op` is 4 bytes; `struct inet_diag_hostcond` 8 plus the address.
    public static let opBytes = 4
    public static let hostConditionBytes = 8

    /// The program no longer fits the 16-bit jump offsets (`no` is a `__u16`).
    public struct TooLarge: Error, Sendable, Equatable, CustomStringConvertible {
        public var bytes: Int
        public var description: String {
            "the filter compiles to \(bytes) bytes of sock_diag bytecode; at most \(SockDiagBytecode.maximumBytes) fit"
        }
    }

    /// Every jump, including the reject target 4 bytes past the end, must fit in a `__u16`.
    public static let maximumBytes = Int(UInt16.max) - opBytes

    /// The bytecode for `filter`; empty when it selects every socket (send no bytecode at all).
    public static func compile(_ filter: CompiledFilter) throws(TooLarge) -> [UInt8] {
        if filter.matchAll { return [] }
        let clauses = Array(filter.clauses.prefix(FilterExpression.maxClauses))
        if clauses.isEmpty { return assemble([.jump(.reject)]) }
        let predicates = Array(filter.predicates.prefix(FilterExpression.maxPredicates))
        // A clause that always holds (no literals, or only `/0` prefixes) selects every socket.
        let alwaysHolds = clauses.contains { clause in
            predicates.indices.allSatisfy { bit in
                clause.literals & (1 << UInt32(bit)) == 0
                    || test(for: predicates[bit]) == .constant(clause.mustBeTrue & (1 << UInt32(bit)) != 0)
            }
        }
        if alwaysHolds { return [] }
        var builder = Builder()
        for (index, clause) in clauses.enumerated() {
            let isLast = index == clauses.count - 1
            let nextClause = isLast ? Label.reject : builder.newLabel()
            for (bit, predicate) in predicates.enumerated() where clause.literals & (1 << UInt32(bit)) != 0 {
                builder.emit(test(for: predicate), holds: clause.mustBeTrue & (1 << UInt32(bit)) != 0, orGoTo: nextClause)
            }
            if !isLast {
                builder.instructions.append(.jump(.accept))
                builder.instructions.append(.label(nextClause))
            }
        }
        let program = assemble(builder.instructions)
        guard program.count <= maximumBytes else { throw TooLarge(bytes: program.count) }
        return program
    }

    // MARK: - Tests

    /// One primitive op: falls through when it holds, takes its `no` when not.
    enum Primitive: Equatable {
        case port(Code, UInt16)
        case host(Code, family: UInt8, prefixLength: UInt8, address: [UInt8])

        var byteCount: Int {
            switch self {
            case .port: 2 * opBytes  // the port sits in the next op's `no`
            case .host(_, _, _, let address): opBytes + hostConditionBytes + address.count
            }
        }
    }

    indirect enum Test: Equatable {
        case op(Primitive)
        case not(Test)
        case any([Test])
        case constant(Bool)
    }

    /// A predicate as ops. Ports: `<` is not `>=` and `>` is not `<=`, so `< :0` and `> :65535` come out
    /// as never true without special cases. Prefixes: an IPv4 prefix (::ffff:a.b.c.d/96+n) is an AF_INET
    /// condition, which the kernel also matches against v4-mapped addresses of AF_INET6 sockets; an
    /// IPv6 prefix that covers all of ::ffff:0:0/96 must also match AF_INET sockets, which an AF_INET6
    /// condition never does, so it adds AF_INET 0.0.0.0/0.
    static func test(for predicate: FilterPredicate) -> Test {
        switch predicate.kind {
        case .sourcePort, .destinationPort:
            let source = predicate.kind == .sourcePort
            let equals = Test.op(.port(source ? .sourcePortEquals : .destinationPortEquals, predicate.port))
            let atLeast = Test.op(.port(source ? .sourcePortAtLeast : .destinationPortAtLeast, predicate.port))
            let atMost = Test.op(.port(source ? .sourcePortAtMost : .destinationPortAtMost, predicate.port))
            switch predicate.op {
            case .eq: return equals
            case .ne: return .not(equals)
            case .ge: return atLeast
            case .le: return atMost
            case .lt: return .not(atLeast)
            case .gt: return .not(atMost)
            }
        case .sourcePrefix, .destinationPrefix:
            let code: Code = predicate.kind == .sourcePrefix ? .sourceHost : .destinationHost
            let length = Int(min(predicate.prefixLength, 128))
            if length == 0 { return .constant(true) }
            let address = predicate.address.count == 16 ? predicate.address : [UInt8](repeating: 0, count: 16)
            let mappedBits = min(length, 96)
            let withinMapped = bitsEqual(address, mappedPrefix, count: mappedBits)
            if length >= 96 && withinMapped {
                return .op(.host(code, family: familyIPv4, prefixLength: UInt8(length - 96), address: Array(address[12..<16])))
            }
            let ipv6 = Test.op(.host(code, family: familyIPv6, prefixLength: UInt8(length), address: address))
            if withinMapped {
                return .any([ipv6, .op(.host(code, family: familyIPv4, prefixLength: 0, address: [0, 0, 0, 0]))])
            }
            return ipv6
        }
    }

    /// ::ffff:0:0, the first 96 bits of every v4-mapped address.
    static let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]

    static func bitsEqual(_ a: [UInt8], _ b: [UInt8], count: Int) -> Bool {
        for bit in 0..<count {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if a[bit / 8] & mask != b[bit / 8] & mask { return false }
        }
        return true
    }

    // MARK: - Code generation

    enum Label: Hashable {
        /// Exactly the end of the program.
        case accept
        /// 4 bytes past the end.
        case reject
        case local(Int)
    }

    enum Instruction: Equatable {
        case test(Primitive, otherwise: Label)
        case jump(Label)
        case label(Label)
    }

    struct Builder {
        var instructions: [Instruction] = []
        private var labelCount = 0

        mutating func newLabel() -> Label {
            labelCount += 1
            return .local(labelCount)
        }

        /// Continues when `test` is `holds`, jumps to `failure` otherwise.
        mutating func emit(_ test: Test, holds: Bool, orGoTo failure: Label) {
            switch test {
            case .constant(let value):
                if value != holds { instructions.append(.jump(failure)) }
            case .not(let inner):
                emit(inner, holds: !holds, orGoTo: failure)
            case .op(let primitive):
                if holds {
                    instructions.append(.test(primitive, otherwise: failure))
                } else {
                    // True falls into the JMP to failure; false skips it.
                    let skip = newLabel()
                    instructions.append(.test(primitive, otherwise: skip))
                    instructions.append(.jump(failure))
                    instructions.append(.label(skip))
                }
            case .any(let alternatives):
                guard let last = alternatives.last else {
                    emit(.constant(false), holds: holds, orGoTo: failure)
                    return
                }
                if holds {
                    // The first alternative that holds jumps past the rest.
                    let pass = newLabel()
                    for alternative in alternatives.dropLast() { emit(alternative, holds: false, orGoTo: pass) }
                    emit(last, holds: true, orGoTo: failure)
                    instructions.append(.label(pass))
                } else {
                    for alternative in alternatives { emit(alternative, holds: false, orGoTo: failure) }
                }
            }
        }
    }

    /// Lays the instructions out and resolves every label to a forward `no` offset.
    static func assemble(_ instructions: [Instruction]) -> [UInt8] {
        var offsets: [Label: Int] = [:]
        var size = 0
        for instruction in instructions {
            switch instruction {
            case .test(let primitive, _): size += primitive.byteCount
            case .jump: size += opBytes
            case .label(let label): offsets[label] = size
            }
        }
        offsets[.accept] = size
        offsets[.reject] = size + opBytes
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        func appendOp(_ code: UInt8, yes: Int, no: Int) {
            bytes.append(code)
            bytes.append(UInt8(truncatingIfNeeded: yes))
            appendU16(UInt16(truncatingIfNeeded: no))
        }
        func appendU16(_ value: UInt16) {
            withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) } // host order, as the kernel reads it
        }
        for instruction in instructions {
            let here = bytes.count
            switch instruction {
            case .label:
                continue
            case .jump(let target):
                appendOp(Code.jump.rawValue, yes: opBytes, no: (offsets[target] ?? size + opBytes) - here)
            case .test(let primitive, let otherwise):
                let no = (offsets[otherwise] ?? size + opBytes) - here
                switch primitive {
                case .port(let code, let port):
                    appendOp(code.rawValue, yes: 2 * opBytes, no: no)
                    appendOp(0, yes: 0, no: Int(port))
                case .host(let code, let family, let prefixLength, let address):
                    appendOp(code.rawValue, yes: primitive.byteCount, no: no)
                    bytes.append(family)
                    bytes.append(prefixLength)
                    bytes.append(contentsOf: [0, 0])
                    withUnsafeBytes(of: Int32(-1)) { bytes.append(contentsOf: $0) } // any port
                    bytes.append(contentsOf: address)
                }
            }
        }
        return bytes
    }
}
