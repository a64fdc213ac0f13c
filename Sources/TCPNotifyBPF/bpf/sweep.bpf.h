/* What both sweeps (sweep_map.bpf.c, sweep_tcp.bpf.c) share: the check of one enrolled socket, and the
 * sweep horizon, the earliest instant at which a horizon term can next become true for any socket this
 * sweep checked (bpf_ktime ns; user space sets it to all ones before a sweep and reads it after). Only
 * the sweep writes it, one iterator read at a time, so a plain minimum needs no atomics. */
#ifndef TCPNOTIFY_SWEEP_BPF_H
#define TCPNOTIFY_SWEEP_BPF_H

#include "common.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} sweep_horizon SEC(".maps");

static __always_inline void tn_sweep_socket(struct tcp_sock *tp, struct tcpnotify_sk_state *st, __u8 state)
{
    count(TCPNOTIFY_STAT_SWEPT);
    __u64 horizon = TN_U64_MAX;
    tn_check_socket(tp, st, state, state, TCPNOTIFY_TRIGGER_SWEEP, 0, &horizon);
    __u32 zero = 0;
    __u64 *earliest = bpf_map_lookup_elem(&sweep_horizon, &zero);
    if (earliest && horizon < *earliest) *earliest = horizon;
}

#endif
