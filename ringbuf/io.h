/* SPDX-License-Identifier: MIT */
/*
 * What the I/O calls (ring.c) and the wait (wait.c) share, private to
 * ringbuf/: where a frame is, publishing our index, re-reading the peer's
 * (validated: a bad one poisons the endpoint), and the wait's entry points.
 */
#ifndef BROOD_RING_IO_H
#define BROOD_RING_IO_H

#include "endpoint.h"

/* The peer is gone for good (@died: without closing): what the endpoint
 * answers from now on, through brd__ring_final(). */
int brd__ring_gone(struct brd_ring *r, bool died);

/*
 * Wait until the call can progress: the consumer until a frame is published,
 * the producer until the room up to index @end is free.  Spins first (unless
 * BRD_RING_NOSPIN), then sleeps (a futex, then the doorbell, the interrupt
 * and the peer's pidfd: wait.c) until @deadline (brd__deadline(); INT64_MAX: none).  Timeout 0 never
 * sleeps.  0 = ready (the cached peer index shows it), else the call's
 * answer: -EAGAIN, -ETIMEDOUT, -ECANCELED, -EINTR (BRD_RING_EINTR), -EPIPE,
 * -ECONNRESET, -EBADMSG, or a system call's -errno (-EMFILE: no fd for the
 * peer's pidfd).  The caller found the ring not ready just before.
 */
int brd__ring_wait(struct brd_ring *r, uint64_t end, int timeout_ms, int64_t deadline);

/*
 * For a call that goes on without waiting yet has nothing to return (a
 * read() fed only empty messages, which a producer may send without end),
 * asked once every RING_READ_EMPTY_MAX of them: must it stop as a wait would?
 * -ECANCELED for an interrupt (consumed, as a wait consumes it; close from
 * another thread interrupts too), -EAGAIN for timeout 0, -ETIMEDOUT past
 * @deadline; 0: go on.
 */
#define RING_READ_EMPTY_MAX 256u
/* ... but goes on while frames are ready (bytes may follow the empty
 * messages), up to this many empty messages in one call. */
#define RING_READ_EMPTY_CAP (64u * RING_READ_EMPTY_MAX)
int brd__ring_stop_due(struct brd_ring *r, int timeout_ms, int64_t deadline);

/*
 * Let the other side get ahead without a system call (see cons_lag() in
 * ring.c): wait until @want bytes past pos are ready (consumer: published
 * frames; producer: free space), the other side stops moving, or the poll
 * or pause budget is spent.  Returns the number of polls that saw it move,
 * or -EBADMSG (a bad index, from the refresh).
 */
int brd__ring_lag_wait(struct brd_ring *r, uint64_t want);

/* A bad value read from shared memory: the endpoint is done (-EBADMSG). */
static inline int ring_poison(struct brd_ring *r)
{
        return brd__ring_final(r, -EBADMSG);
}

static inline AO_t *frame_word(const struct brd_ring *r, uint64_t idx)
{
        return (AO_t *)(void *)(r->data + (idx & r->mask));
}

static inline uint8_t *payload(const struct brd_ring *r, uint64_t idx)
{
        /* idx & mask < cap and a payload is at most cap / 2: the second
         * view of the data area holds whatever runs past the end. */
        return r->data + (idx & r->mask);
}

/* ------------------------------------------------------------ publish */

/*
 * Store our index and read the peer's state word after it (Dekker,
 * publisher half).  Rings no doorbell: the hot callers test the word and
 * leave for an out-of-line function when it says SLEEPING (or CLOSED), so
 * that they stay leaf functions; everyone else calls ring_publish().
 */
static inline uint64_t ring_publish_quiet(struct brd_ring *r)
{
        /* Producer: pairs with AO_load_acquire(tail) in cons_refresh(): the
         * frames below pos are written before the consumer can see them.
         * Consumer: pairs with AO_load_acquire(head) in prod_refresh(): our
         * reads of the frames below pos are done before the producer may
         * overwrite them. */
        uint64_t pos = r->pos;

        AO_store_release(r->own_idx, pos);
        /* The index store must be visible before we read the peer's state;
         * pairs with the fence (and the membarrier) in ring_arm().  With
         * asym, the peer's membarrier provides this barrier for us, and
         * only the compiler must keep the order. */
        if (BRD_LIKELY(r->asym)) {
                AO_compiler_barrier();
        } else {
                AO_nop_full();
                /*
                 * Fenced on the sleeping peer's request (brd-ring.h); after
                 * the last, back to skipping the fence.  asym 1 and a fence
                 * before the first unfenced publish: a sleeper that still
                 * reads asym 0 (and so pays no membarrier) armed before
                 * that fence, so our state read below sees it asleep
                 * (Dekker on asym and the state word) and rings it.  No
                 * call: one would cost every publish a saved register.
                 */
                if (BRD_UNLIKELY(r->fence_left) && !--r->fence_left) {
                        AO_store(&r->own->asym, 1);
                        AO_nop_full();
                        r->asym = true;
                }
        }
        return AO_load(&r->peer_side->state);
}

/* Publish, and ring the peer if it announced that it sleeps.  Returns the
 * peer's state word as read after the store. */
static inline uint64_t ring_publish(struct brd_ring *r)
{
        uint64_t st = ring_publish_quiet(r);

        if (BRD_UNLIKELY(st & BRD_RING_ST_SLEEPING))
                brd__ring_bell_for(r, st);
        return st;
}

static inline int cons_refresh(struct brd_ring *r)
{
        /* Pairs with AO_store_release(tail) in ring_publish(). */
        uint64_t t = AO_load_acquire(r->peer_idx);

        if (BRD_UNLIKELY(t < r->peer || t - r->pos > r->cap || (t & 7)))
                return ring_poison(r);
        r->peer = t;
        return 0;
}

static inline int prod_refresh(struct brd_ring *r)
{
        /* Pairs with AO_store_release(head) in ring_publish(). */
        uint64_t h = AO_load_acquire(r->peer_idx);

        /* Not past our pos: the published tail, or with BATCH a little less.
         * A head between the two claims frames not yet published: more room
         * than there is, but still within one lap of pos, so what we write
         * there overwrites only frames that this consumer, the liar, has
         * not been shown (and stays inside the mapping). */
        if (BRD_UNLIKELY(h < r->peer || h > r->pos || (h & 7)))
                return ring_poison(r);
        r->peer = h;
        return 0;
}

#endif /* BROOD_RING_IO_H */
