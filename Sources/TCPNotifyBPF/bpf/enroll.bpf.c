/* enroll_existing (iter/tcp, optional): enrolls the selected sockets that were established before the
 * core program was attached. Setting their callback flags from an iterator needs Linux 6.12
 * (TCP_BPF_SOCK_OPS_CB_FLAGS in bpf_setsockopt); where the kernel refuses it, the socket is marked
 * `via_tracepoints` and the tracepoint fallback (tracepoints.bpf.c) checks its rules instead.
 * iter/tcp sees one network namespace: user space opens one iterator per namespace. */
#include "common.bpf.h"

/* Clean stop (control.release_cb_flags): clear exactly the callback flags we switched on, on the sockets we
 * enrolled, keeping every bit another program set (the word is shared). Before 6.12 the kernel refuses the
 * option from an iterator: those sockets keep our flags until they close (counted). */
static __always_inline int tn_release_flags(struct tcp_sock *tp)
{
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, (struct sock *)tp, 0, 0);
    if (!st || !st->own_cb_flags) return 0;
    int flags = tp->bpf_sock_ops_cb_flags & ~(__u32)st->own_cb_flags;
    if ((cfg.test_flags & TCPNOTIFY_TEST_NO_ITERATOR_FLAGS) ||
        bpf_setsockopt(tp, TN_SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags)) != 0) {
        count(TCPNOTIFY_STAT_FLAGS_KEPT);
        return 0;
    }
    st->own_cb_flags = 0;
    count(TCPNOTIFY_STAT_FLAGS_RELEASED);
    return 0;
}

SEC("iter/tcp")
int enroll_existing(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0; /* time-wait and request sockets have no tcp_sock */
    __u32 zero = 0;
    struct tcpnotify_control *ctl = bpf_map_lookup_elem(&control, &zero);
    if (!ctl) return 0;
    if (ctl->release_cb_flags) return tn_release_flags(tp);
    count(TCPNOTIFY_STAT_EXISTING_SEEN);
    if (!tn_watched_state(skc->skc_state)) return 0;
    if (!tn_in_scope(ctl, tp)) return 0;

    struct tcpnotify_tuple_key key;
    __u8 family = 0;
    tn_socket_endpoints(skc, &key, &family);
    /* Only the subscribers being enrolled now (all at start; a joining one later). */
    __u32 subscribers = tn_selected(&key) & ctl->enroll_subscribers;
    if (!subscribers) return 0;

    struct sock *sk = (struct sock *)tp;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (st) {
        /* Enrolled already (by sock_ops, or for other subscribers): add the new ones' bits. */
        if ((st->subscribers | subscribers) == st->subscribers) return 0;
        st->subscribers |= subscribers;
        struct tcpnotify_rule_table *t = tn_live_rules();
        if (t) st->rule_mask = tn_rule_mask(t, st->subscribers);
        count(TCPNOTIFY_STAT_EXISTING_ENROLLED);
        return 0;
    }
    st = bpf_sk_storage_get(&sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!st) {
        count(TCPNOTIFY_STAT_STORAGE_FAILURES);
        return 0;
    }
    tn_start_state(st, bpf_get_socket_cookie(sk), family, tp, subscribers);

    /* The iterator holds the socket lock. OR our bits into the shared word, as sock_ops does. Before 6.12
     * the kernel refuses this option: the tracepoint fallback then watches the socket. */
    __u32 before = tp->bpf_sock_ops_cb_flags;
    int flags = before | cfg.callback_flags;
    if ((cfg.test_flags & TCPNOTIFY_TEST_NO_ITERATOR_FLAGS) ||
        bpf_setsockopt(tp, TN_SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags)) != 0) {
        st->via_tracepoints = 1;
        count(TCPNOTIFY_STAT_VIA_TRACEPOINTS);
    } else {
        st->own_cb_flags = (__u8)(cfg.callback_flags & ~before);
    }
    count(TCPNOTIFY_STAT_ENROLLED);
    count(TCPNOTIFY_STAT_EXISTING_ENROLLED);
    return 0;
}
