/* The tracepoint fallback (tp_btf, optional): rule checks for existing sockets whose sock_ops callbacks
 * could not be switched on (the kernel is older than 6.12; enroll.bpf.c marked them `via_tracepoints`).
 *  - probe_existing (tcp_probe): every incoming segment of an established socket, at the start of
 *    tcp_rcv_established(), socket locked. It replaces RTT_CB, RETRANS_CB and RTO_CB: rules are checked
 *    on ACKs instead (a stall with no ACK is left to the sweep).
 *  - state_existing (inet_sock_set_state): state changes and the final record at close, like STATE_CB.
 * Both fire for every TCP socket of the host; sockets without our marked storage cost one lookup. */
#include "common.bpf.h"
#include <bpf/bpf_core_read.h>

SEC("tp_btf/tcp_probe")
int probe_existing(__u64 *ctx)
{
    struct sock *sk = (struct sock *)ctx[0];
    if (!sk) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st || !st->via_tracepoints || !st->subscribers) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;
    count(TCPNOTIFY_STAT_CALLBACKS);
    __u8 state = tp->inet_conn.icsk_inet.sk.__sk_common.skc_state;
    /* tcp_probe runs before the segment is processed: rcv_tstamp and lrcvtime still say when the previous
     * one came. Every segment of an established connection carries an ACK; it carries data when it is
     * longer than its TCP header (skb->data points at that header here). */
    __u8 arriving = TN_ARRIVING_ACK;
    struct sk_buff *skb = (struct sk_buff *)ctx[1];
    if (skb) {
        __u32 len = BPF_CORE_READ(skb, len);
        unsigned char *data = BPF_CORE_READ(skb, data);
        __u8 offset_byte = 0;
        if (data && bpf_probe_read_kernel(&offset_byte, 1, data + 12) == 0 && len > (__u32)(offset_byte >> 4) * 4)
            arriving |= TN_ARRIVING_DATA;
    }
    tn_check_socket(tp, st, state, state, TCPNOTIFY_TRIGGER_SEGMENT, arriving, 0);
    return 0;
}

SEC("tp_btf/inet_sock_set_state")
int state_existing(__u64 *ctx)
{
    struct sock *sk = (struct sock *)ctx[0];
    if (!sk) return 0;
    struct tcpnotify_sk_state *st = bpf_sk_storage_get(&sk_state, sk, 0, 0);
    if (!st || !st->via_tracepoints) return 0;
    __u8 old_state = (__u8)ctx[1];
    __u8 new_state = (__u8)ctx[2];
    if (new_state == TN_TCP_CLOSE && old_state != TN_TCP_CLOSE) count(TCPNOTIFY_STAT_CLOSED);
    if (!st->subscribers) return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) return 0;
    count(TCPNOTIFY_STAT_CALLBACKS);
    __u8 trigger = new_state == TN_TCP_CLOSE ? TCPNOTIFY_TRIGGER_CLOSE : TCPNOTIFY_TRIGGER_STATE;
    tn_check_socket(tp, st, new_state, old_state, trigger, 0, 0);
    return 0;
}
