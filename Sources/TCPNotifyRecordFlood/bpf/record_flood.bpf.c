/* Bench and test support: fills tcpnotify's `events` ring buffer (shared by fd) with copies of one real
 * record as fast as the kernel can, so the consumer's capacity is measured apart from any producer.
 * BPF_PROG_TEST_RUN runs it; it never ships in the tcpnotify binary. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcpnotify.h"

char LICENSE[] SEC("license") = "GPL";

/* Replaced by the product's ring buffer (bpf_map__reuse_fd) before load. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct tcpnotify_record);
} flood_template SEC(".maps");

/* In: records, pause_above_bytes, wakeup_watermark_bytes, first_sequence. Out: written, dropped, wakeups.
 * Mirrored by RecordFlood.Request in Swift. */
struct flood_request {
    __u64 records;
    __u64 pause_above_bytes;      /* stop this run while the ring holds more: the reader is behind */
    __u64 wakeup_watermark_bytes; /* force a wakeup as this much comes to wait (the product's rule) */
    __u64 first_sequence;         /* written into `notifications`, +1 per record, so gaps show */
    __u64 written;
    __u64 dropped;                /* reserve failed: the ring was full */
    __u64 wakeups;
};

struct flood_state {
    const struct tcpnotify_record *template;
    __u64 pause_above_bytes;
    __u64 wakeup_watermark_bytes;
    __u64 sequence;
    __u64 last_index;
    __u64 written;
    __u64 dropped;
    __u64 wakeups;
};

static long flood_one(__u32 index, struct flood_state *s)
{
    if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > s->pause_above_bytes) return 1;
    struct tcpnotify_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        s->dropped += 1;
        return 1;
    }
    __builtin_memcpy(r, s->template, sizeof(*r));
    r->notifications = s->sequence++;
    s->written += 1;
    __u64 flags = BPF_RB_NO_WAKEUP;
    /* As the product does: wake once as the backlog crosses the watermark (a wakeup per record above it
     * would cost ~10 µs each), and at the last record of a run, so nothing waits for a timer. */
    __u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
    if (index == s->last_index ||
        (waiting >= s->wakeup_watermark_bytes && waiting < s->wakeup_watermark_bytes + sizeof(*r) + 8)) {
        flags = BPF_RB_FORCE_WAKEUP;
        s->wakeups += 1;
    }
    bpf_ringbuf_submit(r, flags);
    return 0;
}

SEC("syscall")
int record_flood(struct flood_request *request)
{
    __u32 zero = 0;
    const struct tcpnotify_record *template = bpf_map_lookup_elem(&flood_template, &zero);
    if (!template) return -1;
    struct flood_state s = {
        .template = template,
        .pause_above_bytes = request->pause_above_bytes,
        .wakeup_watermark_bytes = request->wakeup_watermark_bytes,
        .sequence = request->first_sequence,
    };
    __u64 records = request->records;
    if (records > (1 << 23)) records = 1 << 23;
    if (records == 0) return 0;
    s.last_index = records - 1;
    bpf_loop((__u32)records, flood_one, &s, 0);
    request->written = s.written;
    request->dropped = s.dropped;
    request->wakeups = s.wakeups;
    return 0;
}
