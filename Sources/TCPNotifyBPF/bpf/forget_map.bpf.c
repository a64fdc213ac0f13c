/* forget_subscribers (iter/bpf_sk_storage_map, optional): a subscriber left; clear its bit from every
 * enrolled socket, so that a later subscriber reusing the slot never receives notifications for sockets
 * it did not select. Walks only the sk_state map. forget_tcp.bpf.c is the fallback. */
#include "common.bpf.h"

SEC("iter/bpf_sk_storage_map")
int forget_subscribers(struct bpf_iter__bpf_sk_storage_map *ctx)
{
    struct sock *sk = ctx->sk;
    if (!sk || !ctx->value) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (st) tn_forget(st);
    return 0;
}
