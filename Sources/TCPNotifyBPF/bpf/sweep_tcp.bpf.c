/* sweep_sockets (iter/tcp, optional): the sweep where the kernel refuses the sk_storage map iterator.
 * It walks every TCP socket of one network namespace (user space runs it in each) and checks the
 * rules of those that carry our sk_storage; the others cost one storage lookup. Here the iterator
 * holds the socket lock. */
#include "sweep.bpf.h"

SEC("iter/tcp")
int sweep_sockets(struct bpf_iter__tcp *ctx)
{
    struct sock_common *skc = ctx->sk_common;
    if (!skc) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
    if (!tp) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, (struct sock *)tp, 0, 0);
    if (!st || !st->subscribers) return 0;
    __u8 state = skc->skc_state;
    if (!tn_watched_state(state)) return 0;
    tn_sweep_socket(tp, st, state);
    return 0;
}
