import CTCPNotify
import TCPNotifyCore

/// Converts the compiled Swift filter and rules into the C tables of tcpnotify.h.
enum KernelTables {
    static func filter(_ compiled: CompiledFilter, useTuples: Bool, tuplesHaveWildcard: Bool) -> tcpnotify_filter {
        var table = tcpnotify_filter()
        var flags: UInt32 = 0
        if compiled.matchAll { flags |= UInt32(TCPNOTIFY_FILTER_MATCH_ALL) }
        if useTuples { flags |= UInt32(TCPNOTIFY_FILTER_USE_TUPLES) }
        if tuplesHaveWildcard { flags |= UInt32(TCPNOTIFY_FILTER_TUPLE_WILDCARD_SPORT) }
        table.flags = flags
        let predicates = compiled.predicates.prefix(Int(TCPNOTIFY_MAX_FILTER_PREDICATES))
        let clauses = compiled.clauses.prefix(Int(TCPNOTIFY_MAX_FILTER_CLAUSES))
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
            for (index, clause) in clauses.enumerated() { slots[index] = cClause(clause) }
        }
        return table
    }

    static func rules(_ compiled: CompiledRules, generation: UInt32) -> tcpnotify_rule_table {
        var table = tcpnotify_rule_table()
        table.generation = generation
        let terms = compiled.terms.prefix(Int(TCPNOTIFY_MAX_RULE_TERMS))
        let clauses = compiled.clauses.prefix(Int(TCPNOTIFY_MAX_RULE_CLAUSES))
        table.rule_count = UInt32(min(compiled.rules.count, Int(TCPNOTIFY_MAX_RULES)))
        table.term_count = UInt32(terms.count)
        table.clause_count = UInt32(clauses.count)
        withUnsafeMutableBytes(of: &table.terms) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_rule_term.self)
            for (index, term) in terms.enumerated() {
                var slot = tcpnotify_rule_term()
                slot.kind = UInt8(TCPNOTIFY_TERM_FIELD_CMP.rawValue)
                slot.op = term.op.rawValue
                slot.field = term.field.rawValue
                slot.value = term.value
                slots[index] = slot
            }
        }
        withUnsafeMutableBytes(of: &table.clauses) { buffer in
            let slots = buffer.bindMemory(to: tcpnotify_clause.self)
            for (index, clause) in clauses.enumerated() { slots[index] = cClause(clause) }
        }
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
