/// Encodes a wire value as one JSON line with its keys in the order its `encode(to:)` writes them (the
/// order documented in the README). Foundation's `JSONEncoder` reorders keys at random, so the lines
/// tcpnotify prints are written here; they decode with `JSONDecoder` like any JSON.
struct WireLineEncoder {
    func encode<T: Encodable>(_ value: T) throws -> String {
        var writer = JSONWriter()
        try WireNode.make(value, codingPath: []).write(key: nil, to: &writer)
        return writer.text
    }
}

/// A number already written as JSON text (a fixed-point timestamp, a rounded ratio): the line encoder
/// copies it; `JSONEncoder` encodes `value`.
protocol WireNumberLiteral: Encodable {
    var jsonLiteral: String { get }
}

/// One JSON value on its way out, members in insertion order.
indirect enum WireNode {
    case string(String)
    case unsigned(UInt64)
    case signed(Int64)
    case literal(String)
    case object(WireObjectBox)
    case array(WireArrayBox)

    static func make<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws -> WireNode {
        switch value {
        case let text as String: return .string(text)
        case let number as UInt64: return .unsigned(number)
        case let number as Int: return .signed(Int64(number))
        case let number as UInt32: return .unsigned(UInt64(number))
        case let number as UInt8: return .unsigned(UInt64(number))
        case let number as Int64: return .signed(number)
        case let number as UInt: return .unsigned(UInt64(number))
        // The other integer widths: without them Int32.encode(to:) would come back here forever.
        case let number as UInt16: return .unsigned(UInt64(number))
        case let number as Int32: return .signed(Int64(number))
        case let number as Int16: return .signed(Int64(number))
        case let number as Int8: return .signed(Int64(number))
        case let number as Float: return .literal(number.isFinite ? "\(number)" : "0")
        case let flag as Bool: return .literal(flag ? "true" : "false")
        case let number as Double: return .literal(number.isFinite ? "\(number)" : "0")
        case let literal as any WireNumberLiteral: return .literal(literal.jsonLiteral)
        default:
            let encoder = WireNodeEncoder(codingPath: codingPath)
            try value.encode(to: encoder)
            return encoder.slot.node ?? .object(WireObjectBox())
        }
    }

    /// The node of a wire value (encoding a wire value cannot fail: see `Wire.line`).
    static func encoded<T: Encodable>(_ value: T) -> WireNode {
        (try? make(value, codingPath: [])) ?? .object(WireObjectBox())
    }

    func write(key: String?, to writer: inout JSONWriter) {
        switch self {
        case .string(let text): writer.field(key, text)
        case .unsigned(let number): writer.field(key, number)
        case .signed(let number): writer.field(key, number)
        case .literal(let text): writer.rawField(key, text)
        case .object(let box):
            writer.beginObject(key)
            for (name, member) in box.members { member.write(key: name, to: &writer) }
            writer.endObject()
        case .array(let box):
            writer.beginArray(key)
            for element in box.elements { element.write(key: nil, to: &writer) }
            writer.endArray()
        }
    }
}

final class WireObjectBox {
    var members: [(String, WireNode)] = []

    func set(_ key: String, _ node: WireNode) {
        if let index = members.firstIndex(where: { $0.0 == key }) { members[index].1 = node } else { members.append((key, node)) }
    }
}

final class WireArrayBox {
    var elements: [WireNode] = []
}

/// Where an encoder puts the one value it encodes.
final class WireSlot {
    var node: WireNode?
}

struct WireNodeEncoder: Encoder {
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    let slot = WireSlot()

    init(codingPath: [any CodingKey]) { self.codingPath = codingPath }

    /// Several keyed containers on one encoder share one object: that is how a value writes another's
    /// fields into its own object (a diagnosis line holds a verdict's fields).
    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: WireObjectBox
        if case .object(let existing) = slot.node {
            box = existing
        } else {
            box = WireObjectBox()
            slot.node = .object(box)
        }
        return KeyedEncodingContainer(WireKeyedContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: WireArrayBox
        if case .array(let existing) = slot.node {
            box = existing
        } else {
            box = WireArrayBox()
            slot.node = .array(box)
        }
        return WireUnkeyedContainer(box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { WireSingleValueContainer(slot: slot, codingPath: codingPath) }
}

struct WireKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: WireObjectBox
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, .literal("null")) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        box.set(key.stringValue, try WireNode.make(value, codingPath: codingPath + [key]))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = WireObjectBox()
        box.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(WireKeyedContainer<NestedKey>(box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = WireArrayBox()
        box.set(key.stringValue, .array(nested))
        return WireUnkeyedContainer(box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { WireNodeEncoder(sharing: box, codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { WireNodeEncoder(sharing: box, codingPath: codingPath) }
}

extension WireNodeEncoder {
    /// An encoder writing into an existing object (`superEncoder`: the parent's fields join this object).
    init(sharing box: WireObjectBox, codingPath: [any CodingKey]) {
        self.init(codingPath: codingPath)
        slot.node = .object(box)
    }
}

struct WireUnkeyedContainer: UnkeyedEncodingContainer {
    let box: WireArrayBox
    let codingPath: [any CodingKey]
    var count: Int { box.elements.count }

    mutating func encodeNil() throws { box.elements.append(.literal("null")) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        box.elements.append(try WireNode.make(value, codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = WireObjectBox()
        box.elements.append(.object(nested))
        return KeyedEncodingContainer(WireKeyedContainer<NestedKey>(box: nested, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = WireArrayBox()
        box.elements.append(.array(nested))
        return WireUnkeyedContainer(box: nested, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder {
        let nested = WireObjectBox()
        box.elements.append(.object(nested))
        return WireNodeEncoder(sharing: nested, codingPath: codingPath)
    }
}

struct WireSingleValueContainer: SingleValueEncodingContainer {
    let slot: WireSlot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.node = .literal("null") }

    mutating func encode<T: Encodable>(_ value: T) throws { slot.node = try WireNode.make(value, codingPath: codingPath) }
}

extension JSONWriter {
    /// Writes a wire value (an object, array or value) as a member or element, keys in its encoding order.
    public mutating func value<T: Encodable>(_ key: String?, _ value: T) {
        WireNode.encoded(value).write(key: key, to: &self)
    }
}
