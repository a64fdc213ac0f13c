import FoundationEssentials

/// The JSON lines tcpnotify writes and reads, one Codable type per kind of line: what `watch`,
/// `diagnose`, `snapshot` and `serve` print, and every message of the subscriber protocol. Writers and
/// readers (the daemon, `TCPNotifyClient`, tests) use these types, so what is written can be read back.
///
/// Lines are written with their keys in the documented order (`Wire.line`); they are read with
/// Foundation's `JSONDecoder` (`Wire.decode`). Readers ignore fields they do not know (a newer writer);
/// a missing or mistyped field is an error that names it.
public enum Wire {
    /// One JSON line (no newline) for `value`, keys in the order its `encode(to:)` writes them.
    public static func line<T: Encodable>(_ value: T) -> String {
        do {
            return try WireLineEncoder().encode(value)
        } catch {
            // The line encoder itself never throws; a type's own encode(to:) could.
            return #"{"type":"error","message":"cannot encode \#(T.self): \#(error)"}"#
        }
    }

    /// Decodes one line into `type`, checking its `"type"`.
    public static func decode<T: WireLine>(_ type: T.Type, from line: some StringProtocol) throws(DecodeError) -> T {
        try decode(type, from: Array(line.utf8))
    }

    public static func decode<T: WireLine>(_ type: T.Type, from bytes: [UInt8]) throws(DecodeError) -> T {
        let found = try lineType(of: bytes)
        guard found == T.lineType else {
            throw DecodeError("expected a \"\(T.lineType)\" line, got \"\(found)\"", isJSON: true)
        }
        return try decodeValue(type, from: bytes)
    }

    /// The `"type"` of a line: the one field every line has.
    public static func lineType(of line: some StringProtocol) throws(DecodeError) -> String {
        try lineType(of: Array(line.utf8))
    }

    public static func lineType(of bytes: [UInt8]) throws(DecodeError) -> String {
        try decodeValue(Envelope.self, from: bytes).type
    }

    /// Decodes any Decodable value (no `"type"` check), with errors that name the field.
    public static func decodeValue<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(DecodeError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodeError {
            throw error
        } catch let error as DecodingError {
            throw DecodeError(error)
        } catch {
            throw DecodeError("\(error)", isJSON: false)
        }
    }

    struct Envelope: Decodable {
        var type: String

        init(from decoder: any Decoder) throws {
            let container: KeyedDecodingContainer<AnyKey>
            do {
                container = try decoder.container(keyedBy: AnyKey.self)
            } catch {
                throw DecodeError("not a JSON object: expected {\"type\":...}", isJSON: false)
            }
            guard let type = try? container.decode(String.self, forKey: AnyKey("type")) else {
                throw DecodeError("missing \"type\"", isJSON: true)
            }
            self.type = type
        }
    }
}

/// A kind of line: its `"type"`.
public protocol WireLine: Codable, Sendable {
    static var lineType: String { get }
}

extension Wire {
    /// Why a line could not be read. `isJSON`: the line was a JSON object (a field was missing or
    /// mistyped), as opposed to not JSON at all.
    public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public let isJSON: Bool

        public init(_ message: String, isJSON: Bool) {
            self.message = message
            self.isJSON = isJSON
        }

        init(_ error: DecodingError) {
            func path(_ context: DecodingError.Context, adding key: (any CodingKey)? = nil) -> String {
                let keys = context.codingPath + (key.map { [$0] } ?? [])
                let names = keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                return "\"" + names.joined(separator: ".").replacing(".[", with: "[") + "\""
            }
            switch error {
            case .keyNotFound(let key, let context):
                self.init("missing \(path(context, adding: key))", isJSON: true)
            case .typeMismatch(let type, let context) where !context.codingPath.isEmpty:
                self.init("\(path(context)) must be \(Self.article(type))", isJSON: true)
            case .valueNotFound(let type, let context) where !context.codingPath.isEmpty:
                self.init("\(path(context)) must be \(Self.article(type)), not null", isJSON: true)
            case .dataCorrupted(let context) where !context.codingPath.isEmpty:
                self.init("\(path(context)): \(context.debugDescription)", isJSON: true)
            case .typeMismatch, .valueNotFound:
                self.init("not a JSON object: expected {\"type\":...}", isJSON: false)
            case .dataCorrupted(let context):
                let reason = (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
                self.init("not a JSON object: \(reason.prefix(200))", isJSON: false)
            @unknown default:
                self.init("\(error)", isJSON: false)
            }
        }

        static func article(_ type: Any.Type) -> String {
            switch type {
            case is String.Type: "a string"
            case is Bool.Type: "true or false"
            case is [String].Type: "an array of strings"
            case is any UnsignedInteger.Type: "a non-negative integer"
            case is any BinaryInteger.Type: "an integer"
            case is any BinaryFloatingPoint.Type: "a number"
            case is [Any].Type: "an array"
            default: "an object"
            }
        }

        public var description: String { message }
    }

    /// A key known only at run time (tcp_info field names, evidence names, unknown-field checks).
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension Wire {
    /// A number written with a fixed number of decimals, trailing zeros dropped (`0.93`, `12.5`, `1733221234.123456`).
    public struct FixedDecimal: Sendable, Equatable, Encodable, WireNumberLiteral {
        public var value: Double
        public var decimals: Int

        public init(_ value: Double, decimals: Int) {
            self.value = value
            self.decimals = decimals
        }

        var jsonLiteral: String { DiagnosisNumber.json(value, decimals: decimals) }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(Double(jsonLiteral) ?? 0)
        }
    }

    /// Wall-clock time in microseconds, written as seconds with six decimals (`"ts":1733221234.123456`).
    public struct Timestamp: Sendable, Equatable, Hashable, Codable, WireNumberLiteral {
        public var microseconds: Int64

        public init(microseconds: Int64) { self.microseconds = microseconds }

        public var seconds: Double { Double(microseconds) / 1e6 }

        var jsonLiteral: String {
            let fraction = String(microseconds % 1_000_000)
            return "\(microseconds / 1_000_000)." + String(repeating: "0", count: max(6 - fraction.count, 0)) + fraction
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(seconds)
        }

        /// Six decimals of a ~1.7e9 value fit a Double's precision: rounding recovers the microseconds.
        public init(from decoder: any Decoder) throws {
            let seconds = try decoder.singleValueContainer().decode(Double.self)
            guard seconds.isFinite, abs(seconds) < 9e12 else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "timestamp out of range"))
            }
            microseconds = Int64((seconds * 1e6).rounded())
        }
    }
}

extension Wire {
    /// A line's `"type"` field as a stored property, so that a line type can use the synthesized Codable:
    /// written as `Line.lineType`, read back only if it says the same.
    public struct LineType<Line: WireLine>: Codable, Sendable, Hashable {
        public init() {}

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(Line.lineType)
        }

        public init(from decoder: any Decoder) throws {
            let found = try decoder.singleValueContainer().decode(String.self)
            guard found == Line.lineType else {
                throw DecodingError.dataCorrupted(.init(
                    codingPath: decoder.codingPath, debugDescription: "expected \"\(Line.lineType)\", got \"\(found)\""))
            }
        }
    }
}
