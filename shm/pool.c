/* SPDX-License-Identifier: MIT */
/*
 * The shared pool: one sealed segment, a heap that every process which
 * attached it allocates from and frees to at the same time.
 *
 * Two layers (wire layout in internal/brd-pool.h):
 *  - small blocks (64 B << c, c < BRD_POOL_NCLASSES, up to 64 KiB): one
 *    lock-free Treiber stack per size class, ABA-safe through a 32-bit tag
 *    in the head word; a per-granule state byte (class + FREE/ALLOC) turns
 *    every free into one CAS that also rejects double and foreign frees;
 *  - pages: a buddy allocator under the pool lock (a word in the header,
 *    see pool_lock()) hands out spans (which are carved into small blocks)
 *    and large blocks, and coalesces on free.  When it runs dry it reclaims
 *    spans whose blocks are all free back from the class stacks, so space
 *    freed in one class serves any other size.
 *
 * A small cache per class makes the common alloc/free pair cost one atomic
 * instead of three, but only while the process is single-threaded (glibc's
 * __libc_single_threaded, the test its own malloc uses): then nobody else
 * can touch it, so it needs no lock, and no lock is left for fork() to
 * deadlock on.  Cached blocks are in state CACHED: a double free of one
 * still fails, stats do not count them as used.  Once a second thread
 * exists the cache is flushed (by whichever thread claims it first) and
 * bypassed; a forked child finds the generation changed and forgets the
 * parent's slot without touching it: those blocks are the parent's.  The
 * cache lives in a slot in the segment (struct brd_pool_slot), so that an
 * owner that dies without brd_pool_close() leaks nothing: slots_reap()
 * hands its blocks back before an alloc reports -ENOSPC.  A lock holder
 * that dies is survived: a waiter that finds its process gone takes the
 * lock over and rebuilds the buddy free lists from the page words, which
 * stay a valid tiling of the data area after every single store (see
 * brd_pool_page).  The lock is a plain owner word, not a pthread mutex, so
 * that a peer scribbling on it can make us wait (at most a bounded time:
 * -ETIMEDOUT) or poison the pool, but never makes glibc or the kernel
 * follow pointers it wrote (a robust mutex's list links live in it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"

struct brd_pool {
        struct brd_seg *seg;
        unsigned char *base;
        struct brd_pool_hdr *hdr;
        struct brd_pool_page *pg;
        unsigned char *st;              /* granule state bytes (AO char) */
        unsigned char *data;
        /* Geometry, copied once from a validated header: shared memory is
         * never re-read for a bound. */
        uint64_t data_off;
        uint64_t data_size;
        uint64_t ngran;
        uint32_t npages;
        unsigned max_order;             /* largest order any block can have */
        unsigned flags;                 /* enum brd_pool_flags */
        uint64_t fork_gen;
        uint64_t home_ns;               /* the creator's pid namespace (hdr, read once); 0: unknown */
        /* The fork generation pool_where() last found usable, with
         * POOL_LATCHED set once this handle is poisoned (pool_latch()). */
        AO_t ok_gen;
        /* The single-threaded cache: granule indices of CACHED blocks, in
         * a slot in shared memory (struct brd_pool_slot). */
        struct brd_pool_slot *slots;
        uint32_t nslots;
        struct brd_pool_slot *slot;     /* ours; NULL: none (yet) */
        bool slot_tried;                /* claiming one failed in this process */
        uint64_t cache_gen;             /* fork generation the slot belongs to */
        AO_t cache_dirty;               /* 1: may hold blocks (read by any thread) */
        uint32_t cap[BRD_POOL_NCLASSES];        /* blocks kept per class */
        /* Bytes the cache holds, and at most (the pool's data over twice
         * its slots): all the caches of live processes together never
         * keep more than half the pool from the others. */
        int64_t cached, cache_budget;
        /* Test hook (brd__pool_test_reclaim()): called after pool_reclaim()'s
         * passes, as a peer writing shared memory at that moment. */
        void (*reclaim_peer)(void *hdr, unsigned c, int pass, void *arg);
        void *reclaim_arg;
        /* pool_reclaim()'s scratch, process-local so that no peer can
         * steer it (it is used under the pool lock only, so one per handle
         * serves every thread): rc[0, nspans) holds per span (a buddy block
         * of at least 2^SPAN_MIN_ORDER pages, at index head page >>
         * SPAN_MIN_ORDER) the round it was last counted in and the count
         * (RC_COUNT_BITS), or RC_QUEUED once released.  nspans = npages >>
         * SPAN_MIN_ORDER. */
        uint32_t nspans;
        uint32_t rc_round;              /* the current round; entries of other rounds count 0 */
        uint32_t rc[];
};

#define POOL_FLAGS (BRD_POOL_POPULATE | BRD_POOL_NOFORK)
#define IDX_MASK 0xffffffffull
#define TAG_ONE  (1ull << 32)

static inline uint64_t class_size(unsigned c)
{
        return (uint64_t)BRD_POOL_GRAN << c;
}

/* Span = the buddy block a class is carved from: >= 64 KiB and >= 4 blocks. */
#define SPAN_MIN_ORDER 4                /* 16 pages = 64 KiB */
static inline unsigned span_order(unsigned c)
{
        uint64_t b = class_size(c) * 4;
        unsigned o = SPAN_MIN_ORDER;

        while (((uint64_t)BRD_POOL_PAGE << o) < b)
                o++;
        return o;
}

static inline unsigned size_class(size_t size)
{
        if (size <= BRD_POOL_GRAN)
                return 0;
        return (unsigned)(64 - __builtin_clzll((unsigned long long)size - 1)) - BRD_POOL_GRAN_SHIFT;
}

static inline unsigned pages_order(uint64_t bytes)
{
        uint64_t pages = (bytes + BRD_POOL_PAGE - 1) >> BRD_POOL_PAGE_SHIFT;

        return pages <= 1 ? 0 : (unsigned)(64 - __builtin_clzll(pages - 1));
}

static inline AO_t *block_link(const struct brd_pool *p, uint64_t g)
{
        return (AO_t *)(void *)(p->data + (g << BRD_POOL_GRAN_SHIFT));
}

/* --------------------------------------------------------------- layout */

struct layout {
        uint64_t npages, pages_off, states_off, slots_off, data_off;
        uint32_t nslots;
};

/* The geometry of a segment of @size bytes; npages 0 if nothing fits.
 * Attach recomputes it and compares: the header cannot lie about it. */
static void layout_compute(uint64_t size, struct layout *l)
{
        uint64_t n, nslots = size / BRD_POOL_SLOT_SPAN;

        memset(l, 0, sizeof(*l));
        if (size < BRD_POOL_HDR_SIZE + 2 * BRD_POOL_PAGE)
                return;
        if (nslots > BRD_POOL_SLOTS_MAX)
                nslots = BRD_POOL_SLOTS_MAX;
        n = (size - BRD_POOL_HDR_SIZE) / (BRD_POOL_PAGE + sizeof(struct brd_pool_page) +
                                          BRD_POOL_GRANS_PER_PAGE);
        if (n > BRD_POOL_MAX_PAGES)
                n = BRD_POOL_MAX_PAGES;
        for (; n > 0; n--) {
                uint64_t states = BRD_POOL_HDR_SIZE + n * sizeof(struct brd_pool_page);
                uint64_t slots = (states + n * BRD_POOL_GRANS_PER_PAGE + BRD_CACHELINE - 1) &
                                 ~(uint64_t)(BRD_CACHELINE - 1);
                uint64_t data = slots + nslots * sizeof(struct brd_pool_slot);

                data = (data + BRD_POOL_PAGE - 1) & ~(uint64_t)(BRD_POOL_PAGE - 1);
                if (data + n * BRD_POOL_PAGE <= size) {
                        l->npages = n;
                        l->pages_off = BRD_POOL_HDR_SIZE;
                        l->states_off = states;
                        l->slots_off = slots;
                        l->nslots = (uint32_t)nslots;
                        l->data_off = data;
                        return;
                }
        }
}

static unsigned max_order_of(uint64_t npages)
{
        return (unsigned)(63 - __builtin_clzll(npages));
}

/* ------------------------------------------------------------ poisoning */

/* In ok_gen: this handle is poisoned (pool_latch()).  Never part of a fork
 * generation, so the fast paths' one compare of ok_gen sends a poisoned
 * handle to the slow path at no cost of its own. */
#define POOL_LATCHED (1ull << 63)

/*
 * Poison this handle for good: from now on alloc, free and stats answer
 * -EBADMSG until it is closed, whatever the shared word hdr->poisoned
 * becomes (a peer may clear it, or write the header back whole).  A CAS
 * loop: pool_where_slow() may be storing a generation at the same time.
 * Out of line, cold and void, with pool_corrupt() inline around it: so
 * the alloc/free fast paths compile to what they were before the latch
 * (gcc 12 -O2, counted by valgrind: 205 instructions per 64 B alloc+free
 * pair single-threaded, 222 then 221 with a second thread; an inlined
 * latch kept a register busy, an out-of-line pool_corrupt() cost 1-2 more).
 */
static __attribute__((noinline, cold)) void pool_latch(const struct brd_pool *p)
{
        AO_t *w = &((struct brd_pool *)p)->ok_gen;     /* process-local */
        AO_t g;

        do {
                g = AO_load(w);
        } while (!(g & POOL_LATCHED) && !AO_compare_and_swap_full(w, g, g | POOL_LATCHED));
}

/* Corrupt shared state seen: poison the pool for every process, and this
 * handle for good.  Returns -EBADMSG. */
static inline __attribute__((always_inline)) int pool_corrupt(struct brd_pool *p)
{
        AO_store(&p->hdr->poisoned, 1);
        pool_latch(p);
        return -EBADMSG;
}

/* false where nothing of the pool is mapped: a forked child of a
 * BRD_POOL_NOFORK pool, or a forkserver child not handed it (its segment is
 * gone there, brd__fork_drop_unhanded()). */
static inline bool pool_mapped(const struct brd_pool *p)
{
        return BRD_LIKELY(p->fork_gen == brd__fork_gen()) || p->seg->addr;
}

/*
 * May this process use the pool?  -EBADF: a forked child of a NOFORK pool
 * (not mapped here); -EXDEV: a process of another pid namespace than the
 * creator's (a child of a process that called unshare(CLONE_NEWPID)), to
 * which the lock's pids mean other processes: its waits would take a live
 * holder for dead, and its own pid would look dead to the others.  Both can
 * only change at a fork, so the verdict is kept per fork generation: one
 * load and compare on the fast paths.  The kept generation is never stored
 * over the latch (POOL_LATCHED): a poisoned handle stays on this path.
 */
static __attribute__((noinline)) int pool_where_slow(const struct brd_pool *p)
{
        AO_t *ok = &((struct brd_pool *)p)->ok_gen;    /* a process-local cache */
        AO_t seen = AO_load(ok);
        uint64_t gen = brd__fork_gen();

        if (!pool_mapped(p))
                return -EBADF;
        if (!brd__pid_ns_ours(p->home_ns))
                return -EXDEV;
        if (!(seen & POOL_LATCHED))
                (void)AO_compare_and_swap_full(ok, seen, gen);  /* fails if latched meanwhile */
        return 0;
}

static inline int pool_where(const struct brd_pool *p)
{
        if (BRD_LIKELY(AO_load(&p->ok_gen) == brd__fork_gen()))
                return 0;
        return pool_where_slow(p);
}

/* pool_check() off its fast path: not usable here, poisoned (this handle
 * or, seen now, the pool), or the first call since a fork. */
static __attribute__((noinline)) int pool_check_slow(const struct brd_pool *p)
{
        int r = pool_where_slow(p);

        if (r < 0)
                return r;
        if ((AO_load(&p->ok_gen) & POOL_LATCHED) || AO_load(&p->hdr->poisoned)) {
                pool_latch(p);
                return -EBADMSG;
        }
        return 0;
}

/* 0, or the -errno every call of a pool answers first: -EBADF, -EXDEV
 * (pool_where()), -EBADMSG (poisoned; the handle is latched). */
static inline int pool_check(const struct brd_pool *p)
{
        if (BRD_LIKELY(AO_load(&p->ok_gen) == brd__fork_gen())) {
                if (BRD_UNLIKELY(AO_load(&p->hdr->poisoned))) {
                        pool_latch(p);
                        return -EBADMSG;
                }
                return 0;
        }
        return pool_check_slow(p);
}

/* ---------------------------------------------------- buddy (under lock) */

static inline AO_t pg_word(const struct brd_pool *p, uint32_t i)
{
        return AO_load(&p->pg[i].word);
}

static inline void pg_set(struct brd_pool *p, uint32_t i, AO_t w)
{
        AO_store(&p->pg[i].word, w);
}

/*
 * Does granule @g, on a page whose word is @w, start a small block of class
 * @c?  The page must say SPAN(c), @g must sit a multiple of the class size
 * from the span's start (spans are aligned buddy blocks of at least 2^c
 * granules, so that is @g's own alignment), and the block must end inside
 * the data area.  Every granule a small-block path takes from shared memory
 * (a cache entry, a stack top, a freed offset) passes this before its state
 * byte is trusted: that byte alone is one a peer can scribble, and it would
 * hand out a block past the pool or overlapping a live one.  0; -EINVAL if
 * @g is not at a block boundary (a caller's bad offset); -EBADMSG if the
 * page word or the block's end cannot be (corrupt metadata).  @g < ngran.
 * A few integer ops on a word the caller has loaded, or is about to.
 */
static inline int small_block_check(const struct brd_pool *p, unsigned c, uint64_t g, AO_t w)
{
        if (BRD_UNLIKELY(w != BRD_PG_WORD(BRD_PG_SPAN, c)))
                return -EBADMSG;
        if (BRD_UNLIKELY(g & ((1ull << c) - 1)))
                return -EINVAL;
        if (BRD_UNLIKELY(g + (1ull << c) > p->ngran))
                return -EBADMSG;
        return 0;
}

/* small_block_check() for a granule index read from shared memory. */
static inline bool small_block_ok(const struct brd_pool *p, unsigned c, uint64_t g)
{
        return g < p->ngran &&
               small_block_check(p, c, g, pg_word(p, (uint32_t)(g / BRD_POOL_GRANS_PER_PAGE))) == 0;
}

static bool block_fits(const struct brd_pool *p, uint64_t i, unsigned k)
{
        return k <= p->max_order && (i & ((1ull << k) - 1)) == 0 &&
               i + (1ull << k) <= p->npages;
}

/* Push block @i of order @k on its free list: 0, or -EBADMSG when the list
 * head does not name a free block of order @k.  The head is shared memory:
 * whoever pushed it may have been a hostile peer, so it is checked here,
 * before it is written through, not trusted for having been checked then. */
static int list_push(struct brd_pool *p, unsigned k, uint32_t i)
{
        uint32_t h = p->hdr->free_head[k];

        if (h && (h > p->npages || !block_fits(p, h - 1, k) ||
                  pg_word(p, h - 1) != BRD_PG_WORD(BRD_PG_FREE, k)))
                return -EBADMSG;
        p->pg[i].prev = 0;
        p->pg[i].next = h;
        if (h)
                p->pg[h - 1].prev = i + 1;
        p->hdr->free_head[k] = i + 1;
        return 0;
}

static int list_unlink(struct brd_pool *p, unsigned k, uint32_t i)
{
        uint32_t pr = p->pg[i].prev, nx = p->pg[i].next;

        if (pr > p->npages || nx > p->npages)
                return -EBADMSG;
        if (pr) {
                if (p->pg[pr - 1].next != i + 1)
                        return -EBADMSG;
                p->pg[pr - 1].next = nx;
        } else {
                if (p->hdr->free_head[k] != i + 1)
                        return -EBADMSG;
                p->hdr->free_head[k] = nx;
        }
        if (nx)
                p->pg[nx - 1].prev = pr;
        p->pg[i].prev = p->pg[i].next = 0;
        return 0;
}

/* A free block of exactly order @order, unlinked, its word FREE(order):
 * page index, -ENOSPC, or -EBADMSG. */
static int64_t buddy_alloc(struct brd_pool *p, unsigned order)
{
        unsigned k;
        uint32_t i, h;
        int r;

        if (order > p->max_order)
                return -ENOSPC;
        for (k = order; k <= p->max_order; k++)
                if (p->hdr->free_head[k])
                        break;
        if (k > p->max_order)
                return -ENOSPC;
        h = p->hdr->free_head[k];
        if (h > p->npages || !block_fits(p, h - 1, k) || pg_word(p, h - 1) != BRD_PG_WORD(BRD_PG_FREE, k))
                return -EBADMSG;
        i = h - 1;
        r = list_unlink(p, k, i);
        if (r < 0)
                return r;
        while (k > order) {
                uint32_t q;

                k--;
                q = i + (1u << k);
                /* Upper half first: until the lower head says k, the walk
                 * skips q as interior, so every prefix is a valid tiling. */
                pg_set(p, q, BRD_PG_WORD(BRD_PG_FREE, k));
                pg_set(p, i, BRD_PG_WORD(BRD_PG_FREE, k));
                r = list_push(p, k, q);
                if (r < 0)
                        return r;
        }
        return i;
}

/* Give back block @i of order @k whose word already says FREE(k) and which
 * is on no list; coalesce with free buddies below @limit (repair walks in
 * order and merges only with what it has already seen).  0 or -EBADMSG. */
static int buddy_free(struct brd_pool *p, uint32_t i, unsigned k, uint64_t limit)
{
        int r;

        while (k < p->max_order) {
                uint64_t q = (uint64_t)i ^ (1ull << k);
                uint32_t lo, hi;

                if (q >= limit || q + (1ull << k) > p->npages ||
                    pg_word(p, (uint32_t)q) != BRD_PG_WORD(BRD_PG_FREE, k))
                        break;
                r = list_unlink(p, k, (uint32_t)q);
                if (r < 0)
                        return r;
                lo = i < q ? i : (uint32_t)q;
                hi = i < q ? (uint32_t)q : i;
                /* One store merges (the walk from lo now skips hi); the second
                 * only tidies the stale head. */
                pg_set(p, lo, BRD_PG_WORD(BRD_PG_FREE, k + 1));
                pg_set(p, hi, BRD_PG_WORD(BRD_PG_NONE, 0));
                i = lo;
                k++;
        }
        return list_push(p, k, i);
}

static int span_give_back(struct brd_pool *p, unsigned c, uint64_t i, uint64_t limit);
static bool span_release_cut(const struct brd_pool *p, unsigned c, uint64_t i);

/*
 * Rebuild everything the lock protects from the page words, after a holder
 * died (pool_lock() took the lock over).  Lock-free users keep running
 * meanwhile: they touch class heads and state bytes, never page words or
 * lists.
 */
static int pool_repair(struct brd_pool *p)
{
        uint64_t i = 0, j;
        unsigned k;
        int r;

        memset(p->hdr->free_head, 0, sizeof(p->hdr->free_head));
        while (i < p->npages) {         /* each step advances i: bounded by npages */
                AO_t w = pg_word(p, (uint32_t)i);
                unsigned kind = BRD_PG_KIND(w), arg = BRD_PG_ARG(w);

                switch (kind) {
                case BRD_PG_FREE:
                        k = arg;
                        if (w != BRD_PG_WORD(kind, arg) || !block_fits(p, i, k))
                                return -EBADMSG;
                        /* A split or carve cut short leaves stale words inside. */
                        for (j = 1; j < (1ull << k); j++)
                                pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_NONE, 0));
                        for (j = 0; j < ((1ull << k) * BRD_POOL_GRANS_PER_PAGE); j++)
                                AO_char_store(&p->st[i * BRD_POOL_GRANS_PER_PAGE + j], BRD_GS_NONE);
                        r = buddy_free(p, (uint32_t)i, k, i);
                        if (r < 0)
                                return r;
                        break;
                case BRD_PG_LARGE:
                        k = arg;
                        if (w != BRD_PG_WORD(kind, arg) || !block_fits(p, i, k))
                                return -EBADMSG;
                        for (j = 1; j < (1ull << k); j++)
                                pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_NONE, 0));
                        break;
                case BRD_PG_SPAN:
                        if (w != BRD_PG_WORD(kind, arg) || arg >= BRD_POOL_NCLASSES)
                                return -EBADMSG;
                        k = span_order(arg);
                        if (!block_fits(p, i, k))
                                return -EBADMSG;
                        /* A release the dead holder began: finish it.  Its
                         * blocks were all off the class stack (reclaim
                         * counted them on its detached chain); those still
                         * in limbo fail limbo_return()'s check. */
                        if (span_release_cut(p, arg, i)) {
                                r = span_give_back(p, arg, i, i);
                                if (r < 0)
                                        return r;
                                break;
                        }
                        for (j = 1; j < (1ull << k); j++)
                                pg_set(p, (uint32_t)(i + j), w);
                        break;
                default:
                        return -EBADMSG;
                }
                i += 1ull << k;
        }
        return 0;
}

static int limbo_return(struct brd_pool *p);

/*
 * The pool lock, an owner lock (shm/owner-lock.c): 0 with the lock held;
 * -ETIMEDOUT (a live holder kept it 2 s; nothing changed); -EBADMSG.  Taken
 * over from a dead holder, it rebuilds what the lock protects first.
 */
static int pool_lock(struct brd_pool *p)
{
        int r = brd__owner_lock(&p->hdr->lock);

        if (r == -EBADMSG)
                return pool_corrupt(p);
        if (r < 0)
                return r;
        if (r == 1) {
                r = pool_repair(p);
                if (r == 0)
                        r = limbo_return(p);
                if (r < 0) {
                        pool_corrupt(p);
                        brd__owner_unlock(&p->hdr->lock);
                        return r;
                }
                p->hdr->repairs++;
        }
        if (AO_load(&p->hdr->poisoned)) {
                brd__owner_unlock(&p->hdr->lock);
                pool_latch(p);
                return -EBADMSG;
        }
        return 0;
}

static void pool_unlock(struct brd_pool *p)
{
        brd__owner_unlock(&p->hdr->lock);
}

/* ------------------------------------------------- class stacks (lock-free) */

/*
 * Pop the top block of the stack at @head: its granule index, -EAGAIN when
 * empty, -EBADMSG for an index past the pool.  Its state byte is the
 * caller's to change (class_pop(), reclaim_detach()).
 */
static inline __attribute__((always_inline)) int64_t stack_pop(struct brd_pool *p, AO_t *head)
{
        for (;;) {
                /* Pairs with the CAS in class_push(): the link word and the
                 * FREE state byte of the top block were written before it. */
                AO_t h = AO_load_acquire(head);
                uint64_t g;
                AO_t nx;

                if (!(h & IDX_MASK))
                        return -EAGAIN;
                g = (h & IDX_MASK) - 1;
                if (g >= p->ngran)
                        return -EBADMSG;
                /* May be garbage if another thread popped and reused the block
                 * meanwhile; then the tag has moved and the CAS fails. */
                nx = AO_load(block_link(p, g));
                if (AO_compare_and_swap_full(head, h, ((h & ~IDX_MASK) + TAG_ONE) | (nx & IDX_MASK)))
                        return (int64_t)g;
        }
}

/* Pop a block of class @c: granule index, -EAGAIN when empty, -EBADMSG. */
static int64_t class_pop(struct brd_pool *p, unsigned c)
{
        int64_t g = stack_pop(p, &p->hdr->cls[c].head);

        if (BRD_UNLIKELY(g < 0))
                return g == -EAGAIN ? g : pool_corrupt(p);
        /* Ours now: its span cannot be reclaimed under us.  A CAS, not a
         * check and a store: a block on the stack twice (a stray write into
         * a free block's link) popped by two at once goes to one of them,
         * and the pool is poisoned for the other. */
        if (!small_block_ok(p, c, (uint64_t)g) ||
            !AO_char_compare_and_swap_full(&p->st[g], BRD_GS(c, BRD_GS_FREE), BRD_GS(c, BRD_GS_ALLOC)))
                return pool_corrupt(p);
        return g;
}

/* Push the chain first..last (already linked, states FREE) of class @c. */
static void class_push(struct brd_pool *p, unsigned c, uint64_t first, uint64_t last)
{
        AO_t *head = &p->hdr->cls[c].head;

        for (;;) {
                AO_t h = AO_load(head);

                AO_store(block_link(p, last), h & IDX_MASK);
                /* Full barrier: the link and the state bytes are visible
                 * before the block is; pairs with AO_load_acquire in class_pop. */
                if (AO_compare_and_swap_full(head, h, ((h & ~IDX_MASK) + TAG_ONE) | (first + 1)))
                        return;
        }
}

/* The test hook of brd__pool_test_reclaim(), at @pass over class @c. */
static inline void reclaim_hook(struct brd_pool *p, unsigned c, int pass)
{
        if (BRD_UNLIKELY(p->reclaim_peer != NULL))
                p->reclaim_peer(p->base, c, pass, p->reclaim_arg);
}

/* ------------------------------------------ the single-threaded cache */

/*
 * Give the blocks slot @s lists back and empty it: our own slot, or a dead
 * owner's that we hold for reaping.  An entry goes back only if its block
 * is still CACHED in its class (entries are shared memory).  The slot
 * drops each entry before its block goes back (the CAS orders the two), so
 * a drain killed midway and done again by a reaper starts from what is
 * left: a block handed back, taken and cached by another process (CACHED
 * again, in that one's slot) is never handed back a second time.  A kill
 * between the drop and the push loses that one block, as any death does
 * its own.
 */
static void slot_drain(struct brd_pool *p, struct brd_pool_slot *s)
{
        unsigned c;
        uint32_t n;

        for (c = 0; c < BRD_POOL_NCLASSES; c++) {
                n = s->n[c];
                if (n > BRD_POOL_SLOT_CAP)
                        n = BRD_POOL_SLOT_CAP;
                while (n) {
                        uint64_t g = s->blk[c][--n];

                        s->n[c] = (uint8_t)n;
                        if (small_block_ok(p, c, g) &&
                            AO_char_compare_and_swap_full(&p->st[g], BRD_GS(c, BRD_GS_CACHED),
                                                          BRD_GS(c, BRD_GS_FREE)))
                                class_push(p, c, g, g);
                        reclaim_hook(p, c, BRD__POOL_HOOK_DRAIN);
                }
        }
}

/* Free slot @s (emptied): the stamps first, so that a claimer's CAS
 * finds a slot with nothing of the previous owner. */
static void slot_free(struct brd_pool_slot *s)
{
        AO_store(&s->start_time, 0);
        AO_store(&s->pid_ns, 0);
        AO_store_release(&s->owner, 0);
}

/* A slot's pid namespace when its owner could not tell its own (no /proc):
 * pool_where() let it in, but its pid may be of another namespace.  No
 * namespace has inode 1 (the kernel numbers them from 0xeffffff0 up). */
#define SLOT_NS_UNKNOWN 1

/* A tag's nonce where a start time is unknown: the time, in ~us. */
static uint64_t slot_nonce(void)
{
        uint64_t t = (uint64_t)brd__now_ns();

        return (t >> 10) ^ (t >> 40);
}

/*
 * Reap the slots whose owner died without brd_pool_close() (SIGKILL, a
 * crash, exit without close): their blocks go back to the class stacks and
 * the slots become free.  Only owners in our pid namespace are judged, and
 * those that died claiming, before they wrote theirs (0): a claimer that
 * knows its namespace is in the pool's (pool_where()), and one that does
 * not writes SLOT_NS_UNKNOWN, never judged.  A
 * reaper marks the slot with BRD_POOL_REAPING | its owner word first (one
 * CAS decides between racing reapers); a reaper that dies midway leaves
 * the mark, and the next one finishes the job from the entries left
 * (slot_drain() drops each before its block goes back).  An owner, or a
 * reaper, whose pid a live process took over is told from it by the start
 * time (its tag's bits where none was stamped): before, such a slot stayed
 * taken for as long as that unrelated process lived.
 */
static void slots_reap(struct brd_pool *p)
{
        uint64_t pid = (uint64_t)brd__getpid(), ns = brd__pid_ns(), mine = 0, me;
        /* Relaxed loads: in a threaded forked child, the thread that disowns
         * the cache may be forgetting the parent's slot right now
         * (cache_flush()); either value pairing only skips a slot once. */
        struct brd_pool_slot *own = __atomic_load_n(&p->slot, __ATOMIC_RELAXED);
        uint64_t own_gen = __atomic_load_n(&p->cache_gen, __ATOMIC_RELAXED);
        uint32_t i;

        if (!ns)
                return;
        /* Our mark's tag; unknown for now (out of fds), a dead reaper's
         * mark is judged by its pid alone. */
        (void)brd__proc_start_time_of((pid_t)pid, &mine);
        me = BRD_POOL_REAPING | brd__pool_owner_word(pid, mine, slot_nonce());
        for (i = 0; i < p->nslots; i++) {
                struct brd_pool_slot *s = &p->slots[i];
                AO_t o = AO_load(&s->owner), sns;
                uint64_t start, mask = UINT64_MAX;

                /* Our own slot, not the one a forked child's handle still
                 * names (its parent's, forgotten only at a cached call):
                 * the child reaps that one too once the parent is dead. */
                if (!o || (s == own && own_gen == brd__fork_gen()))
                        continue;
                sns = AO_load(&s->pid_ns);
                if (sns && sns != ns)
                        continue;
                /* The owner by its stamped start time; where there is
                 * none (a reaper's mark, a claimer killed before it
                 * stamped), by its word's tag. */
                start = (o & BRD_POOL_REAPING) ? 0 : AO_load(&s->start_time);
                if (!start) {
                        start = brd__pool_owner_start(o);
                        mask = BRD_POOL_OWNER_START_MASK;
                }
                if (!brd__pid_gone(o & BRD_POOL_OWNER_PID, start, mask) ||
                    !AO_compare_and_swap_full(&s->owner, o, me))
                        continue;
                /* Another reaper may have freed the slot meanwhile and a new
                 * process with the dead one's pid claimed it: its tag made
                 * the CAS fail; its start time (or the 0 before it is
                 * written) tells a claim of an untagged word; hand it back. */
                if (!(o & BRD_POOL_REAPING) &&
                    AO_load(&s->start_time) != (mask == UINT64_MAX ? start : 0)) {
                        AO_compare_and_swap_full(&s->owner, me, o);
                        continue;
                }
                slot_drain(p, s);
                slot_free(s);
        }
}

/* Claim a free slot for this process (reaping dead owners' if none is
 * free); one attempt per process, the cache is an optimisation.  None while
 * our start time cannot be read for now (out of fds or memory): stamped 0,
 * it would keep every reaper from telling the slot's owner dead once its
 * pid is reused; the next call tries again. */
static void slot_claim(struct brd_pool *p)
{
        uint64_t pid = (uint64_t)brd__getpid(), ns = brd__pid_ns(), start, me;
        uint32_t i;
        int pass;

        if (brd__proc_start_time_of((pid_t)pid, &start) < 0)
                return;
        me = brd__pool_owner_word(pid, start, slot_nonce());
        p->slot_tried = true;
        for (pass = 0; pass < 2; pass++) {
                for (i = 0; i < p->nslots; i++) {
                        struct brd_pool_slot *s = &p->slots[i];

                        if (AO_load(&s->owner) != 0 ||
                            !AO_compare_and_swap_full(&s->owner, 0, me))
                                continue;
                        memset(s->n, 0, sizeof(s->n));
                        /* Until these are set a reaper sees start time and
                         * namespace unknown: alive unless the pid is gone
                         * (a claimer killed right here, slots_reap()). */
                        AO_store(&s->start_time, start);
                        AO_store(&s->pid_ns, ns ? ns : SLOT_NS_UNKNOWN);
                        p->slot = s;
                        return;
                }
                if (pass == 0)
                        slots_reap(p);
        }
}

/* Give every cached block back; in a forked child, forget the parent's
 * slot (still owned there) without touching it. */
static void cache_flush(struct brd_pool *p)
{
        p->cached = 0;
        if (p->cache_gen != brd__fork_gen()) {
                /* Atomic stores: slots_reap() in another thread reads them. */
                __atomic_store_n(&p->slot, NULL, __ATOMIC_RELAXED);
                p->slot_tried = false;
                __atomic_store_n(&p->cache_gen, brd__fork_gen(), __ATOMIC_RELAXED);
                return;
        }
        if (p->slot)
                slot_drain(p, p->slot);
}

/* Threads exist: the cache is no one's.  The first thread to claim it
 * empties it; the loser (and everyone after) skips. */
static inline void cache_disown(struct brd_pool *p)
{
        if (BRD_UNLIKELY(AO_load(&p->cache_dirty)) &&
            AO_compare_and_swap_full(&p->cache_dirty, 1, 0))
                cache_flush(p);
}

/* The cache slot if this thread may use it, else NULL. */
static inline struct brd_pool_slot *cache_get(struct brd_pool *p)
{
        if (BRD_UNLIKELY(!__libc_single_threaded)) {
                cache_disown(p);
                return NULL;
        }
        if (BRD_UNLIKELY(p->cache_gen != brd__fork_gen()))
                cache_flush(p);         /* a forked child: not our slot */
        if (BRD_UNLIKELY(!p->slot) && !p->slot_tried)
                slot_claim(p);
        return p->slot;
}

/* Give the cache back before concluding "full": a process that became
 * threaded since it last cached, and has made only large calls since,
 * holds it still. */
static void cache_release(struct brd_pool *p)
{
        if (__libc_single_threaded) {
                cache_flush(p);
                AO_store(&p->cache_dirty, 0);
        } else {
                cache_disown(p);
        }
}

static int pool_reclaim(struct brd_pool *p);

/* Under lock, before concluding "full": our cache, then the caches of dead
 * owners go back to the class stacks, and every wholly free span of those
 * back to the buddy allocator.  0, or -EBADMSG. */
static int pool_gather(struct brd_pool *p)
{
        cache_release(p);
        slots_reap(p);
        return pool_reclaim(p);
}

/* ------------------------------------------------- spans (under lock) */

/* A reclaim count entry: the round (high bits) and a count of blocks seen
 * (at most a span's: 1024, 64 KiB of 64 B; one more is a block listed
 * twice, -EBADMSG), or RC_QUEUED once the span is queued for release. */
#define RC_COUNT_BITS 11
#define RC_COUNT_MASK ((1u << RC_COUNT_BITS) - 1)
#define RC_QUEUED RC_COUNT_MASK
#define RC_ROUNDS (1u << (32 - RC_COUNT_BITS))
_Static_assert(((uint64_t)BRD_POOL_PAGE << SPAN_MIN_ORDER) / BRD_POOL_GRAN + 1 < RC_QUEUED,
               "a span's block count fits below RC_QUEUED");

/* A new round of counts: every entry of an earlier round reads as 0, so
 * the counters need no reset pass; all are cleared once the rounds wrap. */
static uint32_t reclaim_round(struct brd_pool *p)
{
        if (++p->rc_round >= RC_ROUNDS) {
                memset(p->rc, 0, (size_t)p->nspans * sizeof(p->rc[0]));
                p->rc_round = 1;
        }
        return p->rc_round;
}

/* Under lock: the count entry of the span holding block @g of class @c
 * (NULL past the last whole span, where no span lies) and its count in
 * @round. */
static uint32_t *rc_entry(struct brd_pool *p, unsigned c, uint64_t g, uint32_t round, uint32_t *n)
{
        uint64_t i = ((g / BRD_POOL_GRANS_PER_PAGE) & ~((1ull << span_order(c)) - 1)) >> SPAN_MIN_ORDER;

        if (i >= p->nspans) {
                *n = 0;
                return NULL;
        }
        *n = (p->rc[i] >> RC_COUNT_BITS) == round ? p->rc[i] & RC_COUNT_MASK : 0;
        return &p->rc[i];
}

/* The number of blocks in a span of class @c. */
static inline uint32_t span_blocks(unsigned c)
{
        return (uint32_t)((BRD_POOL_PAGE << span_order(c)) / class_size(c));
}

static int64_t free_block_span(const struct brd_pool *p, unsigned c, uint64_t g);

/*
 * Under lock: push the chain that limbo of class @c names onto the class
 * stack, block by block, each out of limbo before it is pushed: a holder
 * that dies midway loses the block it was handing on, and the next one
 * never pushes a block twice (nor follows its link, by then into the live
 * stack).  @check: a chain a dead holder left, each block checked first (a
 * peer may have scribbled on it; what fails stays out, as it would have in
 * the stack; a block of a span the dead process released fails too).
 * Returns 0, or -EBADMSG for a chain that lists more blocks of a span than
 * it has: a cycle a peer wrote, which would otherwise be followed until
 * ngran steps (seconds of a large pool, under the lock), pushing the
 * blocks in it again and again.
 */
static int limbo_push(struct brd_pool *p, unsigned c, bool check)
{
        AO_t *limbo = &p->hdr->cls[c].limbo;
        uint64_t g, next = AO_load(limbo) & IDX_MASK, steps = 0;
        uint32_t round = check ? reclaim_round(p) : 0, n;
        int r = 0;

        while (next && ++steps <= p->ngran) {
                g = next - 1;
                if (g >= p->ngran)
                        break;
                if (check) {
                        uint32_t *e = rc_entry(p, c, g, round, &n);

                        if (!e || n == span_blocks(c)) {
                                r = -EBADMSG;
                                break;
                        }
                        *e = round << RC_COUNT_BITS | (n + 1);
                }
                /* Read first: the push rewrites it. */
                next = AO_load(block_link(p, g)) & IDX_MASK;
                AO_store(limbo, next);
                if (!check || free_block_span(p, c, g) >= 0)
                        class_push(p, c, g, g);
                if (check)
                        reclaim_hook(p, c, BRD__POOL_HOOK_LIMBO);
        }
        AO_store(limbo, 0);
        return r;
}

/* Turn free buddy block @i (order span_order(c), word FREE, on no list) into
 * a span of class @c; keep its first block and push the rest.  Returns the
 * granule index of the kept block. */
static uint64_t span_carve(struct brd_pool *p, unsigned c, uint32_t i)
{
        unsigned so = span_order(c);
        uint64_t np = 1ull << so, ng = np * BRD_POOL_GRANS_PER_PAGE;
        uint64_t gpb = class_size(c) / BRD_POOL_GRAN, nblk = ng / gpb;
        uint64_t g0 = (uint64_t)i * BRD_POOL_GRANS_PER_PAGE, b, j;

        for (j = 1; j < np; j++)
                pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_SPAN, c));
        for (j = 0; j < ng; j++)
                AO_char_store(&p->st[g0 + j], BRD_GS_NONE);
        AO_char_store(&p->st[g0], BRD_GS(c, BRD_GS_ALLOC));
        /* Linked from the last block down: pushed in that order, the
         * stack hands them out in address order. */
        for (b = 1; b < nblk; b++) {
                AO_char_store(&p->st[g0 + b * gpb], BRD_GS(c, BRD_GS_FREE));
                AO_store(block_link(p, g0 + b * gpb), b > 1 ? g0 + (b - 1) * gpb + 1 : 0);
        }
        /*
         * The chain is named in limbo before the head word.  A holder that
         * dies before that word leaves a free buddy block, whose block
         * states repair clears before it looks at limbo, so that none is
         * pushed from there (nor are stale interior words kept).  One that
         * dies after it has the rest pushed from limbo and loses only the
         * block it was handing on.  (A push of the whole chain in one CAS
         * lost the span, 64-256 KiB, to a death between the head word and
         * the push.)
         */
        if (nblk > 1)
                AO_store(&p->hdr->cls[c].limbo, g0 + (nblk - 1) * gpb + 1);
        pg_set(p, i, BRD_PG_WORD(BRD_PG_SPAN, c));
        reclaim_hook(p, c, BRD__POOL_HOOK_CARVE);
        limbo_push(p, c, false);
        return g0;
}

/* The reclaim test hook's passes inside span_give_back(): a peer (or a
 * death) with half the block states cleared, then half the page words. */
#define RECLAIM_HOOK_STATES 3
#define RECLAIM_HOOK_WORDS  4

/*
 * Give span @i of class @c to the buddy allocator (coalescing below
 * @limit): its block states cleared first, then its tail page words, each
 * in order, and its head word last.  A holder that dies in it leaves a span
 * that span_release_cut() recognises and pool_repair() finishes here.
 */
static int span_give_back(struct brd_pool *p, unsigned c, uint64_t i, uint64_t limit)
{
        unsigned so = span_order(c);
        uint64_t np = 1ull << so, g0 = i * BRD_POOL_GRANS_PER_PAGE;
        uint64_t ng = np * BRD_POOL_GRANS_PER_PAGE, j;

        for (j = 0; j < ng / 2; j++)
                AO_char_store(&p->st[g0 + j], BRD_GS_NONE);
        reclaim_hook(p, c, RECLAIM_HOOK_STATES);
        for (; j < ng; j++)
                AO_char_store(&p->st[g0 + j], BRD_GS_NONE);
        for (j = 1; j < np / 2; j++)
                pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_NONE, 0));
        reclaim_hook(p, c, RECLAIM_HOOK_WORDS);
        for (; j < np; j++)
                pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_NONE, 0));
        pg_set(p, (uint32_t)i, BRD_PG_WORD(BRD_PG_FREE, so));
        return buddy_free(p, (uint32_t)i, so, limit);
}

/*
 * Was span @i of class @c (its head word says SPAN) cut short in
 * span_give_back()?  Its block states then read cleared from the first on
 * and FREE after (or all cleared), nothing else.  A live span never has a
 * cleared block start: span_carve() sets them all before its head word.
 */
static bool span_release_cut(const struct brd_pool *p, unsigned c, uint64_t i)
{
        uint64_t g0 = i * BRD_POOL_GRANS_PER_PAGE, gpb = class_size(c) / BRD_POOL_GRAN;
        uint64_t nblk = span_blocks(c), b;
        bool seen_free = false;

        if (AO_char_load(&p->st[g0]) != BRD_GS_NONE)
                return false;
        for (b = 1; b < nblk; b++) {
                unsigned char v = AO_char_load(&p->st[g0 + b * gpb]);

                if (v == BRD_GS(c, BRD_GS_FREE))
                        seen_free = true;
                else if (v != BRD_GS_NONE || seen_free)
                        return false;
        }
        return true;
}

/*
 * Return span @i of class @c whose blocks are all held by the caller: 0, or
 * -EBADMSG (its states put back) if its page words or block states say
 * otherwise.  Reclaim counted the blocks on a chain in shared memory; a
 * peer rewriting the links can make one block count twice, and a span with
 * a live block must never go back to the buddy allocator.
 */
static int span_release(struct brd_pool *p, unsigned c, uint32_t i)
{
        unsigned so = span_order(c);
        uint64_t np = 1ull << so, g0 = (uint64_t)i * BRD_POOL_GRANS_PER_PAGE;
        uint64_t gpb = class_size(c) / BRD_POOL_GRAN, j;

        for (j = 0; j < np; j++)
                if (pg_word(p, (uint32_t)(i + j)) != BRD_PG_WORD(BRD_PG_SPAN, c))
                        return -EBADMSG;
        /*
         * Each block taken from FREE by a CAS, as class_pop() takes one: a
         * block counted twice leaves one uncounted, which may be FREE on the
         * live stack, and a pop of it between a check and a store would hand
         * it out of a span going back to the buddy allocator.  Now one of
         * the two CASes fails.  Cleared from the first block on, as
         * span_give_back() clears them (a death midway: span_release_cut()).
         */
        for (j = 0; j < np * BRD_POOL_GRANS_PER_PAGE; j += gpb) {
                if (j == np * BRD_POOL_GRANS_PER_PAGE / 2)
                        reclaim_hook(p, c, BRD__POOL_HOOK_TAKE);
                if (!AO_char_compare_and_swap_full(&p->st[g0 + j], BRD_GS(c, BRD_GS_FREE),
                                                   BRD_GS_NONE)) {
                        while (j)
                                AO_char_store(&p->st[g0 + (j -= gpb)], BRD_GS(c, BRD_GS_FREE));
                        return -EBADMSG;
                }
        }
        return span_give_back(p, c, i, UINT64_MAX);
}

/* Check that @g is a FREE block start of class @c in a span that lies in
 * the pool: its span head page, or -1.  A FREE byte on a granule that is no
 * block start would count towards its span and release the span with a live
 * block in it; a page word scribbled to SPAN near the end of the pool would
 * name a span that runs past it. */
static int64_t free_block_span(const struct brd_pool *p, unsigned c, uint64_t g)
{
        uint64_t sp;

        if (!small_block_ok(p, c, g) || AO_char_load(&p->st[g]) != BRD_GS(c, BRD_GS_FREE))
                return -1;
        sp = (g / BRD_POOL_GRANS_PER_PAGE) & ~((1ull << span_order(c)) - 1);
        if (!block_fits(p, sp, span_order(c)))
                return -1;
        return (int64_t)sp;
}

/*
 * Under lock: move class @c's stack into its limbo chain (empty: a dead
 * holder's was pushed back by pool_repair()), block by block, at most ngran
 * of them (frees racing with us keep pushing).  Each block is ours once
 * popped, and named in limbo two stores later: a death between loses that
 * block only.  (The stack taken whole by one CAS and then named in limbo
 * lost the whole stack, most often all the free memory of the class, to a
 * death between the two.)  The limbo head (granule + 1), 0 if the stack
 * was empty, or -EBADMSG.
 */
static int64_t reclaim_detach(struct brd_pool *p, unsigned c)
{
        AO_t *head = &p->hdr->cls[c].head, *limbo = &p->hdr->cls[c].limbo;
        uint64_t n = 0;
        int64_t g;

        AO_store(limbo, 0);
        while (n < p->ngran) {
                g = stack_pop(p, head);
                if (g == -EAGAIN)
                        break;
                if (g < 0)
                        return g;
                AO_store(block_link(p, (uint64_t)g), AO_load(limbo));
                AO_store(limbo, g + 1);
                n++;
                reclaim_hook(p, c, BRD__POOL_HOOK_DETACH);
        }
        return (int64_t)(AO_load(limbo) & IDX_MASK);
}

/*
 * Under lock: move each class stack into limbo (reclaim_detach()), give
 * every span whose blocks are all there back to the buddy allocator, push
 * the rest back.  Blocks freed concurrently land on the emptied stack and
 * simply stay there.  What it counts lives in this process (p->rc): only
 * the chain itself is shared memory, and every granule read from it is
 * checked before it is used as an index.  The part of the chain not handled
 * yet is in limbo (struct brd_pool_class): if this process dies,
 * pool_repair() pushes it back, and at most the one block being handled is
 * lost.
 */
static int pool_reclaim(struct brd_pool *p)
{
        unsigned c;

        for (c = 0; c < BRD_POOL_NCLASSES; c++) {
                AO_t *limbo = &p->hdr->cls[c].limbo;
                uint32_t nblk = span_blocks(c);
                uint64_t g, steps, chain_len = 0;
                uint32_t round;
                int64_t h = reclaim_detach(p, c);
                int pass;

                if (h <= 0) {
                        if (h < 0)
                                return (int)h;
                        continue;
                }
                round = reclaim_round(p);
                /* Pass 1 counts, 2 hands each block on.  The chain is ours:
                 * bounded by ngran steps against a hostile cycle, and pass
                 * 2 by pass 1's count (it follows the same links, but those
                 * of a released span's blocks are the buddy allocator's
                 * memory by then, unchecked). */
                for (pass = 1; pass <= 2; pass++) {
                        uint64_t next;

                        for (g = (uint64_t)h - 1, steps = 0; ; g = next - 1) {
                                int64_t sp = -1;
                                uint32_t *e, n;
                                int r;

                                if (++steps > (pass == 1 ? p->ngran : chain_len) || g >= p->ngran)
                                        return -EBADMSG;
                                e = rc_entry(p, c, g, round, &n);
                                /* A block of a span released already (pass 2)
                                 * is a span's no more; any other must be a FREE
                                 * block (which puts its span in range: e set). */
                                if (n != RC_QUEUED && (sp = free_block_span(p, c, g)) < 0)
                                        return -EBADMSG;
                                next = AO_load(block_link(p, g)) & IDX_MASK;
                                if (pass == 1) {
                                        /* One more than the span has: a
                                         * block listed twice, so a cycle
                                         * (caught here in at most nblk
                                         * laps, not ngran steps). */
                                        if (n == nblk)
                                                return -EBADMSG;
                                        *e = round << RC_COUNT_BITS | (n + 1);
                                } else {
                                        /* Out of limbo before it is handed on:
                                         * dying now loses this block, never
                                         * pushes it twice. */
                                        AO_store(limbo, next);
                                        if (n == nblk) {
                                                /* Whole span free: released at its
                                                 * first block, its others skipped. */
                                                *e = round << RC_COUNT_BITS | RC_QUEUED;
                                                r = span_release(p, c, (uint32_t)sp);
                                                if (r < 0)
                                                        return r;
                                        } else if (n != RC_QUEUED) {
                                                class_push(p, c, g, g);
                                        }
                                }
                                if (!next)
                                        break;
                        }
                        chain_len = steps;
                        reclaim_hook(p, c, pass);
                }
        }
        return 0;
}

/* Under lock, after a holder died mid-reclaim or mid-carve: push back what
 * it left in limbo (limbo_push()).  0, or -EBADMSG (a chain with a cycle). */
static int limbo_return(struct brd_pool *p)
{
        unsigned c;
        int r = 0;

        for (c = 0; c < BRD_POOL_NCLASSES; c++)
                if (limbo_push(p, c, true) < 0)
                        r = -EBADMSG;
        return r;
}

/* ------------------------------------------------------------ public */

/* The object for a segment of layout @l mapped at @base: every bound it
 * keeps comes from @l (computed by create, or checked by attach), never
 * from the header.  @seg NULL: @base is a private copy of the metadata
 * (brd__pool_peek_stats()), for a walk only. */
static int pool_wrap(struct brd_seg *seg, uint8_t *base, const struct layout *l, unsigned flags,
                     struct brd_pool **ret_pool)
{
        uint64_t nspans = l->npages >> SPAN_MIN_ORDER;
        /* A uint32 per span: 1/16384 of the data area. */
        struct brd_pool *p = calloc(1, sizeof(*p) + nspans * sizeof(uint32_t));

        if (!p)
                return -ENOMEM;
        p->nspans = (uint32_t)nspans;
        p->seg = seg;
        p->base = base;
        p->hdr = (struct brd_pool_hdr *)(void *)p->base;
        p->pg = (struct brd_pool_page *)(void *)(p->base + l->pages_off);
        p->st = p->base + l->states_off;
        p->data = p->base + l->data_off;
        p->data_off = l->data_off;
        p->npages = (uint32_t)l->npages;
        p->data_size = l->npages * BRD_POOL_PAGE;
        p->ngran = l->npages * BRD_POOL_GRANS_PER_PAGE;
        p->max_order = max_order_of(l->npages);
        p->flags = flags;
        p->slots = (struct brd_pool_slot *)(void *)(p->base + l->slots_off);
        p->nslots = l->nslots;
        p->fork_gen = p->cache_gen = p->ok_gen = brd__fork_gen();
        p->cache_budget = (int64_t)(p->data_size / (2 * (p->nslots ? p->nslots : 1)));
        for (unsigned c = 0; c < BRD_POOL_NCLASSES; c++) {
                /* About 256 KiB per class at most, 4..32 blocks. */
                uint64_t cap = (256 * 1024) / class_size(c);

                p->cap[c] = (uint32_t)(cap < 4 ? 4 : cap > BRD_POOL_SLOT_CAP ? BRD_POOL_SLOT_CAP : cap);
        }
        *ret_pool = p;
        return 0;
}

BRD_EXPORT int brd_pool_create(size_t size, unsigned flags, struct brd_pool **ret_pool)
{
        struct brd_seg *seg = NULL;
        struct brd_pool *p = NULL;
        struct brd_pool_hdr *h;
        struct layout l;
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uint64_t i, ns;
        int r;

        if (!ret_pool || (flags & ~(unsigned)POOL_FLAGS) || size == 0 ||
            size > ((uint64_t)BRD_POOL_MAX_PAGES << BRD_POOL_PAGE_SHIFT))
                return -EINVAL;
        size = (size + page - 1) & ~(page - 1);
        layout_compute(size, &l);
        if (!l.npages)
                return -EINVAL;
        ns = brd__pid_ns();             /* a system call the first time: after the checks */
        r = brd_seg_create("pool", size,
                            ((flags & BRD_POOL_POPULATE) ? BRD_SEG_POPULATE : 0) |
                            ((flags & BRD_POOL_NOFORK) ? BRD_SEG_NOFORK : 0), &seg);
        if (r < 0)
                return r;
        h = brd_seg_addr(seg);
        /* A fresh memfd reads as zeros: every list, head and state starts empty. */
        h->version = BRD_POOL_VERSION;
        h->npages = (uint32_t)l.npages;
        h->seg_size = brd_seg_size(seg);
        h->pages_off = l.pages_off;
        h->states_off = l.states_off;
        h->data_off = l.data_off;
        h->slots_off = l.slots_off;
        h->nslots = l.nslots;
        h->slot_size = sizeof(struct brd_pool_slot);
        h->page_size = BRD_POOL_PAGE;
        h->word_size = sizeof(AO_t);
        h->gran_size = BRD_POOL_GRAN;
        h->nclasses = BRD_POOL_NCLASSES;
        h->hdr_size = BRD_POOL_HDR_SIZE;
        h->pid_ns = ns;
        /* h->lock: 0, free, as the fresh memfd reads. */
        r = pool_wrap(seg, brd_seg_addr(seg), &l, flags, &p);
        if (r < 0)
                goto fail;
        p->home_ns = ns;
        /* Tile the data area with the largest aligned blocks that fit. */
        for (i = 0; i < l.npages; ) {
                unsigned k = p->max_order;

                while (!block_fits(p, i, k))
                        k--;
                pg_set(p, (uint32_t)i, BRD_PG_WORD(BRD_PG_FREE, k));
                /* Cannot fail: nobody else has this segment yet, and the
                 * head is 0 or a block pushed by this loop. */
                (void)list_push(p, k, (uint32_t)i);
                i += 1ull << k;
        }
        h->magic = BRD_POOL_MAGIC;
        *ret_pool = p;
        return 0;
fail:
        brd_seg_close(seg);
        return r;
}

/* The header fields attach judges a pool by, as read from shared memory. */
struct hdr_copy {
        uint64_t magic, seg_size, pid_ns;
        uint32_t version, hdr_size, page_size, word_size, slot_size;
        uint16_t gran_size, nclasses;
        struct layout l;
};

/*
 * Copy the header into @c: the only read attach makes of it.  A peer may
 * rewrite the header at any moment (it is not sealed, only its size is), so
 * what is checked and what is kept must be one read: checking the header
 * and then reading it again for the object would keep a value nobody
 * checked.  The compiler barrier keeps the compiler from re-loading a field
 * from shared memory instead of using the copy (plain loads may be
 * repeated otherwise).
 */
static void hdr_read(const struct brd_pool_hdr *h, struct hdr_copy *c)
{
        memset(c, 0, sizeof(*c));
        c->magic = h->magic;
        c->version = h->version;
        c->hdr_size = h->hdr_size;
        c->page_size = h->page_size;
        c->gran_size = h->gran_size;
        c->nclasses = h->nclasses;
        c->word_size = h->word_size;
        c->slot_size = h->slot_size;
        c->seg_size = h->seg_size;
        c->pid_ns = h->pid_ns;
        c->l.npages = h->npages;
        c->l.pages_off = h->pages_off;
        c->l.states_off = h->states_off;
        c->l.slots_off = h->slots_off;
        c->l.data_off = h->data_off;
        c->l.nslots = h->nslots;
        AO_compiler_barrier();
}

/* Is @c (hdr_read()) a pool that fits a mapping of @map_size bytes?  The
 * geometry must be exactly what create computes for c->seg_size. */
static int pool_validate(const struct hdr_copy *c, uint64_t map_size)
{
        struct layout l;

        if (c->magic != BRD_POOL_MAGIC || c->version != BRD_POOL_VERSION ||
            c->hdr_size != BRD_POOL_HDR_SIZE || c->page_size != BRD_POOL_PAGE ||
            c->gran_size != BRD_POOL_GRAN || c->nclasses != BRD_POOL_NCLASSES ||
            c->word_size != sizeof(AO_t) || c->seg_size > map_size ||
            c->slot_size != sizeof(struct brd_pool_slot))
                return -EPROTO;
        layout_compute(c->seg_size, &l);
        if (!l.npages || l.npages != c->l.npages || l.pages_off != c->l.pages_off ||
            l.states_off != c->l.states_off || l.data_off != c->l.data_off ||
            l.slots_off != c->l.slots_off || l.nslots != c->l.nslots)
                return -EPROTO;
        return 0;
}

static int pool_attach(const struct brd_handle *h, void (*peer)(void *hdr, void *arg),
                       void *arg, struct brd_pool **ret_pool)
{
        struct brd_seg *seg = NULL;
        struct brd_pool *p = NULL;
        struct hdr_copy c;
        int r;

        if (!ret_pool)
                return -EINVAL;
        if (!brd__handle_valid(h, BRD_HANDLE_POOL, 1) || h->size < BRD_POOL_HDR_SIZE ||
            (h->flags & ~(uint64_t)POOL_FLAGS))
                return brd__handle_err(h);
        r = brd__handle_current(h);
        if (r < 0)
                return r;
        r = brd__seg_attach_fd(h->fds[0], h->size, false, NULL,
                               ((h->flags & BRD_POOL_POPULATE) ? BRD_SEG_POPULATE : 0) |
                               ((h->flags & BRD_POOL_NOFORK) ? BRD_SEG_NOFORK : 0), &seg);
        if (r < 0)
                return r;
        hdr_read(brd_seg_addr(seg), &c);
        if (peer)
                peer(brd_seg_addr(seg), arg);
        /* From here on only the copy: the header is never read again. */
        r = pool_validate(&c, brd_seg_size(seg));
        if (r < 0)
                goto fail;
        /* The creator's pid namespace must be ours. */
        if (!brd__pid_ns_ours(c.pid_ns)) {
                r = -EXDEV;
                goto fail;
        }
        r = pool_wrap(seg, brd_seg_addr(seg), &c.l, (unsigned)h->flags, &p);
        if (r < 0)
                goto fail;
        p->home_ns = c.pid_ns;
        *ret_pool = p;
        return 0;
fail:
        brd_seg_close(seg);
        return r;
}

BRD_EXPORT int brd_pool_attach(const struct brd_handle *h, struct brd_pool **ret_pool)
{
        return pool_attach(h, NULL, NULL, ret_pool);
}

int brd__pool_attach_test(const struct brd_handle *h, void (*peer)(void *hdr, void *arg),
                          void *arg, struct brd_pool **ret_pool)
{
        return pool_attach(h, peer, arg, ret_pool);
}

BRD_EXPORT int brd_pool_export(const struct brd_pool *pool, struct brd_handle *ret_handle)
{
        struct brd_handle sh;
        int r;

        if (!pool || !ret_handle)
                return -EINVAL;
        r = brd_seg_export(pool->seg, &sh);
        if (r < 0)
                return r;
        sh.kind = BRD_HANDLE_POOL;
        sh.flags = pool->flags & BRD_POOL_NOFORK;
        *ret_handle = sh;
        return 0;
}

BRD_EXPORT void brd_pool_close(struct brd_pool *pool)
{
        if (!pool)
                return;
        if (brd_seg_addr(pool->seg) && (__libc_single_threaded ||
                                        AO_compare_and_swap_full(&pool->cache_dirty, 1, 0)))
                cache_flush(pool);
        if (brd_seg_addr(pool->seg) && pool->slot && pool->cache_gen == brd__fork_gen()) {
                /* Emptied above, or by the thread that found threads (the
                 * cache is bypassed since): free for the next process. */
                slot_free(pool->slot);
        }
        brd_seg_close(pool->seg);
        free(pool);
}

/* Under lock: a large block of order @k (reclaiming if need be). */
static int64_t large_alloc_locked(struct brd_pool *p, unsigned k)
{
        int64_t i = buddy_alloc(p, k);

        if (i == -ENOSPC) {
                int r;

                r = pool_gather(p);
                if (r < 0)
                        return r;
                i = buddy_alloc(p, k);
        }
        if (i < 0)
                return i;
        pg_set(p, (uint32_t)i, BRD_PG_WORD(BRD_PG_LARGE, k));
        return (int64_t)(p->data_off + ((uint64_t)i << BRD_POOL_PAGE_SHIFT));
}

static int64_t small_alloc_slow(struct brd_pool *p, unsigned c)
{
        int64_t g, i;
        int r;

        /* A class larger than any block this pool can ever have (a small
         * pool): none of its blocks can exist, now or later. */
        if (pages_order(class_size(c)) > p->max_order)
                return -EINVAL;
        r = pool_lock(p);
        if (r < 0)
                return r;
        g = class_pop(p, c);            /* someone may have refilled it meanwhile */
        if (g == -EAGAIN) {
                i = buddy_alloc(p, span_order(c));
                if (i == -ENOSPC) {
                        r = pool_gather(p);
                        if (r < 0) {
                                g = r;
                                goto out;
                        }
                        g = class_pop(p, c);
                        if (g != -EAGAIN)
                                goto out;
                        i = buddy_alloc(p, span_order(c));
                }
                if (i >= 0) {
                        g = (int64_t)span_carve(p, c, (uint32_t)i);
                } else if (i == -ENOSPC) {
                        /* No room for a span: serve it as a (small) large block. */
                        int64_t off = large_alloc_locked(p, pages_order(class_size(c)));

                        if (off < 0 && off != -ENOSPC)
                                pool_corrupt(p);
                        pool_unlock(p);
                        return off;
                } else {
                        g = i;
                }
        }
out:
        if (g == -EBADMSG)
                pool_corrupt(p);
        pool_unlock(p);
        if (g < 0)
                return g;
        return (int64_t)(p->data_off + ((uint64_t)g << BRD_POOL_GRAN_SHIFT));
}

BRD_EXPORT int64_t brd_pool_alloc(struct brd_pool *pool, size_t size)
{
        int64_t g, off;
        unsigned k;
        int r;

        if (!pool || size == 0 || size > pool->data_size)
                return -EINVAL;
        r = pool_check(pool);
        if (r < 0)
                return r;
        if (size <= BRD_POOL_SMALL_MAX) {
                unsigned c = size_class(size);
                struct brd_pool_slot *s = cache_get(pool);
                uint32_t n;

                if (s && (n = s->n[c]) != 0) {
                        /* Our slot, but shared memory: checked like any. */
                        if (BRD_UNLIKELY(n > BRD_POOL_SLOT_CAP))
                                return pool_corrupt(pool);
                        g = s->blk[c][n - 1];
                        if (BRD_UNLIKELY(!small_block_ok(pool, c, (uint64_t)g) ||
                                         AO_char_load(&pool->st[g]) != BRD_GS(c, BRD_GS_CACHED)))
                                return pool_corrupt(pool);
                        s->n[c] = (uint8_t)(n - 1);
                        pool->cached -= (int64_t)class_size(c);
                        /* Only this process's only thread touches a CACHED
                         * block while its owner lives. */
                        AO_char_store(&pool->st[g], BRD_GS(c, BRD_GS_ALLOC));
                        return (int64_t)(pool->data_off + ((uint64_t)g << BRD_POOL_GRAN_SHIFT));
                }
                g = class_pop(pool, c);
                if (BRD_LIKELY(g >= 0))
                        return (int64_t)(pool->data_off + ((uint64_t)g << BRD_POOL_GRAN_SHIFT));
                if (g != -EAGAIN)
                        return g;
                return small_alloc_slow(pool, c);
        }
        k = pages_order(size);
        if (k > pool->max_order)
                return -EINVAL;         /* larger than any block this pool can ever have */
        r = pool_lock(pool);
        if (r < 0)
                return r;
        off = large_alloc_locked(pool, k);
        if (off < 0 && off != -ENOSPC)
                pool_corrupt(pool);
        pool_unlock(pool);
        return off;
}

BRD_EXPORT int brd_pool_free(struct brd_pool *pool, uint64_t off)
{
        uint64_t rel, g;
        uint32_t i;
        AO_t w;
        int r;

        if (!pool)
                return -EINVAL;
        r = pool_check(pool);
        if (r < 0)
                return r;
        if (off < pool->data_off || off - pool->data_off >= pool->data_size ||
            (off & (BRD_POOL_GRAN - 1)))
                return -EINVAL;
        rel = off - pool->data_off;
        g = rel >> BRD_POOL_GRAN_SHIFT;
        i = (uint32_t)(rel >> BRD_POOL_PAGE_SHIFT);
        w = pg_word(pool, i);
        if (BRD_PG_KIND(w) == BRD_PG_SPAN) {
                unsigned c = BRD_PG_ARG(w);

                struct brd_pool_slot *s;
                uint32_t n = 0;

                /* The word already read, not a second load: a span released
                 * meanwhile must not turn a caller's stale free into a
                 * verdict of corruption. */
                r = c < BRD_POOL_NCLASSES ? small_block_check(pool, c, g, w) : -EBADMSG;
                if (BRD_UNLIKELY(r < 0))
                        return r == -EBADMSG ? pool_corrupt(pool) : r;
                s = cache_get(pool);
                if (s && (n = s->n[c]) < pool->cap[c] &&
                    pool->cached + (int64_t)class_size(c) <= pool->cache_budget) {
                        /* Same deciding CAS, into the cache instead of the stack. */
                        if (!AO_char_compare_and_swap_full(&pool->st[g], BRD_GS(c, BRD_GS_ALLOC),
                                                           BRD_GS(c, BRD_GS_CACHED)))
                                return -EINVAL;
                        /* The entry before the count, as compiled too: a
                         * reaper of this process, killed between the two,
                         * must not count a stale entry (a block taken out
                         * before, maybe in another cache by now).  Its
                         * stores are all visible to the reaper, which saw
                         * the death through a system call. */
                        s->blk[c][n] = (uint32_t)g;
                        AO_compiler_barrier();
                        s->n[c] = (uint8_t)(n + 1);
                        pool->cached += (int64_t)class_size(c);
                        if (BRD_UNLIKELY(!AO_load(&pool->cache_dirty)))
                                AO_store(&pool->cache_dirty, 1);
                        return 0;
                }
                /* The one step that decides: only one of two racing frees of a
                 * block wins, and a stale class (span reused) cannot match. */
                if (!AO_char_compare_and_swap_full(&pool->st[g], BRD_GS(c, BRD_GS_ALLOC),
                                                   BRD_GS(c, BRD_GS_FREE)))
                        return -EINVAL;
                class_push(pool, c, g, g);
                return 0;
        }
        if (BRD_PG_KIND(w) != BRD_PG_LARGE || (rel & (BRD_POOL_PAGE - 1)))
                return -EINVAL;
        r = pool_lock(pool);
        if (r < 0)
                return r;
        w = pg_word(pool, i);
        if (BRD_PG_KIND(w) != BRD_PG_LARGE) {
                r = -EINVAL;            /* freed by a racing call */
        } else if (w != BRD_PG_WORD(BRD_PG_LARGE, BRD_PG_ARG(w)) ||
                   !block_fits(pool, i, BRD_PG_ARG(w))) {
                r = pool_corrupt(pool);
        } else {
                pg_set(pool, i, BRD_PG_WORD(BRD_PG_FREE, BRD_PG_ARG(w)));
                r = buddy_free(pool, i, BRD_PG_ARG(w), UINT64_MAX);
                if (r < 0)
                        pool_corrupt(pool);
        }
        pool_unlock(pool);
        return r;
}

BRD_EXPORT void *brd_pool_ptr(const struct brd_pool *pool, uint64_t off)
{
        if (!pool || off < pool->data_off || off - pool->data_off >= pool->data_size)
                return NULL;
        if (!pool_mapped(pool))
                return NULL;
        return pool->base + off;
}

int brd__pool_where(const struct brd_pool *pool)
{
        return pool_where(pool);
}

/* The accounting the stats give, walked from the page words and block
 * states (under the lock, or in a private copy): used, blocks and
 * largest_free in @s.  0 or -EBADMSG. */
static int stats_walk(struct brd_pool *p, struct brd_pool_stats *s)
{
        uint64_t i = 0, largest = 0;
        unsigned c;

        while (i < p->npages) {         /* advances every step: bounded */
                AO_t w = pg_word(p, (uint32_t)i);
                unsigned kind = BRD_PG_KIND(w), k = BRD_PG_ARG(w);
                uint64_t b, bytes;
                bool ok = w == BRD_PG_WORD(kind, k);

                c = BRD_POOL_NCLASSES;
                if (kind == BRD_PG_SPAN && k < BRD_POOL_NCLASSES) {
                        c = k;
                        k = span_order(c);
                } else if (kind != BRD_PG_FREE && kind != BRD_PG_LARGE) {
                        ok = false;
                }
                if (!ok || !block_fits(p, i, k))
                        return pool_corrupt(p);
                bytes = (uint64_t)BRD_POOL_PAGE << k;
                if (kind == BRD_PG_FREE) {
                        if (bytes > largest)
                                largest = bytes;
                } else if (kind == BRD_PG_LARGE) {
                        s->used += bytes;
                        s->blocks++;
                } else {
                        uint64_t g0 = i * BRD_POOL_GRANS_PER_PAGE, gpb = class_size(c) / BRD_POOL_GRAN;

                        for (b = 0; b < bytes / class_size(c); b++)
                                if (AO_char_load(&p->st[g0 + b * gpb]) == BRD_GS(c, BRD_GS_ALLOC)) {
                                        s->used += class_size(c);
                                        s->blocks++;
                                }
                }
                i += 1ull << k;
        }
        for (c = 0; c < BRD_POOL_NCLASSES; c++)
                if ((AO_load(&p->hdr->cls[c].head) & IDX_MASK) && class_size(c) > largest)
                        largest = class_size(c);
        s->capacity = p->data_size;
        s->largest_free = largest;
        return 0;
}

BRD_EXPORT int brd_pool_stats(const struct brd_pool *pool, struct brd_pool_stats *ret_stats)
{
        struct brd_pool *p = (struct brd_pool *)pool;  /* the lock lives in shm */
        struct brd_pool_stats s = { 0 };
        int r;

        if (!pool || !ret_stats)
                return -EINVAL;
        r = pool_check(p);
        if (r < 0)
                return r;
        r = pool_lock(p);
        if (r < 0)
                return r;
        r = stats_walk(p, &s);
        pool_unlock(p);
        if (r < 0)
                return r;
        s.size = brd_seg_size(p->seg);
        *ret_stats = s;
        return 0;
}

int brd__pool_peek_stats(int fd, uint64_t size, struct brd_pool_stats *ret_stats)
{
        struct brd_pool_stats s = { 0 };
        struct brd_pool *p = NULL;
        struct hdr_copy c;
        uint8_t *buf;
        ssize_t got;
        int r;

        buf = malloc(BRD_POOL_HDR_SIZE);
        if (!buf)
                return -ENOMEM;
        got = pread(fd, buf, BRD_POOL_HDR_SIZE, 0);
        if (got != BRD_POOL_HDR_SIZE) {
                r = got < 0 ? -errno : -EPROTO;
                goto out;
        }
        hdr_read((const struct brd_pool_hdr *)(void *)buf, &c);
        r = pool_validate(&c, size);
        if (r < 0)
                goto out;
        free(buf);
        /* The metadata only (~2% of the pool): everything before the data.
         * Its size comes from the file's, which any user can make huge and
         * sparse: a private copy only up to a bound. */
        if (c.l.data_off > BRD_POOL_PEEK_MAX)
                return -EFBIG;
        buf = malloc(c.l.data_off);
        if (!buf)
                return -ENOMEM;
        got = pread(fd, buf, c.l.data_off, 0);
        if (got < 0 || (uint64_t)got != c.l.data_off) {
                r = got < 0 ? -errno : -EPROTO;
                goto out;
        }
        r = pool_wrap(NULL, buf, &c.l, 0, &p);
        if (r < 0)
                goto out;
        /* Poisoned: what its handles answer (brd_pool_stats()). */
        r = AO_load(&p->hdr->poisoned) ? -EBADMSG : stats_walk(p, &s);
        if (r == 0) {
                s.size = c.seg_size;
                *ret_stats = s;
        }
out:
        free(p);
        free(buf);
        return r;
}

/* ------------------------------------------------------------ internals */

void *brd__pool_base(const struct brd_pool *pool)
{
        return pool->base;
}

int64_t brd__pool_block_size(struct brd_pool *pool, uint64_t off)
{
        uint64_t rel;
        AO_t w;

        if (!pool_mapped(pool))
                return -EBADF;
        if (off < pool->data_off || off - pool->data_off >= pool->data_size ||
            (off & (BRD_POOL_GRAN - 1)))
                return -EINVAL;
        rel = off - pool->data_off;
        w = pg_word(pool, (uint32_t)(rel >> BRD_POOL_PAGE_SHIFT));
        if (BRD_PG_KIND(w) == BRD_PG_SPAN && BRD_PG_ARG(w) < BRD_POOL_NCLASSES) {
                unsigned c = BRD_PG_ARG(w);

                if (small_block_check(pool, c, rel >> BRD_POOL_GRAN_SHIFT, w) < 0 ||
                    AO_char_load(&pool->st[rel >> BRD_POOL_GRAN_SHIFT]) != BRD_GS(c, BRD_GS_ALLOC))
                        return -EINVAL;
                return (int64_t)class_size(c);
        }
        if (BRD_PG_KIND(w) == BRD_PG_LARGE && !(rel & (BRD_POOL_PAGE - 1)) &&
            BRD_PG_ARG(w) <= pool->max_order &&
            rel + ((uint64_t)BRD_POOL_PAGE << BRD_PG_ARG(w)) <= pool->data_size)
                return (int64_t)((uint64_t)BRD_POOL_PAGE << BRD_PG_ARG(w));
        return -EINVAL;
}

void brd__pool_test_reclaim(struct brd_pool *pool,
                            void (*peer)(void *hdr, unsigned c, int pass, void *arg), void *arg)
{
        pool->reclaim_peer = peer;
        pool->reclaim_arg = arg;
}

int brd__pool_test_die_locked(struct brd_pool *pool, int stage)
{
        struct brd_pool *p = pool;
        int64_t i;
        unsigned k;
        int r;

        r = pool_lock(p);
        if (r < 0)
                return r;
        if (stage == 0)
                return 0;
        for (k = p->max_order + 1; k-- > 0; )
                if (p->hdr->free_head[k])
                        break;
        if (k > p->max_order || (stage != 2 && k == 0))
                return -ENOSPC;
        i = p->hdr->free_head[k] - 1;
        r = list_unlink(p, k, (uint32_t)i);
        if (r < 0)
                return r;
        switch (stage) {
        case 1:         /* split begun: upper half written, lower head not yet */
                pg_set(p, (uint32_t)(i + (1u << (k - 1))), BRD_PG_WORD(BRD_PG_FREE, k - 1));
                break;
        case 2:         /* carve begun: interior words say SPAN, head still FREE */
                for (uint64_t j = 1; j < (1ull << k); j++)
                        pg_set(p, (uint32_t)(i + j), BRD_PG_WORD(BRD_PG_SPAN, 0));
                break;
        case 3:         /* split done, merge not: two free buddies on no list */
                pg_set(p, (uint32_t)(i + (1u << (k - 1))), BRD_PG_WORD(BRD_PG_FREE, k - 1));
                pg_set(p, (uint32_t)i, BRD_PG_WORD(BRD_PG_FREE, k - 1));
                break;
        default:
                return -EINVAL;
        }
        return 0;
}
