/* Rule evaluation: windows, terms, clauses and per-rule controls, for one socket at one event.
 * Shared by the sock_ops program and the test-run program (rules_eval.bpf.c), so the differential
 * test against Swift's reference evaluator exercises this very code. */
#ifndef TCPNOTIFY_RULES_BPF_H
#define TCPNOTIFY_RULES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcpnotify.h"
#include "tcp_info.bpf.h"
#include "compare.bpf.h"

#define TN_U64_MAX (~0ULL)
#define TN_PPM 1000000ULL

/* a / b in parts per million without overflow: 0/0 = 0, x/0 = max, saturating. */
static __always_inline __u64 tn_ratio_ppm(__u64 a, __u64 b)
{
    if (b == 0) return a == 0 ? 0 : TN_U64_MAX;
    __u64 quotient = a / b, remainder = a % b;
    if (quotient > TN_U64_MAX / TN_PPM) return TN_U64_MAX;
    __u64 fraction = remainder <= TN_U64_MAX / TN_PPM ? remainder * TN_PPM / b : remainder / (b / TN_PPM);
    return quotient * TN_PPM + fraction;
}

/* The operand values and window results of one evaluation. */
struct tn_values {
    __u64 operand[TCPNOTIFY_MAX_OPERANDS];
    __u64 increase[TCPNOTIFY_MAX_WINDOWS];
    __u64 rate[TCPNOTIFY_MAX_WINDOWS]; /* per second */
    __u32 rules_true;                  /* out: the rules that hold */
    __u32 pad;
};

/* Every field the rules read, computed once (one call site keeps the verifier's work linear). */
static __always_inline void tn_load_operands(const struct tcpnotify_rule_table *t, const struct tn_source *s,
                                             struct tn_values *out)
{
    for (__u32 i = 0; i < TCPNOTIFY_MAX_OPERANDS; i++) {
        if (i >= t->operand_count) break;
        out->operand[i] = tn_operand(s, t->operands[i]);
    }
}

/* Takes a snapshot when the newest is at least width/3 old, then measures growth against the newest
 * snapshot at least `width` old (or the oldest one while the socket is younger than that). */
static __always_inline void tn_update_windows(const struct tcpnotify_rule_table *t, struct tcpnotify_sk_state *st,
                                              __u32 now_ms, struct tn_values *out)
{
    for (__u32 w = 0; w < TCPNOTIFY_MAX_WINDOWS; w++) {
        if (w >= t->window_count) break;
        const struct tcpnotify_window *window = &t->windows[w];
        struct tcpnotify_window_state *ws = &st->windows[w];
        __u64 value = out->operand[window->operand & (TCPNOTIFY_MAX_OPERANDS - 1)];
        __u64 width_ms64 = window->width_ns / 1000000ull;
        __u32 width_ms = width_ms64 == 0 ? 1 : (width_ms64 > 0xffffffffull ? 0xffffffffu : (__u32)width_ms64);
        __u32 spacing_ms = width_ms / 3 ? width_ms / 3 : 1;
        if (ws->count == 0) {
            ws->newest = 0;
            ws->value[0] = value;
            ws->at_ms[0] = now_ms;
            ws->count = 1;
        } else if (now_ms - ws->at_ms[ws->newest & 3] >= spacing_ms) {
            __u8 next = (ws->newest + 1) & 3;
            ws->newest = next;
            ws->value[next] = value;
            ws->at_ms[next] = now_ms;
            if (ws->count < TCPNOTIFY_WINDOW_SNAPSHOTS) ws->count += 1;
        }
        __u32 count = ws->count > TCPNOTIFY_WINDOW_SNAPSHOTS ? TCPNOTIFY_WINDOW_SNAPSHOTS : ws->count;
        __u32 base = (ws->newest - (count - 1)) & 3; /* the oldest, unless an old-enough one is newer */
        for (__u32 k = 0; k < TCPNOTIFY_WINDOW_SNAPSHOTS; k++) {
            if (k >= count) break;
            __u32 i = (ws->newest - k) & 3;
            if (now_ms - ws->at_ms[i] >= width_ms) {
                base = i;
                break;
            }
        }
        __u64 base_value = ws->value[base & 3];
        __u64 increase = value >= base_value ? value - base_value : 0;
        __u32 elapsed_ms = now_ms - ws->at_ms[base & 3];
        out->increase[w & 3] = increase;
        out->rate[w & 3] = elapsed_ms == 0 ? 0 : (increase > TN_U64_MAX / 1000 ? TN_U64_MAX : increase * 1000 / elapsed_ms);
    }
}

static __always_inline __u64 tn_term_value(const struct tcpnotify_rule_term *term, const struct tn_values *v)
{
    __u64 a = v->operand[term->a & (TCPNOTIFY_MAX_OPERANDS - 1)];
    __u64 b = v->operand[term->b & (TCPNOTIFY_MAX_OPERANDS - 1)];
    switch (term->kind) {
    case TCPNOTIFY_TERM_FIELD_CMP: return a;
    case TCPNOTIFY_TERM_RATIO: return tn_ratio_ppm(a, b);
    case TCPNOTIFY_TERM_SUM: return a > TN_U64_MAX - b ? TN_U64_MAX : a + b;
    case TCPNOTIFY_TERM_DIFF: return a > b ? a - b : 0;
    case TCPNOTIFY_TERM_INCREASE: return v->increase[term->window & 3];
    case TCPNOTIFY_TERM_RATE: return v->rate[term->window & 3];
    default: return 0;
    }
}

static __always_inline __u32 tn_rules_true(const struct tcpnotify_rule_table *t, const struct tn_values *v)
{
    __u32 term_bits = 0;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_RULE_TERMS; i++) {
        if (i >= t->term_count) break;
        const struct tcpnotify_rule_term *term = &t->terms[i];
        if (tn_compare(term->op, tn_term_value(term, v), term->value)) term_bits |= 1u << i;
    }
    __u32 rules_true = 0;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_RULE_CLAUSES; i++) {
        if (i >= t->clause_count) break;
        const struct tcpnotify_clause *c = &t->clauses[i];
        if ((term_bits & c->must_true) == c->must_true && !(term_bits & c->must_false))
            rules_true |= 1u << (c->rule & 31);
    }
    return rules_true;
}

/* Which rules notify now, given which hold: edge (default), each, once, and the timed for/every rules. */
static __always_inline __u32 tn_rules_fire(const struct tcpnotify_rule_table *t, struct tcpnotify_sk_state *st,
                                           __u32 rules_true, __u32 now_ms)
{
    __u32 timed = t->timed_mask, once = t->once_mask, untimed = ~timed;
    __u32 fire = rules_true & untimed & once & ~st->once_fired;
    fire |= rules_true & untimed & ~once & ~st->rules_fired;
    fire |= rules_true & t->each_mask; /* `each`: untimed, never once, no edge */
    st->rules_fired = (st->rules_fired & timed) | (rules_true & untimed);

    for (__u32 slot = 0; slot < TCPNOTIFY_MAX_TIMED_RULES; slot++) {
        if (slot >= t->timed_rule_count) break;
        __u32 rule = t->timed_rules[slot] & 31;
        __u32 bit = 1u << rule;
        const struct tcpnotify_rule_control *control = &t->controls[rule];
        if (!(rules_true & bit)) {
            st->holding &= ~bit;
            st->rules_fired &= ~bit;
            continue;
        }
        int ready = 1;
        if (control->flags & TCPNOTIFY_RULE_FOR) {
            if (!(st->holding & bit)) {
                st->holding |= bit;
                st->since_ms[slot] = now_ms;
            }
            ready = now_ms - st->since_ms[slot] >= control->for_ms;
        }
        if (!ready) continue;
        if ((control->flags & TCPNOTIFY_RULE_ONCE) && (st->once_fired & bit)) continue;
        if (!(st->rules_fired & bit)) {
            fire |= bit;
            st->rules_fired |= bit;
            st->last_notified_ms[slot] = now_ms;
        } else if ((control->flags & TCPNOTIFY_RULE_EVERY) && now_ms - st->last_notified_ms[slot] >= control->every_ms) {
            fire |= bit;
            st->last_notified_ms[slot] = now_ms;
        }
    }
    st->once_fired |= fire & once;
    return fire;
}

/* Forgets everything that refers to an older rule table. */
static __always_inline void tn_reset_rule_state(struct tcpnotify_sk_state *st, __u32 generation)
{
    st->rule_generation = generation;
    st->rules_fired = 0;
    st->once_fired = 0;
    st->holding = 0;
    __builtin_memset(st->since_ms, 0, sizeof(st->since_ms));
    __builtin_memset(st->last_notified_ms, 0, sizeof(st->last_notified_ms));
    __builtin_memset(st->windows, 0, sizeof(st->windows));
}

/* Everything after reading the operands: windows, terms, clauses, controls. A global function, so the
 * verifier checks it once, on its own, however many paths of the caller reach it (a static one is
 * verified again for every caller state, which made the sock_ops program several times slower to load). */
__noinline __u32 tn_rules_decide(const struct tcpnotify_rule_table *t, struct tcpnotify_sk_state *st,
                                 struct tn_values *values, __u64 now_ns)
{
    if (!t || !st || !values) return 0;
    if (st->rule_generation != t->generation) tn_reset_rule_state(st, t->generation);
    __u32 now_ms = 0;
    if (t->flags & TCPNOTIFY_RULES_NEED_CLOCK) now_ms = (__u32)((now_ns - st->enrolled_ns) / 1000000ull);
    tn_update_windows(t, st, now_ms, values);
    __u32 rules_true = tn_rules_true(t, values);
    values->rules_true = rules_true;
    return tn_rules_fire(t, st, rules_true, now_ms);
}

/* The sweep horizon of one socket: the earliest instant (bpf_ktime ns) at which one of the table's horizon
 * terms can next become true. A time below its threshold gets there in (threshold - time); one already
 * past it must first fall back to 0 (an ACK, a segment, a send) and then grow a whole threshold again.
 * Every horizon term counts, whichever rule or clause it is in: the earliest of them is never late. */
__noinline __u64 tn_rules_horizon(const struct tcpnotify_rule_table *t, const struct tn_values *values, __u64 now_ns)
{
    if (!t || !values) return TN_U64_MAX;
    __u64 earliest = TN_U64_MAX;
    for (__u32 i = 0; i < TCPNOTIFY_MAX_RULE_TERMS; i++) {
        if (i >= t->term_count) break;
        const struct tcpnotify_rule_term *term = &t->terms[i];
        if (term->horizon_unit == TCPNOTIFY_HORIZON_NONE) continue;
        __u64 value = values->operand[term->a & (TCPNOTIFY_MAX_OPERANDS - 1)];
        __u64 left = value < term->value ? term->value - value : term->value;
        __u64 per_unit_ns = term->horizon_unit == TCPNOTIFY_HORIZON_MS ? 1000000ull : 1000ull;
        __u64 at = left > (TN_U64_MAX - now_ns) / per_unit_ns ? TN_U64_MAX : now_ns + left * per_unit_ns;
        if (at < earliest) earliest = at;
    }
    return earliest;
}

/* One evaluation at one event: returns the rules that notify; *rules_true_out gets those that hold.
 * now_ns matters only for tables with TCPNOTIFY_RULES_NEED_CLOCK (the caller may pass 0 otherwise).
 * horizon_ns (the sweep only; 0 elsewhere, which compiles the step away) gets tn_rules_horizon. */
static __always_inline __u32 tn_rules_step(const struct tcpnotify_rule_table *t, struct tcpnotify_sk_state *st,
                                           const struct tn_source *s, __u64 now_ns, __u32 *rules_true_out,
                                           __u64 *horizon_ns)
{
    struct tn_values values = {};
    tn_load_operands(t, s, &values);
    __u32 fired = tn_rules_decide(t, st, &values, now_ns);
    *rules_true_out = values.rules_true;
    if (horizon_ns) *horizon_ns = tn_rules_horizon(t, &values, now_ns);
    return fired;
}

#endif
