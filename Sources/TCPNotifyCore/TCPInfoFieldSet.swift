/// The `tcp_info` fields a kernel reports. Newer fields are absent on older kernels: tcpnotify leaves them
/// out of records and refuses rules on them, rather than report a zero the kernel never measured.
public struct TCPInfoFieldSet: Sendable, Equatable {
    public static func == (a: TCPInfoFieldSet, b: TCPInfoFieldSet) -> Bool { a.missing == b.missing }

    /// Fields this kernel's `struct tcp_info` does not have (or that `--fields` left out).
    public var missing: Set<TCPInfoField> {
        didSet { present = Self.present(without: missing) }
    }
    /// Fields present, in contract order (kept with `missing`: the JSON writer walks it for every line).
    public private(set) var present: [TCPInfoField]

    /// Every field (the kernel tcpnotify's contract was written for, or one not asked).
    public static let all = TCPInfoFieldSet(missing: [])

    public init(missing: Set<TCPInfoField>) {
        self.missing = missing
        present = Self.present(without: missing)
    }

    private static func present(without missing: Set<TCPInfoField>) -> [TCPInfoField] {
        missing.isEmpty ? TCPInfoField.allCases : TCPInfoField.allCases.filter { !missing.contains($0) }
    }

    /// Both sets' fields left out: the kernel's and `--fields`'.
    public func intersection(_ other: TCPInfoFieldSet) -> TCPInfoFieldSet {
        TCPInfoFieldSet(missing: missing.union(other.missing))
    }

    /// From the member names of the kernel's `struct tcp_info` (`tcpi_rtt`, ... as its BTF lists them).
    public init(kernelMembers: some Sequence<String>) {
        let names = Set(kernelMembers)
        self.init(missing: Set(TCPInfoField.allCases.filter { !names.contains("tcpi_" + $0.name) }))
    }

    public func contains(_ field: TCPInfoField) -> Bool { !missing.contains(field) }


    /// Checks that every field the rules read is reported by this kernel.
    public func check(_ rules: CompiledRules, kernel: String) throws(TCPInfoFieldSet.Unavailable) {
        for operand in rules.operands {
            guard case .field(let field) = operand, missing.contains(field) else { continue }
            throw Unavailable(field: field, kernel: kernel)
        }
    }

    /// A rule reads a field this kernel does not report.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public let field: TCPInfoField
        public let kernel: String

        public var description: String {
            "'\(field.name)' is not in this kernel's tcp_info (Linux \(kernel))"
                + (field.sinceKernel.map { "; it needs Linux \($0) or later" } ?? "")
        }
    }
}
