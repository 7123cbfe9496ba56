/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring (ck_ring_spsc's shape, liburing's discipline): free-running
 * byte indices, one release store per publish, frames that are contiguous
 * because the data area is mapped twice, and a doorbell that is rung only
 * when the peer has said, in shared memory, that it sleeps.
 *
 * The wake-up protocol is Dekker's: the sleeper stores SLEEPING, fences,
 * re-checks the ring; the publisher stores its index, fences, checks
 * SLEEPING.  One of them must see the other's store, so no wake-up is lost.
 * The publisher's fence is on the hot path; when both processes could
 * register with membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) the
 * sleeper pays for both (membarrier(GLOBAL_EXPEDITED) runs a full barrier on
 * every CPU that runs a registered thread) and the publisher's fence shrinks
 * to a compiler barrier (the asymmetric fence of liburcu and folly); a
 * sleeper whose membarriers turn out dear asks for fences instead: a few
 * fenced publishes for each of its sleeps (the fence mode, brd-ring.h).
 *
 * Everything read from shared memory is fetched once into a local with an
 * AO_load and validated before use; a value out of range poisons the
 * endpoint (-EBADMSG) instead of being used.
 *
 * Fork: every call first checks a private MADV_WIPEONFORK page of the
 * endpoint (zero in a forked child: -EBADF before shared memory is touched),
 * the token there or, for commit, the reservation kept there;
 * kernels without it fall back to the fork generation stamped at attach.
 * Peer death: the waiter opens a pidfd of the pid stamped in the peer's side
 * (checked against its /proc start time) and, past a wait's first 20 ms of
 * futex sleep, sleeps on it with the doorbell (wait.c); a producer also
 * looks at it after a ring of its consumer that could not tell whether the
 * sleeper woke (prod_published()).
 *
 * This file has the I/O calls; wait.c the wait and the peer's watch (io.h:
 * what the two share); endpoint.c creates, attaches and closes endpoints;
 * endpoint.h has the endpoint struct they all share.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "io.h"

/*
 * Debug checks (meson -Ddebug_checks=true; RELIABILITY D29): one thread at a
 * time per endpoint is the contract, and a thread that calls into an
 * endpoint while another thread is inside a call of it gets -EBUSY.  The
 * calls are then compiled under private names (RING_API) and wrapped at the
 * end of this file; without the option they are the exported calls.
 */
#if BRD_DEBUG_CHECKS
#define RING_API static
#define brd_ring_send ring_send_unchecked
#define brd_ring_reserve ring_reserve_unchecked
#define brd_ring_commit ring_commit_unchecked
#define brd_ring_flush ring_flush_unchecked
#define brd_ring_write ring_write_unchecked
#define brd_ring_recv ring_recv_unchecked
#define brd_ring_peek ring_peek_unchecked
#define brd_ring_release ring_release_unchecked
#define brd_ring_read ring_read_unchecked
static int ring_send_unchecked(struct brd_ring *r, const void *msg, size_t len, int timeout_ms);
static int ring_reserve_unchecked(struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms);
static int ring_commit_unchecked(struct brd_ring *r, size_t len);
static int ring_flush_unchecked(struct brd_ring *r);
static ssize_t ring_write_unchecked(struct brd_ring *r, const void *buf, size_t len,
                                    int timeout_ms);
static ssize_t ring_recv_unchecked(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);
static ssize_t ring_peek_unchecked(struct brd_ring *r, const void **ret_msg, int timeout_ms);
static int ring_release_unchecked(struct brd_ring *r);
static ssize_t ring_read_unchecked(struct brd_ring *r, void *buf, size_t cap, int timeout_ms);
#else
#define RING_API BRD_EXPORT
#endif

/*
 * The fast paths start on a cache line of their own, so that their cost
 * does not move with the size of the code before them: a change elsewhere
 * in this file once made send 0.3 ns (6%) and recv 0.3-0.7 ns slower
 * without touching either (8 B messages, one thread, measured); aligned,
 * the two builds ran them alike.
 */
#define RING_HOT __attribute__((aligned(64)))

/* ------------------------------------------------------------- helpers */

static inline uint64_t round8(uint64_t n)
{
        return (n + 7) & ~(uint64_t)7;
}

/*
 * Count a message.  The value barrier keeps the two adds scalar: vectorised,
 * the compiler loaded @bytes together with its neighbour in struct brd_ring
 * as one 16-byte load, which the CPU cannot forward from the 8-byte store of
 * the previous call (the peeked length, stored by peek, read by release: a
 * store-forwarding stall of ~2 ns per zero-copy message, measured).
 * Returns @bytes as it left the barrier: a caller that needs the count
 * again (prod_closed() undoes it) takes this one, already in a register,
 * where reusing its own copy cost the producer's fast paths a move (the
 * barrier "changes" @bytes).
 */
static inline uint64_t stats_count(struct brd_ring_stats *st, uint64_t bytes)
{
        __asm__("" : "+r"(bytes));
        st->messages++;
        st->bytes += bytes;
        return bytes;
}

/*
 * A large copy, a page at a time, with the next page prefetched on both
 * sides: the hardware prefetchers stop at page boundaries, and these
 * copies run through a ring of up to thousands of pages (TLB misses), so
 * starting the next pages' walks and fills early keeps the copy streaming
 * (1 MiB messages through a 16 MiB ring: +5-8%, 256 KiB ones +4%; at 64-128 KiB
 * it loses to libc's own strategy by a third: measured).  Each page goes to
 * brd__memcpy(): libc's, which writes whole lines without reading them
 * first, in halves when the two buffers are not line-aligned to each other.
 */
RING_SLOW void brd__copy_big(void *restrict dst, const void *restrict src, size_t n)
{
        uint8_t *d = dst;
        const uint8_t *s = src;
        size_t k, page = RING_PAGE;

        /* Hidden from the compiler, or it inlines a rep movsq of its own. */
        __asm__("" : "+r"(page));
        for (k = 0; k + RING_PAGE <= n; k += RING_PAGE) {
                if (k + RING_PAGE < n) {
                        __builtin_prefetch(s + k + RING_PAGE, 0, 3);
                        __builtin_prefetch(d + k + RING_PAGE, 1, 3);
                }
                brd__memcpy(d + k, s + k, page);
        }
        brd__memcpy(d + k, s + k, n - k);
}

/*
 * The copy of the receive paths other than the small one, and of the byte
 * stream: libc's (brd__memcpy()), not brd__copy_payload()'s inline moves, for small
 * messages too: after a wait the frame was just written by the other CPU,
 * and libc's wider loads take its lines sooner (a 64 B round trip: 120 ns
 * against 150, measured).  A page at a time from RING_COPY_BIG on.
 */
static inline void ring_copy_wide(void *restrict dst, const void *restrict src, size_t n)
{
        if (BRD_UNLIKELY(n >= RING_COPY_BIG))
                brd__copy_big(dst, src, n);
        else
                brd__memcpy(dst, src, n);
}

/*
 * Payloads the producer may copy with streaming stores: those that start on
 * a line, up to the page-at-a-time copies (1 MiB messages far apart gained
 * under a tenth from them, too little to pay for the probes near).
 */
static inline bool prod_may_stream(size_t len)
{
        return len >= BRD_RING_LINE_ALIGN_MIN && len < RING_COPY_BIG;
}

/*
 * The producer's copy of a payload of @len bytes (send, write): with
 * streaming stores when the controller says so (internal/brd-release.h);
 * the controller's epoch ends in prod_epoch(), after the commit.
 */
static inline void prod_copy(struct brd_ring *r, void *restrict dst, const void *restrict src,
                             size_t len, bool wide)
{
        if (prod_may_stream(len) && r->rel.on)
                brd__stream_copy(dst, src, len);
        else if (wide)
                ring_copy_wide(dst, src, len);
        else
                brd__copy_payload(dst, src, len);
}

/* After the commit of a payload of @len bytes: end the streaming stores'
 * epoch if it is over (only the payloads they apply to count). */
static inline void prod_epoch(struct brd_ring *r, size_t len)
{
        if (prod_may_stream(len) && BRD_UNLIKELY(brd__release_due(&r->rel, r->st.bytes)))
                brd__release_epoch(&r->rel, r->st.bytes, r->st.waits);
}

/* 0 for timeout 0 (never used to wait), INT64_MAX for -1. */
static inline int64_t call_deadline(int timeout_ms)
{
        return timeout_ms > 0 ? brd__deadline(timeout_ms) : (timeout_ms ? INT64_MAX : 0);
}

/*
 * Where a frame for @len payload bytes goes when the producer is at @pos:
 * returns the index just past it, *ret_hdr = the index of its frame word.
 * Anything between pos and *ret_hdr becomes a PAD frame (it is 0 or >= 8).
 */
static inline uint64_t frame_place(uint64_t pos, uint64_t len, bool align, uint64_t *ret_hdr)
{
        uint64_t a, p;

        if (!align || len < BRD_RING_LINE_ALIGN_MIN) {
                *ret_hdr = pos;
                return pos + BRD_RING_FRAME_HDR + round8(len);
        }
        a = len >= BRD_RING_PAGE_ALIGN_MIN ? BRD_RING_ALIGN_PAGE : BRD_CACHELINE;
        p = (pos + BRD_RING_FRAME_HDR + a - 1) & ~(a - 1);
        *ret_hdr = p - BRD_RING_FRAME_HDR;
        return p + round8(len);
}

/* Entry check of every call: the fork stamp before anything in shm. */
static inline int ring_check(const struct brd_ring *r, uint32_t role)
{
        if (BRD_UNLIKELY(!r))
                return -EINVAL;
        if (BRD_UNLIKELY(!ring_mine(r)))
                return -EBADF;
        if (BRD_UNLIKELY(r->role != role))
                return -EBADF;
        return r->err;
}

/*
 * Calls that may wait hold the endpoint while they run (RELIABILITY D28):
 * brd_ring_close() from another thread then interrupts the holder and frees
 * nothing until it has left.  Only the paths that can wait hold it (send's,
 * reserve's, recv's and peek's slow paths, write, read): the public call
 * returns their result directly, so nothing touches the endpoint after.
 * With debug checks the checked wrapper holds the whole call instead
 * (RING_CHECKED), so that its own bookkeeping is inside the hold too.
 */
static inline void ring_hold(struct brd_ring *r)
{
        if (r)
                AO_store(&r->held, 1);
}

/* Did brd_ring_close() in another thread mark our hold?  Then the call
 * was blocked (or moving a write's bytes) when close began, and answers
 * -ECANCELED whatever its wait came to (a timeout, -EINTR, a message):
 * its caller must learn that the endpoint is gone, or one that retries on
 * -ETIMEDOUT or a count calls into freed memory. */
static inline bool ring_held_closing(const struct brd_ring *r)
{
        return r && BRD_UNLIKELY(AO_load(&r->held) == RING_HOLD_CLOSING);
}

/*
 * End the hold: true if brd_ring_close() had marked it (the call answers
 * -ECANCELED).  Release: pairs with AO_load_acquire(held) in
 * brd_ring_close(), all our accesses to the endpoint are done before it
 * can be freed.  After a wait (hold_waited), one CAS, so that the look and
 * the end are one step: a mark landing between a plain look and a plain
 * store was wiped, and the call answered what its wait came to (-ETIMEDOUT)
 * while close freed the endpoint.  A call that never waited was not
 * blocked when close began, and its answer stands: a look and a plain
 * store.  A locked instruction there, after a copy made with streaming
 * stores, waits for them to drain: 4 KiB messages ran 20-30 % slower
 * (ring-bench --size 4096, alternated with the plain store).
 */
static inline bool ring_unhold_closing(struct brd_ring *r)
{
        bool closing;

        if (!r)
                return false;
        if (BRD_LIKELY(!r->hold_waited)) {
                closing = ring_held_closing(r);
                AO_store_release(&r->held, 0);
                return closing;
        }
        r->hold_waited = false;
        if (AO_compare_and_swap_release(&r->held, 1, 0))
                return false;
        AO_store_release(&r->held, 0);
        return true;
}

#if BRD_DEBUG_CHECKS
/* The checked wrapper holds (RING_CHECKED): a hold of its own here would end
 * before the wrapper's ring_leave(). */
#define RING_HELD(attrs, type, name, held, params, args)        \
        attrs type name params                                  \
        {                                                       \
                return held args;                               \
        }
#else
#define RING_HELD(attrs, type, name, held, params, args)        \
        attrs type name params                                  \
        {                                                       \
                type ret;                                       \
                                                                \
                ring_hold(r);                                   \
                ret = held args;                                \
                if (ring_unhold_closing(r))                     \
                        ret = -ECANCELED;                       \
                return ret;                                     \
        }
#endif

/* ------------------------------------------------------------ producer */

/*
 * A large frame (payload page-aligned) placed at pos may start the next lap
 * early instead, its gap becoming one PAD frame: when the producer is past
 * a window of RING_EARLY_FRAMES such frames into the lap and the consumer
 * waits for data (its side's advisory waiting word, kept by consumers of
 * large frames only, or its SLEEPING flag, which a brd_ring_fd() poller
 * sets too), so that it crosses the gap as soon as the frame is published.
 * A consumer that keeps up then sees the ring cycle through its first few
 * frames, not its whole capacity, and those pages stay in the caches and
 * the TLB: through 16 MiB, zero-copy messages of 64 KiB, 256 KiB and 1 MiB
 * streamed at 2-3x the rate (measured, Zen 3).  Only for rings of
 * RING_EARLY_CAP_MIN and more: 64 KiB messages through 1 MiB, whose pages
 * the TLB covers anyway, gained nothing with zero-copy and lost a third
 * with copies.  A consumer that lags, or that is busy with the last
 * message, is not waiting, so the ring's whole capacity stays there to
 * absorb a burst.  On *ret_hdr / *ret_end (frame_place()'s placement on
 * entry): the early placement, or unchanged.  0, or -EBADMSG from
 * re-reading the head.
 */
static RING_SLOW int prod_place_early(struct brd_ring *r, uint64_t len, uint64_t *ret_hdr,
                                      uint64_t *ret_end)
{
        uint64_t off = r->pos & r->mask, lap = r->pos - off + r->cap, size = round8(len);
        uint64_t end = lap + size;
        int e;

        if (r->cap < RING_EARLY_CAP_MIN || r->cap > RING_EARLY_CAP_MAX || *ret_end >= end ||
            off < RING_EARLY_FRAMES * (size + BRD_RING_ALIGN_PAGE))
                return 0;
        if (!AO_int_load(&r->peer_side->waiting) &&
            !(AO_load(&r->peer_side->state) & BRD_RING_ST_SLEEPING))
                return 0;
        /* Waiting, it has consumed what we published: the head we hold
         * is older than that. */
        if (end - r->peer > r->cap) {
                e = prod_refresh(r);
                if (e || end - r->peer > r->cap)
                        return e;
        }
        *ret_hdr = lap - BRD_RING_FRAME_HDR;
        *ret_end = end;
        return 0;
}

/* Where the producer's next frame of @len bytes goes: frame_place(), or
 * the next lap's start (prod_place_early()).  0, or -EBADMSG. */
static inline int prod_place(struct brd_ring *r, uint64_t len, bool align, uint64_t *ret_hdr,
                             uint64_t *ret_end)
{
        *ret_end = frame_place(r->pos, len, align, ret_hdr);
        if (align && len >= BRD_RING_PAGE_ALIGN_MIN)
                return prod_place_early(r, len, ret_hdr, ret_end);
        return 0;
}

/* Room for a frame of @len bytes at pos: 0 with *ret_hdr and *ret_end set. */
static inline int prod_room(struct brd_ring *r, uint64_t len, bool align, int timeout_ms,
                            int64_t deadline, uint64_t *ret_hdr, uint64_t *ret_end)
{
        uint64_t hdr = 0, end = 0;
        int e;

        /* The consumer's closed flag shares a clean line with its state,
         * which we read after every publish anyway. */
        if (BRD_UNLIKELY(AO_load(&r->peer_side->state) & BRD_RING_ST_CLOSED))
                return brd__ring_gone(r, false);
        e = prod_place(r, len, align, &hdr, &end);
        if (e)
                return e;
        if (BRD_UNLIKELY(end - r->peer > r->cap)) {
                e = prod_refresh(r);
                if (e)
                        return e;
                /*
                 * Full, or nearly: the consumer is the slower side.  Taking
                 * back the space message by message would have us write
                 * each line right after the consumer read it and reread
                 * head per message (the consumer's lock-step, mirrored), so
                 * a call that may spin first lets the consumer get a few
                 * KiB ahead.  Latency is not at stake: the consumer decides
                 * it now.
                 */
                if (end + r->lag_bytes - r->peer > r->cap && timeout_ms != 0 &&
                    !(r->flags & BRD_RING_NOSPIN)) {
                        e = brd__ring_lag_wait(r, end - r->pos + r->lag_bytes);
                        if (e < 0)
                                return e;
                }
                if (end - r->peer > r->cap) {
                        e = brd__ring_wait(r, end, timeout_ms, deadline);
                        if (e)
                                return e;
                }
        }
        *ret_hdr = hdr;
        *ret_end = end;
        return 0;
}

/* The consumer closed, as seen right after a publish: its last head in
 * *@ret_h, and the producer is done; or -EBADMSG (a head no consumer could
 * have left: poisoned). */
static RING_SLOW int prod_closed_head(struct brd_ring *r, uint64_t *ret_h)
{
        uint64_t h;

        /* Pairs with AO_store_release(state) in brd_ring_close(): the
         * consumer's last head store is visible below. */
        (void)AO_load_acquire(&r->peer_side->state);
        /* Pairs with AO_store_release(head) in ring_publish().  Held to
         * prod_refresh()'s bounds: a head past what we published (or
         * backwards, or misaligned) is no consumer's, and would have
         * messages counted as delivered. */
        h = AO_load_acquire(r->peer_idx);
        if (BRD_UNLIKELY(h < r->peer || h > r->pos || (h & 7)))
                return ring_poison(r);
        brd__ring_gone(r, false);
        *ret_h = h;
        return 0;
}

/*
 * The consumer closed, as seen right after we published the message of
 * @len payload bytes that ends at @end: it was delivered if the consumer's
 * last head passed it, else it is dropped (-EPIPE) and not counted as sent
 * (prod_commit() counted it).  Either way the producer is done.
 */
static RING_SLOW int prod_closed(struct brd_ring *r, uint64_t end, uint64_t len)
{
        uint64_t h = 0;
        int e = prod_closed_head(r, &h);

        if (!e) {
                if (h >= end)
                        return 0;
                e = -EPIPE;
        }
        r->st.messages--;
        r->st.bytes -= len;
        return e;
}

int brd__ring_look_ms = RING_LOOK_MS;

/* Look at the consumer's pidfd, but not twice within brd__ring_look_ms, on
 * the coarse clock (a few ns; ticks of 1-10 ms): a look costs a system
 * call as dear as the ring.  Dead, it ends the producer (-EPIPE from the
 * next call on): true. */
static RING_SLOW bool prod_look(struct brd_ring *r)
{
        int64_t now = brd__clock_ns(CLOCK_MONOTONIC_COARSE);

        if (now - r->looked_ns < brd__ring_look_ms * INT64_C(1000000))
                return false;
        r->looked_ns = now;
        if (brd__ring_peer_probe(r) <= 0)
                return false;
        (void)brd__ring_gone(r, true);
        return true;
}

/*
 * After publishing the message of @len bytes that ends at @end: the
 * consumer sleeps or closed (state word @st).  While no ring of its sleep
 * proved it alive (brd__ring_bell_for()), a publish looks at its pidfd, so
 * that a consumer killed in its sleep is seen now, not once the ring has
 * filled; but no two looks within brd__ring_look_ms (prod_look()): a
 * brd_ring_fd() user is rung at every wake-up and stays armed while it
 * takes what it was woken for.  Dead, it ends the producer from the next call on
 * (-EPIPE), but this message stays sent: it is published, and a consumer
 * that takes the dead one's role over may still get it.  One that dies
 * awake is seen when a call waits for room.
 */
static RING_SLOW int prod_published(struct brd_ring *r, uint64_t st, uint64_t end, uint64_t len)
{
        if ((st & BRD_RING_ST_SLEEPING) && brd__ring_bell_for(r, st))
                (void)prod_look(r);
        if (st & BRD_RING_ST_CLOSED)
                return prod_closed(r, end, len);
        return 0;
}

/*
 * Write the frame word(s) of the message [hdr, end) whose payload is in
 * place, and publish it.  The consumer's closed flag is read once, in the
 * load that follows the publish anyway (ring_publish_quiet()), so commit pays
 * no check of its own for it.  Always inlined: send's and commit's fast paths
 * stay leaf functions (left to itself, gcc 12 made it a call of its own once
 * the publish grew its fence-mode count).
 */
static inline __attribute__((always_inline)) int
prod_commit(struct brd_ring *r, uint64_t hdr, uint64_t end, uint64_t len)
{
        uint64_t st;

        /* Plain (relaxed) stores: the release store of the tail orders them. */
        if (BRD_UNLIKELY(hdr != r->pos))
                AO_store(frame_word(r, r->pos),
                         brd__ring_frame((uint32_t)(hdr - r->pos - BRD_RING_FRAME_HDR),
                                         BRD_RING_FRAME_PAD));
        AO_store(frame_word(r, hdr), brd__ring_frame((uint32_t)len, BRD_RING_FRAME_MSG));
        r->pos = end;
        len = stats_count(&r->st, len);
        if (r->batch && end - ring_pub(r) < r->batch &&
            !(AO_load(&r->peer_side->state) & (BRD_RING_ST_SLEEPING | BRD_RING_ST_CLOSED)))
                return 0;
        st = ring_publish_quiet(r);
        if (BRD_UNLIKELY(st & (BRD_RING_ST_SLEEPING | BRD_RING_ST_CLOSED)))
                return prod_published(r, st, end, len);
        return 0;
}

/*
 * A reservation, in one word: the low 32 bits of its frame word's index, and
 * its payload bytes + 1 (0: none).  Commit stores nothing to use it up: once
 * committed, pos has passed the frame word, which its low bits then place
 * ~4 GiB ahead, past any alignment gap.  Every other advance of pos clears
 * the word first (send, write) or replaces it (reserve).
 */
static inline uint64_t resv_word(uint64_t hdr, uint64_t len)
{
        return (uint64_t)(uint32_t)hdr << 32 | (len + 1);
}

/* @resv still reserves room for @len bytes: 1 with *ret_hdr set. */
static inline bool resv_valid(const struct brd_ring *r, uint64_t resv, size_t len,
                              uint64_t *ret_hdr)
{
        /* The gap between pos and the frame word: an alignment, or the rest
         * of the lap (prod_place_early(), rings up to RING_EARLY_CAP_MAX).
         * A used reservation's word is 2^32 - its frame size behind pos,
         * past either: frames are at most cap / 2 + 8 bytes. */
        uint32_t gap = (uint32_t)(resv >> 32) - (uint32_t)r->pos;
        uint64_t gap_max = r->cap > RING_EARLY_CAP_MAX ? BRD_RING_ALIGN_PAGE : r->cap - 1;

        if (len >= (uint32_t)resv || gap > gap_max)
                return false;
        *ret_hdr = r->pos + gap;
        return true;
}

/* The entry checks of the producer's fast paths: the fork token, the role,
 * no final error. */
static inline bool prod_fast_ok(const struct brd_ring *r)
{
        return r && ring_mine_fast(r) && r->role == RING_PROD && !r->err;
}

/*
 * The fast path of a reservation, shared by send and reserve so that the two
 * cannot diverge: every entry check of the call (prod_fast_ok(), size) and
 * room that the cached head already shows.  false: take the slow path,
 * which redoes it all in order and may wait.  Reads no shared line.  The
 * consumer's closed flag is left to prod_commit(), which reads it right
 * after publishing anyway: a message sent or reserved after the consumer
 * closed is dropped there (-EPIPE, from then on for every call).
 */
static inline bool prod_fast_room(struct brd_ring *r, size_t len, uint64_t *ret_hdr,
                                  uint64_t *ret_end)
{
        uint64_t hdr, end;

        /* Frames that may wrap early (prod_place_early()) too. */
        if (BRD_UNLIKELY(!prod_fast_ok(r) || len > r->max_msg || len >= BRD_RING_PAGE_ALIGN_MIN))
                return false;
        end = frame_place(r->pos, len, true, &hdr);
        if (BRD_UNLIKELY(end - r->peer > r->cap))
                return false;
        *ret_hdr = hdr;
        *ret_end = end;
        return true;
}

/* The slow path of send and reserve: the entry checks in their documented
 * order (@bad: the caller's own argument is invalid), then room, waiting. */
static RING_SLOW int prod_slow_room(struct brd_ring *r, size_t len, bool bad, bool bad_first,
                                    int timeout_ms, uint64_t *ret_hdr, uint64_t *ret_end)
{
        int e;

        e = ring_check(r, RING_PROD);
        if (e)
                return e;
        if (bad && bad_first)
                return -EINVAL;
        if (len > r->max_msg)
                return -EMSGSIZE;
        if (bad)
                return -EINVAL;
        *r->resv = 0;
        return prod_room(r, len, true, timeout_ms, call_deadline(timeout_ms), ret_hdr, ret_end);
}

/* send = reserve + memcpy + commit, on the same fast path as the zero-copy calls. */
static int prod_send_held(struct brd_ring *r, const void *msg, size_t len, int timeout_ms)
{
        uint64_t hdr = 0, end = 0;
        int e;

        if (BRD_UNLIKELY(!prod_fast_room(r, len, &hdr, &end) || (!msg && len))) {
                e = prod_slow_room(r, len, !msg && len, false, timeout_ms, &hdr, &end);
                if (e)
                        return e;
        }
        if (BRD_UNLIKELY(*r->resv))
                *r->resv = 0;           /* a send abandons the reservation */
        prod_copy(r, payload(r, hdr + BRD_RING_FRAME_HDR), msg, len, false);
        e = prod_commit(r, hdr, end, len);
        prod_epoch(r, len);
        return e;
}

RING_HELD(static RING_SLOW, int, prod_send, prod_send_held,
          (struct brd_ring *r, const void *msg, size_t len, int timeout_ms),
          (r, msg, len, timeout_ms))

/*
 * The fast path of a small frame (RING_SMALL payload bytes at most), for
 * send and reserve: prod_fast_room()'s checks and placement without the
 * ones that small frames cannot fail (the size against max_msg, alignment:
 * only payloads >= BRD_RING_LINE_ALIGN_MIN are aligned), so the frame word
 * goes at pos.  false: take the slow path.  *@ret_end: the index past it.
 */
static inline bool prod_small_room(struct brd_ring *r, size_t len, uint64_t *ret_end)
{
        uint64_t end;

        if (BRD_UNLIKELY(len > RING_SMALL))
                return false;
        if (BRD_UNLIKELY(!prod_fast_ok(r)))
                return false;
        end = r->pos + BRD_RING_FRAME_HDR + round8(len);
        if (BRD_UNLIKELY(end - r->peer > r->cap))
                return false;
        *ret_end = end;
        return true;
}

/*
 * A small message with room that the cached head already shows is sent
 * inline, in a leaf function (prod_small_room()).  Everything else, and
 * every error, takes prod_send().
 */
RING_API RING_HOT int brd_ring_send(struct brd_ring *r, const void *msg, size_t len, int timeout_ms)
{
        uint64_t end = 0;

        if (BRD_UNLIKELY(!prod_small_room(r, len, &end) || !msg || r->loc->resv))
                return prod_send(r, msg, len, timeout_ms);
        brd__copy_payload(payload(r, r->pos + BRD_RING_FRAME_HDR), msg, len);
        /* r->pos, not a copy taken before the copy: the compiler reloads it
         * either way (the copy may alias it for all it knows), and this way
         * it drops prod_commit()'s test for a gap (hdr != pos), 2 of 35
         * instructions a message (callgrind). */
        return prod_commit(r, r->pos, end, len);
}

static int prod_reserve_held(struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms)
{
        uint64_t hdr = 0, end = 0;
        int e;

        e = prod_slow_room(r, len, !ret_buf, true, timeout_ms, &hdr, &end);
        if (e)
                return e;
        *r->resv = resv_word(hdr, len);
        *ret_buf = payload(r, hdr + BRD_RING_FRAME_HDR);
        return 0;
}

RING_HELD(static RING_SLOW, int, prod_reserve_slow, prod_reserve_held,
          (struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms),
          (r, len, ret_buf, timeout_ms))

/*
 * A small reservation is placed as send places a small message
 * (prod_small_room()): 6 instructions and two branches fewer than
 * prod_fast_room() (callgrind: 37 -> 30 a reservation; 8 B zero-copy stream
 * 106 -> 110 M/s, means of 6 interleaved pairs, CPUs far apart).
 */
RING_API RING_HOT int brd_ring_reserve(struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms)
{
        uint64_t hdr = 0, end = 0;

        if (BRD_UNLIKELY(!ret_buf))
                return prod_reserve_slow(r, len, ret_buf, timeout_ms);
        if (BRD_LIKELY(prod_small_room(r, len, &end)))
                hdr = r->pos;
        else if (BRD_UNLIKELY(!prod_fast_room(r, len, &hdr, &end)))
                return prod_reserve_slow(r, len, ret_buf, timeout_ms);
        /* Process-local: commit validates this instead of redoing the
         * entry checks (any final error clears it, see brd__ring_final()). */
        *r->resv = resv_word(hdr, len);
        *ret_buf = payload(r, hdr + BRD_RING_FRAME_HDR);
        return 0;
}

static RING_SLOW int prod_commit_slow(struct brd_ring *r, size_t len)
{
        uint64_t hdr = 0;
        int e;

        e = ring_check(r, RING_PROD);
        if (e)
                return e;
        if (!resv_valid(r, *r->resv, len, &hdr))
                return -EINVAL;         /* no reservation (or used), or longer than it */
        return prod_commit(r, hdr, hdr + BRD_RING_FRAME_HDR + round8(len), len);
}

RING_API RING_HOT int brd_ring_commit(struct brd_ring *r, size_t len)
{
        uint64_t pos, resv;

        /*
         * A reservation implies the producer role and no final error, and
         * it is read from the wipe-on-fork page, where a forked child finds
         * none (nor does an endpoint without that page: its reservations are
         * elsewhere, for the slow path): no entry check is left to make, not
         * even the fork token's (8 B messages: reserve + commit 5.9 ns
         * against 6.5 with it, one thread, measured).  The consumer's closed
         * flag is read by prod_commit().
         */
        if (BRD_UNLIKELY(!r))
                return prod_commit_slow(r, len);
        /*
         * The fast path takes a reservation without an alignment gap (every
         * payload below BRD_RING_LINE_ALIGN_MIN), whose frame word is at pos:
         * the frame's place then comes from pos alone, and the reservation
         * word only decides a branch.  Placed from the word (pos + its gap,
         * as resv_valid() does), every message would wait for reserve's
         * store of it to reach this load: two store-to-load hand-offs per
         * message on the producer's critical path instead of one (8 B
         * messages: 0.90-0.93 of send's rate against 0.96-1.01, measured).
         */
        pos = r->pos;
        resv = r->loc->resv;
        if (BRD_UNLIKELY((uint32_t)(resv >> 32) != (uint32_t)pos || len >= (uint32_t)resv))
                return prod_commit_slow(r, len);
        /* A shorter message ends earlier; the payload stays where it is. */
        return prod_commit(r, pos, pos + BRD_RING_FRAME_HDR + round8(len), len);
}

RING_API int brd_ring_flush(struct brd_ring *r)
{
        int e;

        if (!r)
                return -EINVAL;
        if (!ring_mine(r))
                return -EBADF;
        e = r->err;
        if (e == -EBADMSG)
                return e;
        if (r->role != RING_PROD)
                return 0;
        /* A consumer gone gets nothing more: what was held back is lost,
         * and the producer must hear it from the call that would have
         * delivered it.  Closed, or dead (a consumer killed awake shows to
         * no send while there is room): looked at as a publish looks, at
         * most once per brd__ring_look_ms (a ping-pong flushes at every
         * message), and only with something to publish. */
        if (e)
                return e;
        if (r->pos == ring_pub(r))
                return 0;       /* nothing held back, nothing lost: no look */
        if (AO_load(&r->peer_side->state) & BRD_RING_ST_CLOSED)
                return brd__ring_gone(r, false);
        /* r->err too: a look can poison (a peer stamp gone to 0) with no
         * verdict on its life. */
        if (prod_look(r) || r->err)
                return r->err;
        /* Closed since the look above (the publish reads the flag anyway):
         * what the consumer had not taken is lost, as for a send. */
        if (BRD_UNLIKELY(ring_publish(r) & BRD_RING_ST_CLOSED)) {
                uint64_t h = 0;

                e = prod_closed_head(r, &h);
                return e ? e : h >= r->pos ? 0 : -EPIPE;
        }
        return 0;
}

/*
 * A write that moved @done bytes, then was cancelled while it waited for
 * room.  By brd_ring_close() from another thread (its mark in held):
 * -ECANCELED as for any call close cancels, so that a write-all loop does
 * not call again into a freed endpoint; the bytes moved are published
 * (close publishes the last tail) and delivered before EOF.  By
 * brd_ring_interrupt(): the count, like write(2), and the interrupt it
 * consumed is latched again, as brd_ring_interrupt() does it (eventfd,
 * then flag: the fd of brd_ring_fd() stays readable), so that the next call
 * that would wait returns -ECANCELED: the count alone would lose it.
 */
static RING_SLOW ssize_t stream_write_cancelled(struct brd_ring *r, size_t done)
{
        /* The intr we consumed was close's: this fence pairs with the full
         * barrier of close's mark, made before its store of intr. */
        AO_nop_full();
        if (ring_held_closing(r))
                return -ECANCELED;
        efd_signal(r->efd_intr);
        AO_store_release(&r->intr, 1);
        return (ssize_t)done;
}

static ssize_t stream_write_held(struct brd_ring *r, const void *buf, size_t len, int timeout_ms)
{
        const uint8_t *src = buf;
        int64_t deadline;
        size_t done = 0;
        bool crumbs = !timeout_ms;
        int e;

        e = ring_check(r, RING_PROD);
        if (e)
                return e;
        if (!buf && len)
                return -EINVAL;
        if (len > SSIZE_MAX)
                len = SSIZE_MAX;
        *r->resv = 0;
        deadline = call_deadline(timeout_ms);
        while (done < len) {
                uint64_t n = len - done, hdr, end, free_;

                if (n > r->max_msg)
                        n = r->max_msg;
                /* A close in another thread stops a write that never
                 * waits, too (it waits for this call to leave). */
                if (ring_held_closing(r)) {
                        e = -ECANCELED;
                        break;
                }
                if (AO_load(&r->peer_side->state) & BRD_RING_ST_CLOSED) {
                        e = brd__ring_gone(r, false);
                        break;
                }
                e = prod_place(r, n, true, &hdr, &end);
                if (e)
                        break;
                if (end - r->peer > r->cap) {
                        e = prod_refresh(r);
                        if (e)
                                break;
                }
                if (end - r->peer > r->cap) {
                        /* Take what is free rather than wait for a whole
                         * chunk, but not crumbs: wait for a quarter ring.
                         * A call that may not wait (timeout 0), or whose
                         * wait ran out, takes crumbs too, as write(2) to a
                         * pipe does: else it would answer -EAGAIN or
                         * -ETIMEDOUT with room free. */
                        free_ = r->cap - (r->pos - r->peer);
                        if (free_ >= BRD_RING_FRAME_HDR + 8 &&
                            (crumbs || free_ >= (r->cap / 4 < n ? r->cap / 4 : n))) {
                                n = free_ - BRD_RING_FRAME_HDR < n ? free_ - BRD_RING_FRAME_HDR : n;
                                end = frame_place(r->pos, n, false, &hdr);
                        } else {
                                /* Taking crumbs: one frame's worth is enough
                                 * (and is what readiness of brd_ring_fd()
                                 * must then mean). */
                                uint64_t want = crumbs ? BRD_RING_FRAME_HDR + 8 :
                                                r->cap / 4 < n + BRD_RING_FRAME_HDR ?
                                                r->cap / 4 : round8(n + BRD_RING_FRAME_HDR);

                                e = brd__ring_wait(r, r->pos + want, timeout_ms, deadline);
                                if ((e == -ETIMEDOUT || e == -EAGAIN) && !crumbs) {
                                        crumbs = true;
                                        continue;
                                }
                                if (e)
                                        break;
                                continue;
                        }
                }
                prod_copy(r, payload(r, hdr + BRD_RING_FRAME_HDR), src + done, n, true);
                e = prod_commit(r, hdr, end, n);
                if (e)
                        break;          /* the consumer closed: dropped */
                prod_epoch(r, n);
                done += n;
                /* Sent, and the consumer found gone right after (dead, or
                 * closed once it had taken this chunk): stop here. */
                e = r->err;
                if (BRD_UNLIKELY(e))
                        break;
        }
        if (BRD_UNLIKELY(done && e == -ECANCELED))
                return stream_write_cancelled(r, done);
        if (done)
                return (ssize_t)done;
        return e;
}

RING_HELD(RING_API, ssize_t, brd_ring_write, stream_write_held,
          (struct brd_ring *r, const void *buf, size_t len, int timeout_ms),
          (r, buf, len, timeout_ms))

/* ------------------------------------------------------------ consumer */

/*
 * The consumer caught up with the producer (its refresh found less than
 * lag_bytes).  A consumer that keeps up with a streaming producer
 * otherwise reads each frame (and the tail) right after the producer wrote
 * it, often while the producer writes the next frame into the same line:
 * every line then crosses between the CPUs twice, one demand miss at a
 * time, and both sides run in lock-step at a line transfer per message
 * (measured: 64 B messages at 40 M/s "near" and 7 M/s "far", against
 * 150 M/s and 40 M/s with the producer batching).  Waiting until the
 * producer is lag_bytes ahead lets it write undisturbed, and the consumer
 * then reads a run of lines that the CPU fetches in parallel.  Fewer polls
 * matter as much: each read of the tail takes its line from the producer,
 * whose next tail store then misses (at 64 B, polling every 0.4 us instead of
 * every ~3 us cost a quarter of the throughput, measured).
 *
 * That wait is pure latency when the producer is not streaming (a ping-pong
 * sends one message and waits for the answer), and nothing in one call
 * tells the two apart, so the consumer probes: it waits once, and stays in
 * lag mode only while waiting lets several frames (RING_LAG_FRAMES) arrive.
 * A failed probe backs off exponentially to one per RING_LAG_PROBE_MAX
 * chases, so a ping-pong pays one poll's wait (16 pauses, ~0.4 us here; the
 * first one after a stream up to 256) per 65536 messages, and its median
 * and 99th percentile do not move.
 */
static int cons_lag(struct brd_ring *r)
{
        uint64_t before = r->peer;
        int moves;

        if (!r->lag_on) {
                if (--r->lag_probe)
                        return 0;
        }
        moves = brd__ring_lag_wait(r, r->lag_bytes);
        if (moves < 0)
                return moves;
        if (r->peer - before >= RING_LAG_FRAMES * r->last_size && moves >= 1) {
                r->lag_on = 1;
                r->lag_backoff = RING_LAG_PROBE_MIN;
        } else {
                r->lag_on = 0;
                r->lag_probe = r->lag_backoff;
                if (r->lag_backoff < RING_LAG_PROBE_MAX)
                        r->lag_backoff *= 2;
        }
        return 0;
}

/*
 * Wait for a frame.  A consumer of large frames says so in its side while
 * it waits: the producer may then wrap its next large frame early
 * (prod_place_early()), since we cross the gap as soon as it is published.
 * Advisory: a stale word only moves where a frame goes.
 */
static int cons_wait(struct brd_ring *r, int timeout_ms, int64_t deadline)
{
        bool say = timeout_ms != 0 && r->last_size >= BRD_RING_PAGE_ALIGN_MIN;
        int e;

        if (say)
                AO_int_store(&r->own->waiting, 1);
        e = brd__ring_wait(r, 0, timeout_ms, deadline);
        if (say)
                AO_int_store(&r->own->waiting, 0);
        return e;
}

/*
 * The next message frame at pos (PAD frames skipped): 0 with its payload
 * length and frame size; -errno.  @wait = false: never wait, no syscall
 * (-EAGAIN).
 */
static inline int cons_frame(struct brd_ring *r, bool wait, int timeout_ms, int64_t deadline,
                             uint64_t *ret_len, uint64_t *ret_size)
{
        bool padded = false;

        for (;;) {
                uint64_t w, len, size, avail = r->peer - r->pos;
                uint32_t type;
                int e;

                if (BRD_UNLIKELY(avail < BRD_RING_FRAME_HDR)) {
                        /* prod_commit() publishes a PAD frame only with the
                         * message after it: a PAD that ends at the tail is
                         * the peer's scribble (a peer that published PADs
                         * alone could keep this loop from its deadline). */
                        if (BRD_UNLIKELY(padded))
                                return ring_poison(r);
                        e = cons_refresh(r);
                        if (e)
                                return e;
                        /* Only calls that may wait, and may spin. */
                        if (r->peer - r->pos < r->lag_bytes && wait && timeout_ms != 0 &&
                            r->last_size < r->lag_bytes / RING_LAG_FRAMES &&
                            !(r->flags & BRD_RING_NOSPIN)) {
                                e = cons_lag(r);
                                if (e)
                                        return e;
                        }
                        if (r->peer - r->pos < BRD_RING_FRAME_HDR) {
                                if (!wait)
                                        return -EAGAIN;
                                e = cons_wait(r, timeout_ms, deadline);
                                if (e)
                                        return e;
                        }
                        continue;
                }
                /* One fetch of the frame word (RELIABILITY B17): len and
                 * type live in locals from here on. */
                w = AO_load(frame_word(r, r->pos));
                len = (uint32_t)w;
                type = (uint32_t)(w >> 32);
                size = BRD_RING_FRAME_HDR + round8(len);
                if (BRD_UNLIKELY(size > avail))
                        return ring_poison(r);
                if (BRD_LIKELY(type == BRD_RING_FRAME_MSG)) {
                        /* No producer commits more than max_msg bytes (a
                         * buffer of that size must always do), and a frame
                         * read() has begun was committed with a length of
                         * at least rd_off: shorter now, the peer rewrote it
                         * (len - rd_off would wrap). */
                        if (BRD_UNLIKELY(len > r->max_msg || len < r->rd_off))
                                return ring_poison(r);
                        *ret_len = len;
                        *ret_size = size;
                        return 0;
                }
                /* And a PAD is followed by that message, never by a PAD;
                 * nor is it where a message was shown (ring_unpeek(),
                 * -EMSGSIZE): that message would be gone without a word. */
                if (BRD_UNLIKELY(type != BRD_RING_FRAME_PAD || r->rd_off || padded ||
                                 r->shown == r->pos + 1))
                        return ring_poison(r);
                r->pos += size;         /* handed back with the next publish */
                padded = true;
        }
}

/* cons_done()'s answer when only the line release's epoch is over:
 * nonzero, and no SLEEPING bit (nothing to ring). */
#define CONS_TODO_EPOCH ((uint64_t)BRD_RING_ST_SLEEPING << 1)

/*
 * The frame of @size bytes (@bytes of payload) that ends at pos is consumed:
 * hand its space back.  Returns nonzero when something is left to do out
 * of line, which the caller passes on to cons_after(): the producer's state
 * word when it sleeps (ring it), or CONS_TODO_EPOCH when the line release's
 * epoch is over.
 * Neither is a call here: a call in the middle would keep the fast paths'
 * values in callee-saved registers, saved and restored on every message.
 */
static inline uint64_t cons_done(struct brd_ring *r, uint64_t size, uint64_t bytes)
{
        uint64_t st;

        /* Loads and compares rather than stores where the value rarely
         * changes: fewer stores per message, and the store buffer is what
         * bounds a producer and consumer on CPUs far apart. */
        if (BRD_UNLIKELY(r->last_size != size))
                r->last_size = size;
        if (BRD_UNLIKELY(r->rd_off))
                r->rd_off = 0;
        /* Before the publish: lines are dropped before the producer may
         * write them again.  Streaming = the producer is ahead: more is
         * ready beyond this frame (a ping-pong never is). */
        brd__release_lines(&r->rel, r->data, r->mask, r->pos - size, r->pos, r->peer != r->pos);
        stats_count(&r->st, bytes);
        st = ring_publish_quiet(r);
        if (BRD_UNLIKELY(st & BRD_RING_ST_SLEEPING))
                return st;
        return BRD_UNLIKELY(brd__release_due(&r->rel, r->st.bytes)) ? CONS_TODO_EPOCH : 0;
}

/* Consume the frame of @size bytes at pos: cons_done() once pos is past it. */
static inline uint64_t cons_advance(struct brd_ring *r, uint64_t size, uint64_t bytes)
{
        r->pos += size;
        return cons_done(r, size, bytes);
}

/* What cons_done() left (@todo): end the line release's epoch if it is
 * over, ring the producer if it sleeps; returns @ret for the caller. */
static RING_SLOW ssize_t cons_after(struct brd_ring *r, uint64_t todo, ssize_t ret)
{
        if (brd__release_due(&r->rel, r->st.bytes))
                brd__release_epoch(&r->rel, r->st.bytes, r->st.waits);
        if (todo & BRD_RING_ST_SLEEPING)
                brd__ring_bell_for(r, todo);
        return ret;
}

static inline void cons_consume(struct brd_ring *r, uint64_t size, uint64_t bytes)
{
        uint64_t todo = cons_advance(r, size, bytes);

        if (todo)
                cons_after(r, todo, 0);
}

/*
 * The fast path of a receive, shared by recv and peek: every entry check of
 * the call and a whole message frame that the cached tail already shows,
 * none of it read yet (a frame read() has begun takes the slow path, which
 * checks its length against what was read; so does a peeked frame, which
 * pos is past: ring_unpeek()).
 * false: take the slow path (cons_frame() may skip PAD frames, refresh the
 * tail, lag and wait, and redoes the checks in order).  The frame word is
 * fetched once here; the slow path fetches and validates its own copy.
 */
static inline bool cons_fast_frame(struct brd_ring *r, uint64_t *ret_len, uint64_t *ret_size)
{
        uint64_t w, len, size, avail;

        if (BRD_UNLIKELY(!r || !ring_mine_fast(r)))
                return false;
        if (BRD_UNLIKELY(r->role != RING_CONS || r->err || r->rd_off || r->peek))
                return false;
        avail = r->peer - r->pos;
        if (BRD_UNLIKELY(avail < BRD_RING_FRAME_HDR))
                return false;
        w = AO_load(frame_word(r, r->pos));
        len = (uint32_t)w;
        size = BRD_RING_FRAME_HDR + round8(len);
        if (BRD_UNLIKELY((uint32_t)(w >> 32) != BRD_RING_FRAME_MSG || size > avail ||
                         len > r->max_msg))
                return false;
        *ret_len = len;
        *ret_size = size;
        return true;
}

static RING_SLOW ssize_t cons_recv_slow(struct brd_ring *r, void *buf, size_t cap, int timeout_ms)
{
        uint64_t len = 0, size = 0, n;
        int e;

        e = ring_check(r, RING_CONS);
        if (e)
                return e;
        if (!buf && cap)
                return -EINVAL;
        ring_unpeek(r);
        e = cons_frame(r, true, timeout_ms, call_deadline(timeout_ms), &len, &size);
        if (e)
                return e;
        n = len - r->rd_off;
        if (n > cap) {
                r->shown = r->pos + 1;
                return -EMSGSIZE;
        }
        if (n)
                ring_copy_wide(buf, payload(r, r->pos + BRD_RING_FRAME_HDR + r->rd_off), n);
        /* The whole payload, once: read() counts nothing of a message it
         * does not finish. */
        cons_consume(r, size, len);
        return (ssize_t)n;
}

static ssize_t cons_recv_held(struct brd_ring *r, void *buf, size_t cap, int timeout_ms)
{
        uint64_t len = 0, size = 0;

        /* No buffer (allowed with cap 0): the slow path, which copies
         * nothing rather than memcpy() from or to NULL. */
        if (BRD_UNLIKELY(!cons_fast_frame(r, &len, &size) || !buf))
                return cons_recv_slow(r, buf, cap, timeout_ms);
        if (BRD_UNLIKELY(len > cap)) {
                r->shown = r->pos + 1;
                return -EMSGSIZE;
        }
        ring_copy_wide(buf, payload(r, r->pos + BRD_RING_FRAME_HDR), len);
        cons_consume(r, size, len);
        return (ssize_t)len;
}

RING_HELD(static RING_SLOW, ssize_t, cons_recv, cons_recv_held,
          (struct brd_ring *r, void *buf, size_t cap, int timeout_ms),
          (r, buf, cap, timeout_ms))

/*
 * A whole small message frame (RING_SMALL payload bytes at most) that the
 * cached tail already shows is received inline, in a leaf function:
 * cons_fast_frame()'s checks and fetch of the frame word.  Everything else
 * takes cons_recv(), which fetches and validates its own copy of the word.
 */
RING_API RING_HOT ssize_t brd_ring_recv(struct brd_ring *r, void *buf, size_t cap, int timeout_ms)
{
        uint64_t pos, w, len, st;

        if (BRD_UNLIKELY(!r || !buf || !ring_mine_fast(r)))
                return cons_recv(r, buf, cap, timeout_ms);
        if (BRD_UNLIKELY(r->role != RING_CONS || r->err || r->rd_off || r->peek))
                return cons_recv(r, buf, cap, timeout_ms);
        pos = r->pos;
        if (BRD_UNLIKELY(r->peer - pos < BRD_RING_FRAME_HDR))
                return cons_recv(r, buf, cap, timeout_ms);
        /* One fetch of the frame word (RELIABILITY B17). */
        w = AO_load(frame_word(r, pos));
        len = (uint32_t)w;
        if (BRD_UNLIKELY((uint32_t)(w >> 32) != BRD_RING_FRAME_MSG || len > RING_SMALL ||
                         len > cap || BRD_RING_FRAME_HDR + round8(len) > r->peer - pos))
                return cons_recv(r, buf, cap, timeout_ms);
        /* len <= RING_SMALL (64): a copy that cannot call, so this path
         * saves no registers. */
        brd__copy64(buf, payload(r, pos + BRD_RING_FRAME_HDR), len);
        st = cons_advance(r, BRD_RING_FRAME_HDR + round8(len), len);
        if (BRD_UNLIKELY(st))
                return cons_after(r, st, (ssize_t)len);
        return (ssize_t)len;
}

static ssize_t cons_peek_held(struct brd_ring *r, const void **ret_msg, int timeout_ms)
{
        uint64_t len = 0, size = 0;
        int e;

        e = ring_check(r, RING_CONS);
        if (e)
                return e;
        if (!ret_msg)
                return -EINVAL;
        ring_unpeek(r);
        e = cons_frame(r, true, timeout_ms, call_deadline(timeout_ms), &len, &size);
        if (e)
                return e;
        /* The bytes release counts: the whole payload, as recv does. */
        r->peek = size << 32 | len;
        *ret_msg = payload(r, r->pos + BRD_RING_FRAME_HDR + r->rd_off);
        r->pos += size;
        return (ssize_t)(len - r->rd_off);
}

RING_HELD(static RING_SLOW, ssize_t, cons_peek_slow, cons_peek_held,
          (struct brd_ring *r, const void **ret_msg, int timeout_ms),
          (r, ret_msg, timeout_ms))

RING_API RING_HOT ssize_t brd_ring_peek(struct brd_ring *r, const void **ret_msg, int timeout_ms)
{
        uint64_t len = 0, size = 0;

        if (BRD_UNLIKELY(!cons_fast_frame(r, &len, &size) || !ret_msg))
                return cons_peek_slow(r, ret_msg, timeout_ms);
        /* Process-local: release validates this instead of redoing the
         * entry checks (any final error clears it, see brd__ring_final()).
         * pos moves past the frame here, not in release: the next peek's
         * frame then follows from this call's store of pos, where release's
         * store of it (from the word stored here) put a second store-to-load
         * hand-off on the consumer's critical path (8 B messages, CPUs far
         * apart: 0.88 -> 0.92 of recv's rate, and 112 -> 116 M/s in
         * ring-bench, measured).  Space is handed back only by release. */
        r->peek = size << 32 | len;
        *ret_msg = payload(r, r->pos + BRD_RING_FRAME_HDR);
        r->pos += size;
        return (ssize_t)len;
}

/* Release the peeked frame @peek (r->peek, not 0): pos is past it already.
 * cons_done()'s answer. */
static inline uint64_t cons_release_peeked(struct brd_ring *r, uint64_t peek)
{
        r->peek = 0;
        return cons_done(r, peek >> 32, (uint32_t)peek);
}

static RING_SLOW int cons_release_slow(struct brd_ring *r)
{
        uint64_t todo;
        int e;

        e = ring_check(r, RING_CONS);
        if (e)
                return e;
        if (!r->peek)
                return -EINVAL;         /* nothing peeked */
        todo = cons_release_peeked(r, r->peek);
        if (todo)
                cons_after(r, todo, 0);
        return 0;
}

RING_API RING_HOT int brd_ring_release(struct brd_ring *r)
{
        /* A peeked frame implies the consumer role and no final error: only
         * the fork token is left to check (a child's copy holds it too). */
        uint64_t st, peek;

        if (BRD_UNLIKELY(!r || !ring_mine_fast(r)))
                return cons_release_slow(r);
        peek = r->peek;
        if (BRD_UNLIKELY(!peek))
                return cons_release_slow(r);
        st = cons_release_peeked(r, peek);
        if (BRD_UNLIKELY(st))
                return (int)cons_after(r, st, 0);
        return 0;
}

static ssize_t stream_read_held(struct brd_ring *r, void *buf, size_t cap, int timeout_ms)
{
        uint8_t *dst = buf;
        uint64_t len = 0, size = 0, n;
        int64_t deadline;
        size_t done = 0;
        unsigned empty = 0;
        AO_t closed;
        int e;

        e = ring_check(r, RING_CONS);
        if (e)
                return e == -EPIPE ? 0 : e;
        if (!buf || cap == 0)
                return -EINVAL;
        if (cap > SSIZE_MAX)
                cap = SSIZE_MAX;
        ring_unpeek(r);
        deadline = call_deadline(timeout_ms);
        while (done < cap) {
                /* Wait for the first byte only. */
                e = cons_frame(r, done == 0, timeout_ms, deadline, &len, &size);
                if (e)
                        break;
                n = len - r->rd_off;
                if (n > cap - done)
                        n = cap - done;
                ring_copy_wide(dst + done, payload(r, r->pos + BRD_RING_FRAME_HDR + r->rd_off), n);
                done += n;
                r->rd_off += n;
                if (r->rd_off != len)
                        continue;
                cons_consume(r, size, len);
                /* Every other frame brings a byte closer to cap; empty
                 * messages bring none, and a producer may send them
                 * without end: now and then, return what we have, or
                 * stop as a wait would stop, unless more frames are ready
                 * (bytes may follow: a call that can progress neither
                 * waits nor stops), up to RING_READ_EMPTY_CAP. */
                if (BRD_UNLIKELY(!len && ++empty % RING_READ_EMPTY_MAX == 0)) {
                        if (done)
                                break;
                        /* Its -EBADMSG (it poisoned the ring) or EOF
                         * is the answer, not a stop.  EOF as a wait sees
                         * it: CLOSED first (pairs with AO_store_release(
                         * state) in brd_ring_close(): the look at the tail
                         * then sees the final one), and no frame left. */
                        closed = AO_load_acquire(&r->peer_side->state) & BRD_RING_ST_CLOSED;
                        if (empty < RING_READ_EMPTY_CAP || closed) {
                                e = cons_frame(r, false, 0, deadline, &len, &size);
                                if (!e && empty < RING_READ_EMPTY_CAP)
                                        continue;
                                if (e == -EAGAIN && closed)
                                        e = brd__ring_gone(r, false);
                                if (e && e != -EAGAIN)
                                        break;
                        }
                        e = brd__ring_stop_due(r, timeout_ms, deadline);
                        if (e) {
                                /* A stop, not a wait: nothing armed afresh,
                                 * and a producer that rang this arm rings no
                                 * more.  A brd_ring_fd() loop, edge-triggered
                                 * too, is shown the fd again: it calls again,
                                 * and that call arms. */
                                if (e == -EAGAIN && AO_load(&r->fd_used))
                                        bell_ring(r->efd_own);
                                break;
                        }
                }
        }
        if (done)
                return (ssize_t)done;
        return e == -EPIPE ? 0 : e;
}

RING_HELD(RING_API, ssize_t, brd_ring_read, stream_read_held,
          (struct brd_ring *r, void *buf, size_t cap, int timeout_ms),
          (r, buf, cap, timeout_ms))

#if BRD_DEBUG_CHECKS
/* ------------------------------------------------------- debug checks */

static __thread pid_t ring_tid;

/* Enter a call: -EBUSY when another thread (or a signal handler on this
 * thread) is inside one of @r.  Not in a
 * forked child that inherited @r: the call says -EBADF there, whatever
 * thread of the parent was inside it at the fork. */
static int ring_enter(struct brd_ring *r)
{
        if (!ring_tid)
                ring_tid = gettid();
        /* Our own mark too: only a signal handler enters twice (no call
         * calls another), and its leave would clear the outer call's mark. */
        if (!r || !ring_mine(r) || AO_compare_and_swap_full(&r->user, 0, (AO_t)ring_tid))
                return 0;
        return -EBUSY;
}

static void ring_leave(struct brd_ring *r)
{
        if (r)
                AO_store_release(&r->user, 0);
}

#undef brd_ring_send
#undef brd_ring_reserve
#undef brd_ring_commit
#undef brd_ring_flush
#undef brd_ring_write
#undef brd_ring_recv
#undef brd_ring_peek
#undef brd_ring_release
#undef brd_ring_read

/*
 * The exported call @name: ring_enter(), then the unchecked call and
 * ring_leave() inside one hold of the endpoint (RING_HELD holds nothing in
 * this build).  The hold ends last: brd_ring_close() in another thread
 * frees the endpoint as soon as it sees it end, so nothing may touch @r
 * after (a ring_leave() after it wrote into freed memory).  Held only once
 * entered: a thread turned away with -EBUSY leaves the holder's mark alone.
 */
#define RING_CHECKED(type, name, unchecked, params, args)       \
        BRD_EXPORT type name params                             \
        {                                                       \
                type ret = ring_enter(r);                       \
                                                                \
                if (ret)                                        \
                        return ret;                             \
                ring_hold(r);                                   \
                ret = unchecked args;                           \
                ring_leave(r);                                  \
                if (ring_unhold_closing(r))                     \
                        ret = -ECANCELED;                       \
                return ret;                                     \
        }

RING_CHECKED(int, brd_ring_send, ring_send_unchecked,
             (struct brd_ring *r, const void *msg, size_t len, int timeout_ms),
             (r, msg, len, timeout_ms))
RING_CHECKED(int, brd_ring_reserve, ring_reserve_unchecked,
             (struct brd_ring *r, size_t len, void **ret_buf, int timeout_ms),
             (r, len, ret_buf, timeout_ms))
RING_CHECKED(int, brd_ring_commit, ring_commit_unchecked,
             (struct brd_ring *r, size_t len),
             (r, len))
RING_CHECKED(int, brd_ring_flush, ring_flush_unchecked,
             (struct brd_ring *r),
             (r))
RING_CHECKED(ssize_t, brd_ring_write, ring_write_unchecked,
             (struct brd_ring *r, const void *buf, size_t len, int timeout_ms),
             (r, buf, len, timeout_ms))
RING_CHECKED(ssize_t, brd_ring_recv, ring_recv_unchecked,
             (struct brd_ring *r, void *buf, size_t cap, int timeout_ms),
             (r, buf, cap, timeout_ms))
RING_CHECKED(ssize_t, brd_ring_peek, ring_peek_unchecked,
             (struct brd_ring *r, const void **ret_msg, int timeout_ms),
             (r, ret_msg, timeout_ms))
RING_CHECKED(int, brd_ring_release, ring_release_unchecked,
             (struct brd_ring *r),
             (r))
RING_CHECKED(ssize_t, brd_ring_read, ring_read_unchecked,
             (struct brd_ring *r, void *buf, size_t cap, int timeout_ms),
             (r, buf, cap, timeout_ms))
#endif
