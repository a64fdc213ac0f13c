/// One socket's `struct tcp_info`, as the kernel reports it, indexed by field.
///
/// Values are kept in the kernel's units (see `TCPInfoField.unit`), widened to 64 bits, in the order of
/// `TCPInfoField.allCases`, so a rule evaluator, an encoder or a diagnosis can read any field by name.
public struct TCPInfo: Sendable, Equatable {
    public private(set) var values: [UInt64]

    /// `allCases` builds an array on every call: the decoder's hot path reads the count from here.
    private static let fieldCount = TCPInfoField.allCases.count

    /// All fields zero.
    public init() {
        values = Array(repeating: 0, count: TCPInfoField.allCases.count)
    }

    /// Values in `TCPInfoField.allCases` order; missing trailing values are zero, extra ones are dropped.
    public init(values: [UInt64]) {
        if values.count == Self.fieldCount {
            self.values = values  // the decoder's case: no copy
            return
        }
        var padded = Array(values.prefix(TCPInfoField.allCases.count))
        padded += Array(repeating: 0, count: TCPInfoField.allCases.count - padded.count)
        self.values = padded
    }

    public subscript(field: TCPInfoField) -> UInt64 {
        get { values[Int(field.rawValue)] }
        set { values[Int(field.rawValue)] = newValue }
    }

    public var state: TCPState? { TCPState(rawValue: UInt8(truncatingIfNeeded: self[.state])) }

    /// The fields whose values differ between two snapshots (for tests and diagnostics).
    public func differences(from other: TCPInfo) -> [(field: TCPInfoField, mine: UInt64, theirs: UInt64)] {
        TCPInfoField.allCases.compactMap { field in
            self[field] == other[field] ? nil : (field, self[field], other[field])
        }
    }
}
