/* A stand-in for another team's sock_ops program, for coexistence tests: at establishment it ORs
 * BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG into the socket's callback flags (a flag that changes
 * nothing between two Linux hosts: it only fires for unknown TCP options). tcpnotify must keep it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("sockops")
int foreign_sockops(struct bpf_sock_ops *skops)
{
    __u32 op = skops->op;
    if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
    return 1;
}
