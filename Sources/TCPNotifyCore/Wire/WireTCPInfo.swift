extension Wire {
    /// `"tcp_info":{...}`: the kernel's field names in contract order; `state` and `ca_state` as names
    /// (ESTABLISHED, Open), the others as numbers. Fields the kernel does not report are absent.
    public struct TCPInfoObject: Codable, Sendable, Equatable {
        public enum Value: Sendable, Equatable {
            case number(UInt64)
            case name(String)
        }

        /// In contract order (fields this version does not know come last, by name).
        public private(set) var fields: [(name: String, value: Value)]

        public init(fields: [(name: String, value: Value)]) { self.fields = fields }

        /// The fields of `info` this kernel reports.
        public init(_ info: TCPInfo, kernelFields: TCPInfoFieldSet = .all) {
            fields = []
            fields.reserveCapacity(TCPInfoField.allCases.count)
            for field in TCPInfoField.allCases where kernelFields.missing.isEmpty || kernelFields.contains(field) {
                fields.append((field.name, Self.value(of: field, in: info)))
            }
        }

        static func value(of field: TCPInfoField, in info: TCPInfo) -> Value {
            let value = info[field]
            switch field {
            case .state: return .name(TCPState(rawValue: UInt8(truncatingIfNeeded: value))?.name ?? String(value))
            case .caState: return .name(TCPCongestionState(rawValue: UInt8(truncatingIfNeeded: value))?.name ?? String(value))
            default: return .number(value)
            }
        }

        /// A numeric field by kernel name (`rtt` in µs, `total_retrans`, ...).
        public subscript(name: String) -> UInt64? {
            guard case .number(let value)? = fields.first(where: { $0.name == name })?.value else { return nil }
            return value
        }

        /// `state` and `ca_state`.
        public func name(_ field: String) -> String? {
            guard case .name(let text)? = fields.first(where: { $0.name == field })?.value else { return nil }
            return text
        }

        /// The numeric fields as a dictionary.
        public var numbers: [String: UInt64] {
            var numbers: [String: UInt64] = [:]
            for (name, value) in fields { if case .number(let number) = value { numbers[name] = number } }
            return numbers
        }

        /// The values as a `TCPInfo` (fields absent here are 0; state names back to numbers).
        public var info: TCPInfo {
            var info = TCPInfo()
            for (name, value) in fields {
                guard let field = TCPInfoField.named(name) else { continue }
                switch value {
                case .number(let number): info[field] = number
                case .name(let text) where field == .state:
                    info[field] = TCPState.named(text).map { UInt64($0.rawValue) } ?? UInt64(text) ?? 0
                case .name(let text):
                    info[field] = TCPCongestionState.named(text).map { UInt64($0.rawValue) } ?? UInt64(text) ?? 0
                }
            }
            return info
        }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            for (name, value) in fields {
                switch value {
                case .number(let number): try container.encode(number, forKey: AnyKey(name))
                case .name(let text): try container.encode(text, forKey: AnyKey(name))
                }
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyKey.self)
            var fields: [(name: String, value: Value)] = []
            for key in container.allKeys {
                let field = TCPInfoField.named(key.stringValue)
                if let field, field != .state && field != .caState {
                    // A known counter must be a number ("must be an integer" names it otherwise).
                    guard let number = try? container.decode(UInt64.self, forKey: key) else {
                        throw DecodingError.typeMismatch(UInt64.self, .init(
                            codingPath: container.codingPath + [key], debugDescription: "\(key.stringValue) is a counter"))
                    }
                    fields.append((key.stringValue, .number(number)))
                } else if let number = try? container.decode(UInt64.self, forKey: key) {
                    fields.append((key.stringValue, .number(number)))
                } else if let text = try? container.decode(String.self, forKey: key) {
                    fields.append((key.stringValue, .name(text)))
                } else {
                    throw DecodingError.typeMismatch(UInt64.self, .init(
                        codingPath: container.codingPath + [key], debugDescription: "a tcp_info field is a number or a name"))
                }
            }
            // JSON objects are unordered: put the fields back in contract order.
            let order = Dictionary(uniqueKeysWithValues: TCPInfoField.allCases.enumerated().map { ($1.name, $0) })
            self.fields = fields.sorted { a, b in
                switch (order[a.name], order[b.name]) {
                case (let x?, let y?): x < y
                case (.some, nil): true
                case (nil, .some): false
                case (nil, nil): a.name < b.name
                }
            }
        }
    }
}
