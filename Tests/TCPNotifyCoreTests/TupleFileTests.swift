import Testing
@testable import TCPNotifyCore

struct MalformedTupleFile: Sendable, CustomTestStringConvertible {
    var text: String
    var line: Int
    var fragment: String
    var testDescription: String { text }
}

@Suite struct TupleFileTests {
    static func address(_ text: String) -> [UInt8] { IPAddressText.parse(text) ?? [] }

    @Test func parsesIPv4IPv6WildcardsCommentsAndBlankLines() throws {
        let text = """
            # local              remote
            10.0.0.1:40001       10.0.0.2:443

            \t[2001:db8::1]:5000\t[2001:db8::2]:443   # trailing comment
            10.0.0.1:*           10.0.0.2:5201
            10.0.0.3:0           10.0.0.2:5201
            [::ffff:10.0.0.9]:7  10.0.0.2:https
            """
        let entries = try TupleFile.parse(text)
        #expect(entries == [
            TupleEntry(localAddress: Self.address("10.0.0.1"), localPort: 40001, remoteAddress: Self.address("10.0.0.2"), remotePort: 443),
            TupleEntry(localAddress: Self.address("2001:db8::1"), localPort: 5000,
                       remoteAddress: Self.address("2001:db8::2"), remotePort: 443),
            TupleEntry(localAddress: Self.address("10.0.0.1"), localPort: 0, remoteAddress: Self.address("10.0.0.2"), remotePort: 5201),
            TupleEntry(localAddress: Self.address("10.0.0.3"), localPort: 0, remoteAddress: Self.address("10.0.0.2"), remotePort: 5201),
            TupleEntry(localAddress: Self.address("10.0.0.9"), localPort: 7, remoteAddress: Self.address("10.0.0.2"), remotePort: 443),
        ])
        // IPv4 is stored v4-mapped, 16 bytes.
        #expect(entries[0].localAddress == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])
    }

    @Test func emptyAndCommentOnlyFilesHaveNoEntries() throws {
        #expect(try TupleFile.parse("").isEmpty)
        #expect(try TupleFile.parse("# nothing\n\n   \n#x 1.2.3.4:5 6.7.8.9:10\n").isEmpty)
    }

    @Test func windowsLineEndings() throws {
        let entries = try TupleFile.parse("10.0.0.1:1 10.0.0.2:2\r\n10.0.0.1:3 10.0.0.2:4\r\n")
        #expect(entries.map(\.remotePort) == [2, 4])
    }

    @Test func duplicatesAreDropped() throws {
        let entries = try TupleFile.parse("10.0.0.1:1 10.0.0.2:2\n10.0.0.1:1  10.0.0.2:2\n10.0.0.1:1 [::ffff:10.0.0.2]:2\n")
        #expect(entries.count == 1)
    }

    @Test func descriptionRoundTrips() throws {
        let text = "10.0.0.1:40001 10.0.0.2:443\n[2001:db8::1]:* [2001:db8::2]:443"
        let entries = try TupleFile.parse(text)
        #expect(entries.map(\.description) == ["10.0.0.1:40001 10.0.0.2:443", "[2001:db8::1]:* [2001:db8::2]:443"])
        #expect(try TupleFile.parse(entries.map(\.description).joined(separator: "\n")) == entries)
    }

    static let malformed: [MalformedTupleFile] = [
        MalformedTupleFile(text: "10.0.0.1:1", line: 1, fragment: "expected 'LOCAL REMOTE'"),
        MalformedTupleFile(text: "# ok\n10.0.0.1:1 10.0.0.2:2 10.0.0.3:3", line: 2, fragment: "found 3 fields"),
        MalformedTupleFile(text: "\n\n10.0.0.256:1 10.0.0.2:2", line: 3, fragment: "local endpoint '10.0.0.256:1': octet 256 is out of range"),
        MalformedTupleFile(text: "10.0.0.1:1 10.0.0.2", line: 1, fragment: "remote endpoint '10.0.0.2': expected ADDRESS:PORT, e.g. 10.0.0.2:443"),
        MalformedTupleFile(text: "10.0.0.1:1 [::1]", line: 1, fragment: "expected ADDRESS:PORT, e.g. [::1]:443"),
        MalformedTupleFile(text: "10.0.0.1:1 2001:db8::1", line: 1, fragment: "e.g. [2001:db8::1]:443"),
        MalformedTupleFile(text: "10.0.0.0/8:1 10.0.0.2:2", line: 1, fragment: "not a prefix"),
        MalformedTupleFile(text: "*:1 10.0.0.2:2", line: 1, fragment: "expected an address, not '*'"),
        MalformedTupleFile(text: "10.0.0.1:1 10.0.0.2:0", line: 1, fragment: "remote port must be 1-65535"),
        MalformedTupleFile(text: "10.0.0.1:1 10.0.0.2:*", line: 1, fragment: "remote port must be 1-65535"),
        MalformedTupleFile(text: "10.0.0.1:65536 10.0.0.2:1", line: 1, fragment: "port 65536 is out of range"),
        MalformedTupleFile(text: "10.0.0.1:x 10.0.0.2:1", line: 1, fragment: "unknown port 'x'"),
        MalformedTupleFile(text: "host:1 10.0.0.2:1", line: 1, fragment: "host names are not resolved"),
        MalformedTupleFile(text: "10.0.0.1:1 [2001:db8::2:443", line: 1, fragment: "missing ']'"),
        MalformedTupleFile(text: "10.0.0.1:1 10.0.0.2:1\n10.0.0.1:1 10.0.0.2:1\nbad", line: 3, fragment: "expected 'LOCAL REMOTE'"),
    ]

    @Test(arguments: malformed)
    func malformedFilesAreReported(_ testCase: MalformedTupleFile) {
        do {
            let entries = try TupleFile.parse(testCase.text)
            Issue.record("parsed \(entries)")
        } catch {
            #expect(error.line == testCase.line, "\(error)")
            #expect(error.message.contains(testCase.fragment), "\(error)")
            #expect(error.description.hasPrefix("line \(testCase.line): "))
        }
    }

    @Test func entryLimit() throws {
        let lines = (1...3).map { "10.0.0.1:\($0) 10.0.0.2:443" }
        #expect(try TupleFile.parse(lines.joined(separator: "\n"), maxEntries: 3).count == 3)
        // Duplicates do not count towards the limit.
        #expect(try TupleFile.parse((lines + [lines[0]]).joined(separator: "\n"), maxEntries: 3).count == 3)
        do {
            _ = try TupleFile.parse((lines + ["10.0.0.1:9 10.0.0.2:443"]).joined(separator: "\n"), maxEntries: 3)
            Issue.record("4 entries accepted with a limit of 3")
        } catch {
            #expect(error.line == 4)
            #expect(error.message.contains("more than 3 tuples"))
        }
    }

    @Test func defaultLimitMatchesTheKernelMap() {
        #expect(TupleFile.defaultMaxEntries == 65_536)
    }

    @Test func largeFilesParse() throws {
        let lines = (0..<20_000).map { index in "10.\(index / 256 % 256).\(index % 256).1:\(1024 + index % 5000) [2001:db8::\(String(index, radix: 16))]:443" }
        let entries = try TupleFile.parse(lines.joined(separator: "\n"))
        #expect(entries.count == 20_000)
    }
}
