import CTCPNotify
import TCPNotifyCore

/// Converts the compiled Swift filter and rules into the C tables of tcpnotify.h.
package enum KernelTables {
    /// The shared filter table: every subscriber's clauses, tagged with the subscribers they select for.
    static func filter(_ shared: SharedTables, tuplesHaveWildcard: Bool) -> tcpnotify_filter {
        var table = tcpnotify_filter()
        var flags: UInt32 = 0
        if tuplesHaveWildcard { flags |= UInt32(TCPNOTIFY_FILTER_TUPLE_WILDCARD_SPORT) }
        table.flags = flags
        table.tuple_subscribers = shared.tupleSubscribers
        let predicates = shared.predicates.prefix(Int(TCPNOTIFY_MAX_FILTER_PREDICATES))
        let clauses = shared.filterClauses.prefix(Int(TCPNOTIFY_MAX_FILTER_CLAUSES))
        table.predicate_count = UInt32(predicates.count)
        table.clause_count = UInt32(clauses.count)
        withUnsafeMutableBytes(of: &table.predicates) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_filter_predicate.self)
            for (index, predicate) in predicates.enumerated() {
                var slot = tcpnotify_filter_predicate()
                slot.kind = predicate.kind.rawValue
                slot.op = predicate.op.rawValue
                slot.prefix_len = predicate.prefixLength
                slot.port = predicate.port
                slot.addr = tuple16(predicate.address)
                slots[index] = slot
            }
        }
        withUnsafeMutableBytes(of: &table.clauses) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_clause.self)
            for (index, tagged) in clauses.enumerated() {
                var clause = cClause(tagged.clause)
                clause.subscribers = tagged.subscribers
                slots[index] = clause
            }
        }
        return table
    }

    /// The rule table: operands deduplicated into slots (each computed once per event), terms pointing
    /// at slots and windows, and per-rule controls with timer slots for `for`/`every` rules.
    package static func rules(_ compiled: CompiledRules, subscriberRules: [UInt32], generation: UInt32) throws(BPFError)
        -> tcpnotify_rule_table
    {
        var table = tcpnotify_rule_table()
        table.generation = generation
        withUnsafeMutableBytes(of: &table.subscriber_rules) { buffer in
            let slots = buffer.bindMemory(to: UInt32.self)
            for (slot, rules) in subscriberRules.prefix(slots.count).enumerated() { slots[slot] = rules }
        }
        guard compiled.rules.count <= Int(TCPNOTIFY_MAX_RULES), compiled.terms.count <= Int(TCPNOTIFY_MAX_RULE_TERMS),
              compiled.clauses.count <= Int(TCPNOTIFY_MAX_RULE_CLAUSES),
              compiled.windows.count <= Int(TCPNOTIFY_MAX_WINDOWS),
              compiled.timedRules.count <= Int(TCPNOTIFY_MAX_TIMED_RULES) else {
            throw BPFError.invalidArgument("the rules exceed the kernel table's limits")
        }

        var operands: [RuleOperand] = []
        func slot(_ operand: RuleOperand) -> UInt8 {
            if let index = operands.firstIndex(of: operand) { return UInt8(index) }
            operands.append(operand)
            return UInt8(operands.count - 1)
        }
        var windows: [tcpnotify_window] = []
        for window in compiled.windows {
            var entry = tcpnotify_window()
            entry.width_ns = window.widthNanoseconds
            entry.operand = slot(window.operand)
            windows.append(entry)
        }
        var terms: [tcpnotify_rule_term] = []
        for term in compiled.terms {
            var entry = tcpnotify_rule_term()
            entry.kind = term.kind.rawValue
            entry.op = term.op.rawValue
            entry.a = slot(term.operand)
            entry.b = term.operand2.map(slot) ?? 0
            if let window = term.window, let index = compiled.windows.firstIndex(of: window) {
                entry.window = UInt8(index)
            }
            entry.value = term.value
            // The sweep reports when such a term can next hold; user space decides whether to use it.
            entry.horizon_unit = SweepHorizon.unit(of: term)?.rawValue ?? 0
            terms.append(entry)
        }
        guard operands.count <= Int(TCPNOTIFY_MAX_OPERANDS) else {
            throw BPFError.invalidArgument(
                "the rules read \(operands.count) different fields; the kernel table holds at most \(TCPNOTIFY_MAX_OPERANDS)")
        }

        table.rule_count = UInt32(compiled.rules.count)
        table.term_count = UInt32(terms.count)
        table.clause_count = UInt32(compiled.clauses.count)
        table.window_count = UInt32(windows.count)
        table.operand_count = UInt32(operands.count)
        table.timed_rule_count = UInt32(compiled.timedRules.count)
        withUnsafeMutableBytes(of: &table.operands) { buffer in
            let slots = buffer.bindMemory(to: UInt16.self)
            for (index, operand) in operands.enumerated() { slots[index] = operand.kernelID }
        }
        withUnsafeMutableBytes(of: &table.terms) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_rule_term.self)
            for (index, term) in terms.enumerated() { slots[index] = term }
        }
        withUnsafeMutableBytes(of: &table.clauses) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_clause.self)
            for (index, clause) in compiled.clauses.enumerated() { slots[index] = cClause(clause) }
        }
        withUnsafeMutableBytes(of: &table.windows) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_window.self)
            for (index, window) in windows.enumerated() { slots[index] = window }
        }
        var timedMask: UInt32 = 0, onceMask: UInt32 = 0, eachMask: UInt32 = 0
        withUnsafeMutableBytes(of: &table.controls) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_rule_control.self)
            for (index, rule) in compiled.rules.enumerated() {
                var control = tcpnotify_rule_control()
                let bit = UInt32(1) << UInt32(index)
                if rule.control.forMilliseconds > 0 { control.flags |= UInt8(TCPNOTIFY_RULE_FOR) }
                if rule.control.everyMilliseconds > 0 { control.flags |= UInt8(TCPNOTIFY_RULE_EVERY) }
                if rule.control.once {
                    control.flags |= UInt8(TCPNOTIFY_RULE_ONCE)
                    onceMask |= bit
                }
                if rule.control.each {
                    control.flags |= UInt8(TCPNOTIFY_RULE_EACH)
                    eachMask |= bit
                }
                if let timerSlot = compiled.timedRules.firstIndex(of: index) {
                    control.timer_slot = UInt8(timerSlot)
                    timedMask |= bit
                }
                control.for_ms = rule.control.forMilliseconds
                control.every_ms = rule.control.everyMilliseconds
                slots[index] = control
            }
        }
        withUnsafeMutableBytes(of: &table.timed_rules) { buffer in
            for (slot, rule) in compiled.timedRules.enumerated() { buffer[slot] = UInt8(rule) }
        }
        if !compiled.windows.isEmpty || !compiled.timedRules.isEmpty || operands.contains(.age) {
            table.flags |= UInt32(TCPNOTIFY_RULES_NEED_CLOCK)
        }
        table.timed_mask = timedMask
        table.once_mask = onceMask
        table.each_mask = eachMask
        return table
    }

    static func tupleKey(_ entry: TupleEntry) -> tcpnotify_tuple_key {
        var key = tcpnotify_tuple_key()
        key.local_addr = tuple16(entry.localAddress)
        key.remote_addr = tuple16(entry.remoteAddress)
        key.local_port = entry.localPort
        key.remote_port = entry.remotePort
        return key
    }

    private static func cClause(_ clause: Clause) -> tcpnotify_clause {
        var slot = tcpnotify_clause()
        slot.must_true = clause.mustBeTrue
        slot.must_false = clause.mustBeFalse
        slot.rule = clause.rule
        return slot
    }
}
