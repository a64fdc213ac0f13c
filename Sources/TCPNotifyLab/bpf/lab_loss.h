/* The contract between loss.bpf.c and LossFilter.swift (which mirrors these structs field by field:
 * Swift cannot import from bpf/, so both sides assert the sizes). */
#ifndef TCPNOTIFY_LAB_LOSS_H
#define TCPNOTIFY_LAB_LOSS_H

#include <linux/types.h>

/* What the filter drops. */
enum lab_loss_match {
    /* IPv4/IPv6 TCP segments that carry payload: SYNs, FINs and pure ACKs pass, so handshakes are not
     * stretched by 1 s SYN timeouts and the loss lands on data, which is what drives retransmits. */
    LAB_LOSS_MATCH_TCP_PAYLOAD = 0,
    /* Every packet, whatever its protocol (ARP and neighbour discovery included): with 100 % a dead path. */
    LAB_LOSS_MATCH_ALL = 1,
};

/* Read-only configuration (".rodata.cfg"), set by the loader before load. */
struct lab_loss_config {
    __u32 drop_per_million; /* drop probability × 10^6, 0...1,000,000 */
    __u32 match;            /* enum lab_loss_match */
    __u32 l3_offset_bytes;  /* where the IP header starts: 14 on Ethernet-like devices, 0 on L3 (tun) */
    __u32 reserved;         /* explicit padding, zero */
};
_Static_assert(sizeof(struct lab_loss_config) == 16, "struct lab_loss_config layout changed");

/* Counters in .bss, readable through the program's maps after the loader has exited. A GSO packet counts
 * once, however many segments it carries. */
struct lab_loss_counters {
    __u64 seen_packets;    /* every packet the filter ran on */
    __u64 matched_packets; /* those eligible for dropping */
    __u64 dropped_packets; /* those dropped */
};
_Static_assert(sizeof(struct lab_loss_counters) == 24, "struct lab_loss_counters layout changed");

#endif
