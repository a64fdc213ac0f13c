/* Rebuilding struct tcp_info in BPF, field for field as tcp_get_info() (net/ipv4/tcp.c, Linux 6.18) does.
 * tn_field() computes one field on demand (rules are checked with it before any record exists);
 * tn_fill() builds the whole record once a rule has tripped. Both are generated from TCPNOTIFY_FOR_EACH_FIELD
 * and the TN_READ_<ID> lines below. */
#ifndef TCPNOTIFY_TCP_INFO_BPF_H
#define TCPNOTIFY_TCP_INFO_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "tcpnotify.h"

#define TN_TCP_LISTEN 10
#define TN_TCPI_OPT_TIMESTAMPS 1
#define TN_TCPI_OPT_SACK 2
#define TN_TCPI_OPT_WSCALE 4
#define TN_TCPI_OPT_ECN 8
#define TN_TCPI_OPT_ECN_SEEN 16
#define TN_TCPI_OPT_SYN_DATA 32
#define TN_TCPI_OPT_USEC_TS 64
#define TN_TCPI_OPT_TFO_CHILD 128

/* Everything a field computation needs, gathered once per callback. */
struct tn_source {
    struct tcp_sock *tp;
    const __u64 *values;   /* instead of tp: field values given by a test run (TCPNOTIFY_FIELD_COUNT of them) */
    __u64 age_us;          /* since enrollment: the TCPNOTIFY_VFIELD_AGE_US operand */
    __u32 now_jiffies;     /* tcp_jiffies32 */
    __u32 hz;
    __u32 srtt_us_x8;      /* srtt << 3 as the kernel will store it (RTT_CB passes the new one) */
    __u8 state;            /* the state to report (the new one in a state change) */
    __u8 arriving;         /* TN_ARRIVING_*: a segment being received now (tcp_probe runs before the socket
                            * records it): its ACK and data count as received now, not as still silent */
};

#define TN_ARRIVING_ACK 1
#define TN_ARRIVING_DATA 2

extern unsigned int CONFIG_HZ __kconfig __weak;

static __always_inline __u64 tn_jiffies_to_usecs(const struct tn_source *s, __u64 jiffies)
{
    /* Exact while HZ divides 1,000,000 (100, 250, 1000 all do). */
    return jiffies * (1000000u / s->hz);
}

static __always_inline __u32 tn_jiffies_to_msecs(const struct tn_source *s, __u32 jiffies)
{
    if (1000u % s->hz == 0) return jiffies * (1000u / s->hz);
    return (__u32)(((__u64)jiffies * 1000u + s->hz - 1) / s->hz);
}

static __always_inline __u8 tn_options(const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
    __u8 options = 0;
    if (BPF_CORE_READ_BITFIELD(tp, rx_opt.tstamp_ok)) options |= TN_TCPI_OPT_TIMESTAMPS;
    if (BPF_CORE_READ_BITFIELD(tp, rx_opt.sack_ok)) options |= TN_TCPI_OPT_SACK;
    if (BPF_CORE_READ_BITFIELD(tp, rx_opt.wscale_ok)) options |= TN_TCPI_OPT_WSCALE;
    __u8 ecn_flags = tp->ecn_flags;
    /* 6.18 keeps the ECN mode in bits 0 and 4 (TCP_ECN_MODE_ANY); earlier kernels in bit 0 only. */
    if (ecn_flags & 0x11) options |= TN_TCPI_OPT_ECN;
    if (ecn_flags & 0x08) options |= TN_TCPI_OPT_ECN_SEEN;
    if (BPF_CORE_READ_BITFIELD(tp, syn_data_acked)) options |= TN_TCPI_OPT_SYN_DATA;
    if (bpf_core_field_exists(tp->tcp_usec_ts) && BPF_CORE_READ_BITFIELD(tp, tcp_usec_ts))
        options |= TN_TCPI_OPT_USEC_TS;
    if (bpf_core_field_exists(tp->syn_fastopen_child) && BPF_CORE_READ_BITFIELD(tp, syn_fastopen_child))
        options |= TN_TCPI_OPT_TFO_CHILD;
    return options;
}

static __always_inline __u8 tn_wscale_ok(const struct tn_source *s)
{
    return BPF_CORE_READ_BITFIELD(s->tp, rx_opt.wscale_ok) ? 1 : 0;
}

static __always_inline __u32 tn_ato(const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
    __u32 ato = BPF_CORE_READ_BITFIELD(tp, inet_conn.icsk_ack.ato);
    __u32 delack_max = tp->inet_conn.icsk_delack_max;
    return (__u32)tn_jiffies_to_usecs(s, ato < delack_max ? ato : delack_max);
}

/* chrono stats: index 1 busy, 2 rwnd-limited, 3 sndbuf-limited; the running period counts. */
static __always_inline __u64 tn_chrono(const struct tn_source *s, __u32 which)
{
    struct tcp_sock *tp = s->tp;
    __u32 type = BPF_CORE_READ_BITFIELD(tp, chrono_type);
    __u32 start = tp->chrono_start;
    __u64 total = 0;
    for (__u32 i = 1; i <= 3; i++) {
        __u64 value = tp->chrono_stat[i - 1];
        if (i == type) value += (__u32)(s->now_jiffies - start);
        value = tn_jiffies_to_usecs(s, value);
        if (which == 0) total += value;
        else if (which == i) return value;
    }
    return total;
}

static __always_inline __u64 tn_delivery_rate(const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
    __u32 delivered = tp->rate_delivered;
    __u32 interval_us = tp->rate_interval_us;
    if (!delivered || !interval_us) return 0;
    return (__u64)delivered * tp->mss_cache * 1000000ull / interval_us;
}

static __always_inline __u64 tn_rate(unsigned long rate)
{
    return rate == ~0UL ? ~0ULL : (__u64)rate;
}

static __always_inline __u32 tn_notsent_bytes(const struct tn_source *s)
{
    __s32 notsent = (__s32)(s->tp->write_seq - s->tp->snd_nxt);
    return notsent > 0 ? (__u32)notsent : 0;
}

static __always_inline __u32 tn_total_rto_time(const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
    if (!bpf_core_field_exists(tp->total_rto_time)) return 0;
    __u32 total = tp->total_rto_time;
    __u32 stamp = tp->rto_stamp;
    if (stamp) total += (__u32)(bpf_ktime_get_ns() / 1000000ull) - stamp;
    return total;
}

static __always_inline __u16 tn_total_rto(const struct tn_source *s)
{
    return bpf_core_field_exists(s->tp->total_rto) ? s->tp->total_rto : 0;
}

static __always_inline __u16 tn_total_rto_recoveries(const struct tn_source *s)
{
    return bpf_core_field_exists(s->tp->total_rto_recoveries) ? s->tp->total_rto_recoveries : 0;
}

static __always_inline __u32 tn_ms_since(const struct tn_source *s, __u32 stamp)
{
    return tn_jiffies_to_msecs(s, s->now_jiffies - stamp);
}

/* AccECN counters exist from 6.18; index 0 ECT(1), 1 ECT(0), 2 CE. */
static __always_inline __u32 tn_delivered_ecn(const struct tn_source *s, int index)
{
    if (!bpf_core_field_exists(s->tp->delivered_ecn_bytes)) return 0;
    return s->tp->delivered_ecn_bytes[index];
}

static __always_inline __u32 tn_received_ecn(const struct tn_source *s, int index)
{
    if (!bpf_core_field_exists(s->tp->received_ecn_bytes)) return 0;
    return s->tp->received_ecn_bytes[index];
}

static __always_inline __u32 tn_received_ce(const struct tn_source *s)
{
    return bpf_core_field_exists(s->tp->received_ce) ? s->tp->received_ce : 0;
}

static __always_inline __u16 tn_accecn_fail_mode(const struct tn_source *s)
{
    if (!bpf_core_field_exists(s->tp->accecn_fail_mode)) return 0;
    return BPF_CORE_READ_BITFIELD(s->tp, accecn_fail_mode);
}

static __always_inline __u16 tn_accecn_opt_seen(const struct tn_source *s)
{
    if (!bpf_core_field_exists(s->tp->saw_accecn_opt)) return 0;
    return BPF_CORE_READ_BITFIELD(s->tp, saw_accecn_opt);
}

static __always_inline __u32 tn_rehash(const struct tn_source *s)
{
    /* plb_rehash is 6.2+ (so is tcpi_rehash: user space leaves the field out where tcp_info lacks it). */
    __u32 plb = bpf_core_field_exists(s->tp->plb_rehash) ? s->tp->plb_rehash : 0;
    __u32 timeout = bpf_core_field_exists(s->tp->timeout_rehash) ? s->tp->timeout_rehash : 0;
    return plb + timeout;
}

/* How each TCPNOTIFY_FOR_EACH_FIELD line is read from the kernel's tcp_sock, as tcp_get_info() computes it:
 * one TN_READ_<ID>(s, tp) per field (a missing one fails the build). s is the struct tn_source, tp its
 * tcp_sock. tn_field() and tn_fill() are both generated from these. Listening sockets are never enrolled,
 * so the LISTEN aliases of tcp_get_info() (unacked = accept backlog) do not arise here. */
#define TN_READ_STATE(s, tp) (s->state)
#define TN_READ_CA_STATE(s, tp) (BPF_CORE_READ_BITFIELD(tp, inet_conn.icsk_ca_state))
#define TN_READ_RETRANSMITS(s, tp) (tp->inet_conn.icsk_retransmits)
#define TN_READ_PROBES(s, tp) (tp->inet_conn.icsk_probes_out)
#define TN_READ_BACKOFF(s, tp) (tp->inet_conn.icsk_backoff)
#define TN_READ_OPTIONS(s, tp) (tn_options(s))
#define TN_READ_SND_WSCALE(s, tp) (tn_wscale_ok(s) ? BPF_CORE_READ_BITFIELD(tp, rx_opt.snd_wscale) : 0)
#define TN_READ_RCV_WSCALE(s, tp) (tn_wscale_ok(s) ? BPF_CORE_READ_BITFIELD(tp, rx_opt.rcv_wscale) : 0)
#define TN_READ_DELIVERY_RATE_APP_LIMITED(s, tp) (BPF_CORE_READ_BITFIELD(tp, rate_app_limited) ? 1 : 0)
#define TN_READ_FASTOPEN_CLIENT_FAIL(s, tp) (BPF_CORE_READ_BITFIELD(tp, fastopen_client_fail))
#define TN_READ_RTO(s, tp) (tn_jiffies_to_usecs(s, tp->inet_conn.icsk_rto))
#define TN_READ_ATO(s, tp) (tn_ato(s))
#define TN_READ_SND_MSS(s, tp) (tp->mss_cache)
#define TN_READ_RCV_MSS(s, tp) (tp->inet_conn.icsk_ack.rcv_mss)
#define TN_READ_UNACKED(s, tp) (tp->packets_out)
#define TN_READ_SACKED(s, tp) (tp->sacked_out)
#define TN_READ_LOST(s, tp) (tp->lost_out)
#define TN_READ_RETRANS(s, tp) (tp->retrans_out)
#define TN_READ_FACKETS(s, tp) (0)
#define TN_READ_LAST_DATA_SENT(s, tp) (tn_ms_since(s, tp->lsndtime))
#define TN_READ_LAST_ACK_SENT(s, tp) (0)
#define TN_READ_LAST_DATA_RECV(s, tp) ((s->arriving & TN_ARRIVING_DATA) ? 0 : tn_ms_since(s, tp->inet_conn.icsk_ack.lrcvtime))
#define TN_READ_LAST_ACK_RECV(s, tp) ((s->arriving & TN_ARRIVING_ACK) ? 0 : tn_ms_since(s, tp->rcv_tstamp))
#define TN_READ_PMTU(s, tp) (tp->inet_conn.icsk_pmtu_cookie)
#define TN_READ_RCV_SSTHRESH(s, tp) (tp->rcv_ssthresh)
#define TN_READ_RTT(s, tp) (s->srtt_us_x8 >> 3)
#define TN_READ_RTTVAR(s, tp) (tp->mdev_us >> 2)
#define TN_READ_SND_SSTHRESH(s, tp) (tp->snd_ssthresh)
#define TN_READ_SND_CWND(s, tp) (tp->snd_cwnd)
#define TN_READ_ADVMSS(s, tp) (tp->advmss)
#define TN_READ_REORDERING(s, tp) (tp->reordering)
#define TN_READ_RCV_RTT(s, tp) (tp->rcv_rtt_est.rtt_us >> 3)
#define TN_READ_RCV_SPACE(s, tp) ((__u32)tp->rcvq_space.space)
#define TN_READ_TOTAL_RETRANS(s, tp) (tp->total_retrans)
#define TN_READ_PACING_RATE(s, tp) (tn_rate(tp->inet_conn.icsk_inet.sk.sk_pacing_rate))
#define TN_READ_MAX_PACING_RATE(s, tp) (tn_rate(tp->inet_conn.icsk_inet.sk.sk_max_pacing_rate))
#define TN_READ_BYTES_ACKED(s, tp) (tp->bytes_acked)
#define TN_READ_BYTES_RECEIVED(s, tp) (tp->bytes_received)
#define TN_READ_SEGS_OUT(s, tp) (tp->segs_out)
#define TN_READ_SEGS_IN(s, tp) (tp->segs_in)
#define TN_READ_NOTSENT_BYTES(s, tp) (tn_notsent_bytes(s))
#define TN_READ_MIN_RTT(s, tp) (tp->rtt_min.s[0].v)
#define TN_READ_DATA_SEGS_IN(s, tp) (tp->data_segs_in)
#define TN_READ_DATA_SEGS_OUT(s, tp) (tp->data_segs_out)
#define TN_READ_DELIVERY_RATE(s, tp) (tn_delivery_rate(s))
#define TN_READ_BUSY_TIME(s, tp) (tn_chrono(s, 0))
#define TN_READ_RWND_LIMITED(s, tp) (tn_chrono(s, 2))
#define TN_READ_SNDBUF_LIMITED(s, tp) (tn_chrono(s, 3))
#define TN_READ_DELIVERED(s, tp) (tp->delivered)
#define TN_READ_DELIVERED_CE(s, tp) (tp->delivered_ce)
#define TN_READ_BYTES_SENT(s, tp) (tp->bytes_sent)
#define TN_READ_BYTES_RETRANS(s, tp) (tp->bytes_retrans)
#define TN_READ_DSACK_DUPS(s, tp) (tp->dsack_dups)
#define TN_READ_REORD_SEEN(s, tp) (tp->reord_seen)
#define TN_READ_RCV_OOOPACK(s, tp) (tp->rcv_ooopack)
#define TN_READ_SND_WND(s, tp) (tp->snd_wnd)
#define TN_READ_RCV_WND(s, tp) (tp->rcv_wnd)
#define TN_READ_REHASH(s, tp) (tn_rehash(s))
#define TN_READ_TOTAL_RTO(s, tp) (tn_total_rto(s))
#define TN_READ_TOTAL_RTO_RECOVERIES(s, tp) (tn_total_rto_recoveries(s))
#define TN_READ_TOTAL_RTO_TIME(s, tp) (tn_total_rto_time(s))
#define TN_READ_RECEIVED_CE(s, tp) (tn_received_ce(s))
#define TN_READ_DELIVERED_E1_BYTES(s, tp) (tn_delivered_ecn(s, 0))
#define TN_READ_DELIVERED_E0_BYTES(s, tp) (tn_delivered_ecn(s, 1))
#define TN_READ_DELIVERED_CE_BYTES(s, tp) (tn_delivered_ecn(s, 2))
#define TN_READ_RECEIVED_E1_BYTES(s, tp) (tn_received_ecn(s, 0))
#define TN_READ_RECEIVED_E0_BYTES(s, tp) (tn_received_ecn(s, 1))
#define TN_READ_RECEIVED_CE_BYTES(s, tp) (tn_received_ecn(s, 2))
#define TN_READ_ACCECN_FAIL_MODE(s, tp) (tn_accecn_fail_mode(s))
#define TN_READ_ACCECN_OPT_SEEN(s, tp) (tn_accecn_opt_seen(s))

/* One field, computed on demand (a subprogram, so its big switch is emitted once). */
static __noinline __u64 tn_field(const struct tn_source *s, __u32 field)
{
    struct tcp_sock *tp = s->tp;
    if (!tp) return 0;
#define TN_FIELD_CASE(id, ...) case TCPNOTIFY_FIELD_##id: return TN_READ_##id(s, tp);
    switch (field) {
    TCPNOTIFY_FOR_EACH_FIELD(TN_FIELD_CASE)
    default: return 0;
    }
#undef TN_FIELD_CASE
}

/* A rule operand: a tcp_info field, or a virtual one (ids from 128). Inlined into its single call site
 * (the operand loop); tn_field stays a subprogram so its big switch is emitted once. */
static __always_inline __u64 tn_operand(const struct tn_source *s, __u32 id)
{
    if (!s) return 0;
    if (id == TCPNOTIFY_VFIELD_AGE_US) return s->age_us;
    if (id >= TCPNOTIFY_FIELD_COUNT) return 0;
    if (s->values) return s->values[id];
    return tn_field(s, id);
}

/* The whole tcp_info, as getsockopt(TCP_INFO) would return it now. `info` must be zeroed (packed fields
 * are OR'ed into their shared byte). Whether a field fills its member is known at compile time. */
static __always_inline void tn_fill(struct tcpnotify_tcp_info *info, const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
#define TN_FILL_FIELD(id, name, member, shift, bits, ...)                                                \
    if ((shift) == 0 && (bits) == 8 * sizeof(info->member))                                              \
        info->member = (__typeof__(info->member))TN_READ_##id(s, tp);                                    \
    else                                                                                                 \
        info->member |= (__typeof__(info->member))((TN_READ_##id(s, tp) & (~0ull >> (64 - (bits)))) << (shift));
    TCPNOTIFY_FOR_EACH_FIELD(TN_FILL_FIELD)
#undef TN_FILL_FIELD
}

#endif
