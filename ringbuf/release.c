/* SPDX-License-Identifier: MIT */
/*
 * The controller of a ring's endpoint: whether its consumer flushes the
 * lines it consumed, or its producer copies large payloads with streaming
 * stores, decided by timing epochs of the stream (see
 * internal/brd-release.h for why and how).
 */
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "internal/brd-release.h"

#define RELEASE_EPOCH_MIN     (8u << 20)        /* bytes: ~1 ms at the fastest rates measured */
#define RELEASE_PROBE_FIRST   2u                /* steady epochs before the first probe */
/* The producer's: after a consumer's first probe (a settling epoch and two
 * measured ones) is over. */
#define STREAM_PROBE_FIRST    6u
#define RELEASE_PROBE_MIN     4u                /* steady epochs before a probe, after a change */
#define RELEASE_PROBE_MAX     1024u
#define RELEASE_PROBE_GROWTH  4u                /* after a probe that lost */
/* What one sleep can cost beyond the wait itself: waking a
 * halted vCPU (DESIGN: 20-27 us). */
#define RELEASE_SLEEP_NS      25000
/* A flip is kept when its two epochs took less than 19/20 of the last two
 * steady ones; it is undone after one epoch that took over 11/10 of the
 * steady ones' mean (a losing mode can cost 2-3x: not a second epoch of it). */
#define RELEASE_KEEP_NUM      19
#define RELEASE_KEEP_DEN      20
#define RELEASE_LOSE_NUM      11
#define RELEASE_LOSE_DEN      10

enum {
        REL_RESETTLE,           /* the epoch after a flip back: not timed */
        REL_STEADY,             /* timing the current mode */
        REL_SETTLE,             /* the epoch after a probe's flip: not timed */
        REL_MEASURE,            /* timing the probed mode: first epoch */
        REL_MEASURE2,           /* and second */
};

int brd__release_policy = BRD_RELEASE_AUTO;
int brd__stream_policy = BRD_RELEASE_AUTO;

/*
 * Where the last verdict of each kind for a ring of each capacity (2^k
 * bytes) in this process settled: 1 on, 2 off; 0 none yet (start releasing
 * lines, start with plain stores).  A new
 * ring starts there instead of paying for the same exploration again (the
 * next ring between the same CPUs usually sees the same caches).  Only a
 * hint: racing threads may overwrite each other, a forked child inherits
 * it, and the controller checks it like any other mode.
 */
static AO_t last_mode[2][65];

void brd__release_forget(void)
{
        for (size_t k = 0; k < 2; k++)
                for (size_t i = 0; i < sizeof(last_mode[0]) / sizeof(last_mode[0][0]); i++)
                        AO_store(&last_mode[k][i], 0);
}

static unsigned cap_class(uint64_t cap)
{
        return cap ? 64 - (unsigned)__builtin_clzll(cap) : 0;
}

int brd__release_verdict(uint64_t cap, enum brd__release_kind kind)
{
        return (int)AO_load(&last_mode[kind][cap_class(cap)]);
}

/* Off for good: the CPU cannot, or the policy says so. */
static void release_off(struct brd__release *rl)
{
        rl->on = 0;
        rl->mark = UINT64_MAX;
}

/* The CPU can do what @kind decides: the line release needs CLFLUSHOPT
 * (CPUID.7.0:EBX[23]); streaming stores are SSE2, which every x86-64 CPU
 * has. */
static bool cpu_can(enum brd__release_kind kind)
{
#if defined(__x86_64__)
        unsigned a, b, c, d;

        if (kind == BRD_RELEASE_STREAM)
                return true;
        return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23));
#else
        (void)kind;
        return false;
#endif
}

void brd__release_init(struct brd__release *rl, uint64_t done, uint64_t cap,
                       enum brd__release_kind kind)
{
        int policy = kind == BRD_RELEASE_STREAM ? brd__stream_policy : brd__release_policy;
        AO_t last;

        /* cpuid traps to the hypervisor in a VM (~1-2 us): next to attach's
         * mmaps and fds, not worth a cache shared between threads. */
        *rl = (struct brd__release){ .kind = kind };
        if (policy == BRD_RELEASE_OFF || !cpu_can(kind)) {
                release_off(rl);
                return;
        }
        if (policy == BRD_RELEASE_ON) {
                rl->on = 1;
                rl->mark = UINT64_MAX;  /* no epochs: no controller */
                return;
        }
        rl->cls = cap_class(cap);
        last = AO_load(&last_mode[kind][rl->cls]);
        rl->on = kind == BRD_RELEASE_STREAM ? last == 1 : last != 2;
        /* The lap after a flip still carries the other mode's lines: an
         * epoch is a lap at least, and the one after a flip is skipped
         * unless it spans 4 laps or more (then that lap is a small part
         * of it, and a skipped epoch of a losing mode costs 2-3x). */
        rl->epoch = cap > RELEASE_EPOCH_MIN ? cap : RELEASE_EPOCH_MIN;
        rl->settle = rl->epoch < 4 * cap;
        rl->mark = done + rl->epoch;
        rl->interval = kind == BRD_RELEASE_STREAM ? STREAM_PROBE_FIRST : RELEASE_PROBE_FIRST;
        rl->phase = REL_RESETTLE;       /* the first epoch pays the first touches */
        rl->t0 = brd__now_ns();
}

void brd__release_epoch(struct brd__release *rl, uint64_t done, uint64_t waits)
{
        brd__release_step(rl, done, waits, brd__now_ns());
}

/* A probe is over: keep its mode (probe again soon) or flip back (and
 * probe RELEASE_PROBE_GROWTH times later); either way, tell new rings. */
static void release_verdict(struct brd__release *rl, bool keep)
{
        if (keep) {
                rl->interval = RELEASE_PROBE_MIN;
                rl->phase = REL_STEADY;
        } else {
                rl->on ^= 1;
                rl->interval *= RELEASE_PROBE_GROWTH;
                if (rl->interval > RELEASE_PROBE_MAX)
                        rl->interval = RELEASE_PROBE_MAX;
                rl->phase = rl->settle ? REL_RESETTLE : REL_STEADY;
        }
        rl->ref[0] = rl->ref[1] = 0;
        rl->count = 0;
        AO_store(&last_mode[rl->kind][rl->cls], rl->on ? 1 : 2);
}

void brd__release_step(struct brd__release *rl, uint64_t done, uint64_t waits, int64_t now)
{
        int64_t ns = now - rl->t0, ref;
        /* Comparable: its sleeps cannot have cost more than a tenth of it. */
        bool clean = (int64_t)(waits - rl->waits) * RELEASE_SLEEP_NS * 10 <= ns;

        rl->t0 = now;
        rl->waits = waits;
        rl->mark = done + rl->epoch;
        switch (rl->phase) {
        case REL_RESETTLE:
                rl->phase = REL_STEADY;
                break;
        case REL_STEADY:
                /* The last two clean epochs, back to back, are the reference. */
                rl->ref[0] = clean ? rl->ref[1] : 0;
                rl->ref[1] = clean ? ns : 0;
                if (++rl->count >= rl->interval && rl->ref[0] && rl->ref[1]) {
                        rl->on ^= 1;
                        rl->phase = rl->settle ? REL_SETTLE : REL_MEASURE;
                }
                break;
        case REL_SETTLE:
                rl->phase = REL_MEASURE;
                break;
        case REL_MEASURE:
                /* A slept epoch cannot be compared: the probe ends as a
                 * loss (tried again after the longer interval), as it does
                 * at once for a clear loser. */
                ref = rl->ref[0] + rl->ref[1];
                if (clean && 2 * ns * RELEASE_LOSE_DEN <= ref * RELEASE_LOSE_NUM) {
                        rl->probe = ns;
                        rl->phase = REL_MEASURE2;
                } else {
                        release_verdict(rl, false);
                }
                break;
        default:        /* REL_MEASURE2 */
                ref = rl->ref[0] + rl->ref[1];
                release_verdict(rl, clean && (rl->probe + ns) * RELEASE_KEEP_DEN <
                                                    ref * RELEASE_KEEP_NUM);
                break;
        }
}
