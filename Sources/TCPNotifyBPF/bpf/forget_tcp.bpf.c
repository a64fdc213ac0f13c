/* forget_sockets (iter/tcp, optional): forget_subscribers where the kernel refuses the sk_storage map
 * iterator; runs once per network namespace. */
#include "common.bpf.h"

SEC("iter/tcp")
int forget_sockets(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, (struct sock *)tp, 0, 0);
    if (st) tn_forget(st);
    return 0;
}
