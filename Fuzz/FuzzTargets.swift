import Glibc

// libFuzzer entry point for tcpnotify's input parsers. Built by scripts/fuzz with `swiftc -sanitize=fuzzer`
// together with TCPNotifyCore's sources (one module), so no package target carries fuzzer instrumentation.
// TCPNOTIFY_FUZZ_TARGET picks the parser; each target also checks a property of what it accepts.

/// One parser under fuzzing.
struct FuzzTarget {
    var name: String
    var run: ([UInt8]) -> Void
}

let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(name: "filter") { bytes in
        // Any text: compiles, or fails with a position inside the input.
        let text = String(decoding: bytes, as: UTF8.self)
        do throws(ExpressionError) {
            _ = try FilterExpression.compile(text)
        } catch {
            check(error.position >= 0 && error.position <= error.input.count, "error position \(error.position) outside the input")
        }
    },
    FuzzTarget(name: "rules") { bytes in
        // Up to 8 rules, one per line, as `--when` takes them.
        let rules = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .prefix(8).map(String.init)
        do throws(ExpressionError) {
            _ = try RuleExpression.compile(rules)
        } catch {
            check(error.position >= 0 && error.position <= error.input.count, "error position \(error.position) outside the input")
        }
    },
    FuzzTarget(name: "tuples") { bytes in
        // A --tuples file, capped at 64 entries so the dedup set stays small.
        if let entries = try? TupleFile.parse(String(decoding: bytes, as: UTF8.self), maxEntries: 64) {
            check(entries.count <= 64, "more tuples than the cap")
        }
    },
    FuzzTarget(name: "duration") { bytes in
        // Durations as the CLI, rules and config read them; an accepted one formats and reads back the same.
        let text = String(decoding: bytes, as: UTF8.self)
        if let span = try? DurationText.parse(text, plainNumbers: .seconds) {
            let again = try? DurationText.parse(DurationText.format(nanoseconds: span.nanoseconds))
            check(again == span, "'\(text)' formats as text that does not read back")
        }
    },
    FuzzTarget(name: "subscriber-request") { bytes in
        // A line from a subscriber socket, as `serve` reads it.
        _ = SubscriberProtocol.parse(bytes)
    },
]

/// A property that does not hold is a finding: crash so libFuzzer keeps the input.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

nonisolated(unsafe) var selectedTarget: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if selectedTarget == nil {
        let name = getenv("TCPNOTIFY_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = fuzzTargets.first(where: { $0.name == name }) else {
            fatalError("set TCPNOTIFY_FUZZ_TARGET to one of: \(fuzzTargets.map(\.name).joined(separator: ", "))")
        }
        selectedTarget = target
    }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget!.run(bytes)
    return 0
}
