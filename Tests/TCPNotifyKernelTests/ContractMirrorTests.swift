import CTCPNotify
import TCPNotifyCore
import Testing

/// TCPNotifyCore is pure Swift, so it restates some C enums and limits of tcpnotify.h. Each mirror is
/// checked here against the C value; the switches are exhaustive, so a Swift case without its C twin
/// does not compile. No root needed.
@Suite struct ContractMirror {
    @Test(arguments: Trigger.allCases)
    func triggers(trigger: Trigger) {
        let c: tcpnotify_trigger = switch trigger {
        case .rtt: TCPNOTIFY_TRIGGER_RTT
        case .retrans: TCPNOTIFY_TRIGGER_RETRANS
        case .rto: TCPNOTIFY_TRIGGER_RTO
        case .state: TCPNOTIFY_TRIGGER_STATE
        case .close: TCPNOTIFY_TRIGGER_CLOSE
        case .sweep: TCPNOTIFY_TRIGGER_SWEEP
        case .snapshot: TCPNOTIFY_TRIGGER_SNAPSHOT
        case .poll: TCPNOTIFY_TRIGGER_POLL
        case .segment: TCPNOTIFY_TRIGGER_SEGMENT
        }
        #expect(UInt32(trigger.rawValue) == c.rawValue, "\(trigger)")
    }

    @Test(arguments: ComparisonOperator.allCases)
    func comparisonOperators(op: ComparisonOperator) {
        let c: tcpnotify_op = switch op {
        case .eq: TCPNOTIFY_OP_EQ
        case .ne: TCPNOTIFY_OP_NE
        case .lt: TCPNOTIFY_OP_LT
        case .le: TCPNOTIFY_OP_LE
        case .gt: TCPNOTIFY_OP_GT
        case .ge: TCPNOTIFY_OP_GE
        }
        #expect(UInt32(op.rawValue) == c.rawValue, "\(op)")
    }

    @Test(arguments: [FilterPredicate.Kind.sourcePrefix, .destinationPrefix, .sourcePort, .destinationPort])
    func predicateKinds(kind: FilterPredicate.Kind) {
        let c: tcpnotify_predicate_kind = switch kind {
        case .sourcePrefix: TCPNOTIFY_PRED_SRC_PREFIX
        case .destinationPrefix: TCPNOTIFY_PRED_DST_PREFIX
        case .sourcePort: TCPNOTIFY_PRED_SPORT
        case .destinationPort: TCPNOTIFY_PRED_DPORT
        }
        #expect(UInt32(kind.rawValue) == c.rawValue, "\(kind)")
    }

    @Test(arguments: RuleTerm.Kind.allCases)
    func termKinds(kind: RuleTerm.Kind) {
        let c: tcpnotify_term_kind = switch kind {
        case .compare: TCPNOTIFY_TERM_FIELD_CMP
        case .ratio: TCPNOTIFY_TERM_RATIO
        case .sum: TCPNOTIFY_TERM_SUM
        case .difference: TCPNOTIFY_TERM_DIFF
        case .increase: TCPNOTIFY_TERM_INCREASE
        case .rate: TCPNOTIFY_TERM_RATE
        }
        #expect(UInt32(kind.rawValue) == c.rawValue, "\(kind)")
    }

    @Test func virtualFieldIDs() {
        #expect(UInt32(RuleOperand.ageKernelID) == TCPNOTIFY_VFIELD_AGE_US.rawValue)
        #expect(RuleOperand.age.kernelID >= UInt16(TCPNOTIFY_FIELD_COUNT.rawValue), "virtual ids start past the fields")
    }

    @Test func tableLimits() {
        #expect(SubscriptionSet.maxSubscribers == Int(TCPNOTIFY_MAX_SUBSCRIBERS))
        #expect(FilterExpression.maxPredicates == Int(TCPNOTIFY_MAX_FILTER_PREDICATES))
        #expect(FilterExpression.maxClauses == Int(TCPNOTIFY_MAX_FILTER_CLAUSES))
        #expect(RuleExpression.maxRules == Int(TCPNOTIFY_MAX_RULES))
        #expect(RuleExpression.maxTerms == Int(TCPNOTIFY_MAX_RULE_TERMS))
        #expect(RuleExpression.maxClauses == Int(TCPNOTIFY_MAX_RULE_CLAUSES))
        #expect(RuleExpression.maxWindows == Int(TCPNOTIFY_MAX_WINDOWS))
        #expect(RuleExpression.maxTimedRules == Int(TCPNOTIFY_MAX_TIMED_RULES))
        #expect(RuleExpression.maxOperands == Int(TCPNOTIFY_MAX_OPERANDS))
        #expect(RuleWindowState.snapshotCount == Int(TCPNOTIFY_WINDOW_SNAPSHOTS))
    }
}
