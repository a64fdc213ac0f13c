#define _GNU_SOURCE
#include "CTCPNotify.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>

static CTCPNotify_log_fn swift_logger;

static int print_trampoline(enum libbpf_print_level level, const char *format, va_list args)
{
    if (!swift_logger) return 0;
    /* The verifier log arrives as one message of up to megabytes; its reason is at the end, so it is
     * formatted whole, never cut at a fixed buffer size. */
    char *message = NULL;
    int written = vasprintf(&message, format, args);
    if (written < 0 || !message) return 0;
    size_t length = strlen(message);
    while (length > 0 && message[length - 1] == '\n') message[--length] = '\0';
    swift_logger((int)level, message);
    free(message);
    return written;
}

void CTCPNotify_set_libbpf_logger(CTCPNotify_log_fn fn)
{
    swift_logger = fn;
    libbpf_set_print(fn ? print_trampoline : NULL);
}

struct bpf_object *CTCPNotify_open_object(const void *data, size_t size, const char *name)
{
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
    return bpf_object__open_mem(data, size, &opts);
}

struct bpf_link *CTCPNotify_attach_cgroup(struct bpf_program *prog, int cgroup_fd)
{
    return bpf_program__attach_cgroup(prog, cgroup_fd);
}

struct bpf_link *CTCPNotify_attach_iter(struct bpf_program *prog, int map_fd)
{
    if (map_fd < 0) return bpf_program__attach_iter(prog, NULL);
    union bpf_iter_link_info info;
    memset(&info, 0, sizeof info);
    info.map.map_fd = map_fd;
    LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info, .link_info_len = sizeof info);
    return bpf_program__attach_iter(prog, &opts);
}

int CTCPNotify_iter_create(struct bpf_link *link)
{
    int fd = bpf_iter_create(bpf_link__fd(link));
    return fd < 0 ? -errno : fd;
}

int CTCPNotify_num_possible_cpus(void)
{
    return libbpf_num_possible_cpus();
}

int CTCPNotify_enable_stats(void)
{
    int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    return fd < 0 ? -errno : fd;
}

int CTCPNotify_prog_run_stats(int prog_fd, uint64_t *run_time_ns, uint64_t *run_cnt, uint32_t *prog_id)
{
    struct bpf_prog_info info;
    __u32 length = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) return -errno;
    *run_time_ns = info.run_time_ns;
    *run_cnt = info.run_cnt;
    *prog_id = info.id;
    return 0;
}

uint32_t CTCPNotify_link_id(int link_fd)
{
    struct bpf_link_info info;
    __u32 length = sizeof info;
    memset(&info, 0, sizeof info);
    if (bpf_obj_get_info_by_fd(link_fd, &info, &length) != 0) return 0;
    return info.id;
}

int CTCPNotify_count_effective_sockops(const char *cgroup_path, const char *prog_name)
{
    int cgroup_fd = open(cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) return -errno;
    /* Ask how many programs are in effect, then for their ids; programs attached in between make the
       second query fail with ENOSPC, so ask again (a few times, never a guess that undercounts). */
    __u32 *ids = NULL, count = 0;
    int err = 0;
    for (int attempt = 0; attempt < 4; attempt++) {
        count = 0;
        if (bpf_prog_query(cgroup_fd, BPF_CGROUP_SOCK_OPS, BPF_F_QUERY_EFFECTIVE, NULL, NULL, &count) != 0) { err = -errno; break; }
        __u32 capacity = count + 8;
        __u32 *grown = realloc(ids, capacity * sizeof *ids);
        if (!grown) { err = -ENOMEM; break; }
        ids = grown;
        count = capacity;
        if (bpf_prog_query(cgroup_fd, BPF_CGROUP_SOCK_OPS, BPF_F_QUERY_EFFECTIVE, NULL, ids, &count) == 0) { err = 0; break; }
        err = -errno;
        if (err != -ENOSPC) break;
    }
    close(cgroup_fd);
    if (err) { free(ids); return err; }
    int found = 0;
    for (__u32 i = 0; i < count; i++) {
        int prog_fd = bpf_prog_get_fd_by_id(ids[i]);
        if (prog_fd < 0) continue; /* detached meanwhile */
        struct bpf_prog_info info;
        __u32 length = sizeof info;
        memset(&info, 0, sizeof info);
        if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) == 0 && strncmp(info.name, prog_name, sizeof info.name) == 0) found++;
        close(prog_fd);
    }
    free(ids);
    return found;
}

int CTCPNotify_tc_attach(int ifindex, int prog_fd, int egress)
{
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) return err;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd, .handle = 1, .priority = 1);
    return bpf_tc_attach(&hook, &opts);
}

int CTCPNotify_is_cgroup2(int fd)
{
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -errno;
    return info.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */;
}

int CTCPNotify_enter_network_namespace(int fd)
{
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}

int CTCPNotify_test_run(int prog_fd, void *ctx, unsigned int ctx_size)
{
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = ctx_size);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return -errno;
    return (int)opts.retval;
}

int CTCPNotify_ring_add_wakeup(struct ring_buffer *ring)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return -errno;
    /* ring_buffer__poll takes data.u32 as a ring index: 0 makes it consume ring 0, which is harmless. */
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = 0};
    if (epoll_ctl(ring_buffer__epoll_fd(ring), EPOLL_CTL_ADD, fd, &event) != 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    return fd;
}

void CTCPNotify_wake(int fd)
{
    uint64_t one = 1;
    ssize_t written = write(fd, &one, sizeof one);
    (void)written; /* a full counter is still readable: the reader wakes either way */
}

int CTCPNotify_struct_members(const char *struct_name, char *buffer, size_t size)
{
    struct btf *btf = btf__load_vmlinux_btf();
    if (!btf) return -errno;
    int result = -ENOENT;
    int id = btf__find_by_name_kind(btf, struct_name, BTF_KIND_STRUCT);
    if (id > 0) {
        const struct btf_type *type = btf__type_by_id(btf, id);
        const struct btf_member *member = btf_members(type);
        size_t used = 0;
        for (int i = 0; i < btf_vlen(type); i++, member++) {
            const char *name = btf__name_by_offset(btf, member->name_off);
            size_t length = name ? strlen(name) : 0;
            if (used + length + 2 > size) break;
            memcpy(buffer + used, name, length);
            used += length;
            buffer[used++] = '\n';
        }
        buffer[used] = '\0';
        result = btf_vlen(type);
    }
    btf__free(btf);
    return result;
}

int CTCPNotify_kconfig_hz(struct bpf_object *object)
{
    struct bpf_map *map = bpf_object__find_map_by_name(object, ".kconfig");
    if (!map) return -ENOENT;
    size_t size = 0;
    const unsigned int *value = bpf_map__initial_value(map, &size);
    if (!value || size < sizeof(*value)) return -ENOENT;
    return (int)*value;
}
