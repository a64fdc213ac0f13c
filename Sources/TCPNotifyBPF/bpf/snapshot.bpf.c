/* snapshot_sockets (iter/tcp, optional): writes a record of every selected socket (listeners excepted,
 * like ss without -l) to the iterator's reader, for `tcpnotify snapshot`. */
#include "common.bpf.h"

SEC("iter/tcp")
int snapshot_sockets(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    __u8 state = skc->skc_state;
    if (state == TN_TCP_LISTEN) return 0;

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
