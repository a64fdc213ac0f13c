/* Selection: which subscribers' filters (and exact-tuple lists) take a new connection?
 * Runs once per connection, at establishment; the verdict lives on in the socket's sk_storage. */
#ifndef TCPNOTIFY_SELECT_BPF_H
#define TCPNOTIFY_SELECT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcpnotify.h"
#include "compare.bpf.h"
#include <bpf/bpf_endian.h>

struct tn_endpoints {
    struct tcpnotify_tuple_key key; /* addresses as 16 bytes (IPv4 v4-mapped), ports host order */
};

/* addr within prefix/len, both 16 bytes in network order, prefix already masked. Two 64-bit compares
 * and no loop: the verifier walks it in a few instructions. */
static __always_inline __u64 tn_be64(const __u8 *bytes)
{
    __u64 value;
    __builtin_memcpy(&value, bytes, 8);
    return bpf_be64_to_cpu(value);
}

static __always_inline int tn_prefix_match(const __u8 *addr, const __u8 *prefix, __u32 len)
{
    if (len > 128) return 0;
    __u64 high_mask = len >= 64 ? ~0ULL : (len == 0 ? 0 : ~0ULL << (64 - len));
    __u64 low_mask = len <= 64 ? 0 : (len >= 128 ? ~0ULL : ~0ULL << (128 - len));
    return (tn_be64(addr) & high_mask) == tn_be64(prefix) && (tn_be64(addr + 8) & low_mask) == tn_be64(prefix + 8);
}

static __always_inline int tn_predicate_holds(const struct tcpnotify_filter_predicate *p,
                                              const struct tcpnotify_tuple_key *k)
{
    switch (p->kind) {
    case TCPNOTIFY_PRED_SRC_PREFIX: return tn_prefix_match(k->local_addr, p->addr, p->prefix_len);
    case TCPNOTIFY_PRED_DST_PREFIX: return tn_prefix_match(k->remote_addr, p->addr, p->prefix_len);
    case TCPNOTIFY_PRED_SPORT: return tn_compare(p->op, k->local_port, p->port);
    case TCPNOTIFY_PRED_DPORT: return tn_compare(p->op, k->remote_port, p->port);
    default: return 0;
    }
}

/* The subscribers whose filter takes the socket: the OR of the tags of the clauses that hold (DNF: a
 * clause holds when it has all its must_true bits and none of its must_false bits). */
static __always_inline __u32 tn_clause_subscribers(const struct tcpnotify_clause *clauses, __u32 count, __u32 bits)
{
    __u32 subscribers = 0;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_FILTER_CLAUSES; i++) {
        if (i >= count) break;
        const struct tcpnotify_clause *c = &clauses[i];
        if ((bits & c->must_true) == c->must_true && !(bits & c->must_false)) subscribers |= c->subscribers;
    }
    return subscribers;
}

/* The subscriber mask the filter gives this connection (0: not selected). */
__noinline __u32 tn_filter_subscribers(const struct tcpnotify_filter *f, const struct tcpnotify_tuple_key *k)
{
    if (!f || !k) return 0;
    __u32 bits = 0;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_FILTER_PREDICATES; i++) {
        if (i >= f->predicate_count) break;
        if (tn_predicate_holds(&f->predicates[i], k)) bits |= 1u << i;
    }
    return tn_clause_subscribers(f->clauses, f->clause_count, bits);
}

#endif
