/* The comparison operators of filters and rules (enum tcpnotify_op). */
#ifndef TCPNOTIFY_COMPARE_BPF_H
#define TCPNOTIFY_COMPARE_BPF_H

#include "vmlinux.h"
#include "tcpnotify.h"

static __always_inline int tn_compare(__u8 op, __u64 lhs, __u64 rhs)
{
    switch (op) {
    case TCPNOTIFY_OP_EQ: return lhs == rhs;
    case TCPNOTIFY_OP_NE: return lhs != rhs;
    case TCPNOTIFY_OP_LT: return lhs < rhs;
    case TCPNOTIFY_OP_LE: return lhs <= rhs;
    case TCPNOTIFY_OP_GT: return lhs > rhs;
    case TCPNOTIFY_OP_GE: return lhs >= rhs;
    default: return 0;
    }
}

#endif
