/// The `tcp_info` fields a kernel reports. Newer fields are absent on older kernels: tcpnotify leaves them
/// out of records and refuses rules on them, rather than report a zero the kernel never measured.
public struct TCPInfoFieldSet: Sendable, Equatable {
    /// Fields this kernel's `struct tcp_info` does not have.
    public var missing: Set<TCPInfoField>

    /// Every field (the kernel tcpnotify's contract was written for, or one not asked).
    public static let all = TCPInfoFieldSet(missing: [])

    public init(missing: Set<TCPInfoField>) { self.missing = missing }

    /// From the member names of the kernel's `struct tcp_info` (`tcpi_rtt`, ... as its BTF lists them).
    public init(kernelMembers: some Sequence<String>) {
        let names = Set(kernelMembers)
        missing = Set(TCPInfoField.allCases.filter { !names.contains("tcpi_" + $0.name) })
    }

    public func contains(_ field: TCPInfoField) -> Bool { !missing.contains(field) }

    /// Fields present, in contract order.
    public var present: [TCPInfoField] { TCPInfoField.allCases.filter(contains) }

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
