/* tcpnotify's iterator programs, part of tcpnotify.bpf.c (included at its end: they share its maps).
 *  - enroll_existing (iter/tcp): enrolls sockets that were established before the program was attached.
 *  - sweep_enrolled (iter/bpf_sk_storage_map): checks the rules of every enrolled socket, for conditions
 *    that no TCP event reports (a silent peer, a window stuck at zero). It walks the sk_state map, so it
 *    costs nothing per unenrolled socket.
 *  - snapshot_sockets (iter/tcp): writes a record of every selected socket to the iterator's reader.
 * iter/tcp sees one network namespace: user space opens one iterator per namespace. */
#ifndef TCPNOTIFY_ITERATORS_BPF_H
#define TCPNOTIFY_ITERATORS_BPF_H

#define TN_TCP_ESTABLISHED 1
#define TN_TCP_FIN_WAIT1 4
#define TN_TCP_FIN_WAIT2 5
#define TN_TCP_CLOSE_WAIT 8
#define TN_TCP_LAST_ACK 9
#define TN_TCP_CLOSING 11
#ifndef TCP_BPF_SOCK_OPS_CB_FLAGS
#define TCP_BPF_SOCK_OPS_CB_FLAGS 1008 /* bpf_{get,set}sockopt, Linux 6.12 */
#endif

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

/* The states in which sock_ops would have enrolled the socket and still watches it. */
static __always_inline int tn_watched_state(__u8 state)
{
    return state == TN_TCP_ESTABLISHED || state == TN_TCP_FIN_WAIT1 || state == TN_TCP_FIN_WAIT2 ||
           state == TN_TCP_CLOSE_WAIT || state == TN_TCP_LAST_ACK || state == TN_TCP_CLOSING;
}

/* The same key tn_endpoints() builds from a sock_ops context, from the socket itself. */
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

static __always_inline int tn_in_scope(struct tcp_sock *tp)
{
    __u32 zero = 0;
    struct tcpnotify_control *ctl = bpf_map_lookup_elem(&control, &zero);
    if (!ctl) return 0;
    if (ctl->scope_all_cgroups) return 1;
    __u64 id = tn_socket_cgroup_id(tp);
    return bpf_map_lookup_elem(&scope_cgroups, &id) != 0;
}

SEC("iter/tcp")
int enroll_existing(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0; /* time-wait and request sockets have no tcp_sock */
    count(TCPNOTIFY_STAT_EXISTING_SEEN);
    if (!tn_watched_state(skc->skc_state)) return 0;
    if (!tn_in_scope(tp)) return 0;

    struct tcpnotify_tuple_key key;
    __u8 family = 0;
    tn_socket_endpoints(skc, &key, &family);
    if (!tn_selected(&key)) return 0;

    struct sock *sk = (struct sock *)tp;
    if (bpf_sk_storage_get(&sk_state, sk, 0, 0)) return 0; /* sock_ops enrolled it meanwhile */
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st) {
        count(TCPNOTIFY_STAT_STORAGE_FAILURES);
        return 0;
    }
    tn_start_state(st, bpf_get_socket_cookie(sk), family, tp);

    /* The iterator holds the socket lock. OR our bits into the shared word, as sock_ops does. */
    int flags = tp->bpf_sock_ops_cb_flags | cfg.callback_flags;
    if (bpf_setsockopt(tp, TN_SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags)) != 0) {
        count(TCPNOTIFY_STAT_FLAG_FAILURES);
    }
    count(TCPNOTIFY_STAT_ENROLLED);
    count(TCPNOTIFY_STAT_EXISTING_ENROLLED);
    return 0;
}

/* The socket is not locked here: a sweep racing a sock_ops callback on the same socket can, rarely, let
 * both see a rule's edge (one extra notification). Values are read as the kernel last stored them. */
SEC("iter/bpf_sk_storage_map")
int sweep_enrolled(struct bpf_iter__bpf_sk_storage_map *ctx)
{
    struct sock *sk = ctx->sk;
    if (!sk || !ctx->value) return 0;
    /* ctx->value is a plain buffer the verifier will not index by rule slot; the map lookup gives the
     * same entry as a map value. */
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;
    __u8 state = tp->inet_conn.icsk_inet.sk.__sk_common.skc_state;
    if (!tn_watched_state(state)) return 0; /* closing: its close record comes from sock_ops */
    struct tcpnotify_rule_table *t = tn_live_rules();
    if (!t) return 0;
    count(TCPNOTIFY_STAT_SWEPT);

    struct tn_source s = {};
    tn_source_init(&s, tp, state);
    __u64 now_ns = bpf_ktime_get_ns();
    s.age_us = (now_ns - st->enrolled_ns) / 1000;
    __u32 rules_true = 0;
    __u32 fired = tn_rules_step(t, st, &s, now_ns, &rules_true);
    if (!fired) return 0;

    struct tcpnotify_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count(TCPNOTIFY_STAT_RING_DROPS);
        return 0;
    }
    st->notifications += 1;
    tn_fill_record(r, &s, TCPNOTIFY_TRIGGER_SWEEP, state, fired, rules_true, t->generation,
                   tp->bpf_sock_ops_cb_flags, now_ns);
    tn_record_socket(r, st);
    __u8 family = 0;
    tn_socket_endpoints(&tp->inet_conn.icsk_inet.sk.__sk_common, (struct tcpnotify_tuple_key *)r->local_addr,
                        &family);
    bpf_ringbuf_submit(r, tn_wakeup_flags(now_ns));
    count(TCPNOTIFY_STAT_NOTIFICATIONS);
    return 0;
}

SEC("iter/tcp")
int snapshot_sockets(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    __u8 state = skc->skc_state;
    if (state == TN_TCP_LISTEN) return 0; /* like ss without -l */

    __u32 zero = 0;
    struct tcpnotify_record *r = bpf_map_lookup_elem(&snapshot_scratch, &zero);
    if (!r) return 0;
    struct tcpnotify_tuple_key key;
    __u8 family = 0;
    tn_socket_endpoints(skc, &key, &family);
    if (!tn_selected(&key)) return 0;

    struct tn_source s = {};
    tn_source_init(&s, tp, state);
    tn_fill_record(r, &s, TCPNOTIFY_TRIGGER_SNAPSHOT, state, 0, 0, 0, tp->bpf_sock_ops_cb_flags,
                   bpf_ktime_get_ns());
    r->family = family;
    r->cookie = bpf_get_socket_cookie((struct sock *)tp);
    r->cgroup_id = tn_socket_cgroup_id(tp);
    __builtin_memcpy(r->local_addr, &key, sizeof(key));
    bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
    return 0;
}

#endif
