/* What every tcpnotify BPF object shares: the fixed settings, the maps and the helpers that select
 * sockets, check rules and emit records.
 *
 * Each program is its own object (tcpnotify.bpf.c holds the core, sock_ops; the others are optional),
 * so that a kernel refusing one program type loses only what depends on it. The core object creates
 * the maps; every other object declares the same maps here and reuses the core's (bpf_map__reuse_fd),
 * so all of them see one sk_storage, one ring buffer and one set of counters. */
#ifndef TCPNOTIFY_COMMON_BPF_H
#define TCPNOTIFY_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpnotify.h"
#include "tcp_info.bpf.h"
#include "select.bpf.h"
#include "rules.bpf.h"

#define TN_AF_INET 2
#define TN_AF_INET6 10
#define TN_SOL_TCP 6
#define TN_TCP_ESTABLISHED 1
#define TN_TCP_FIN_WAIT1 4
#define TN_TCP_FIN_WAIT2 5
#define TN_TCP_CLOSE 7
#define TN_TCP_CLOSE_WAIT 8
#define TN_TCP_LAST_ACK 9
#define TN_TCP_CLOSING 11
#ifndef TCP_BPF_SOCK_OPS_CB_FLAGS
#define TCP_BPF_SOCK_OPS_CB_FLAGS 1008 /* bpf_{get,set}sockopt, Linux 6.12 */
#endif

char LICENSE[] SEC("license") = "GPL";

SEC(".rodata.cfg") const volatile struct tcpnotify_config cfg = {
    .hz_fallback = 250,
    .callback_flags = BPF_SOCK_OPS_RTO_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG |
                      BPF_SOCK_OPS_RTT_CB_FLAG,
    .wakeup_interval_ns = 200000,
    .wakeup_watermark_bytes = 256 * 1024,
    .notify_on_close = 1,
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct tcpnotify_sk_state);
} sk_state SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2); /* two slots, flipped by control.active_filter_slot */
    __type(key, __u32);
    __type(value, struct tcpnotify_filter);
} filter SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TCPNOTIFY_MAX_TUPLES);
    __type(key, struct tcpnotify_tuple_key);
    __type(value, __u8);
} filter_tuple SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct tcpnotify_rule_table);
} rules SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tcpnotify_control);
} control SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, TCPNOTIFY_STAT_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} stats SEC(".maps");

/* cgroup ids at or below the attach point, for enrolling existing sockets of a non-root attach point. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, TCPNOTIFY_MAX_SCOPE_CGROUPS);
    __type(key, __u64);
    __type(value, __u8);
} scope_cgroups SEC(".maps");

/* A record is too big for the BPF stack: the snapshot builds it here. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tcpnotify_record);
} snapshot_scratch SEC(".maps");

/* Last forced ring wakeup (CLOCK_MONOTONIC ns), per object. Racy across CPUs by design: an extra wakeup
 * is harmless. */
__u64 last_wakeup_ns = 0;

static __always_inline void count(__u32 stat)
{
    __u64 *value = bpf_map_lookup_elem(&stats, &stat);
    if (value) *value += 1;
}

static __always_inline __u32 tn_hz(void)
{
    __u32 hz = CONFIG_HZ;
    if (hz == 0 || hz > 1000000) hz = cfg.hz_fallback;
    return hz ? hz : 250;
}

static __always_inline int tn_tuple_listed(struct tcpnotify_tuple_key *k, __u32 flags)
{
    if (bpf_map_lookup_elem(&filter_tuple, k)) return 1;
    if (flags & TCPNOTIFY_FILTER_TUPLE_WILDCARD_SPORT) {
        __u16 port = k->local_port;
        k->local_port = 0;
        int listed = bpf_map_lookup_elem(&filter_tuple, k) != NULL;
        k->local_port = port;
        return listed;
    }
    return 0;
}

static __always_inline __u64 tn_socket_cgroup_id(struct tcp_sock *tp)
{
    struct cgroup *cgrp = tp->inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup;
    if (!cgrp) return 0;
    struct kernfs_node *kn = cgrp->kn;
    return kn ? kn->id : 0;
}

/* The subscribers whose live selection (filter, then their exact-tuple list) takes this connection. */
static __always_inline __u32 tn_selected(struct tcpnotify_tuple_key *key)
{
    __u32 zero = 0;
    struct tcpnotify_control *ctl = bpf_map_lookup_elem(&control, &zero);
    if (!ctl) return 0;
    __u32 slot = ctl->active_filter_slot & 1;
    struct tcpnotify_filter *f = bpf_map_lookup_elem(&filter, &slot);
    if (!f) return 0;
    __u32 subscribers = tn_filter_subscribers(f, key);
    __u32 need_tuple = subscribers & f->tuple_subscribers;
    if (need_tuple && !tn_tuple_listed(key, f->flags)) subscribers &= ~need_tuple;
    return subscribers;
}

static __always_inline void tn_start_state(struct tcpnotify_sk_state *st, __u64 cookie, __u8 family,
                                           struct tcp_sock *tp, __u32 subscribers)
{
    st->cookie = cookie;
    st->enrolled_ns = bpf_ktime_get_ns();
    st->family = family;
    st->cgroup_id = tp ? tn_socket_cgroup_id(tp) : 0;
    st->subscribers = subscribers;
    /* rule_generation stays 0 (tables start at 1): the first check computes rule_mask. */
}

/* The rules a socket's subscribers own. Branch-free: it adds no verifier states. Runs only when the
 * rule table's generation changed (or the subscribers did), never per event. */
static __always_inline __u32 tn_rule_mask(const struct tcpnotify_rule_table *t, __u32 subscribers)
{
    __u32 mask = 0;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_SUBSCRIBERS; i++)
        mask |= t->subscriber_rules[i] & (0u - ((subscribers >> i) & 1));
    return mask;
}

/* Wake the consumer at most once per interval, or when the backlog crosses the watermark; in between,
 * records wait for the consumer's next short poll (it polls briefly after every batch). Only the record
 * that crosses the watermark wakes, not every record above it: a forced wakeup costs ~10 µs here (an
 * irq_work, a self-IPI in a VM), and above the watermark the consumer is already awake and draining. A
 * crossing missed between two CPUs' records is caught by the interval. */
static __always_inline __u64 tn_wakeup_flags(__u64 now_ns)
{
    __u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
    if (waiting >= cfg.wakeup_watermark_bytes &&
        waiting < cfg.wakeup_watermark_bytes + sizeof(struct tcpnotify_record) + 8 /* ring header */) {
        last_wakeup_ns = now_ns;
        count(TCPNOTIFY_STAT_WAKEUPS);
        return BPF_RB_FORCE_WAKEUP;
    }
    if (now_ns - last_wakeup_ns >= cfg.wakeup_interval_ns) {
        last_wakeup_ns = now_ns;
        count(TCPNOTIFY_STAT_WAKEUPS);
        return BPF_RB_FORCE_WAKEUP;
    }
    return BPF_RB_NO_WAKEUP;
}

/* Fills a notification record except its endpoints and socket identity (tn_record_socket). */
static __always_inline void tn_fill_record(struct tcpnotify_record *r, const struct tn_source *s, __u8 trigger,
                                           __u8 old_state, __u32 fired, __u32 rules_true, __u32 generation,
                                           __u32 callback_flags, __u64 now)
{
    __builtin_memset(r, 0, sizeof(*r));
    r->type = TCPNOTIFY_RECORD_NOTIFICATION;
    r->size = sizeof(*r);
    r->trigger = trigger;
    r->old_state = old_state;
    r->rules_fired = fired;
    r->rules_true = rules_true;
    r->rule_generation = generation;
    r->callback_flags = callback_flags;
    r->timestamp_ns = now;
    tn_fill(&r->info, s);
}

static __always_inline void tn_record_socket(struct tcpnotify_record *r, const struct tcpnotify_sk_state *st)
{
    r->family = st->family;
    r->cookie = st->cookie;
    r->cgroup_id = st->cgroup_id;
    r->notifications = st->notifications;
    r->subscribers = st->subscribers;
}

_Static_assert(__builtin_offsetof(struct tcpnotify_record, remote_addr) ==
                   __builtin_offsetof(struct tcpnotify_record, local_addr) + 16 &&
               __builtin_offsetof(struct tcpnotify_record, local_port) ==
                   __builtin_offsetof(struct tcpnotify_record, local_addr) + 32 &&
               __builtin_offsetof(struct tcpnotify_record, remote_port) ==
                   __builtin_offsetof(struct tcpnotify_record, local_addr) + 34,
               "the record's endpoint fields are laid out as struct tcpnotify_tuple_key");

/* What a rule check or a record needs from the socket, read at the current event. */
static __always_inline void tn_source_init(struct tn_source *s, struct tcp_sock *tp, __u8 state)
{
    s->tp = tp;
    s->now_jiffies = (__u32)bpf_jiffies64();
    s->hz = tn_hz();
    s->srtt_us_x8 = tp->srtt_us;
    s->state = state;
}

static __always_inline struct tcpnotify_rule_table *tn_live_rules(void)
{
    __u32 zero = 0;
    struct tcpnotify_control *ctl = bpf_map_lookup_elem(&control, &zero);
    if (!ctl) return 0;
    __u32 slot = ctl->active_rule_slot & 1;
    return bpf_map_lookup_elem(&rules, &slot);
}

/* The states in which sock_ops would have enrolled the socket and still watches it. */
static __always_inline int tn_watched_state(__u8 state)
{
    return state == TN_TCP_ESTABLISHED || state == TN_TCP_FIN_WAIT1 || state == TN_TCP_FIN_WAIT2 ||
           state == TN_TCP_CLOSE_WAIT || state == TN_TCP_LAST_ACK || state == TN_TCP_CLOSING;
}

/* The key tn_endpoints() builds from a sock_ops context, from the socket itself. */
static __always_inline void tn_socket_endpoints(struct sock_common *skc, struct tcpnotify_tuple_key *k,
                                                __u8 *family)
{
    __u16 fam = skc->skc_family;
    __builtin_memset(k, 0, sizeof(*k));
    if (fam == TN_AF_INET) {
        __u32 mapped = bpf_htonl(0x0000ffff);
        __u32 local4 = skc->skc_rcv_saddr;
        __u32 remote4 = skc->skc_daddr;
        __builtin_memcpy(&k->local_addr[8], &mapped, 4);
        __builtin_memcpy(&k->local_addr[12], &local4, 4);
        __builtin_memcpy(&k->remote_addr[8], &mapped, 4);
        __builtin_memcpy(&k->remote_addr[12], &remote4, 4);
    } else {
        bpf_probe_read_kernel(k->local_addr, 16, &skc->skc_v6_rcv_saddr);
        bpf_probe_read_kernel(k->remote_addr, 16, &skc->skc_v6_daddr);
    }
    k->local_port = skc->skc_num;
    k->remote_port = bpf_ntohs(skc->skc_dport);
    *family = (__u8)fam;
}

static __always_inline int tn_in_scope(const struct tcpnotify_control *ctl, struct tcp_sock *tp)
{
    if (ctl->scope_all_cgroups) return 1;
    __u64 id = tn_socket_cgroup_id(tp);
    return bpf_map_lookup_elem(&scope_cgroups, &id) != 0;
}

/* One rule check of one enrolled socket, for sock_ops and the other programs alike: only the socket's
 * subscribers' rules notify (no record is built that nobody wants). Returns whether to emit a record: a
 * rule fired, or the socket closes after having notified (its final record). */
static __always_inline int tn_socket_rules(const struct tcpnotify_rule_table *t, struct tcpnotify_sk_state *st,
                                           const struct tn_source *s, __u64 now_ns, __u8 trigger, __u32 *fired,
                                           __u32 *rules_true, __u64 *horizon_ns)
{
    if (st->rule_generation != t->generation) st->rule_mask = tn_rule_mask(t, st->subscribers);
    __u32 holding = 0;
    *fired = tn_rules_step(t, st, s, now_ns, &holding, horizon_ns) & st->rule_mask;
    *rules_true = holding & st->rule_mask;
    int final_record = trigger == TCPNOTIFY_TRIGGER_CLOSE && cfg.notify_on_close && st->notifications > 0;
    return *fired || final_record;
}

/* Checks an enrolled socket's rules outside sock_ops (the sweep, the tracepoint fallback) and emits a
 * record when a rule fires, or the final record at close. `state` is the state to report; `arriving`
 * (TN_ARRIVING_*) marks a segment being received right now. The sweep passes horizon_ns (tn_rules_horizon);
 * the tracepoints pass 0. */
static __always_inline void tn_check_socket(struct tcp_sock *tp, struct tcpnotify_sk_state *st, __u8 state,
                                            __u8 old_state, __u8 trigger, __u8 arriving, __u64 *horizon_ns)
{
    struct tcpnotify_rule_table *t = tn_live_rules();
    if (!t) return;
    struct tn_source s = {};
    tn_source_init(&s, tp, state);
    s.arriving = arriving;
    __u64 now_ns = bpf_ktime_get_ns();
    s.age_us = (now_ns - st->enrolled_ns) / 1000;
    __u32 fired = 0, rules_true = 0;
    if (!tn_socket_rules(t, st, &s, now_ns, trigger, &fired, &rules_true, horizon_ns)) return;

    struct tcpnotify_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count(TCPNOTIFY_STAT_RING_DROPS);
        return;
    }
    st->notifications += 1;
    tn_fill_record(r, &s, trigger, old_state, fired, rules_true, t->generation, tp->bpf_sock_ops_cb_flags, now_ns);
    tn_record_socket(r, st);
    __u8 family = 0;
    tn_socket_endpoints(&tp->inet_conn.icsk_inet.sk.__sk_common, (struct tcpnotify_tuple_key *)r->local_addr,
                        &family);
    bpf_ringbuf_submit(r, tn_wakeup_flags(now_ns));
    count(TCPNOTIFY_STAT_NOTIFICATIONS);
}

/* Clears the subscribers in control.forget_subscribers from an enrolled socket. */
static __always_inline void tn_forget(struct tcpnotify_sk_state *st)
{
    __u32 zero = 0;
    struct tcpnotify_control *ctl = bpf_map_lookup_elem(&control, &zero);
    if (!ctl || !(st->subscribers & ctl->forget_subscribers)) return;
    st->subscribers &= ~ctl->forget_subscribers;
    struct tcpnotify_rule_table *t = tn_live_rules();
    if (t) st->rule_mask = tn_rule_mask(t, st->subscribers);
}

#endif
