/* Test-run entry to the rule evaluator: BPF_PROG_TEST_RUN feeds one event (field values and the time
 * since enrollment); the program runs the sock_ops program's own rules.bpf.h on a one-socket state.
 * The differential test compares it with Swift's reference evaluator over recorded series. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcpnotify.h"
#include "tcp_info.bpf.h"
#include "rules.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tcpnotify_rule_table);
} rules SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tcpnotify_sk_state);
} eval_state SEC(".maps");

struct eval_values {
    __u64 values[TCPNOTIFY_FIELD_COUNT];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct eval_values);
} eval_values SEC(".maps");

SEC("syscall")
int rules_eval(struct tcpnotify_eval_request *request)
{
    __u32 zero = 0;
    struct tcpnotify_rule_table *t = bpf_map_lookup_elem(&rules, &zero);
    struct tcpnotify_sk_state *st = bpf_map_lookup_elem(&eval_state, &zero);
    struct eval_values *values = bpf_map_lookup_elem(&eval_values, &zero);
    if (!t || !st || !values) return 1;
    if (request->reset) {
        __builtin_memset(st, 0, sizeof(*st));
        st->rule_generation = t->generation;
    }
    __builtin_memcpy(values->values, request->values, sizeof(values->values));
    __u64 now_ns = request->since_enrollment_ns;
    struct tn_source s = {};
    s.values = values->values;
    s.age_us = now_ns / 1000;
    __u32 rules_true = 0;
    request->fired = tn_rules_step(t, st, &s, now_ns, &rules_true, 0);
    request->rules_true = rules_true;
    return 0;
}
