/* SPDX-License-Identifier: MIT */
/*
 * The ring endpoint, private to ringbuf/: its process-local struct, the
 * constants the calls share, and the few helpers that the I/O calls
 * (ring.c), their wait (wait.c) and the setup calls (endpoint.c: create,
 * attach, close, fd, interrupt, stats) need.  The shared-memory wire format
 * is in internal/brd-ring.h.
 */
#ifndef BROOD_RING_ENDPOINT_H
#define BROOD_RING_ENDPOINT_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <brood/ringbuf.h>
#include <brood/shm.h>
#include "internal/brd-release.h"
#include "internal/brd-ring.h"

#define RING_PROD BRD_HANDLE_RING_PRODUCER
#define RING_CONS BRD_HANDLE_RING_CONSUMER

/* Handle fds, in this order. */
#define RING_FD_MEM   0
#define RING_FD_DATA  1         /* doorbell "data available": the consumer sleeps on it */
#define RING_FD_SPACE 2         /* doorbell "space available": the producer sleeps on it */
#define RING_NFDS     3

#define RING_KNOWN_FLAGS (BRD_RING_NOSPIN | BRD_RING_BATCH | BRD_RING_POPULATE | BRD_RING_EINTR)
#define RING_BATCH_MAX 8192u
#define RING_COPY_BIG  BRD_COPY_BIG
#define RING_PAGE      4096u
/* Messages up to this size take send's and recv's inline small paths. */
#define RING_SMALL 64u
/* Poll bound when death cannot be watched through a pidfd, or when the
 * asymmetric fence failed: the ring state is re-checked this often. */
#define RING_FALLBACK_MS 20
/* Poll bound of a sleep while no peer is watched (none attached yet). */
#define RING_UNATTACHED_MS 50
/* How long a wait sleeps on futexes before it sleeps in its epoll set
 * (wait.c), and so the bound of a death's detection. */
#define RING_FUTEX_MS 20
/* ... and at most this many futex sleeps: each one after the first found
 * nothing ready.  A peer's bell word moves with every wake-up it gives, and
 * may move with none (plain stores, a hostile peer): futex_waitv() then
 * returns at once, each time. */
#define RING_FUTEX_SLEEPS 16
/* A producer looks at its sleeping consumer's pidfd after rings that
 * cannot tell whether it woke (prod_published()), at most once per this
 * (on the coarse clock: once per kernel tick where that is longer). */
#define RING_LOOK_MS 1
#define RING_TOKEN 0x6272642d72696e67ull       /* "brd-ring" */
/* r->held while brd_ring_close() in another thread waits for the holder:
 * the holder was cancelled for good (a write answers -ECANCELED, not its
 * count).  1: held; 0: not. */
#define RING_HOLD_CLOSING 2
/* Off the fast paths: kept out of line so that those stay leaf functions
 * that save no registers. */
#define RING_SLOW __attribute__((noinline))
/*
 * Lag (see cons_lag): a side that catches up with the other one waits,
 * without touching shared memory, until the other is lag_bytes ahead (an
 * eighth of the ring, at most RING_LAG_BYTES), polling the other's index
 * once every lag_pauses pauses, for at most RING_LAG_POLLS polls and
 * RING_LAG_BUDGET pauses in all, and not after the other side stopped
 * moving.  Each poll costs the other side a cache miss on its next index
 * store, so the interval adapts (RING_LAG_PAUSES_MIN..MAX, doubling or
 * halving) until a poll finds about lag_bytes of progress.
 * The consumer probes whether that pays after RING_LAG_PROBE_MIN chases,
 * backing off to one probe per RING_LAG_PROBE_MAX when it does not.
 */
#define RING_LAG_BYTES       32768u
#define RING_LAG_PAUSES_MIN  4u
#define RING_LAG_PAUSES_INIT 16u
#define RING_LAG_PAUSES_MAX  256u
#define RING_LAG_BUDGET      512u
#define RING_LAG_POLLS       8
#define RING_LAG_FRAMES      4
#define RING_LAG_PROBE_MIN   16u
#define RING_LAG_PROBE_MAX   65536u
/* Early wrap of large frames (prod_place_early()): the window, in frames,
 * and the rings it is for: large enough to outgrow the TLB's reach, small
 * enough that a gap fits a reservation word. */
#define RING_EARLY_FRAMES    4u
#define RING_EARLY_CAP_MIN   (4ull << 20)
#define RING_EARLY_CAP_MAX   (1ull << 31)

/*
 * The start of an endpoint's private MADV_WIPEONFORK page, which a forked
 * child reads as zeros.  The reservation lives here too: commit's fast path
 * reads only that word, and a child's copy of the endpoint then has none
 * (nor the token).
 */
struct brd__ring_local {
        uint64_t token;                 /* RING_TOKEN */
        uint64_t resv;                  /* the reservation, see resv_word(); 0: none */
};

struct brd_ring {
        /* Hot: touched on every message. */
        uint8_t *data;                  /* the data area, mapped twice back to back */
        uint64_t mask;
        uint64_t cap;
        uint64_t pos;                   /* own index: producer tail incl. unpublished; consumer head */
        uint64_t peer;                  /* cached peer index (producer: head, consumer: tail) */
        AO_t *own_idx, *peer_idx;
        struct brd_ring_side *own, *peer_side;
        uint64_t rung;                  /* peer state word last rung for (ring_bell()) */
        uint64_t batch;                 /* producer: publish once pos - ring_pub() reaches it; 0: always */
        const struct brd__ring_local *loc;      /* the wipe-on-fork page, see ring_mine() */
        uint64_t *resv;                 /* where the reservation is: &loc->resv, or &resv_own */
        uint64_t fork_gen;
        uint64_t max_msg;
        int err;                        /* final: -EPIPE, -ECONNRESET, -EBADMSG; 0 */
        uint32_t role;
        unsigned flags;
        bool asym;                      /* no fence when publishing (the peer's membarrier) */

        /*
         * Consumer: the peeked frame, producer: the reservation (*resv),
         * each one word written by one call and read by the next (one store,
         * one load; two words would also invite the compiler to fuse their
         * loads into one 16-byte load, which the CPU cannot forward from two
         * 8-byte stores: a ~10 ns stall per zero-copy message, measured).
         * A frame is at most cap / 2 + 8 <= 2^31 + 8 bytes, a payload at
         * most 2^31, and a reservation's gap an alignment (below 4 KiB + 8)
         * or, for an early wrap, the rest of a lap (see resv_valid()).
         * The peeked frame stays here, not in the wipe-on-fork page, where
         * recv would reach it through a pointer (a store per message there
         * cost recv ~0.2 ns when recv cleared it, measured; recv now only
         * checks it); release keeps its token check instead.  While it is
         * set, pos is past that frame already (ring_unpeek()).
         */
        uint64_t peek;                  /* frame bytes << 32 | payload bytes (all, for the
                                         * stats: read() counts a message it finishes); 0: none */
        uint64_t resv_own;              /* the reservation without a wipe-on-fork page */
        uint64_t rd_off;                /* bytes of the frame at pos (before it, while
                                         * peeked) that read() consumed */
        struct brd__release rel;        /* consumer: line release (cons_done());
                                         * producer: streaming stores (prod_copy) */
        /* Lag (brd__ring_lag_wait, cons_lag). */
        uint64_t lag_bytes;             /* how far ahead the other side may get: cap / 8, <= 32 KiB */
        uint32_t lag_pauses;            /* poll interval, adapted */
        uint64_t last_size;             /* consumer: frame bytes of the last message consumed */
        uint32_t lag_on;                /* streaming: let the producer get ahead */
        uint32_t lag_probe;             /* chases until the next probe */
        uint32_t lag_backoff;           /* lag_probe after a failed probe */

        /* Waiting. */
        int64_t spin_ns;                /* spin budget, see brd__ring_spin_next() */
        bool rung_woke;                 /* the ring of arm rung woke a sleeper */
        int64_t looked_ns;              /* producer: when it last looked after a ring
                                         * (coarse clock, see prod_published()) */
        bool armed, mb_failed, peer_dead, no_pidfd, no_futex, final_rung, tfd_set;
        bool peer_unsure;               /* the peer's start time could not be read for
                                         * now (peer_watch()): looked at again */
        uint64_t seq;
        /* The fence mode (brd-ring.h, BRD_RING_FENCE_*).  Sleeper: what its
         * membarriers cost (an average); whether it asks the peer to fence
         * is its side's fence_req.  Publisher: membarrier-registered, so it
         * may skip its fence; fenced publishes left before it skips it
         * again. */
        int64_t mb_ns;
        bool mb_registered;
        uint32_t fence_left;
        int efd_own, efd_peer, efd_intr, epfd, pidfd;
        int tfd;                        /* a brd_ring_fd() user's wait bound (fd_bound()); -1: none yet */
        pid_t peer_pid;
        uint64_t peer_start;
        AO_t intr;                      /* brd_ring_interrupt() pending */
        unsigned intr_gen;              /* a futex: moves with every interrupt (ring_intr()) */
        AO_t intr_busy;                 /* brd_ring_interrupt() calls inside ring_intr(),
                                         * brd_ring_fd() calls inside theirs */
        AO_t held;                      /* a call that may wait is running (ring_hold());
                                         * RING_HOLD_CLOSING: and close waits for it */
        bool hold_waited;               /* ...and went into brd__ring_wait() (or
                                         * brd__ring_stop_due()): its hold
                                         * ends with a CAS (ring_unhold_closing()) */
        AO_t fd_used;                   /* brd_ring_fd() was called */

        struct brd_ring_stats st;
        struct brd_seg *seg;
        uint8_t *map;                   /* the double mapping (2 * cap) + the token page */
        pid_t map_pid;                  /* getpid() at ring_map(), see brd__made_here() */
        bool arm_asym;                  /* the last arm saw the peer skip its fence
                                         * (wait.c: wait_bound_ms()) */
        uint64_t page;
        /* Cold.  pos + 1 of the last frame shown and left in the ring (peeked and
         * not released, or answered -EMSGSIZE): a PAD there now is the
         * peer's rewrite of a message we told of (B17), not a skip.  Never
         * cleared: pos never comes back to an old value. */
        uint64_t shown;
#if BRD_DEBUG_CHECKS
        /* Last, alone past the rest: a test write-protects its page to
         * catch a write after close (test-ringbuf-wait.c). */
        AO_t user;                      /* tid of the thread inside a call; 0: none */
#endif
};

/*
 * Is this endpoint this process's?  A forked child sees the endpoint's
 * MADV_WIPEONFORK page zeroed: one L1 load instead of a call into the fork
 * state on every message.  Without that page (kernel < 4.14), the fork
 * generation stamped at attach.
 */
extern const struct brd__ring_local brd__ring_no_local BRD_HIDDEN; /* r->loc without that page */

static inline bool ring_mine(const struct brd_ring *r)
{
        if (BRD_LIKELY(r->loc != &brd__ring_no_local))
                return r->loc->token == RING_TOKEN;
        return r->fork_gen == brd__fork_gen();
}

/* The fast paths' fork check: one load, no branch on the kernel.  Without
 * a wipe-on-fork page it always fails: every call then takes its slow path,
 * which checks the fork generation (ring_mine()). */
static inline bool ring_mine_fast(const struct brd_ring *r)
{
        return r->loc->token == RING_TOKEN;
}

/*
 * Our index as last published: read back from its line, which only we write
 * (one store less per message than a private copy).  A peer that scribbles
 * on it can only make us publish again, or (BATCH) hold back until flush.
 */
static inline uint64_t ring_pub(const struct brd_ring *r)
{
        return AO_load(r->own_idx);
}

/*
 * No ring call is a cancellation point: a thread cancelled inside one
 * would leave the endpoint held (close would wait for it for ever), an
 * interrupt counted or a sleep announced.  The eventfds are read and
 * written through syscall(), which is none; the waits and close disable
 * cancellation around what else they call (brd__nocancel()).
 */

/* Empty the interrupt eventfd.  It is ours alone (created non-blocking in
 * attach, never in a handle), so a read of it never blocks. */
static inline void efd_drain(int fd)
{
        uint64_t v;

        while (syscall(SYS_read, fd, &v, sizeof(v)) < 0 && errno == EINTR)
                ;
}

/* Raise the interrupt eventfd (level-triggered in the set).  EAGAIN: its
 * counter is full, so it already shows. */
static inline void efd_signal(int fd)
{
        uint64_t one = 1;

        while (syscall(SYS_write, fd, &one, sizeof(one)) < 0 && errno == EINTR)
                ;
}

/*
 * Ring a doorbell: write 0 to it.  Doorbells are never read by brood: a
 * semaphore eventfd of count BRD_RING_BELL_COUNT from brd_ring_create() on,
 * edge-triggered in the sleeper's epoll set.  Every write wakes that set,
 * and epoll reports the doorbell because its count is not 0; a write of 0
 * changes no count, so it can neither block nor fail (EAGAIN) at any count,
 * whatever flags the peer, who shares the open file description, gave it
 * (RELIABILITY B18: a flood, a saturated counter, O_NONBLOCK cleared).  A
 * read by anyone else who holds it takes 1 of the count: emptying it takes
 * 2^32 reads, after which rings wake nobody (the deadline and the death
 * watch still bound every wait).
 */
static inline void bell_ring(int fd)
{
        static const uint64_t zero;

        (void)syscall(SYS_write, fd, &zero, sizeof(zero));
}

/* futex(2) FUTEX_WAKE of the sleepers on @w; @op_flags: 0 for a word in
 * shared memory, FUTEX_PRIVATE_FLAG for one in this process's.  All of
 * them, at the same price: another holder of the ring's memfd that waits on
 * a bell would otherwise take the one wake-up meant for our peer.  Returns
 * how many it woke (-1: the call failed). */
static inline long futex_wake(unsigned *w, int op_flags)
{
        return syscall(SYS_futex, w, FUTEX_WAKE | op_flags, INT_MAX, NULL, NULL, 0);
}

/*
 * Ring the peer's FUTEX arm: move our bell word, then wake it.  The peer
 * read the bell before it armed and waits for it to differ from that
 * (futex_waitv()), so this ring is either seen by that compare or wakes it
 * once queued.  Release: the read of the peer's state that found it armed
 * comes before the bell's new value (pairs with the acquire read of the
 * bell before the arm, wait.c): the bell it read cannot be this one.
 */
static inline long ring_futex(struct brd_ring *r)
{
        AO_int_store_release(&r->own->bell, AO_int_load(&r->own->bell) + 1);
        return futex_wake(&r->own->bell, 0);
}

/*
 * Ring the peer's arm of state word @st, the way the arm asks.  true: a
 * futex wake woke a sleeper, so the peer lives; false: the ring cannot
 * tell (a doorbell write says nothing; a futex wake that woke nobody found
 * the peer on its way into or out of its sleep, or dead in it).
 */
static inline bool ring_bell(struct brd_ring *r, uint64_t st)
{
        r->st.doorbells++;
        if (st & BRD_RING_ST_FUTEX)
                return ring_futex(r) > 0;
        bell_ring(r->efd_peer);
        return false;
}

/*
 * A peeked frame is behind pos already (brd_ring_peek() moves pos, release
 * hands the space back): every consumer call but release first puts pos
 * back at the frame's start, where it is the next message again (it "stays
 * in the ring until released").
 */
static inline void ring_unpeek(struct brd_ring *r)
{
        if (BRD_UNLIKELY(r->peek)) {
                r->pos -= r->peek >> 32;
                r->peek = 0;
                r->shown = r->pos + 1;
        }
}

/* Attach and close: wake the peer however it sleeps, if it does. */
static inline void ring_wake_peer(struct brd_ring *r)
{
        (void)ring_futex(r);
        bell_ring(r->efd_peer);
}

/*
 * Interrupt the call that runs, or the next one: the flag is the truth
 * (spinners read it), the interrupt eventfd wakes an epoll sleep, the
 * generation a futex sleep (it read the generation before the flag).
 * The eventfd first: a call that sees the flag consumes the interrupt,
 * draining the eventfd (ring_cancel()), and a write that came after that
 * drain would keep the eventfd readable with no interrupt pending, for
 * good (a brd_ring_fd() user's poll spinning).  This way an epoll sleeper
 * woken by the write before the flag is set, or a brd_ring_fd() user's call
 * after the poll it ended, finds no flag and takes the write (a thread
 * stalled between the two stores would make them spin until the second);
 * the doorbell rung after the flag wakes them for it.
 */
static inline void ring_intr(struct brd_ring *r)
{
        efd_signal(r->efd_intr);
        AO_store_release(&r->intr, 1);
        AO_int_fetch_and_add1_release(&r->intr_gen);
        futex_wake(&r->intr_gen, FUTEX_PRIVATE_FLAG);
        /* And a showing after the flag (the doorbell: edge-triggered, never
         * read, so nothing is left behind): a brd_ring_fd() user woken by
         * the write before it (its call saw no interrupt: -EAGAIN) gets a
         * new edge, or an edge-triggered loop would sleep through it; and
         * an epoll sleep that began after a cancel drained that write (this
         * call stalled between its two stores past the cancel's wait for
         * it) is woken to see the flag, which no futex wake reaches. */
        bell_ring(r->efd_own);
}

/* The peer sleeps (its state word @st): ring it, once per arm.  true: no
 * ring of this arm proved it alive (a look may tell whether it died in
 * that sleep, brd__ring_peer_probe()). */
bool brd__ring_bell_for(struct brd_ring *r, uint64_t st);

/* Is the peer dead right now?  1: dead; 0: alive, or not attached yet;
 * < 0: the watch failed (-EMFILE, -ENFILE, -ENOMEM: try later; -EBADMSG:
 * its stamp is corrupt, the endpoint poisoned).  A system call or two: for
 * paths that make one anyway. */
int brd__ring_peer_probe(struct brd_ring *r);

/*
 * The endpoint is done: remember the final answer @e (-EPIPE, -ECONNRESET,
 * -EBADMSG, which overrides the others), keep brd_ring_fd() readable for good
 * so that a poll loop learns it, and disarm.  Returns the final answer.
 */
int brd__ring_final(struct brd_ring *r, int e);

/* Stamp the CPU we run on in our side (kept there for the peer's spin,
 * see brd__ring_wait()); returns the stamp.  A clean line stays clean when it
 * did not change. */
static inline uint64_t ring_stamp_cpu(struct brd_ring *r)
{
        int cpu = sched_getcpu();
        uint64_t v = cpu < 0 ? 0 : (uint64_t)cpu + 1;

        if (AO_load(&r->own->cpu) != v)
                AO_store(&r->own->cpu, v);
        return v;
}

/* Add @fd to the endpoint's epoll set @epfd for @events (its data: @fd).
 * 0 or -errno, the user's epoll watch limit (ENOSPC) as -ENOMEM: the
 * contract keeps -ENOSPC for shared memory. */
static inline int ring_epoll_add(int epfd, int fd, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.fd = fd };

        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
                return 0;
        return errno == ENOSPC ? -ENOMEM : -errno;
}

#endif /* BROOD_RING_ENDPOINT_H */
