/* Host-side glue: what Swift cannot express over libbpf (va_list callbacks, LIBBPF_OPTS macros). */
#ifndef CTCPNOTIFY_H
#define CTCPNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "tcpnotify.h"

struct bpf_object;
struct bpf_program;
struct bpf_link;

/* libbpf's print callback takes a va_list; this trampoline formats the message and hands Swift a
 * plain string. level: 0 warn, 1 info, 2 debug (LIBBPF_WARN...). */
typedef void (*CTCPNotify_log_fn)(int level, const char *message);
void CTCPNotify_set_libbpf_logger(CTCPNotify_log_fn fn);

/* bpf_object__open_mem with an object name (LIBBPF_OPTS). NULL plus errno on failure. */
struct bpf_object *CTCPNotify_open_object(const void *data, size_t size, const char *name);

/* bpf_prog_attach-free cgroup attachment via bpf_link (dies with the process's last fd). */
struct bpf_link *CTCPNotify_attach_cgroup(struct bpf_program *prog, int cgroup_fd);

/* Links an iter/ program (NULL plus errno on failure); map_fd >= 0 for a map iterator's map. */
struct bpf_link *CTCPNotify_attach_iter(struct bpf_program *prog, int map_fd);

struct ring_buffer;

/* Adds an eventfd to a libbpf ring buffer's epoll set, so another thread can wake a reader blocked in
 * ring_buffer__poll (CTCPNotify_wake). Returns the eventfd or -errno. */
int CTCPNotify_ring_add_wakeup(struct ring_buffer *ring);
void CTCPNotify_wake(int fd);

/* Creates an iterator fd for an iter/ program's link and returns it (or -errno). */
int CTCPNotify_iter_create(struct bpf_link *link);

/* Every field of a tcp_info in field-id order (TCPNOTIFY_FOR_EACH_FIELD), widened to 64 bits: `values`
 * holds TCPNOTIFY_FIELD_COUNT entries. Inline, because it runs once per record on the hot path. */
static inline void CTCPNotify_tcp_info_values(const struct tcpnotify_tcp_info *info, uint64_t *values)
{
#define CTCPNOTIFY_READ_FIELD(id, name, member, shift, bits, ...) \
    values[TCPNOTIFY_FIELD_##id] = ((uint64_t)info->member >> (shift)) & (~0ull >> (64 - (bits)));
    TCPNOTIFY_FOR_EACH_FIELD(CTCPNOTIFY_READ_FIELD)
#undef CTCPNOTIFY_READ_FIELD
}

/* One line of TCPNOTIFY_FOR_EACH_FIELD as data, for the tests that check Swift's generated TCPInfoField
 * against the header. Inline, so only a binary that asks for it carries the table. */
struct CTCPNotify_field_descriptor {
    const char *name;
    const char *member;
    const char *unit;
    const char *since;   /* "" when the field predates every supported kernel */
    const char *summary;
    unsigned int shift;
    unsigned int bits;
    unsigned int member_offset;
    unsigned int member_bits;
};

/* The descriptor of field `id`, or NULL past the end. */
static inline const struct CTCPNotify_field_descriptor *CTCPNotify_field_descriptor(unsigned int id)
{
#define CTCPNOTIFY_FIELD_DESCRIPTOR(id, name, member, shift, bits, unit, since, summary)                 \
    {#name, #member, #unit, since, summary, shift, bits, offsetof(struct tcpnotify_tcp_info, member), \
     8 * sizeof(((struct tcpnotify_tcp_info *)0)->member)},
    static const struct CTCPNotify_field_descriptor descriptors[] = {
        TCPNOTIFY_FOR_EACH_FIELD(CTCPNOTIFY_FIELD_DESCRIPTOR)
    };
#undef CTCPNOTIFY_FIELD_DESCRIPTOR
    return id < TCPNOTIFY_FIELD_COUNT ? &descriptors[id] : NULL;
}

/* The number of possible CPUs (for per-CPU map reads), or -errno. */
int CTCPNotify_num_possible_cpus(void);

/* Enables or disables kernel-wide BPF run-time statistics; returns an fd that keeps them on while open. */
int CTCPNotify_enable_stats(void);

/* run_time_ns and run_cnt of a program (needs stats enabled); 0 on success, -errno otherwise. */
int CTCPNotify_prog_run_stats(int prog_fd, uint64_t *run_time_ns, uint64_t *run_cnt, uint32_t *prog_id);

/* The id of the link behind a link fd, or 0. */
uint32_t CTCPNotify_link_id(int link_fd);

/* How many sock_ops programs named `prog_name` run for sockets of the cgroup at `cgroup_path` (attached
   there or above it: the effective list); -errno if the cgroup cannot be queried. */
int CTCPNotify_count_effective_sockops(const char *cgroup_path, const char *prog_name);

/* BPF_PROG_TEST_RUN of a SEC("syscall") program with ctx in/out; returns the program's return value,
 * or -errno if the run failed. */
int CTCPNotify_test_run(int prog_fd, void *ctx, unsigned int ctx_size);

/* 1 if fd is a directory of a cgroup v2 file system, 0 if not, -errno if it cannot tell. */
int CTCPNotify_is_cgroup2(int fd);

/* setns(fd, CLONE_NEWNET) for the calling thread (a GNU extension Swift's Glibc module hides). 0 or -errno. */
int CTCPNotify_enter_network_namespace(int fd);

/* Attaches a cls_bpf direct-action program to ifindex's clsact hook (created if missing) in the
 * calling thread's network namespace. egress: 1 egress, 0 ingress. 0 or -errno. The filter stays
 * until removed or the device goes away. */
int CTCPNotify_tc_attach(int ifindex, int prog_fd, int egress);

/* The member names of a struct in the running kernel's BTF (e.g. "tcp_info": the fields its
 * getsockopt(TCP_INFO) returns), newline-separated into buffer. Returns the member count or -errno. */
int CTCPNotify_struct_members(const char *struct_name, char *buffer, size_t size);

/* CONFIG_HZ as libbpf resolved it for a loaded object's `__kconfig` extern: 0 when the kernel config was
 * unreadable (the programs then use their configured fallback), or -errno. */
int CTCPNotify_kconfig_hz(struct bpf_object *object);

#endif
