/* tcpnotify's core program (sock_ops): enrolls selected sockets at establishment, checks rules at TCP's
 * own events (RTT sample, retransmit, RTO, state change) and pushes a tcp_info record only when a rule
 * becomes true. Sockets that were not selected pay one sk_storage miss per foreign callback.
 * This object creates the maps (common.bpf.h); the optional programs are objects of their own. */
#include "common.bpf.h"

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

/* Global functions (tn_enroll, tn_emit, tn_check) are verified once each, on their own; as static
 * inline code they were verified again along every path of the caller (the program took 4 times as
 * long to load). */
__noinline int tn_enroll(struct bpf_sock_ops *skops)
{
    if (!skops) return 0;
    count(TCPNOTIFY_STAT_ESTABLISHED);
    struct tcpnotify_tuple_key key;
    __u8 family = 0;
    tn_endpoints(skops, &key, &family);
    __u32 subscribers = tn_selected(&key);
    if (!subscribers) return 0;

    struct bpf_sock *sk = skops->sk;
    if (!sk) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st) {
        count(TCPNOTIFY_STAT_STORAGE_FAILURES);
        return 0;
    }
    tn_start_state(st, bpf_get_socket_cookie(skops), family, bpf_skc_to_tcp_sock(sk), subscribers);

    /* The flags word is shared with every other sock_ops program: OR ours in, never clear theirs. */
    __u32 before = skops->bpf_sock_ops_cb_flags;
    int flags = before | cfg.callback_flags;
    if (bpf_sock_ops_cb_flags_set(skops, flags) != 0) count(TCPNOTIFY_STAT_FLAG_FAILURES);
    else st->own_cb_flags = (__u8)(cfg.callback_flags & ~before); /* what a clean stop clears */
    count(TCPNOTIFY_STAT_ENROLLED);
    return 0;
}

/* What tn_emit needs besides the socket: plain values, so that it can be a global function. */
struct tn_emit_args {
    __u64 age_us;
    /* The clock the rules were checked with (0: they needed none). The record carries it, so records of
       `every D` are D apart on their own stamps too (a second clock read here differed by up to 0.2 ms
       under load). */
    __u64 checked_ns;
    __u32 fired;
    __u32 rules_true;
    __u32 generation;
    __u32 srtt_us_x8;
    __u8 trigger;
    __u8 old_state;
    __u8 state;
    __u8 pad[5];
};

__noinline int tn_emit(struct bpf_sock_ops *skops, struct tcpnotify_sk_state *st, struct tn_emit_args *a)
{
    if (!skops || !st || !a) return 0;
    struct bpf_sock *sk = skops->sk;
    if (!sk) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;
    struct tn_source s = {};
    tn_source_init(&s, tp, a->state);
    s.srtt_us_x8 = a->srtt_us_x8;
    s.age_us = a->age_us;
    struct tcpnotify_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count(TCPNOTIFY_STAT_RING_DROPS);
        return 0;
    }
    __u64 now = a->checked_ns ? a->checked_ns : bpf_ktime_get_ns();
    st->notifications += 1;
    tn_fill_record(r, &s, a->trigger, a->old_state, a->fired, a->rules_true, a->generation,
                   skops->bpf_sock_ops_cb_flags, now);
    tn_record_socket(r, st);
    __u8 family = 0;
    tn_endpoints(skops, (struct tcpnotify_tuple_key *)r->local_addr, &family);
    bpf_ringbuf_submit(r, tn_wakeup_flags(now));
    count(TCPNOTIFY_STAT_NOTIFICATIONS);
    return 0;
}

__noinline int tn_check(struct bpf_sock_ops *skops)
{
    if (!skops) return 0;
    __u32 op = skops->op;
    struct bpf_sock *sk = skops->sk;
    if (!sk) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st) return 0; /* not ours: another program set this socket's flags */
    if (!st->subscribers) { /* every subscriber that selected it has left: only its end is counted */
        if (op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == TN_TCP_CLOSE && skops->args[0] != TN_TCP_CLOSE)
            count(TCPNOTIFY_STAT_CLOSED);
        return 0;
    }
    count(TCPNOTIFY_STAT_CALLBACKS);

    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;

    struct tcpnotify_rule_table *t = tn_live_rules();
    if (!t) return 0;

    struct tn_source s = {};
    tn_source_init(&s, tp, tp->inet_conn.icsk_inet.sk.__sk_common.skc_state);
    __u8 old_state = s.state;
    __u8 trigger = 0;

    switch (op) {
    case BPF_SOCK_OPS_RTT_CB: {
        /* args[1] is the new srtt << 3, not yet stored in tp (6.10+); earlier kernels pass 0. */
        __u32 srtt_x8 = skops->args[1];
        if (srtt_x8) s.srtt_us_x8 = srtt_x8 > 1 ? srtt_x8 : 1;
        else count(TCPNOTIFY_STAT_RTT_WITHOUT_SRTT);
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
        return 0;
    }

    __u64 now_ns = 0;
    if (t->flags & TCPNOTIFY_RULES_NEED_CLOCK) {
        now_ns = bpf_ktime_get_ns();
        s.age_us = (now_ns - st->enrolled_ns) / 1000;
    }
    __u32 fired = 0, rules_true = 0;
    if (tn_socket_rules(t, st, &s, now_ns, trigger, &fired, &rules_true, 0)) {
        struct tn_emit_args args = {
            .age_us = s.age_us, .checked_ns = now_ns, .fired = fired, .rules_true = rules_true, .generation = t->generation,
            .srtt_us_x8 = s.srtt_us_x8, .trigger = trigger, .old_state = old_state, .state = s.state,
        };
        tn_emit(skops, st, &args);
    }
    return 0;
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
        tn_check(skops);
        break;
    default:
        break;
    }
    return 1;
}
