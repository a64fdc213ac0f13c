import CTCPNotify
import TCPNotifyBPF
import TCPNotifyCore

/// The kernel's rule evaluator run on given values (`rules_eval.bpf.c` through BPF_PROG_TEST_RUN),
/// one event at a time for one socket: what the differential tests compare with Swift's reference.
/// Test support: this target (and its BPF object) is linked by the tests only, never by `tcpnotify`.
package final class RuleEvaluationProgram {
    private let object: BPFObject
    private let programFD: Int32

    package init(rules: CompiledRules) throws(BPFError) {
        object = try BPFObject(embeddedBase64: BPFObject_rules_eval.base64, name: "rules_eval")
        try object.load()
        programFD = try object.programFD("rules_eval")
        let table = try KernelTables.rules(rules, subscriberRules: [], generation: 1)
        try MapAccess.update(fd: object.mapFD("rules"), key: UInt32(0), value: table, name: "rules")
    }

    /// Evaluates one event `sinceEnrollmentNanoseconds` after enrollment; `reset` starts a new socket.
    package func step(
        sinceEnrollmentNanoseconds: UInt64, reset: Bool, value: (RuleOperand) -> UInt64
    ) throws(BPFError) -> (rulesTrue: UInt32, fired: UInt32) {
        var request = tcpnotify_eval_request()
        request.since_enrollment_ns = sinceEnrollmentNanoseconds
        request.reset = reset ? 1 : 0
        withUnsafeMutableBytes(of: &request.values) { buffer in
            let values = buffer.bindMemory(to: UInt64.self)
            for field in TCPInfoField.allCases { values[Int(field.rawValue)] = value(.field(field)) }
        }
        let result = CTCPNotify_test_run(programFD, &request, UInt32(MemoryLayout<tcpnotify_eval_request>.size))
        if result < 0 { throw BPFError.libbpf(function: "bpf_prog_test_run(rules_eval)", errno: -result) }
        if result != 0 { throw BPFError.invalidArgument("rules_eval found no rule table") }
        return (request.rules_true, request.fired)
    }
}
