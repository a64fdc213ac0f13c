/* tcpnotify-lab's loss emulator: a cls_bpf direct-action filter that drops packets at random (netem is not
 * available on the test machines). Decisions are per skb: a GSO packet is dropped whole, so at a given rate
 * losses arrive in bursts of up to 64 KB. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lab_loss.h"

char LICENSE[] SEC("license") = "GPL";

SEC(".rodata.cfg") const volatile struct lab_loss_config cfg = {
    .drop_per_million = 0,
    .match = LAB_LOSS_MATCH_TCP_PAYLOAD,
    .l3_offset_bytes = ETH_HLEN,
};

struct lab_loss_counters counters = {};

/* TCP payload bytes of an IPv4 packet; 0 for anything else (including fragments after the first). */
static __always_inline __u32 ipv4_tcp_payload_bytes(struct __sk_buff *skb, __u32 offset)
{
    struct iphdr ip;
    struct tcphdr tcp;
    if (bpf_skb_load_bytes(skb, offset, &ip, sizeof(ip)) < 0) return 0;
    if (ip.protocol != IPPROTO_TCP || (ip.frag_off & bpf_htons(0x1fff)) != 0) return 0;
    __u32 ip_header_bytes = ip.ihl * 4;
    if (bpf_skb_load_bytes(skb, offset + ip_header_bytes, &tcp, sizeof(tcp)) < 0) return 0;
    __u32 headers_bytes = ip_header_bytes + tcp.doff * 4;
    __u32 total_bytes = bpf_ntohs(ip.tot_len);
    return total_bytes > headers_bytes ? total_bytes - headers_bytes : 0;
}

/* TCP payload bytes of an IPv6 packet whose first next header is TCP (extension headers are not followed). */
static __always_inline __u32 ipv6_tcp_payload_bytes(struct __sk_buff *skb, __u32 offset)
{
    struct ipv6hdr ip;
    struct tcphdr tcp;
    if (bpf_skb_load_bytes(skb, offset, &ip, sizeof(ip)) < 0) return 0;
    if (ip.nexthdr != IPPROTO_TCP) return 0;
    if (bpf_skb_load_bytes(skb, offset + sizeof(ip), &tcp, sizeof(tcp)) < 0) return 0;
    __u32 tcp_header_bytes = tcp.doff * 4;
    __u32 payload_bytes = bpf_ntohs(ip.payload_len);
    return payload_bytes > tcp_header_bytes ? payload_bytes - tcp_header_bytes : 0;
}

static __always_inline int is_tcp_with_payload(struct __sk_buff *skb)
{
    __u32 offset = cfg.l3_offset_bytes;
    if (skb->protocol == bpf_htons(ETH_P_IP)) return ipv4_tcp_payload_bytes(skb, offset) > 0;
    if (skb->protocol == bpf_htons(ETH_P_IPV6)) return ipv6_tcp_payload_bytes(skb, offset) > 0;
    return 0;
}

SEC("tc")
int lab_loss(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&counters.seen_packets, 1);
    if (cfg.match != LAB_LOSS_MATCH_ALL && !is_tcp_with_payload(skb)) return TC_ACT_OK;
    __sync_fetch_and_add(&counters.matched_packets, 1);

    /* Scale a uniform u32 to 0...999,999 without a modulo. */
    __u32 draw = (__u32)(((__u64)bpf_get_prandom_u32() * 1000000) >> 32);
    if (draw >= cfg.drop_per_million) return TC_ACT_OK;
    __sync_fetch_and_add(&counters.dropped_packets, 1);
    return TC_ACT_SHOT;
}
