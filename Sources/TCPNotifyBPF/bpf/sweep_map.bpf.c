/* sweep_enrolled (iter/bpf_sk_storage_map, optional): checks the rules of every enrolled socket, for
 * conditions that no TCP event reports (a silent peer, a window stuck at zero). It walks the sk_state
 * map, so it costs nothing per unenrolled socket and covers every network namespace in one pass.
 * Some kernels refuse this program type (EPERM, empty log): sweep_tcp.bpf.c then does the same job.
 *
 * The socket is not locked here: a sweep racing a sock_ops callback on the same socket can, rarely, let
 * both see a rule's edge (one extra notification). Values are read as the kernel last stored them. */
#include "sweep.bpf.h"

SEC("iter/bpf_sk_storage_map")
int sweep_enrolled(struct bpf_iter__bpf_sk_storage_map *ctx)
{
    struct sock *sk = ctx->sk;
    if (!sk || !ctx->value) return 0;
    /* ctx->value is a plain buffer the verifier will not index by rule slot; the map lookup gives the
     * same entry as a map value. */
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st || !st->subscribers) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;
    __u8 state = tp->inet_conn.icsk_inet.sk.__sk_common.skc_state;
    if (!tn_watched_state(state)) return 0; /* closing: its close record comes from sock_ops */
    tn_sweep_socket(tp, st, state);
    return 0;
}
