/* The kernel/user contract of tcpnotify: read by the BPF C programs (after vmlinux.h), by shim.c and by
 * Swift. Every type here has fixed-size fields, explicit padding and a size assertion that both compilers
 * check, so a BPF object and a binary built from different versions of this file fail loudly.
 *
 * Byte order: addresses are network order; ports are host order; everything else is host order.
 * Addresses are 16 bytes; IPv4 is stored v4-mapped (::ffff:a.b.c.d) so one key covers both families.
 */
#ifndef TCPNOTIFY_H
#define TCPNOTIFY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---------------------------------------------------------------------------------------------------- */
/* struct tcp_info, byte for byte as Linux 6.18 returns it from getsockopt(TCP_INFO).                    */
/* The two bitfield bytes are kept raw so the layout is exact without C bitfields (which Swift drops):  */
/*   wscale:                  snd_wscale = bits 0-3, rcv_wscale = bits 4-7                               */
/*   app_limited_and_tfo:     delivery_rate_app_limited = bit 0, fastopen_client_fail = bits 1-2        */

struct tcpnotify_tcp_info {
    __u8 state;
    __u8 ca_state;
    __u8 retransmits;
    __u8 probes;
    __u8 backoff;
    __u8 options;
    __u8 wscale;
    __u8 app_limited_and_tfo;

    __u32 rto;            /* us */
    __u32 ato;            /* us */
    __u32 snd_mss;        /* bytes */
    __u32 rcv_mss;        /* bytes */

    __u32 unacked;        /* segments */
    __u32 sacked;
    __u32 lost;
    __u32 retrans;
    __u32 fackets;

    __u32 last_data_sent; /* ms */
    __u32 last_ack_sent;  /* ms, always 0 */
    __u32 last_data_recv; /* ms */
    __u32 last_ack_recv;  /* ms */

    __u32 pmtu;
    __u32 rcv_ssthresh;
    __u32 rtt;            /* us */
    __u32 rttvar;         /* us */
    __u32 snd_ssthresh;
    __u32 snd_cwnd;
    __u32 advmss;
    __u32 reordering;

    __u32 rcv_rtt;        /* us */
    __u32 rcv_space;

    __u32 total_retrans;

    __u64 pacing_rate;    /* bytes/s */
    __u64 max_pacing_rate;
    __u64 bytes_acked;
    __u64 bytes_received;
    __u32 segs_out;
    __u32 segs_in;

    __u32 notsent_bytes;
    __u32 min_rtt;        /* us */
    __u32 data_segs_in;
    __u32 data_segs_out;

    __u64 delivery_rate;  /* bytes/s */

    __u64 busy_time;      /* us */
    __u64 rwnd_limited;   /* us */
    __u64 sndbuf_limited; /* us */

    __u32 delivered;
    __u32 delivered_ce;

    __u64 bytes_sent;
    __u64 bytes_retrans;
    __u32 dsack_dups;
    __u32 reord_seen;

    __u32 rcv_ooopack;

    __u32 snd_wnd;
    __u32 rcv_wnd;

    __u32 rehash;

    __u16 total_rto;
    __u16 total_rto_recoveries;
    __u32 total_rto_time; /* ms */
    __u32 received_ce;
    __u32 delivered_e1_bytes;
    __u32 delivered_e0_bytes;
    __u32 delivered_ce_bytes;
    __u32 received_e1_bytes;
    __u32 received_e0_bytes;
    __u32 received_ce_bytes;
    __u16 accecn_fail_mode;
    __u16 accecn_opt_seen;
};
_Static_assert(sizeof(struct tcpnotify_tcp_info) == 280, "struct tcpnotify_tcp_info must match Linux 6.18 tcp_info");

/* THE definition of each tcp_info field tcpnotify reports and rules can test: everything else is derived
 * from this list (the C field ids below, the host decoder and name table in CTCPNotify.h, the BPF
 * dispatch in tcp_info.bpf.h, and Swift's TCPInfoField, generated at build time by the FieldCatalog
 * plugin). The position of a line is its id and part of the contract: append only, never reorder.
 *
 *   X(ID, json_name, member, shift, bits, unit, since, summary)
 *     ID         suffix of TCPNOTIFY_FIELD_<ID>; BPF reads the field with TN_READ_<ID> (tcp_info.bpf.h)
 *     json_name  the kernel's name without tcpi_; JSON key, rule name; Swift's case is its camelCase
 *     member     the struct tcpnotify_tcp_info member holding it
 *     shift,bits where in the member: value = (member >> shift) & (2^bits - 1); bits is the field's width
 *     unit       a Swift FieldUnit case (microseconds, bytes, bytesPerSecond, segments, count, ...)
 *     since      first Linux version whose tcp_info has the field ("6.2"), "" when older than 5.10
 *     summary    one line on its kernel meaning (a C string literal)
 *
 * Adding a field: a member in struct tcpnotify_tcp_info, a line here, a TN_READ_<ID> in tcp_info.bpf.h. */
#define TCPNOTIFY_FOR_EACH_FIELD(X) \
    X(STATE, state, state, 0, 8, state, "", "TCP state (ESTABLISHED, CLOSE_WAIT, ...)")                                \
    X(CA_STATE, ca_state, ca_state, 0, 8, caState, "",                                                                 \
      "congestion-avoidance state (Open, Disorder, CWR, Recovery, Loss)")                                              \
    X(RETRANSMITS, retransmits, retransmits, 0, 8, count, "",                                                          \
      "consecutive RTO timeouts without progress (icsk_retransmits)")                                                  \
    X(PROBES, probes, probes, 0, 8, count, "", "unanswered zero-window / keepalive probes")                            \
    X(BACKOFF, backoff, backoff, 0, 8, count, "", "RTO exponential backoff shift (icsk_backoff)")                      \
    X(OPTIONS, options, options, 0, 8, flags, "",                                                                      \
      "TCPI_OPT_* bits: 1 timestamps, 2 sack, 4 wscale, 8 ecn, 16 ecn_seen, 32 syn_data, 64 usec_ts, 128 tfo_child")   \
    X(SND_WSCALE, snd_wscale, wscale, 0, 4, wscale, "",                                                                \
      "window scale shift the peer announced (applied to its advertised window)")                                      \
    X(RCV_WSCALE, rcv_wscale, wscale, 4, 4, wscale, "",                                                                \
      "window scale shift we announced (applied to our advertised window)")                                            \
    X(DELIVERY_RATE_APP_LIMITED, delivery_rate_app_limited, app_limited_and_tfo, 0, 1, boolean, "",                    \
      "1 when the last delivery_rate sample was application-limited")                                                  \
    X(FASTOPEN_CLIENT_FAIL, fastopen_client_fail, app_limited_and_tfo, 1, 2, other, "",                                \
      "TCP Fast Open client failure reason (0 unspecified, 1 no cookie, 2 data not acked, 3 SYN retransmitted)")       \
    X(RTO, rto, rto, 0, 32, microseconds, "", "retransmission timeout, microseconds")                                  \
    X(ATO, ato, ato, 0, 32, microseconds, "", "delayed-ACK timeout, microseconds")                                     \
    X(SND_MSS, snd_mss, snd_mss, 0, 32, bytes, "", "current send MSS (mss_cache), bytes")                              \
    X(RCV_MSS, rcv_mss, rcv_mss, 0, 32, bytes, "", "estimated peer MSS (rcv_mss), bytes")                              \
    X(UNACKED, unacked, unacked, 0, 32, segments, "", "segments in flight (packets_out); accept backlog on listeners") \
    X(SACKED, sacked, sacked, 0, 32, segments, "",                                                                     \
      "segments SACKed by the peer (sacked_out); backlog limit on listeners")                                          \
    X(LOST, lost, lost, 0, 32, segments, "", "segments presumed lost (lost_out)")                                      \
    X(RETRANS, retrans, retrans, 0, 32, segments, "", "retransmitted segments in flight (retrans_out)")                \
    X(FACKETS, fackets, fackets, 0, 32, segments, "", "forward-acknowledged segments; always 0 since Linux 4.15")      \
    X(LAST_DATA_SENT, last_data_sent, last_data_sent, 0, 32, milliseconds, "",                                         \
      "time since data was last sent, milliseconds")                                                                   \
    X(LAST_ACK_SENT, last_ack_sent, last_ack_sent, 0, 32, milliseconds, "", "not tracked by Linux; always 0")          \
    X(LAST_DATA_RECV, last_data_recv, last_data_recv, 0, 32, milliseconds, "",                                         \
      "time since data was last received, milliseconds")                                                               \
    X(LAST_ACK_RECV, last_ack_recv, last_ack_recv, 0, 32, milliseconds, "",                                            \
      "time since an ACK was last received, milliseconds")                                                             \
    X(PMTU, pmtu, pmtu, 0, 32, bytes, "", "path MTU (icsk_pmtu_cookie), bytes")                                        \
    X(RCV_SSTHRESH, rcv_ssthresh, rcv_ssthresh, 0, 32, bytes, "", "receive window clamp target (rcv_ssthresh), bytes") \
    X(RTT, rtt, rtt, 0, 32, microseconds, "", "smoothed RTT (srtt), microseconds")                                     \
    X(RTTVAR, rttvar, rttvar, 0, 32, microseconds, "", "RTT mean deviation (mdev), microseconds")                      \
    X(SND_SSTHRESH, snd_ssthresh, snd_ssthresh, 0, 32, segments, "", "slow-start threshold, segments")                 \
    X(SND_CWND, snd_cwnd, snd_cwnd, 0, 32, segments, "", "congestion window, segments")                                \
    X(ADVMSS, advmss, advmss, 0, 32, bytes, "", "MSS we advertised, bytes")                                            \
    X(REORDERING, reordering, reordering, 0, 32, segments, "", "reordering degree the sender tolerates, segments")     \
    X(RCV_RTT, rcv_rtt, rcv_rtt, 0, 32, microseconds, "", "receiver-side RTT estimate, microseconds")                  \
    X(RCV_SPACE, rcv_space, rcv_space, 0, 32, bytes, "", "receive-buffer autotuning space (rcvq_space), bytes")        \
    X(TOTAL_RETRANS, total_retrans, total_retrans, 0, 32, segments, "",                                                \
      "segments retransmitted over the connection's life")                                                             \
    X(PACING_RATE, pacing_rate, pacing_rate, 0, 64, bytesPerSecond, "", "current pacing rate, bytes/s")                \
    X(MAX_PACING_RATE, max_pacing_rate, max_pacing_rate, 0, 64, bytesPerSecond, "",                                    \
      "pacing rate cap (SO_MAX_PACING_RATE), bytes/s")                                                                 \
    X(BYTES_ACKED, bytes_acked, bytes_acked, 0, 64, bytes, "", "bytes acknowledged by the peer (RFC 4898)")            \
    X(BYTES_RECEIVED, bytes_received, bytes_received, 0, 64, bytes, "",                                                \
      "bytes received and acknowledged by us (RFC 4898)")                                                              \
    X(SEGS_OUT, segs_out, segs_out, 0, 32, segments, "", "segments sent, retransmissions included")                    \
    X(SEGS_IN, segs_in, segs_in, 0, 32, segments, "", "segments received")                                             \
    X(NOTSENT_BYTES, notsent_bytes, notsent_bytes, 0, 32, bytes, "", "bytes queued but not yet sent")                  \
    X(MIN_RTT, min_rtt, min_rtt, 0, 32, microseconds, "", "minimum RTT seen (windowed), microseconds")                 \
    X(DATA_SEGS_IN, data_segs_in, data_segs_in, 0, 32, segments, "", "segments received carrying data")                \
    X(DATA_SEGS_OUT, data_segs_out, data_segs_out, 0, 32, segments, "", "segments sent carrying data")                 \
    X(DELIVERY_RATE, delivery_rate, delivery_rate, 0, 64, bytesPerSecond, "",                                          \
      "most recent delivery-rate sample, bytes/s")                                                                     \
    X(BUSY_TIME, busy_time, busy_time, 0, 64, microseconds, "", "time with data in flight, microseconds")              \
    X(RWND_LIMITED, rwnd_limited, rwnd_limited, 0, 64, microseconds, "",                                               \
      "time limited by the peer's receive window, microseconds")                                                       \
    X(SNDBUF_LIMITED, sndbuf_limited, sndbuf_limited, 0, 64, microseconds, "",                                         \
      "time limited by our send buffer, microseconds")                                                                 \
    X(DELIVERED, delivered, delivered, 0, 32, segments, "", "segments delivered (acked or sacked)")                    \
    X(DELIVERED_CE, delivered_ce, delivered_ce, 0, 32, segments, "",                                                   \
      "delivered segments the peer echoed as CE-marked")                                                               \
    X(BYTES_SENT, bytes_sent, bytes_sent, 0, 64, bytes, "", "bytes sent, retransmissions included (RFC 4898)")         \
    X(BYTES_RETRANS, bytes_retrans, bytes_retrans, 0, 64, bytes, "", "bytes retransmitted (RFC 4898)")                 \
    X(DSACK_DUPS, dsack_dups, dsack_dups, 0, 32, segments, "", "segments reported as duplicates by DSACK")             \
    X(REORD_SEEN, reord_seen, reord_seen, 0, 32, count, "", "reordering events seen")                                  \
    X(RCV_OOOPACK, rcv_ooopack, rcv_ooopack, 0, 32, segments, "", "out-of-order segments received")                    \
    X(SND_WND, snd_wnd, snd_wnd, 0, 32, bytes, "", "peer's advertised receive window, bytes")                          \
    X(RCV_WND, rcv_wnd, rcv_wnd, 0, 32, bytes, "6.2", "receive window we advertise, bytes")                            \
    X(REHASH, rehash, rehash, 0, 32, count, "6.2", "times the flow label / path was rehashed (PLB, timeouts)")         \
    X(TOTAL_RTO, total_rto, total_rto, 0, 16, count, "6.7", "RTO timeouts over the connection's life")                 \
    X(TOTAL_RTO_RECOVERIES, total_rto_recoveries, total_rto_recoveries, 0, 16, count, "6.7",                           \
      "RTO recovery episodes over the connection's life")                                                              \
    X(TOTAL_RTO_TIME, total_rto_time, total_rto_time, 0, 32, milliseconds, "6.7",                                      \
      "time spent in RTO recovery, ongoing episode included, milliseconds")                                            \
    X(RECEIVED_CE, received_ce, received_ce, 0, 32, segments, "6.18", "segments received with CE marks (AccECN)")      \
    X(DELIVERED_E1_BYTES, delivered_e1_bytes, delivered_e1_bytes, 0, 32, bytes, "6.18",                                \
      "bytes delivered with ECT(1) (AccECN feedback)")                                                                 \
    X(DELIVERED_E0_BYTES, delivered_e0_bytes, delivered_e0_bytes, 0, 32, bytes, "6.18",                                \
      "bytes delivered with ECT(0) (AccECN feedback)")                                                                 \
    X(DELIVERED_CE_BYTES, delivered_ce_bytes, delivered_ce_bytes, 0, 32, bytes, "6.18",                                \
      "bytes delivered with CE (AccECN feedback)")                                                                     \
    X(RECEIVED_E1_BYTES, received_e1_bytes, received_e1_bytes, 0, 32, bytes, "6.18",                                   \
      "bytes received with ECT(1) (AccECN)")                                                                           \
    X(RECEIVED_E0_BYTES, received_e0_bytes, received_e0_bytes, 0, 32, bytes, "6.18",                                   \
      "bytes received with ECT(0) (AccECN)")                                                                           \
    X(RECEIVED_CE_BYTES, received_ce_bytes, received_ce_bytes, 0, 32, bytes, "6.18",                                   \
      "bytes received with CE (AccECN)")                                                                               \
    X(ACCECN_FAIL_MODE, accecn_fail_mode, accecn_fail_mode, 0, 16, flags, "6.18",                                      \
      "AccECN negotiation/feedback failure bits")                                                                      \
    X(ACCECN_OPT_SEEN, accecn_opt_seen, accecn_opt_seen, 0, 16, other, "6.18",                                         \
      "AccECN option status seen from the peer")

#define TCPNOTIFY_FIELD_ENUM_ENTRY(id, ...) TCPNOTIFY_FIELD_##id,
enum tcpnotify_field { TCPNOTIFY_FOR_EACH_FIELD(TCPNOTIFY_FIELD_ENUM_ENTRY) TCPNOTIFY_FIELD_COUNT };
#undef TCPNOTIFY_FIELD_ENUM_ENTRY

/* Each field lies inside its member. */
#define TCPNOTIFY_FIELD_FITS(id, name, member, shift, bits, ...)                                            \
    _Static_assert((bits) >= 1 && (shift) + (bits) <= 8 * sizeof(((struct tcpnotify_tcp_info *)0)->member), \
                   #name " must fit in tcp_info member " #member);
TCPNOTIFY_FOR_EACH_FIELD(TCPNOTIFY_FIELD_FITS)
#undef TCPNOTIFY_FIELD_FITS

/* ---------------------------------------------------------------------------------------------------- */
/* Comparison operators shared by filter port predicates and rule terms. */
enum tcpnotify_op {
    TCPNOTIFY_OP_EQ = 0,
    TCPNOTIFY_OP_NE = 1,
    TCPNOTIFY_OP_LT = 2,
    TCPNOTIFY_OP_LE = 3,
    TCPNOTIFY_OP_GT = 4,
    TCPNOTIFY_OP_GE = 5,
};

/* ---------------------------------------------------------------------------------------------------- */
/* Selection: which sockets are enrolled. Evaluated once per connection at establishment.               */
/* The expression is compiled to predicates (one bit each) and a disjunction of clauses: a clause holds */
/* when every must_true predicate holds and no must_false predicate does.                               */
/* Subscribers (`tcpnotify serve`; `watch` is subscriber 0) share one table: each clause is tagged with  */
/* the subscribers whose filter it belongs to, and a socket's subscriber mask is the OR of the tags of   */
/* the clauses that hold. A socket is enrolled when that mask is not zero. The 32 predicates and 32      */
/* clauses are shared by all subscribers.                                                               */

#define TCPNOTIFY_MAX_SUBSCRIBERS 32

#define TCPNOTIFY_MAX_FILTER_PREDICATES 32
#define TCPNOTIFY_MAX_FILTER_CLAUSES 32

enum tcpnotify_predicate_kind {
    TCPNOTIFY_PRED_SRC_PREFIX = 1, /* local address within addr/prefix_len */
    TCPNOTIFY_PRED_DST_PREFIX = 2, /* remote address within addr/prefix_len */
    TCPNOTIFY_PRED_SPORT = 3,      /* local port <op> port */
    TCPNOTIFY_PRED_DPORT = 4,      /* remote port <op> port */
};

struct tcpnotify_filter_predicate {
    __u8 kind;       /* enum tcpnotify_predicate_kind */
    __u8 op;         /* enum tcpnotify_op, ports only */
    __u8 prefix_len; /* 0..128 over the 16-byte address (IPv4 /n is 96+n) */
    __u8 pad0;
    __u16 port;      /* host order */
    __u16 pad1;
    __u8 addr[16];   /* network order, already masked to prefix_len */
};
_Static_assert(sizeof(struct tcpnotify_filter_predicate) == 24, "filter predicate layout");

struct tcpnotify_clause {
    __u32 must_true;  /* bitmask over predicates or terms */
    __u32 must_false;
    __u32 rule;       /* rule tables: index of the rule this clause belongs to; filters: unused */
    __u32 subscribers;/* filters: the subscribers this clause selects for (bit i = slot i); rules: unused */
};
_Static_assert(sizeof(struct tcpnotify_clause) == 16, "clause layout");

/* A subscriber without an expression has one clause with no literals (it always holds). */
#define TCPNOTIFY_FILTER_TUPLE_WILDCARD_SPORT (1u << 2) /* filter_tuple has entries with local port 0 */

struct tcpnotify_filter {
    __u32 flags;
    __u32 predicate_count;
    __u32 clause_count;
    __u32 tuple_subscribers; /* these subscribers also require the socket to be in filter_tuple */
    struct tcpnotify_filter_predicate predicates[TCPNOTIFY_MAX_FILTER_PREDICATES];
    struct tcpnotify_clause clauses[TCPNOTIFY_MAX_FILTER_CLAUSES];
};
_Static_assert(sizeof(struct tcpnotify_filter) == 16 + 24 * 32 + 16 * 32, "filter layout");

/* Key of the exact 4-tuple hash (--tuples). A local port of 0 is a wildcard. */
struct tcpnotify_tuple_key {
    __u8 local_addr[16];
    __u8 remote_addr[16];
    __u16 local_port;   /* host order */
    __u16 remote_port;  /* host order */
};
_Static_assert(sizeof(struct tcpnotify_tuple_key) == 36, "tuple key layout");

#define TCPNOTIFY_MAX_TUPLES 65536

/* ---------------------------------------------------------------------------------------------------- */
/* Rules: when an enrolled socket notifies. Terms compare a value computed from tcp_info fields with a  */
/* constant; clauses combine terms; a rule is true when any of its clauses is. Each rule has a control */
/* (edge by default; `for`, `every`, `once`, `each`). Two table slots: user space writes the inactive one and */
/* then flips `active_rule_slot` in the control map, so rules change while running.                   */

#define TCPNOTIFY_MAX_RULES 32
#define TCPNOTIFY_MAX_RULE_TERMS 32
#define TCPNOTIFY_MAX_RULE_CLAUSES 32
#define TCPNOTIFY_MAX_WINDOWS 4        /* distinct (field, width) pairs used by increase()/rate() */
#define TCPNOTIFY_WINDOW_SNAPSHOTS 4   /* snapshots per window, taken at least width/3 apart */
#define TCPNOTIFY_MAX_TIMED_RULES 8    /* rules with `for` or `every` (they need per-socket timers) */
#define TCPNOTIFY_MAX_OPERANDS 16      /* distinct fields the rules read: each is computed once per event */

/* Operands beyond struct tcp_info (field ids from 128 on). */
enum tcpnotify_virtual_field {
    TCPNOTIFY_VFIELD_AGE_US = 128,     /* microseconds since the socket was enrolled (its lifetime) */
};

enum tcpnotify_term_kind {
    TCPNOTIFY_TERM_FIELD_CMP = 0, /* a <op> value */
    TCPNOTIFY_TERM_RATIO = 1,     /* a / b in parts per million <op> value (0/0 = 0, x/0 = max) */
    TCPNOTIFY_TERM_SUM = 2,       /* a + b (saturating) <op> value */
    TCPNOTIFY_TERM_DIFF = 3,      /* a - b (0 when b > a) <op> value */
    TCPNOTIFY_TERM_INCREASE = 4,  /* growth of window `window`'s field over its width <op> value */
    TCPNOTIFY_TERM_RATE = 5,      /* that growth per second (growth * 1e9 / elapsed ns) <op> value */
};

/* A term `time > constant` (or >=) over a time that grows while the socket is silent (last_data_recv,
 * last_ack_recv, ..., age): the sweep reports when it can next become true (the sweep horizon), so that
 * user space can skip the sweeps before that. The unit is a's. */
enum tcpnotify_horizon_unit {
    TCPNOTIFY_HORIZON_NONE = 0,
    TCPNOTIFY_HORIZON_MS = 1,
    TCPNOTIFY_HORIZON_US = 2,
};

struct tcpnotify_rule_term {
    __u8 kind;    /* enum tcpnotify_term_kind */
    __u8 op;      /* enum tcpnotify_op */
    __u8 a;       /* operand slot (index into the table's operands) */
    __u8 b;       /* second operand slot, for RATIO, SUM and DIFF */
    __u8 window;  /* INCREASE/RATE: index into the table's windows */
    __u8 horizon_unit; /* enum tcpnotify_horizon_unit */
    __u8 pad[2];
    __u64 value;  /* in a's kernel unit; parts per million for RATIO; per second for RATE */
};
_Static_assert(sizeof(struct tcpnotify_rule_term) == 16, "rule term layout");

/* A window over one field's history, shared by every term that names the same (field, width). */
struct tcpnotify_window {
    __u64 width_ns;
    __u8 operand;   /* operand slot whose value the window follows */
    __u8 pad[7];
};
_Static_assert(sizeof(struct tcpnotify_window) == 16, "window layout");

/* The table reads the clock (windows, for/every, age): only then does an event pay for it. */
#define TCPNOTIFY_RULES_NEED_CLOCK (1u << 0)

#define TCPNOTIFY_RULE_FOR (1u << 0)   /* notify once the condition has held for for_ms */
#define TCPNOTIFY_RULE_EVERY (1u << 1) /* while it holds, notify again every every_ms */
#define TCPNOTIFY_RULE_ONCE (1u << 2)  /* notify at most once per socket (until the rules change) */
#define TCPNOTIFY_RULE_EACH (1u << 3)  /* notify at every event at which it holds (no edge, no timer) */

struct tcpnotify_rule_control {
    __u8 flags;       /* TCPNOTIFY_RULE_*; 0 = edge: notify when it becomes true, re-arm when false */
    __u8 timer_slot;  /* FOR/EVERY: index of this rule's per-socket timers, < TCPNOTIFY_MAX_TIMED_RULES */
    __u16 pad;
    __u32 for_ms;
    __u32 every_ms;
    __u32 pad1;
};
_Static_assert(sizeof(struct tcpnotify_rule_control) == 16, "rule control layout");

struct tcpnotify_rule_table {
    __u32 generation;   /* bumped on every change; sockets reset their rule state when it differs */
    __u32 rule_count;
    __u32 term_count;
    __u32 clause_count;
    __u32 window_count;
    __u32 timed_rule_count;
    __u32 timed_mask;   /* rules with FOR or EVERY */
    __u32 once_mask;    /* rules with ONCE */
    __u32 operand_count;
    __u32 flags;        /* TCPNOTIFY_RULES_* */
    __u16 operands[TCPNOTIFY_MAX_OPERANDS]; /* enum tcpnotify_field or tcpnotify_virtual_field */
    struct tcpnotify_rule_term terms[TCPNOTIFY_MAX_RULE_TERMS];
    struct tcpnotify_clause clauses[TCPNOTIFY_MAX_RULE_CLAUSES];
    struct tcpnotify_rule_control controls[TCPNOTIFY_MAX_RULES];
    struct tcpnotify_window windows[TCPNOTIFY_MAX_WINDOWS];
    __u8 timed_rules[TCPNOTIFY_MAX_TIMED_RULES]; /* timer slot -> rule index */
    /* The rules each subscriber owns (bit i = rule i). A socket notifies only for the rules of its
     * subscribers; it recomputes that mask when the table's generation changes. */
    __u32 subscriber_rules[TCPNOTIFY_MAX_SUBSCRIBERS];
    __u32 each_mask;    /* rules with EACH: they fire at every event at which they hold */
    __u32 pad;
};
_Static_assert(sizeof(struct tcpnotify_rule_table) ==
                   40 + 2 * 16 + 16 * 32 + 16 * 32 + 16 * 32 + 16 * 4 + 8 + 4 * TCPNOTIFY_MAX_SUBSCRIBERS + 8,
               "rule table layout");

/* One event of one socket for a test run of the rule evaluator (rules_eval.bpf.c through
 * BPF_PROG_TEST_RUN): the same C code as the sock_ops program, fed with given field values. */
struct tcpnotify_eval_request {
    __u64 since_enrollment_ns;
    __u32 reset;       /* in: 1 starts a fresh socket state */
    __u32 rules_true;  /* out */
    __u32 fired;       /* out */
    __u32 pad;
    __u64 values[TCPNOTIFY_FIELD_COUNT];
};
_Static_assert(sizeof(struct tcpnotify_eval_request) == 24 + 8 * TCPNOTIFY_FIELD_COUNT, "eval request layout");

/* ---------------------------------------------------------------------------------------------------- */
/* Records pushed through the `events` ring buffer. */

enum tcpnotify_record_type {
    TCPNOTIFY_RECORD_NOTIFICATION = 1,
};

enum tcpnotify_trigger {
    TCPNOTIFY_TRIGGER_RTT = 1,
    TCPNOTIFY_TRIGGER_RETRANS = 2,
    TCPNOTIFY_TRIGGER_RTO = 3,
    TCPNOTIFY_TRIGGER_STATE = 4,
    TCPNOTIFY_TRIGGER_CLOSE = 5,
    TCPNOTIFY_TRIGGER_SWEEP = 6,    /* the periodic sweep over enrolled sockets (stalls, silence) */
    TCPNOTIFY_TRIGGER_SNAPSHOT = 7, /* `tcpnotify snapshot`: no rule, the socket's tcp_info now */
    TCPNOTIFY_TRIGGER_POLL = 8,     /* user-space polling through sock_diag (--mode poll) */
    TCPNOTIFY_TRIGGER_SEGMENT = 9,  /* an incoming segment (tcp_probe tracepoint): the fallback for existing
                                     * sockets whose sock_ops callbacks could not be set (kernel < 6.12) */
};

struct tcpnotify_record {
    __u16 type;           /* enum tcpnotify_record_type */
    __u16 size;           /* sizeof(struct tcpnotify_record) */
    __u8 trigger;         /* enum tcpnotify_trigger */
    __u8 family;          /* AF_INET or AF_INET6, as the socket was created */
    __u8 old_state;       /* state triggers: the state being left (tcp_info.state is the one entered) */
    __u8 pad0;
    __u32 rules_fired;    /* rules that became true at this event (bit i = rule i) */
    __u32 rules_true;     /* rules true at this event */
    __u32 rule_generation;
    __u32 callback_flags; /* the socket's sock_ops callback flags: ours OR'ed with other programs' */
    __u64 timestamp_ns;   /* CLOCK_MONOTONIC */
    __u64 cookie;         /* socket cookie (SO_COOKIE) */
    __u64 cgroup_id;      /* cgroup v2 id of the socket */
    __u64 notifications;  /* notifications this socket produced, this one included */
    __u8 local_addr[16];
    __u8 remote_addr[16];
    __u16 local_port;     /* host order */
    __u16 remote_port;    /* host order */
    __u32 subscribers;    /* the socket's subscribers (bit i = slot i); user space picks who gets it */
    struct tcpnotify_tcp_info info;
};
_Static_assert(sizeof(struct tcpnotify_record) == 96 + 280, "record layout");

/* ---------------------------------------------------------------------------------------------------- */
/* Per-socket state in sk_storage (`sk_state`). Created only for enrolled sockets. */

/* The recent history of one window's field: a ring of snapshots at least width/3 apart. */
struct tcpnotify_window_state {
    __u64 value[TCPNOTIFY_WINDOW_SNAPSHOTS];
    __u32 at_ms[TCPNOTIFY_WINDOW_SNAPSHOTS]; /* ms since enrollment */
    __u8 newest;   /* index of the newest snapshot */
    __u8 count;    /* snapshots taken, up to TCPNOTIFY_WINDOW_SNAPSHOTS */
    __u8 pad[6];
};
_Static_assert(sizeof(struct tcpnotify_window_state) == 56, "window state layout");

struct tcpnotify_sk_state {
    __u64 cookie;
    __u64 cgroup_id;
    __u64 notifications;
    __u64 enrolled_ns;      /* CLOCK_MONOTONIC at enrollment: the time base of the fields below */
    __u32 rules_fired;      /* rules that notified in their current true period (edge trigger) */
    __u32 rule_generation;  /* generation the rule state refers to */
    __u32 once_fired;       /* ONCE rules that have notified */
    __u32 holding;          /* FOR rules whose condition holds since since_ms */
    __u32 since_ms[TCPNOTIFY_MAX_TIMED_RULES];
    __u32 last_notified_ms[TCPNOTIFY_MAX_TIMED_RULES];
    struct tcpnotify_window_state windows[TCPNOTIFY_MAX_WINDOWS];
    __u8 family;
    __u8 via_tracepoints;   /* 1: enrolled without sock_ops callbacks (kernel < 6.12); tracepoints check it */
    __u8 own_cb_flags;      /* the callback flags tcpnotify switched on (not already set by another program):
                             * exactly these are cleared at a clean stop */
    __u8 pad;
    __u32 subscribers;      /* who selected this socket (bit i = slot i); 0: nobody any more */
    __u32 rule_mask;        /* rules of those subscribers, for rule_generation: nothing else is emitted */
    __u32 pad2;
};
_Static_assert(sizeof(struct tcpnotify_sk_state) == 48 + 32 * 2 + 56 * 4 + 16, "socket state layout");

/* ---------------------------------------------------------------------------------------------------- */
/* Counters in the per-CPU `stats` array, one slot each. Nothing is lost without a count here. */

enum tcpnotify_stat {
    TCPNOTIFY_STAT_CALLBACKS = 0,        /* rule checks: RTT/RETRANS/RTO/STATE callbacks on enrolled sockets */
    TCPNOTIFY_STAT_ESTABLISHED = 1,      /* connections seen at establishment */
    TCPNOTIFY_STAT_ENROLLED = 2,         /* connections that matched the selection */
    TCPNOTIFY_STAT_NOTIFICATIONS = 3,    /* records written to the ring buffer */
    TCPNOTIFY_STAT_RING_DROPS = 4,       /* records lost: ring buffer full */
    TCPNOTIFY_STAT_STORAGE_FAILURES = 5, /* matching sockets not enrolled: sk_storage could not be created */
    TCPNOTIFY_STAT_FLAG_FAILURES = 6,    /* matching sockets whose callback flags could not be set */
    TCPNOTIFY_STAT_WAKEUPS = 7,          /* ring buffer wakeups forced */
    TCPNOTIFY_STAT_EXISTING_SEEN = 8,    /* full TCP sockets the enrollment iterator visited */
    TCPNOTIFY_STAT_EXISTING_ENROLLED = 9,/* existing sockets it enrolled (also counted in ENROLLED), or to which
                                          * it added a joining subscriber's bit (not counted in ENROLLED) */
    TCPNOTIFY_STAT_SWEPT = 10,           /* rule checks made by the periodic sweep */
    TCPNOTIFY_STAT_CLOSED = 11,          /* enrolled sockets that reached CLOSE (enrolled - closed = watched now) */
    TCPNOTIFY_STAT_VIA_TRACEPOINTS = 12, /* existing sockets enrolled whose callback flags the kernel would not set
                                          * from an iterator (before 6.12): the tracepoint fallback watches them */
    TCPNOTIFY_STAT_RTT_WITHOUT_SRTT = 13,/* RTT callbacks without the new srtt argument (before 6.10): rules saw the
                                          * srtt of the previous sample */
    TCPNOTIFY_STAT_FLAGS_RELEASED = 14,  /* sockets whose callback flags we set were cleared at a clean stop */
    TCPNOTIFY_STAT_FLAGS_KEPT = 15,      /* ... and those the kernel would not clear from an iterator (before 6.12) */
    TCPNOTIFY_STAT_COUNT = 16,
};

/* ---------------------------------------------------------------------------------------------------- */
/* Fixed settings, set before load (.rodata.cfg). */

struct tcpnotify_config {
    __u32 hz_fallback;           /* used when CONFIG_HZ cannot be read from the kernel config */
    __u32 callback_flags;        /* BPF_SOCK_OPS_*_CB_FLAG bits to OR into enrolled sockets */
    __u64 wakeup_interval_ns;    /* at most one ring wakeup per interval, unless the watermark is passed */
    __u64 wakeup_watermark_bytes;/* force a wakeup when this much data waits in the ring */
    __u32 notify_on_close;       /* 1: a final record on close for sockets that notified */
    __u32 test_flags;            /* TCPNOTIFY_TEST_*: only tests set these */
};

/* The enrollment iterator acts as on kernels before 6.12 (callback flags refused): tests of the tracepoint
 * fallback run on any kernel. */
#define TCPNOTIFY_TEST_NO_ITERATOR_FLAGS (1u << 0)
_Static_assert(sizeof(struct tcpnotify_config) == 32, "config layout");

/* Mutable control word (array map `control`, one element). */
struct tcpnotify_control {
    __u32 active_rule_slot;    /* 0 or 1: which entry of `rules` is live */
    __u32 active_filter_slot;  /* 0 or 1: which entry of `filter` is live */
    __u32 scope_all_cgroups;   /* 1: the enrollment iterator takes sockets of every cgroup (attached at the
                                * root); 0: only those whose cgroup id is in `scope_cgroups` */
    __u32 enroll_subscribers;  /* the enrollment iterator adds only these subscribers' bits (a joining one) */
    __u32 forget_subscribers;  /* the forget iterator clears these bits from every enrolled socket */
    __u32 release_cb_flags;    /* 1: the enrollment iterator instead clears the callback flags we set (stop) */
};
_Static_assert(sizeof(struct tcpnotify_control) == 24, "control layout");

/* The most cgroups below an attach point that the enrollment iterator can tell apart. */
#define TCPNOTIFY_MAX_SCOPE_CGROUPS 65536

#endif /* TCPNOTIFY_H */
