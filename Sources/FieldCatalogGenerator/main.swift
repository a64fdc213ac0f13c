// Reads TCPNOTIFY_FOR_EACH_FIELD from tcpnotify.h and writes Swift's TCPInfoField: the enum, in header
// order, and its descriptor table. Run by the FieldCatalog plugin on every build that changes the header.
// Usage: FieldCatalogGenerator <tcpnotify.h> <output.swift>
import Foundation

struct FieldLine {
    var name: String
    var bits: Int
    var unit: String
    var since: String
    var summary: String
    var line: Int
}

struct HeaderError: Error, CustomStringConvertible {
    let path: String
    let line: Int
    let message: String
    var description: String { "\(path):\(line): error: \(message)" }
}

/// The X(...) entries of the macro body, each split into its top-level arguments.
func fieldLines(header: String, path: String) throws -> [FieldLine] {
    let lines = header.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let first = lines.firstIndex(where: { $0.hasPrefix("#define TCPNOTIFY_FOR_EACH_FIELD(X)") }) else {
        throw HeaderError(path: path, line: 1, message: "no '#define TCPNOTIFY_FOR_EACH_FIELD(X)'")
    }
    // The macro body: continuation lines, each remembered with its line number.
    var body: [(text: String, line: Int)] = []
    var index = first
    while index < lines.count, lines[index].hasSuffix("\\") {
        index += 1
        guard index < lines.count else { break }
        var text = lines[index]
        if text.hasSuffix("\\") { text.removeLast() }
        body.append((text, index + 1))
    }
    var fields: [FieldLine] = []
    var current: [Character] = []
    var startLine = 0
    var depth = 0
    var inString = false
    var escaped = false
    for (text, line) in body {
        for character in text {
            if depth == 0 {
                if character == "(" { depth = 1; startLine = line; current = [] }
                continue
            }
            if inString {
                current.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            switch character {
            case "\"": inString = true; current.append(character)
            case "(": depth += 1; current.append(character)
            case ")":
                depth -= 1
                if depth == 0 { fields.append(try parse(String(current), line: startLine, path: path)) } else { current.append(character) }
            default: current.append(character)
            }
        }
        current.append(" ")
    }
    if depth != 0 { throw HeaderError(path: path, line: startLine, message: "unbalanced parentheses in TCPNOTIFY_FOR_EACH_FIELD") }
    return fields
}

/// `ID, json_name, member, shift, bits, unit, since, summary` (strings may be split into adjacent literals).
func parse(_ arguments: String, line: Int, path: String) throws -> FieldLine {
    var parts: [String] = []
    var current = ""
    var inString = false
    var escaped = false
    for character in arguments {
        if inString {
            current.append(character)
            if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
        } else if character == "\"" {
            inString = true; current.append(character)
        } else if character == "," {
            parts.append(current.trimmingCharacters(in: .whitespaces)); current = ""
        } else {
            current.append(character)
        }
    }
    parts.append(current.trimmingCharacters(in: .whitespaces))
    func fail(_ message: String) -> HeaderError { HeaderError(path: path, line: line, message: message) }
    guard parts.count == 8 else {
        throw fail("X(\(arguments.prefix(40))...) has \(parts.count) arguments; expected 8: ID, json_name, member, shift, bits, unit, since, summary")
    }
    let name = parts[1]
    guard !name.isEmpty, name.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "_" }) else {
        throw fail("field name '\(name)' must be lower_snake_case")
    }
    guard parts[0] == name.uppercased() else { throw fail("ID '\(parts[0])' must be the upper-case json name '\(name.uppercased())'") }
    guard let bits = Int(parts[4]), (1...64).contains(bits) else { throw fail("'\(name)': bits '\(parts[4])' must be 1...64") }
    guard Int(parts[3]) != nil else { throw fail("'\(name)': shift '\(parts[3])' must be a number") }
    let since = try literal(parts[6], field: name, what: "since", fail: fail)
    guard since.isEmpty || since.split(separator: ".").allSatisfy({ Int($0) != nil }) else {
        throw fail("'\(name)': since \"\(since)\" must be a version such as \"6.2\" or \"\"")
    }
    let summary = try literal(parts[7], field: name, what: "summary", fail: fail)
    guard !summary.isEmpty else { throw fail("'\(name)' has an empty summary") }
    return FieldLine(name: name, bits: bits, unit: parts[5], since: since, summary: summary, line: line)
}

/// The contents of one or more adjacent C string literals, escapes kept (C and Swift share \" and \\).
func literal(_ text: String, field: String, what: String, fail: (String) -> HeaderError) throws -> String {
    var result = ""
    var rest = Substring(text)
    while !rest.isEmpty {
        rest = rest.drop { $0 == " " }
        guard rest.first == "\"" else { throw fail("'\(field)': \(what) must be a string literal, found \(text)") }
        rest = rest.dropFirst()
        var escaped = false
        guard let end = rest.firstIndex(where: { character in
            defer { escaped = !escaped && character == "\\" }
            return !escaped && character == "\""
        }) else { throw fail("'\(field)': unterminated string in \(what)") }
        result += rest[..<end]
        rest = rest[rest.index(after: end)...].drop { $0 == " " }
    }
    return result
}

func camelCase(_ name: String) -> String {
    let words = name.split(separator: "_")
    return words.enumerated().map { $0 == 0 ? String($1) : $1.prefix(1).uppercased() + $1.dropFirst() }.joined()
}

func render(_ fields: [FieldLine]) -> String {
    var out = """
        // Generated from TCPNOTIFY_FOR_EACH_FIELD in tcpnotify.h by the FieldCatalog plugin. Do not edit:
        // change the header, and the build regenerates this file.

        /// One field of `struct tcp_info` that rules can test.
        ///
        /// The order and raw values are part of the kernel contract: they are the field ids of
        /// `TCPNOTIFY_FOR_EACH_FIELD` in tcpnotify.h (state = 0, ca_state = 1, ...), from which this enum is
        /// generated. Append only; never reorder.
        public enum TCPInfoField: UInt16, CaseIterable, Sendable {

        """
    for field in fields {
        out += "    /// \(field.summary.replacingOccurrences(of: "\\\"", with: "\"")) (`\(field.name)`)\n"
        out += "    case \(camelCase(field.name))\n"
    }
    out += """
        }

        extension TCPInfoField {
            /// Indexed by raw value, one per case.
            static let descriptors: [Descriptor] = [

        """
    for field in fields {
        let since = field.since.isEmpty ? "nil" : "\"\(field.since)\""
        out += "        Descriptor(name: \"\(field.name)\", bits: \(field.bits), unit: .\(field.unit), sinceKernel: \(since),\n"
        out += "                   summary: \"\(field.summary)\"),\n"
    }
    out += "    ]\n}\n"
    return out
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: FieldCatalogGenerator <tcpnotify.h> <output.swift>\n".utf8))
    exit(2)
}
do {
    let header = try String(contentsOfFile: arguments[1], encoding: .utf8)
    let fields = try fieldLines(header: header, path: arguments[1])
    guard !fields.isEmpty else { throw HeaderError(path: arguments[1], line: 1, message: "TCPNOTIFY_FOR_EACH_FIELD lists no field") }
    var seen: [String: Int] = [:]
    for field in fields {
        if let earlier = seen[field.name] {
            throw HeaderError(path: arguments[1], line: field.line, message: "'\(field.name)' is listed twice (first on line \(earlier))")
        }
        seen[field.name] = field.line
    }
    let text = render(fields)
    // Leave an unchanged file alone, so its timestamp does not trigger recompiles.
    if (try? String(contentsOfFile: arguments[2], encoding: .utf8)) != text {
        try text.write(toFile: arguments[2], atomically: true, encoding: .utf8)
    }
} catch {
    FileHandle.standardError.write(Data("\(error)\n".utf8))
    exit(1)
}
