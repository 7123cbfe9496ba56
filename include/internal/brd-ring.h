/* SPDX-License-Identifier: MIT */
/*
 * The ring's shared-memory wire format.  Private, versioned, fixed-width:
 * whatever is in here may be written by a hostile or dying peer, so every
 * reader copies a field into a local once (AO_load), validates it, and never
 * re-reads it (RELIABILITY B17).  No pointers, no off_t, no bool, no enum.
 *
 * One sealed memfd holds the header page and then the data area:
 *
 *   file offset 0          struct brd_ring_hdr (padded to data_off)
 *   file offset data_off   capacity bytes of frames (capacity = 2^k >= 4096)
 *
 * Each endpoint maps the data area twice, back to back, so that a frame that
 * runs past the end of the data area continues in the second view: every
 * message is contiguous, peek/reserve never copy, no wrap frame is needed
 * (a PAD may still end a lap early: see below).
 *
 * Indices (tail, head) are free-running 64-bit byte counts; the byte of
 * index i lives at data + (i & mask).  Both are multiples of 8 and
 * 0 <= tail - head <= capacity.  The producer alone writes tail, the
 * consumer alone writes head.  They start at 0 and never wrap: the ends'
 * checks compare them as plain numbers (a head past the tail is corrupt),
 * and 2^62 bytes are decades of streaming at 100 GB/s; attach refuses an
 * index from BRD_RING_INDEX_MAX up (a header crafted to wrap soon).
 *
 * A frame is one 64-bit word (low half: payload length, high half: type),
 * the payload, and padding up to the next multiple of 8.  Frames start at
 * 8-aligned indices and never straddle a published tail.  A PAD frame is
 * skipped by the consumer; the producer uses it to put large payloads at a
 * fixed offset modulo 4 KiB (payloads >= BRD_RING_PAGE_ALIGN_MIN start on a
 * 4 KiB boundary, >= BRD_RING_LINE_ALIGN_MIN on a cache line) and, in rings
 * of RING_EARLY_CAP_MIN to _MAX, to skip the rest of a lap so that a large
 * frame starts the next one (ringbuf/ring.c, prod_place_early()).  It
 * publishes a PAD only with the message frame that follows it: a PAD that
 * ends at the tail, or follows a PAD, is corrupt.
 */
#ifndef BROOD_RING_PRIVATE_H
#define BROOD_RING_PRIVATE_H

#include "internal/brd-private.h"

#define BRD_RING_MAGIC   0x52445242u    /* "BRDR" little-endian */
/* 2: doorbells are never read and a ring writes 0 (ringbuf/endpoint.h,
 * bell_ring()).  A version-1 peer reads them.
 * 3: a side's claim word (was an attach count): one endpoint per role.
 * 4: a side's bell word and the FUTEX arm bit: sleeps in futex_waitv(). */
#define BRD_RING_VERSION 4u
/* A doorbell's count from brd_ring_create() on: semaphore eventfds, so a
 * stray read takes 1 of it, and rings wake as long as it is above 0. */
#define BRD_RING_BELL_COUNT 0xffffffffu

#define BRD_RING_FRAME_MSG 0x4d534721u  /* "!GSM" */
#define BRD_RING_FRAME_PAD 0x44415021u  /* "!PAD" */
#define BRD_RING_FRAME_HDR 8u

#define BRD_RING_CAPACITY_MIN   4096u
#define BRD_RING_CAPACITY_MAX   (1ull << 32)    /* 4 GiB: frame lengths are u32 */
#define BRD_RING_LINE_ALIGN_MIN 1024u
/*
 * Page alignment costs a PAD of up to 4 KiB - 8 per message: 1/8 of a 32 KiB
 * payload at most.  Below that a line does: 4 KiB messages packed on lines
 * run +15-20% with the CPUs far apart (one pad+header line right before
 * each payload instead of a PAD page between them, half the ring wasted), at
 * -7% when near (measured).
 */
#define BRD_RING_PAGE_ALIGN_MIN 32768u
/* Attach refuses indices from here up (see the top). */
#define BRD_RING_INDEX_MAX (UINT64_C(1) << 62)
#define BRD_RING_ALIGN_PAGE     4096u

/*
 * Bits of a side's state word.  The rest of the word is an arm sequence
 * number (state >> 3) that changes every time the side arms, so the peer
 * rings at most once per sleep.  How it rings: SLEEPING alone, the
 * doorbell; SLEEPING | FUTEX, its own bell word (add 1, then FUTEX_WAKE it),
 * which the sleeper waits on in futex_waitv() (ringbuf/wait.c).
 */
#define BRD_RING_ST_SLEEPING 1u         /* armed: ring me after you publish */
#define BRD_RING_ST_CLOSED   2u         /* closed in order (producer: EOF after drain) */
#define BRD_RING_ST_FUTEX    4u         /* with SLEEPING: ring my futex, not my doorbell */
#define BRD_RING_ST_SEQ1     8u

/* The hot index of one side: alone on its cache line, because the peer
 * reads it only when its cached copy runs out. */
struct brd_ring_idx {
        AO_t idx;
        BRD_PAD(pad, sizeof(AO_t));
};

/*
 * The cold line of one side: written by that side only at attach, when it
 * arms/disarms a sleep, and at close (and by a consumer of frames of 32 KiB
 * and more around each wait: its waiting word; as sleeps ask for fences:
 * asym, fence_req; and when it rings the peer's futex sleep: bell).  The
 * peer reads state after every publish, so it must not share a line with
 * anything written per small message: kept clean, that read is an L1 hit.
 */
struct brd_ring_side {
        AO_t state;             /* BRD_RING_ST_* | seq << 3 */
        AO_t pid;               /* the attached process, 0 before attach */
        AO_t start_time;        /* /proc start time of pid: survives pid reuse */
        AO_t asym;              /* 1: this side skips the publish fence now (membarrier) */
        AO_t claim;             /* brd__owner_word() of the process attached to this
                                 * role, CAS'ed at attach (role_claim()); 0: never */
        AO_t cpu;               /* 1 + the CPU this side last waited on; 0: unknown */
        unsigned waiting;       /* consumer of large frames: 1 while in a wait (advisory) */
        unsigned bell;          /* the futex the peer sleeps on: this side adds 1 and
                                 * wakes it to ring a FUTEX arm of the peer's */
        AO_t fence_req;         /* 1: my sleeps ask the peer to fence its publishes (wait.c) */
};

struct brd_ring_hdr {
        /* Line 0: written once by brd_ring_create, validated by attach. */
        uint32_t magic;         /* BRD_RING_MAGIC */
        uint32_t version;       /* BRD_RING_VERSION */
        uint32_t hdr_size;      /* sizeof(struct brd_ring_hdr) */
        uint32_t flags;         /* enum brd_ring_flags given to create */
        uint64_t capacity;      /* bytes of the data area, 2^k */
        uint64_t mask;          /* capacity - 1 */
        uint64_t data_off;      /* file offset of the data area: page-aligned */
        uint64_t ring_id;       /* random; matches the handles' id */
        /* The inode of the creator's pid namespace (0: unknown): each end
         * watches the other by pid, so both must be in that namespace
         * (attach: -EXDEV otherwise). */
        uint64_t pid_ns;
        BRD_PAD(pad0, 56);
        struct brd_ring_idx tail;       /* line 1: producer-written only */
        struct brd_ring_idx head;       /* line 2: consumer-written only */
        struct brd_ring_side prod;      /* line 3 */
        struct brd_ring_side cons;      /* line 4 */
};

_Static_assert(sizeof(struct brd_ring_idx) == BRD_CACHELINE, "an index owns its cache line");
_Static_assert(sizeof(struct brd_ring_side) == BRD_CACHELINE, "a side owns its cache line");
_Static_assert(sizeof(unsigned) == 4, "a futex word is 32 bits");
_Static_assert(offsetof(struct brd_ring_hdr, tail) == 1 * BRD_CACHELINE, "tail on line 1");
_Static_assert(offsetof(struct brd_ring_hdr, head) == 2 * BRD_CACHELINE, "head on line 2");
_Static_assert(offsetof(struct brd_ring_hdr, prod) == 3 * BRD_CACHELINE, "producer side on line 3");
_Static_assert(offsetof(struct brd_ring_hdr, cons) == 4 * BRD_CACHELINE, "consumer side on line 4");
_Static_assert(sizeof(struct brd_ring_hdr) == 5 * BRD_CACHELINE, "header is 5 lines");
_Static_assert(sizeof(struct brd_ring_hdr) <= BRD_RING_CAPACITY_MIN, "header fits a page");

/*
 * The spin budget of a wait (wait.c, brd__ring_wait()).  Every wait spins
 * up to BRD_RING_SPIN_NS before it sleeps: about what waking a halted vCPU
 * costs (DESIGN: 20-27 us), the 2-competitive bound.  A peer that streams at a
 * steady cadence a little slower than that makes a side sleep once per
 * message, and then a sleep costs far more than its wake-up: a consumer fed
 * every 60-200 us spent 45-60 us of CPU per slept message, and the producer
 * rang a doorbell for nearly every one (1 MiB messages through 16 MiB ran at
 * 12-14 GB/s against 19-25 GB/s with a side that waited awake; measured on
 * a 2-vCPU guest).  So a wait that spun the base budget, slept, and was woken
 * by the peer's progress within BRD_RING_SPIN_MAX_NS of its start lets the
 * next waits spin 5/4 of that, at most BRD_RING_SPIN_MAX_NS: about two slept
 * messages' CPU, so still within twice what sleeping costs.  Past the base
 * budget every poll yields the CPU (sched_yield()), so that the longer spin
 * takes nothing from other processes that want it (4 actors on 2 CPUs:
 * brood demo 10% slower spinning, 10% faster yielding).  A wait that
 * sleeps despite a longer budget (the cadence broke: idle, a slower peer)
 * resets it to the base, so an idle side spins at most one longer budget:
 * brd__ring_wait() does that as it goes to sleep, and asks this function only
 * after a wait that spun the base budget and slept.
 * @waited: ns from the wait's start to the progress that ended its sleep.
 */
#define BRD_RING_SPIN_NS     20000
#define BRD_RING_SPIN_MAX_NS 100000

static inline int64_t brd__ring_spin_next(int64_t waited)
{
        if (waited < 0 || waited > BRD_RING_SPIN_MAX_NS)
                return BRD_RING_SPIN_NS;
        waited += waited / 4;
        if (waited > BRD_RING_SPIN_MAX_NS)
                return BRD_RING_SPIN_MAX_NS;
        return waited > BRD_RING_SPIN_NS ? waited : BRD_RING_SPIN_NS;
}

/*
 * The fence mode (wait.c, ring_arm(); endpoint.c, brd__ring_bell_for()).  A
 * publisher registered with membarrier skips the fence of its publish and
 * its peer pays instead, at every sleep, a membarrier(GLOBAL_EXPEDITED),
 * which interrupts every CPU that runs a registered process (ring.c).
 * Mostly that is the better trade, by far: fenced, each publish waits for
 * a cache-line hand-off (64 B messages, CPUs far apart: 75 -> 15 M/s,
 * measured on a 2-vCPU guest).  But where interrupting a CPU is dear (that
 * guest: 1.3 us with the other CPU idle, 24 us on average while it runs a
 * registered process) a side that sleeps for nearly every message spends
 * more in membarrier than all the fences it saves (a spin-off 64 B round
 * trip took 44 us, 23.5 us with fences; a raw eventfd ping-pong 21 us).
 * So a sleeper whose membarriers cost more than BRD_RING_FENCE_MB_NS on
 * average (weight 1/8, samples clamped to BRD_RING_FENCE_MB_MAX_NS, so that
 * one preempted call is not enough; asking until the average falls below
 * half) asks its peer to fence (fence_req in its side); a publisher that
 * finds it asleep and asking fences its next BRD_RING_FENCE_PUBLISHES
 * publishes and says so in its own side (asym 0), and a sleeper that reads
 * that needs no membarrier.  Bounded: per sleep of the peer's it saw, a
 * publisher pays at most that many fences (far apart about 0.5 us each:
 * the price of one dear membarrier), and a stream whose consumer stops
 * sleeping stops them as soon.  A sleeper whose peer fences measures no
 * membarrier, so it keeps asking: at that bounded price.
 */
#define BRD_RING_FENCE_MB_NS     4000
#define BRD_RING_FENCE_MB_MAX_NS (4 * BRD_RING_FENCE_MB_NS)
#define BRD_RING_FENCE_PUBLISHES 8

/* The sleeper's average membarrier cost after a sample of @ns (weight 1/8;
 * the first sample, @avg 0, taken as it is). */
static inline int64_t brd__ring_mb_avg(int64_t avg, int64_t ns)
{
        if (ns > BRD_RING_FENCE_MB_MAX_NS)
                ns = BRD_RING_FENCE_MB_MAX_NS;
        if (ns < 0)
                ns = 0;
        return avg ? avg + (ns - avg) / 8 : ns;
}

/* Does a sleeper whose membarriers cost @avg ns ask for fences?  @asking:
 * it does now. */
static inline bool brd__ring_fence_want(int64_t avg, bool asking)
{
        return avg > (asking ? BRD_RING_FENCE_MB_NS / 2 : BRD_RING_FENCE_MB_NS);
}

/* What the sleepers of this process's endpoints ask for: for benchmarks and
 * tests (ring-bench --fence), never set by the library. */
enum brd__fence_policy {
        BRD_FENCE_AUTO,         /* by their membarriers' cost (the default) */
        BRD_FENCE_NEVER,        /* never: they pay a membarrier per sleep */
        BRD_FENCE_ALWAYS,       /* at every sleep */
};
extern int brd__fence_policy BRD_HIDDEN;

/* How long a wait of this process's endpoints sleeps on futexes before it
 * sleeps in its epoll set (ringbuf/wait.c), in ms: RING_FUTEX_MS.  For
 * tests, never set by the library: longer (a futex sleep that only a ring
 * or an interrupt ends; the poll bounds of wait_bound_ms() are then not
 * kept) or 0 (no futex sleep). */
extern int brd__ring_futex_ms BRD_HIDDEN;

/* How often, at most, a producer looks at its sleeping consumer's pidfd
 * after rings that cannot tell whether it woke (prod_published(),
 * ringbuf/ring.c), in ms: RING_LOOK_MS.  For tests, never set by the
 * library: 0 (a look at every publish that finds such a sleep) or longer. */
extern int brd__ring_look_ms BRD_HIDDEN;

/* Frame word helpers: one 64-bit load or store, never two 32-bit ones. */
static inline uint64_t brd__ring_frame(uint32_t len, uint32_t type)
{
        return (uint64_t)len | (uint64_t)type << 32;
}

#endif /* BROOD_RING_PRIVATE_H */
