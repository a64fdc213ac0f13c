/* tcpnotify's sock_ops program: enrolls selected sockets at establishment, checks rules at TCP's own
 * events (RTT sample, retransmit, RTO, state change) and pushes a tcp_info record only when a rule
 * becomes true. Sockets that were not selected pay one sk_storage miss per foreign callback. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "tcpnotify.h"
#include "tcp_info.bpf.h"
#include "select.bpf.h"
#include "rules.bpf.h"

#define TN_AF_INET 2
#define TN_AF_INET6 10
#define TN_TCP_CLOSE 7
#define TN_SOL_TCP 6

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

/* Last forced ring wakeup (CLOCK_MONOTONIC ns). Racy across CPUs by design: an extra wakeup is harmless. */
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

/* Copy every ctx field into locals before branching on the family (the verifier rejects ctx+offset). */
static __always_inline void tn_endpoints(struct bpf_sock_ops *skops, struct tcpnotify_tuple_key *k, __u8 *family)
{
    __u32 fam = skops->family;
    __u32 local4 = skops->local_ip4;
    __u32 remote4 = skops->remote_ip4;
    __u32 local6[4], remote6[4];
    local6[0] = skops->local_ip6[0];
    local6[1] = skops->local_ip6[1];
    local6[2] = skops->local_ip6[2];
    local6[3] = skops->local_ip6[3];
    remote6[0] = skops->remote_ip6[0];
    remote6[1] = skops->remote_ip6[1];
    remote6[2] = skops->remote_ip6[2];
    remote6[3] = skops->remote_ip6[3];
    __u32 local_port = skops->local_port;
    __u32 remote_port = bpf_ntohl(skops->remote_port);

    __builtin_memset(k, 0, sizeof(*k));
    if (fam == TN_AF_INET) {
        /* ::ffff:a.b.c.d */
        __u32 mapped = bpf_htonl(0x0000ffff);
        __builtin_memcpy(&k->local_addr[8], &mapped, 4);
        __builtin_memcpy(&k->local_addr[12], &local4, 4);
        __builtin_memcpy(&k->remote_addr[8], &mapped, 4);
        __builtin_memcpy(&k->remote_addr[12], &remote4, 4);
    } else {
        __builtin_memcpy(k->local_addr, local6, 16);
        __builtin_memcpy(k->remote_addr, remote6, 16);
    }
    k->local_port = (__u16)local_port;
    k->remote_port = (__u16)remote_port;
    *family = (__u8)fam;
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

static __always_inline void tn_enroll(struct bpf_sock_ops *skops)
{
    count(TCPNOTIFY_STAT_ESTABLISHED);
    struct tcpnotify_tuple_key key;
    __u8 family = 0;
    tn_endpoints(skops, &key, &family);
    __u32 subscribers = tn_selected(&key);
    if (!subscribers) return;

    struct bpf_sock *sk = skops->sk;
    if (!sk) return;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st) {
        count(TCPNOTIFY_STAT_STORAGE_FAILURES);
        return;
    }
    tn_start_state(st, bpf_get_socket_cookie(skops), family, bpf_skc_to_tcp_sock(sk), subscribers);

    /* The flags word is shared with every other sock_ops program: OR ours in, never clear theirs. */
    int flags = skops->bpf_sock_ops_cb_flags | cfg.callback_flags;
    if (bpf_sock_ops_cb_flags_set(skops, flags) != 0) count(TCPNOTIFY_STAT_FLAG_FAILURES);
    count(TCPNOTIFY_STAT_ENROLLED);
}

/* Wake the consumer at most once per interval, or when the backlog passes the watermark; in between,
 * records wait for the consumer's next short poll (it polls briefly after every batch). */
static __always_inline __u64 tn_wakeup_flags(__u64 now_ns)
{
    if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg.wakeup_watermark_bytes) {
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

static __always_inline void tn_emit(struct bpf_sock_ops *skops, struct tcpnotify_sk_state *st,
                                    const struct tn_source *s, __u8 trigger, __u8 old_state,
                                    __u32 fired, __u32 rules_true, __u32 generation)
{
    struct tcpnotify_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count(TCPNOTIFY_STAT_RING_DROPS);
        return;
    }
    __u64 now = bpf_ktime_get_ns();
    st->notifications += 1;
    tn_fill_record(r, s, trigger, old_state, fired, rules_true, generation, skops->bpf_sock_ops_cb_flags, now);
    tn_record_socket(r, st);
    __u8 family = 0;
    tn_endpoints(skops, (struct tcpnotify_tuple_key *)r->local_addr, &family);
    bpf_ringbuf_submit(r, tn_wakeup_flags(now));
    count(TCPNOTIFY_STAT_NOTIFICATIONS);
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

static __always_inline void tn_check(struct bpf_sock_ops *skops, __u32 op)
{
    struct bpf_sock *sk = skops->sk;
    if (!sk) return;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st) return; /* not ours: another program set this socket's flags */
    if (!st->subscribers) { /* every subscriber that selected it has left: only its end is counted */
        if (op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == TN_TCP_CLOSE && skops->args[0] != TN_TCP_CLOSE)
            count(TCPNOTIFY_STAT_CLOSED);
        return;
    }
    count(TCPNOTIFY_STAT_CALLBACKS);

    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return;

    struct tcpnotify_rule_table *t = tn_live_rules();
    if (!t) return;

    struct tn_source s = {};
    tn_source_init(&s, tp, tp->inet_conn.icsk_inet.sk.__sk_common.skc_state);
    __u8 old_state = s.state;
    __u8 trigger = 0;

    switch (op) {
    case BPF_SOCK_OPS_RTT_CB: {
        /* args[1] is the new srtt << 3, not yet stored in tp (6.10+); earlier kernels pass 0. */
        __u32 srtt_x8 = skops->args[1];
        if (srtt_x8) s.srtt_us_x8 = srtt_x8 > 1 ? srtt_x8 : 1;
        trigger = TCPNOTIFY_TRIGGER_RTT;
        break;
    }
    case BPF_SOCK_OPS_RETRANS_CB:
        trigger = TCPNOTIFY_TRIGGER_RETRANS;
        break;
    case BPF_SOCK_OPS_RTO_CB:
        trigger = TCPNOTIFY_TRIGGER_RTO;
        break;
    case BPF_SOCK_OPS_STATE_CB: {
        /* Runs before the new state is stored: report and evaluate the state being entered. */
        old_state = (__u8)skops->args[0];
        s.state = (__u8)skops->args[1];
        trigger = s.state == TN_TCP_CLOSE ? TCPNOTIFY_TRIGGER_CLOSE : TCPNOTIFY_TRIGGER_STATE;
        if (trigger == TCPNOTIFY_TRIGGER_CLOSE && old_state != TN_TCP_CLOSE) count(TCPNOTIFY_STAT_CLOSED);
        break;
    }
    default:
        return;
    }

    __u64 now_ns = 0;
    if (t->flags & TCPNOTIFY_RULES_NEED_CLOCK) {
        now_ns = bpf_ktime_get_ns();
        s.age_us = (now_ns - st->enrolled_ns) / 1000;
    }
    if (st->rule_generation != t->generation) st->rule_mask = tn_rule_mask(t, st->subscribers);
    __u32 rules_true = 0;
    /* Only the socket's subscribers' rules notify: no record is built that nobody wants. */
    __u32 fired = tn_rules_step(t, st, &s, now_ns, &rules_true) & st->rule_mask;
    rules_true &= st->rule_mask;

    int final_record = trigger == TCPNOTIFY_TRIGGER_CLOSE && cfg.notify_on_close && st->notifications > 0;
    if (fired || final_record) tn_emit(skops, st, &s, trigger, old_state, fired, rules_true, t->generation);
}

SEC("sockops")
int sockops_main(struct bpf_sock_ops *skops)
{
    __u32 op = skops->op;
    switch (op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
        tn_enroll(skops);
        break;
    case BPF_SOCK_OPS_RTT_CB:
    case BPF_SOCK_OPS_RETRANS_CB:
    case BPF_SOCK_OPS_RTO_CB:
    case BPF_SOCK_OPS_STATE_CB:
        tn_check(skops, op);
        break;
    default:
        break;
    }
    return 1;
}

#include "iterators.bpf.h"
