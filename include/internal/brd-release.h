/* SPDX-License-Identifier: MIT */
/*
 * Line release: the consumer of a ring writes back and drops the cache
 * lines it has finished with (clflushopt), before it hands their space back.
 *
 * Why: the producer's next lap writes those lines again.  Left in the
 * consumer's cache (shared, or owned on AMD's MOESI), every such store
 * must first take the line back from the consumer's core: one coherence
 * round trip per 64 bytes, the cost that bounds a stream when the two CPUs
 * are far apart (another CCX or socket: 150-400 ns per trip).  Released,
 * the line comes from memory, which the hardware prefetches ahead of the
 * producer.  Measured on a Zen 4 (EPYC, KVM): 64-byte messages 9.6 -> 86
 * M/s far apart and 41 -> 103 M/s near, 4 KiB ones 1.8 -> 9.5 GB/s far.
 *
 * It does not always pay: when both CPUs share a last-level cache and the
 * ring is larger than the private caches, lines the consumer drops travel
 * to the producer through that cache anyway, and a flush only adds a write
 * to memory (4 KiB messages in a 4 MiB ring near: 25 -> 14 GB/s); a consumer
 * that reads a fraction of each message (zero-copy) would flush lines it
 * never loaded.  So a controller decides, per endpoint, by measuring:
 *
 *   The stream is cut into epochs of max(capacity, 8 MiB) payload bytes
 *   (the endpoint's stats bytes), timed with the monotonic clock.  Not
 *   bytes of the index: a consumer that keeps up with large frames makes
 *   the producer wrap early (prod_place_early() in ring.c), and the rest
 *   of each lap, one PAD frame skipped unread, would then make up two
 *   thirds of an epoch (1 MiB messages through 16 MiB: 5-6 messages an
 *   epoch instead of 16), so that a mode timed while the ring wrapped
 *   early looked 3x faster than one timed while it did not (near, the
 *   controller then kept releasing lines at 15-25 GB/s where not
 *   releasing ran at 40-43, measured).  Every @interval steady epochs (2 for
 *   the first probe: a short stream must not spend long in a losing mode)
 *   the controller flips the mode, lets one epoch settle when an epoch is
 *   under 4 laps of the ring (the first lap still carries the other mode's
 *   lines), times the next two, and keeps the flip if they ran at least
 *   5% faster than the last two steady ones (then probes again soon,
 *   interval 4) or flips back (and makes the interval 4x longer, up to
 *   1024 epochs, so a settled stream pays a losing probe at most 3 epochs
 *   in 1024).  Two epochs, not one:
 *   single ones vary by 10-20% under a hypervisor; but a first epoch over
 *   10% slower than the steady mean ends the probe at once (the losing mode
 *   can be 2-3x slower: 64 B messages near, release off).  An epoch in
 *   which the consumer slept in poll() so often that the wake-ups alone
 *   (~25 us each in a VM) could make a tenth of it is not compared (it is
 *   no steady reference, and a probe that meets one ends as a loss): large
 *   messages make a consumer sleep a few times per epoch (it catches up
 *   faster than 1 MiB is written, and may sleep when it does), and those
 *   epochs still measure the ring.  The first mode is where the last verdict for
 *   a ring of the same capacity in this process settled; "release" before
 *   any.
 *
 * Only on x86-64 CPUs with CLFLUSHOPT (CPUID.7.0:EBX[23]); elsewhere the
 * controller is off and the hot path pays one predictable compare.  All
 * state is process-local (the endpoint's private struct): nothing here is
 * shared, so a hostile peer cannot steer it, and it needs no fork care (a
 * forked child's endpoint is dead anyway).
 *
 * Streaming stores, the producer's side of the same problem: its copy
 * (send, write) writes each line of a large payload with a non-temporal
 * store (brd__stream_copy()), which goes to memory without first taking
 * the line into the producer's cache, and the consumer then reads it from
 * memory rather than from the producer's cache.  With the two CPUs far
 * apart a line comes from memory sooner than from the other CCX: copies of
 * 64 KiB through 1 MiB ran at 8-11 GB/s against 4-6 (4 KiB: +25%); near,
 * where the lines would have met in the shared L3, memory is the slower
 * way (1 MiB: 6-7 GB/s against 10-27).  The same controller decides, on
 * the producer's epochs (its index, its sleeps), starting with plain
 * stores and probing later than a consumer would (the two controllers of a
 * ring then rarely time each other's probes).  Only payloads from
 * BRD_RING_LINE_ALIGN_MIN bytes, which start on a line, to the ring's
 * page-at-a-time copies (256 KiB; at 1 MiB far apart they gained under a
 * tenth); x86-64 only.
 */
#ifndef BROOD_RELEASE_PRIVATE_H
#define BROOD_RELEASE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "internal/brd-private.h"

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

struct brd__release {
        uint64_t mark;          /* the payload bytes that end the epoch; UINT64_MAX: controller off */
        uint64_t epoch;         /* bytes per epoch */
        uint64_t waits;         /* the endpoint's sleep count when the epoch began */
        int64_t  t0;            /* when the epoch began (CLOCK_MONOTONIC ns) */
        int64_t  ref[2];        /* the last two steady epochs, ns; 0: none or slept */
        int64_t  probe;         /* the first epoch of a probe, ns (REL_MEASURE2) */
        uint32_t on;            /* the mode: release consumed lines / streaming stores */
        uint32_t phase;         /* enum in release.c */
        uint32_t count;         /* steady epochs since the last probe */
        uint32_t interval;      /* steady epochs between probes */
        uint32_t cls;           /* log2(capacity) + 1: where verdicts are kept (release.c) */
        uint32_t kind;          /* enum brd__release_kind */
        uint32_t settle;        /* an epoch is under 4 laps: skip one after each flip */
};

/* What a controller decides. */
enum brd__release_kind {
        BRD_RELEASE_LINES,      /* consumer: release the lines it consumed */
        BRD_RELEASE_STREAM,     /* producer: copy large payloads with streaming stores */
};

/* How endpoints attached from now on in this process use each mode: for
 * benchmarks and tests (ring-bench --release, --stream), never set by the
 * library. */
enum brd__release_policy {
        BRD_RELEASE_AUTO,       /* the controller decides (the default) */
        BRD_RELEASE_OFF,
        BRD_RELEASE_ON,         /* always (the line release: while streaming), when the CPU can */
};
extern int brd__release_policy BRD_HIDDEN;      /* BRD_RELEASE_LINES */
extern int brd__stream_policy BRD_HIDDEN;       /* BRD_RELEASE_STREAM */

/* Set @rl up for an endpoint that has moved @done payload bytes so far, of
 * a ring of @cap bytes, deciding @kind, per that kind's policy: under the
 * controller when the CPU can; otherwise off for good (mark = UINT64_MAX). */
void brd__release_init(struct brd__release *rl, uint64_t done, uint64_t cap,
                       enum brd__release_kind kind);

/* Forget the verdicts kept for new rings (tests). */
void brd__release_forget(void);
/* The verdict of @kind kept for new rings of @cap bytes: 1 on, 2 off, 0 none
 * yet (tests: whether a ring's controller got as far as a verdict). */
int brd__release_verdict(uint64_t cap, enum brd__release_kind kind);

/* The epoch ending at @done payload bytes is over; @waits is the endpoint's
 * sleep count.  Out of line: once per epoch. */
void brd__release_epoch(struct brd__release *rl, uint64_t done, uint64_t waits);
/* The same, at time @now (ns): the controller's logic, for the tests. */
void brd__release_step(struct brd__release *rl, uint64_t done, uint64_t waits, int64_t now);

/*
 * The consumer moved from index @from to @to: release every line it left
 * wholly behind, [from & ~63, to & ~63).  The line @to is in may hold the
 * next frame and stays.  @data is the data area, @mask its capacity - 1.
 * @streaming: the producer runs ahead of the consumer.  Without it nothing
 * is released: a message answered before the next is sent (ping-pong)
 * gains nothing from it and would wait for the flushes (+25 ns on a 64 B
 * round trip near, p99 +200 ns, measured).
 * Lines are flushed through the first view of the double mapping (an alias
 * names the same physical line).  clflushopt orders against nothing the
 * ring relies on: it changes where a line lives, never its value.  Ending
 * the epoch is the caller's (brd__release_due(), brd__release_epoch()).
 */
static inline void brd__release_lines(const struct brd__release *rl, const uint8_t *data,
                                      uint64_t mask, uint64_t from, uint64_t to, bool streaming)
{
#if defined(__x86_64__)
        if (rl->on && streaming) {
                for (uint64_t l = from & ~(uint64_t)(BRD_CACHELINE - 1);
                     l < (to & ~(uint64_t)(BRD_CACHELINE - 1)); l += BRD_CACHELINE)
                        __asm__ __volatile__("clflushopt %0"
                                             : : "m"(*(const volatile uint8_t *)(data + (l & mask))));
        }
#else
        (void)rl;
        (void)data;
        (void)mask;
        (void)from;
        (void)to;
        (void)streaming;
#endif
}

/* The endpoint has moved @done payload bytes: is the epoch over
 * (brd__release_epoch() due)?  Apart from brd__release_lines(), so that
 * the consumer's fast path makes the call out of line, after its publish. */
static inline bool brd__release_due(const struct brd__release *rl, uint64_t done)
{
        return done >= rl->mark;
}

/*
 * memcpy to shared memory with streaming (non-temporal) stores for every
 * whole line of @dst, plain stores for the partial lines at either end;
 * then a store fence: streaming stores are weakly ordered, and the release
 * store that publishes the payload must not pass them.  For the producer of
 * a large payload whose controller says so (see above).
 */
static inline void brd__stream_copy(void *restrict dst, const void *restrict src, size_t n)
{
#if defined(__x86_64__)
        uint8_t *d = dst;
        const uint8_t *s = src;
        size_t head = (size_t)(-(uintptr_t)d & (BRD_CACHELINE - 1));

        if (n < head + BRD_CACHELINE) {
                brd__memcpy(d, s, n);
                return;
        }
        memcpy(d, s, head);
        d += head;
        s += head;
        n -= head;
        for (; n >= BRD_CACHELINE; n -= BRD_CACHELINE, d += BRD_CACHELINE, s += BRD_CACHELINE) {
                __m128i a = _mm_loadu_si128((const __m128i *)s);
                __m128i b = _mm_loadu_si128((const __m128i *)(s + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(s + 32));
                __m128i e = _mm_loadu_si128((const __m128i *)(s + 48));

                _mm_stream_si128((__m128i *)d, a);
                _mm_stream_si128((__m128i *)(d + 16), b);
                _mm_stream_si128((__m128i *)(d + 32), c);
                _mm_stream_si128((__m128i *)(d + 48), e);
        }
        memcpy(d, s, n);
        _mm_sfence();
#else
        brd__memcpy(dst, src, n);
#endif
}

#endif /* BROOD_RELEASE_PRIVATE_H */
