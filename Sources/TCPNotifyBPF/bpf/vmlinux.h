/* Minimal kernel types for tcpnotify's BPF programs: only the fields they read. Every struct is CO-RE
 * relocatable (preserve_access_index), so field offsets come from the running kernel's BTF at load time;
 * names must match the kernel's. Field sizes and bitfield widths here need not match: reads of bitfields
 * go through BPF_CORE_READ_BITFIELD, which relocates width and shift too. */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

struct kernfs_node {
    u64 id;
};

struct cgroup {
    struct kernfs_node *kn;
};

struct sock_cgroup_data {
    struct cgroup *cgroup;
};

struct in6_addr {
    __u8 s6_addr[16];
};

/* In the kernel the address and port fields sit in anonymous unions; CO-RE finds them by name. */
struct sock_common {
    __u32 skc_daddr;          /* network order */
    __u32 skc_rcv_saddr;      /* network order */
    __u16 skc_dport;          /* network order */
    __u16 skc_num;            /* host order */
    unsigned char skc_state;
    unsigned short skc_family;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
    struct sock_common __sk_common;
    unsigned long sk_pacing_rate;
    unsigned long sk_max_pacing_rate;
    u32 sk_ack_backlog;
    u32 sk_max_ack_backlog;
    struct sock_cgroup_data sk_cgrp_data;
};

struct inet_sock {
    struct sock sk;
};

/* tracepoints.bpf.c: whether a segment in tcp_probe carries data (skb->data is its TCP header there). */
struct sk_buff {
    unsigned int len;
    unsigned char *data;
};

struct inet_connection_sock {
    struct inet_sock icsk_inet;
    __u32 icsk_rto;
    __u32 icsk_delack_max;
    __u32 icsk_pmtu_cookie;
    __u8 icsk_ca_state : 5;
    __u8 icsk_retransmits;
    __u8 icsk_backoff;
    __u8 icsk_probes_out;
    struct {
        __u32 ato : 8;
        __u32 lrcvtime;
        __u16 rcv_mss;
    } icsk_ack;
};

struct tcp_options_received {
    u16 tstamp_ok : 1;
    u16 wscale_ok : 1;
    u16 sack_ok : 3;
    u16 snd_wscale : 4;
    u16 rcv_wscale : 4;
};

struct minmax_sample {
    u32 t;
    u32 v;
};

struct minmax {
    struct minmax_sample s[3];
};

struct tcp_sock {
    struct inet_connection_sock inet_conn;
    u32 rcv_ssthresh;
    u32 reordering;
    u32 snd_wnd;
    u32 mss_cache;
    u32 snd_cwnd;
    u32 lost_out;
    u32 sacked_out;
    u8 tcp_usec_ts : 1;
    u32 retrans_out;
    u16 advmss;
    u32 snd_ssthresh;
    struct minmax rtt_min;
    u32 segs_out;
    u32 data_segs_out;
    u64 bytes_sent;
    u8 chrono_type : 2;   /* a u8 on 6.18, a :2 bitfield on 6.12: read with BPF_CORE_READ_BITFIELD */
    u32 chrono_start;
    u32 chrono_stat[3];
    u32 write_seq;
    u32 lsndtime;
    u32 mdev_us;
    u8 ecn_flags;
    u8 rate_app_limited : 1;
    u32 snd_nxt;
    u32 srtt_us;
    u32 packets_out;
    u32 delivered;
    u32 delivered_ce;
    u32 received_ce;
    u32 received_ecn_bytes[3];
    u32 rcv_wnd;
    u32 rcv_tstamp;
    struct tcp_options_received rx_opt;
    u64 bytes_received;
    u32 segs_in;
    u32 data_segs_in;
    u32 rate_delivered;
    u32 rate_interval_us;
    u32 delivered_ecn_bytes[3];
    u64 bytes_acked;
    struct {
        u32 rtt_us;
    } rcv_rtt_est;
    struct {
        int space;
    } rcvq_space;
    u32 dsack_dups;
    u8 fastopen_client_fail : 2;
    u8 syn_data_acked : 1;
    u8 syn_fastopen_child : 1;
    u8 accecn_fail_mode : 4;
    u8 saw_accecn_opt : 2;
    u32 reord_seen;
    u64 bytes_retrans;
    u32 total_retrans;
    u32 rto_stamp;
    u16 total_rto;
    u16 total_rto_recoveries;
    u32 total_rto_time;
    u16 timeout_rehash;
    u32 rcv_ooopack;
    u32 plb_rehash;
    u8 bpf_sock_ops_cb_flags;
};

/* Iterator contexts (iter/tcp, iter/bpf_sk_storage_map). */
struct seq_file;
struct bpf_map;

struct bpf_iter_meta {
    struct seq_file *seq;
    u64 session_id;
    u64 seq_num;
};

struct bpf_iter__tcp {
    struct bpf_iter_meta *meta;
    struct sock_common *sk_common;
    __u32 uid;
};

struct bpf_iter__bpf_sk_storage_map {
    struct bpf_iter_meta *meta;
    struct bpf_map *map;
    struct sock *sk;
    void *value;
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
