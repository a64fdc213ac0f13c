import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// Path of a product built next to the test bundle (`swift build` puts them in the same directory).
func builtProduct(_ name: String, environmentOverride: String) throws -> String {
    if let override = ProcessInfo.processInfo.environment[environmentOverride] { return override }
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    throw SocketError("\(name) is not built next to the tests (\(executable)); run `swift build` first or set \(environmentOverride)", ENOENT)
}

/// A running `tcpnotify` (or any) process whose stdout lines are collected with their arrival time.
final class CLIProcess: @unchecked Sendable {
    let process = Process()
    private let output = Output()
    private let wireCache = WireLineCache(subscriber: false)
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        stdoutPipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            output.appendStdout(data, at: MonotonicClock.nanoseconds())
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            guard !data.isEmpty else { return }
            output.errorText.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
    }

    var outputLines: [(text: String, monotonicNanoseconds: UInt64)] { output.lines.withLock { $0 } }
    var standardError: String { output.errorText.withLock { $0 } }

    /// What the pipe handlers collect, line by line with the time each line arrived.
    final class Output: Sendable {
        let lines = Mutex<[(text: String, monotonicNanoseconds: UInt64)]>([])
        let errorText = Mutex<String>("")
        private let partial = Mutex<String>("")

        func appendStdout(_ data: Data, at time: UInt64) {
            partial.withLock { buffer in
                buffer += String(decoding: data, as: UTF8.self)
                while let newline = buffer.firstIndex(of: "\n") {
                    let line = String(buffer[..<newline])
                    buffer = String(buffer[buffer.index(after: newline)...])
                    lines.withLock { $0.append((line, time)) }
                }
            }
        }
    }

    /// The JSON lines printed so far, decoded with the product's wire types (lines that do not read back
    /// are test failures).
    var wireLines: [WireOutputLine] { wireCache.lines(of: outputLines.map(\.text)) }
    var notifications: [Wire.Notification] { wireLines.compactMap(\.notification) }
    /// The last stats line (`watch` prints it when it stops).
    var finalStats: Wire.Stats? { wireLines.last?.stats }

    /// The lines of one wire type printed so far (`lines(of: Wire.DiagnosisLine.self)`), decoded with the
    /// product's own types: a renamed field breaks the tests at compile time, and a line of a known type
    /// that does not read back fails the test with the line.
    func lines<Line: WireLine>(of type: Line.Type) -> [Line] { wireLines.compactMap { $0.decoded(type) } }

    /// The same with the time each line arrived.
    func timedLines<Line: WireLine>(of type: Line.Type) -> [(line: Line, monotonicNanoseconds: UInt64)] {
        let texts = outputLines
        return wireCache.indexedLines(of: texts.map(\.text)).compactMap { entry in
            entry.line.decoded(type).map { ($0, texts[entry.index].monotonicNanoseconds) }
        }
    }

    /// The `"type"` of the last JSON line (`"stats"` when a command ended cleanly).
    var lastLineType: String? { wireLines.last?.lineType }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for exit; returns the status, or nil on timeout (the process is then killed).
    func waitForExit(timeout: Double = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        usleep(50_000) // let the pipe handlers take the last lines
        return process.terminationStatus
    }

    /// Runs a command to completion and returns (status, stdout, stderr).
    static func run(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try CLIProcess(executable, arguments)
        let status = process.waitForExit(timeout: timeout) ?? -1
        return (status, process.outputLines.map(\.text).joined(separator: "\n"), process.standardError)
    }
}

/// How long a test waits for a command to start (attach, enroll): a second here, 10-15 s in a qemu guest
/// without KVM (the kernel matrix). Only a bound: tests go on as soon as the line appears.
let commandStartSeconds = 60.0

/// Program ids attached to a cgroup, from `bpftool cgroup show` (the kernel's own list).
func attachedProgramIDs(cgroup: String) throws -> [Int] {
    struct Entry: Decodable { var id: Int? }
    let result = try CLIProcess.run("/usr/sbin/bpftool", ["-j", "cgroup", "show", cgroup])
    return (try? JSONDecoder().decode([Entry].self, from: Data(result.stdout.utf8)))?.compactMap(\.id) ?? []
}
