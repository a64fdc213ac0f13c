/* Rebuilding struct tcp_info in BPF, field for field as tcp_get_info() (net/ipv4/tcp.c, Linux 6.18) does.
 * tn_field() computes one field on demand (rules are checked with it before any record exists);
 * tn_fill() builds the whole record once a rule has tripped. Both use the same per-field helpers. */
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

/* One field, computed on demand. Listening sockets are never enrolled, so the LISTEN aliases of
 * tcp_get_info() (unacked = accept backlog) do not arise here. */
static __noinline __u64 tn_field(const struct tn_source *s, __u32 field)
{
    struct tcp_sock *tp = s->tp;
    if (!tp) return 0;
    switch (field) {
    case TCPNOTIFY_FIELD_STATE: return s->state;
    case TCPNOTIFY_FIELD_CA_STATE: return BPF_CORE_READ_BITFIELD(tp, inet_conn.icsk_ca_state);
    case TCPNOTIFY_FIELD_RETRANSMITS: return tp->inet_conn.icsk_retransmits;
    case TCPNOTIFY_FIELD_PROBES: return tp->inet_conn.icsk_probes_out;
    case TCPNOTIFY_FIELD_BACKOFF: return tp->inet_conn.icsk_backoff;
    case TCPNOTIFY_FIELD_OPTIONS: return tn_options(s);
    case TCPNOTIFY_FIELD_SND_WSCALE: return tn_wscale_ok(s) ? BPF_CORE_READ_BITFIELD(tp, rx_opt.snd_wscale) : 0;
    case TCPNOTIFY_FIELD_RCV_WSCALE: return tn_wscale_ok(s) ? BPF_CORE_READ_BITFIELD(tp, rx_opt.rcv_wscale) : 0;
    case TCPNOTIFY_FIELD_DELIVERY_RATE_APP_LIMITED: return BPF_CORE_READ_BITFIELD(tp, rate_app_limited) ? 1 : 0;
    case TCPNOTIFY_FIELD_FASTOPEN_CLIENT_FAIL: return BPF_CORE_READ_BITFIELD(tp, fastopen_client_fail);
    case TCPNOTIFY_FIELD_RTO: return tn_jiffies_to_usecs(s, tp->inet_conn.icsk_rto);
    case TCPNOTIFY_FIELD_ATO: return tn_ato(s);
    case TCPNOTIFY_FIELD_SND_MSS: return tp->mss_cache;
    case TCPNOTIFY_FIELD_RCV_MSS: return tp->inet_conn.icsk_ack.rcv_mss;
    case TCPNOTIFY_FIELD_UNACKED: return tp->packets_out;
    case TCPNOTIFY_FIELD_SACKED: return tp->sacked_out;
    case TCPNOTIFY_FIELD_LOST: return tp->lost_out;
    case TCPNOTIFY_FIELD_RETRANS: return tp->retrans_out;
    case TCPNOTIFY_FIELD_FACKETS: return 0;
    case TCPNOTIFY_FIELD_LAST_DATA_SENT: return tn_ms_since(s, tp->lsndtime);
    case TCPNOTIFY_FIELD_LAST_ACK_SENT: return 0;
    case TCPNOTIFY_FIELD_LAST_DATA_RECV:
        return (s->arriving & TN_ARRIVING_DATA) ? 0 : tn_ms_since(s, tp->inet_conn.icsk_ack.lrcvtime);
    case TCPNOTIFY_FIELD_LAST_ACK_RECV: return (s->arriving & TN_ARRIVING_ACK) ? 0 : tn_ms_since(s, tp->rcv_tstamp);
    case TCPNOTIFY_FIELD_PMTU: return tp->inet_conn.icsk_pmtu_cookie;
    case TCPNOTIFY_FIELD_RCV_SSTHRESH: return tp->rcv_ssthresh;
    case TCPNOTIFY_FIELD_RTT: return s->srtt_us_x8 >> 3;
    case TCPNOTIFY_FIELD_RTTVAR: return tp->mdev_us >> 2;
    case TCPNOTIFY_FIELD_SND_SSTHRESH: return tp->snd_ssthresh;
    case TCPNOTIFY_FIELD_SND_CWND: return tp->snd_cwnd;
    case TCPNOTIFY_FIELD_ADVMSS: return tp->advmss;
    case TCPNOTIFY_FIELD_REORDERING: return tp->reordering;
    case TCPNOTIFY_FIELD_RCV_RTT: return tp->rcv_rtt_est.rtt_us >> 3;
    case TCPNOTIFY_FIELD_RCV_SPACE: return (__u32)tp->rcvq_space.space;
    case TCPNOTIFY_FIELD_TOTAL_RETRANS: return tp->total_retrans;
    case TCPNOTIFY_FIELD_PACING_RATE: return tn_rate(tp->inet_conn.icsk_inet.sk.sk_pacing_rate);
    case TCPNOTIFY_FIELD_MAX_PACING_RATE: return tn_rate(tp->inet_conn.icsk_inet.sk.sk_max_pacing_rate);
    case TCPNOTIFY_FIELD_BYTES_ACKED: return tp->bytes_acked;
    case TCPNOTIFY_FIELD_BYTES_RECEIVED: return tp->bytes_received;
    case TCPNOTIFY_FIELD_SEGS_OUT: return tp->segs_out;
    case TCPNOTIFY_FIELD_SEGS_IN: return tp->segs_in;
    case TCPNOTIFY_FIELD_NOTSENT_BYTES: return tn_notsent_bytes(s);
    case TCPNOTIFY_FIELD_MIN_RTT: return tp->rtt_min.s[0].v;
    case TCPNOTIFY_FIELD_DATA_SEGS_IN: return tp->data_segs_in;
    case TCPNOTIFY_FIELD_DATA_SEGS_OUT: return tp->data_segs_out;
    case TCPNOTIFY_FIELD_DELIVERY_RATE: return tn_delivery_rate(s);
    case TCPNOTIFY_FIELD_BUSY_TIME: return tn_chrono(s, 0);
    case TCPNOTIFY_FIELD_RWND_LIMITED: return tn_chrono(s, 2);
    case TCPNOTIFY_FIELD_SNDBUF_LIMITED: return tn_chrono(s, 3);
    case TCPNOTIFY_FIELD_DELIVERED: return tp->delivered;
    case TCPNOTIFY_FIELD_DELIVERED_CE: return tp->delivered_ce;
    case TCPNOTIFY_FIELD_BYTES_SENT: return tp->bytes_sent;
    case TCPNOTIFY_FIELD_BYTES_RETRANS: return tp->bytes_retrans;
    case TCPNOTIFY_FIELD_DSACK_DUPS: return tp->dsack_dups;
    case TCPNOTIFY_FIELD_REORD_SEEN: return tp->reord_seen;
    case TCPNOTIFY_FIELD_RCV_OOOPACK: return tp->rcv_ooopack;
    case TCPNOTIFY_FIELD_SND_WND: return tp->snd_wnd;
    case TCPNOTIFY_FIELD_RCV_WND: return tp->rcv_wnd;
    case TCPNOTIFY_FIELD_REHASH: return tn_rehash(s);
    case TCPNOTIFY_FIELD_TOTAL_RTO: return tn_total_rto(s);
    case TCPNOTIFY_FIELD_TOTAL_RTO_RECOVERIES: return tn_total_rto_recoveries(s);
    case TCPNOTIFY_FIELD_TOTAL_RTO_TIME: return tn_total_rto_time(s);
    case TCPNOTIFY_FIELD_RECEIVED_CE: return tn_received_ce(s);
    case TCPNOTIFY_FIELD_DELIVERED_E1_BYTES: return tn_delivered_ecn(s, 0);
    case TCPNOTIFY_FIELD_DELIVERED_E0_BYTES: return tn_delivered_ecn(s, 1);
    case TCPNOTIFY_FIELD_DELIVERED_CE_BYTES: return tn_delivered_ecn(s, 2);
    case TCPNOTIFY_FIELD_RECEIVED_E1_BYTES: return tn_received_ecn(s, 0);
    case TCPNOTIFY_FIELD_RECEIVED_E0_BYTES: return tn_received_ecn(s, 1);
    case TCPNOTIFY_FIELD_RECEIVED_CE_BYTES: return tn_received_ecn(s, 2);
    case TCPNOTIFY_FIELD_ACCECN_FAIL_MODE: return tn_accecn_fail_mode(s);
    case TCPNOTIFY_FIELD_ACCECN_OPT_SEEN: return tn_accecn_opt_seen(s);
    default: return 0;
    }
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

/* The whole tcp_info, as getsockopt(TCP_INFO) would return it now. */
static __always_inline void tn_fill(struct tcpnotify_tcp_info *info, const struct tn_source *s)
{
    struct tcp_sock *tp = s->tp;
    info->state = s->state;
    info->ca_state = BPF_CORE_READ_BITFIELD(tp, inet_conn.icsk_ca_state);
    info->retransmits = tp->inet_conn.icsk_retransmits;
    info->probes = tp->inet_conn.icsk_probes_out;
    info->backoff = tp->inet_conn.icsk_backoff;
    info->options = tn_options(s);
    if (tn_wscale_ok(s)) {
        __u8 snd = BPF_CORE_READ_BITFIELD(tp, rx_opt.snd_wscale);
        __u8 rcv = BPF_CORE_READ_BITFIELD(tp, rx_opt.rcv_wscale);
        info->wscale = (snd & 0x0f) | (__u8)(rcv << 4);
    }
    info->app_limited_and_tfo = (BPF_CORE_READ_BITFIELD(tp, rate_app_limited) ? 1 : 0) |
                                (__u8)((BPF_CORE_READ_BITFIELD(tp, fastopen_client_fail) & 3) << 1);
    info->rto = (__u32)tn_jiffies_to_usecs(s, tp->inet_conn.icsk_rto);
    info->ato = tn_ato(s);
    info->snd_mss = tp->mss_cache;
    info->rcv_mss = tp->inet_conn.icsk_ack.rcv_mss;
    info->unacked = tp->packets_out;
    info->sacked = tp->sacked_out;
    info->lost = tp->lost_out;
    info->retrans = tp->retrans_out;
    info->last_data_sent = tn_ms_since(s, tp->lsndtime);
    info->last_data_recv = (s->arriving & TN_ARRIVING_DATA) ? 0 : tn_ms_since(s, tp->inet_conn.icsk_ack.lrcvtime);
    info->last_ack_recv = (s->arriving & TN_ARRIVING_ACK) ? 0 : tn_ms_since(s, tp->rcv_tstamp);
    info->pmtu = tp->inet_conn.icsk_pmtu_cookie;
    info->rcv_ssthresh = tp->rcv_ssthresh;
    info->rtt = s->srtt_us_x8 >> 3;
    info->rttvar = tp->mdev_us >> 2;
    info->snd_ssthresh = tp->snd_ssthresh;
    info->snd_cwnd = tp->snd_cwnd;
    info->advmss = tp->advmss;
    info->reordering = tp->reordering;
    info->rcv_rtt = tp->rcv_rtt_est.rtt_us >> 3;
    info->rcv_space = (__u32)tp->rcvq_space.space;
    info->total_retrans = tp->total_retrans;
    info->pacing_rate = tn_rate(tp->inet_conn.icsk_inet.sk.sk_pacing_rate);
    info->max_pacing_rate = tn_rate(tp->inet_conn.icsk_inet.sk.sk_max_pacing_rate);
    info->bytes_acked = tp->bytes_acked;
    info->bytes_received = tp->bytes_received;
    info->segs_out = tp->segs_out;
    info->segs_in = tp->segs_in;
    info->notsent_bytes = tn_notsent_bytes(s);
    info->min_rtt = tp->rtt_min.s[0].v;
    info->data_segs_in = tp->data_segs_in;
    info->data_segs_out = tp->data_segs_out;
    info->delivery_rate = tn_delivery_rate(s);
    info->busy_time = tn_chrono(s, 0);
    info->rwnd_limited = tn_chrono(s, 2);
    info->sndbuf_limited = tn_chrono(s, 3);
    info->delivered = tp->delivered;
    info->delivered_ce = tp->delivered_ce;
    info->bytes_sent = tp->bytes_sent;
    info->bytes_retrans = tp->bytes_retrans;
    info->dsack_dups = tp->dsack_dups;
    info->reord_seen = tp->reord_seen;
    info->rcv_ooopack = tp->rcv_ooopack;
    info->snd_wnd = tp->snd_wnd;
    info->rcv_wnd = tp->rcv_wnd;
    info->rehash = tn_rehash(s);
    info->total_rto = tn_total_rto(s);
    info->total_rto_recoveries = tn_total_rto_recoveries(s);
    info->total_rto_time = tn_total_rto_time(s);
    info->received_ce = tn_received_ce(s);
    info->delivered_e1_bytes = tn_delivered_ecn(s, 0);
    info->delivered_e0_bytes = tn_delivered_ecn(s, 1);
    info->delivered_ce_bytes = tn_delivered_ecn(s, 2);
    info->received_e1_bytes = tn_received_ecn(s, 0);
    info->received_e0_bytes = tn_received_ecn(s, 1);
    info->received_ce_bytes = tn_received_ecn(s, 2);
    info->accecn_fail_mode = tn_accecn_fail_mode(s);
    info->accecn_opt_seen = tn_accecn_opt_seen(s);
}

#endif
