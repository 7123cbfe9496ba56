/* SPDX-License-Identifier: MIT */
/*
 * The shared pool's and shared array's wire layouts: what lives in the
 * segment, read and written by every process that attached it.  Private,
 * versioned, fixed-width, offsets only (never pointers).  Bump
 * BRD_POOL_VERSION / BRD_ARRAY_VERSION on any change.
 *
 * Segment of a pool:
 *
 *   0                 struct brd_pool_hdr   (BRD_POOL_HDR_SIZE bytes)
 *   pages_off         struct brd_pool_page  [npages]   one per 4 KiB data page
 *   states_off        uint8_t               [npages * 64]  one per 64 B granule
 *   slots_off         struct brd_pool_slot  [nslots]   one per caching process
 *   data_off          data pages            [npages * BRD_POOL_PAGE]
 *
 * Data pages are managed by a buddy allocator (orders of pages) under the
 * pool lock, a library-owned word in the header (no pthread mutex: see
 * struct brd_pool_hdr).  Small blocks (size classes 64 B << c, up to
 * 64 KiB) are carved from "spans" (buddy blocks) and kept on one lock-free
 * Treiber stack per class.  Every word the lock-free paths touch is an AO_t
 * or an AO char; every structure the locked paths touch can be rebuilt
 * from the page words alone (see brd_pool_page).
 */
#ifndef BROOD_POOL_H
#define BROOD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <brood/shm.h>
#include "internal/brd-private.h"

#if !defined(AO_HAVE_char_compare_and_swap_full) || !defined(AO_HAVE_char_load) || \
    !defined(AO_HAVE_char_store_release) || !defined(AO_HAVE_nop_read) || \
    !defined(AO_HAVE_nop_write)
#error "libatomic_ops lacks a native primitive the shared pool needs"
#endif

#define BRD_POOL_MAGIC    0x6c6f6f702e647262ull   /* "brd.pool" little-endian */
#define BRD_POOL_VERSION  8u                      /* 2: cache slots, 3: the lock word, 4: its waiters bit, 5: limbo, 6: slot claim tags, 7: start times in the tags, 8: flagged as such */
#define BRD_POOL_HDR_SIZE 4096u
#define BRD_POOL_PAGE     4096u                   /* buddy unit */
#define BRD_POOL_PAGE_SHIFT 12
#define BRD_POOL_GRAN     64u                     /* == BRD_POOL_ALIGN, smallest block */
#define BRD_POOL_GRAN_SHIFT 6
#define BRD_POOL_GRANS_PER_PAGE (BRD_POOL_PAGE / BRD_POOL_GRAN)
#define BRD_POOL_NCLASSES 11                      /* 64 B << 0 .. 64 B << 10 = 64 KiB */
_Static_assert(BRD_POOL_SMALL_MAX == (BRD_POOL_GRAN << (BRD_POOL_NCLASSES - 1)), "largest class");
#define BRD_POOL_MAX_ORDER 32                     /* free-list heads; page index is 32-bit */
/* Granule index + 1 fits 32 bits (class stacks, links, caches): 256 GiB of
 * data, less a page. */
#define BRD_POOL_MAX_PAGES ((UINT32_MAX - 1) / BRD_POOL_GRANS_PER_PAGE)

/* Page word (struct brd_pool_page.word): kind in bits 0..7, arg in 8..15. */
enum {
        BRD_PG_NONE  = 0,       /* interior page of a free or large block: not a block start */
        BRD_PG_FREE  = 1,       /* head of a free buddy block, arg = order */
        BRD_PG_LARGE = 2,       /* head of an allocated large block, arg = order */
        BRD_PG_SPAN  = 3,       /* every page of a span of small blocks, arg = class */
};
#define BRD_PG_WORD(kind, arg) ((AO_t)(kind) | (AO_t)(arg) << 8)
#define BRD_PG_KIND(w) ((unsigned)((w) & 0xff))
#define BRD_PG_ARG(w)  ((unsigned)(((w) >> 8) & 0xff))

/*
 * One per data page.  The word is written only under the pool lock (with
 * AO_store, in an order that keeps the page words a valid tiling of the data
 * area after every single store, so a holder that dies leaves something
 * repair can walk) and read lock-free by brd_pool_free() to classify an
 * offset.  prev/next link free buddy blocks of one order (page index + 1,
 * 0 = none): derived data, rebuilt by repair.  Meaningless on other pages
 * (nothing reads them there; the reclaim pass keeps its scratch in process
 * memory).
 */
struct brd_pool_page {
        AO_t     word;
        uint32_t prev;
        uint32_t next;
};
_Static_assert(sizeof(struct brd_pool_page) == 16, "page entry is 16 bytes on the wire");

/* Granule state byte (one per 64 B granule; meaningful at block starts of
 * spans only): state in bits 0..1, class + 1 in bits 2..5, so a CAS checks
 * block kind and class at once. */
enum {
        BRD_GS_NONE  = 0,       /* not the start of a small block */
        BRD_GS_FREE  = 1,       /* on its class's free stack (or held by reclaim) */
        BRD_GS_ALLOC = 2,       /* handed out */
        BRD_GS_CACHED = 3,      /* in one process's private cache (see pool.c) */
};
#define BRD_GS(cls, st) ((unsigned char)(((unsigned)(cls) + 1) << 2 | (st)))

/*
 * Class free-stack head: low 32 bits = granule index + 1 of the top block
 * (0 = empty), high 32 bits = a tag bumped by every successful CAS, so a
 * pop that read (top, next) cannot succeed after the top was popped and
 * pushed back in between (ABA).  For ABA to bite, the tag would have to
 * wrap once during one pop (2^32 CASes: ~90 s at 50 M/s, so a pop stalled
 * that long) and land on the very value, with the same top, that the pop
 * read: a chance of about 2^-32 per such stall.  The link to the next block is kept in
 * the first 8 bytes of each free block (an AO_t, same encoding, tag 0).
 */
struct brd_pool_class {
        AO_t head;
        /* Under the pool lock, while a reclaim sorts this class's stack it
         * took whole: the first block of the chain it has not handled yet
         * (granule + 1; 0: none).  A lock holder that dies leaves it for
         * pool_repair() to push back. */
        AO_t limbo;
        BRD_PAD(pad, 2 * sizeof(AO_t));
};
_Static_assert(sizeof(struct brd_pool_class) == BRD_CACHELINE, "one class head per cache line");

/*
 * A process's cache slot: the small blocks it keeps back from the class
 * stacks (state CACHED), listed in shared memory so that they outlive an
 * owner that dies without brd_pool_close(): an alloc about to fail with
 * -ENOSPC first hands a dead owner's blocks back (see pool.c).  A process
 * claims a free slot with a CAS of owner from 0; from then on only it
 * writes the slot (plain stores: the cache is used by a single-threaded
 * process only), and others read it only once the owner is dead.  Every
 * entry read back is range- and state-checked (a peer may scribble).
 */
#define BRD_POOL_SLOT_CAP   32u                   /* blocks per class */
#define BRD_POOL_SLOTS_MAX  32u
#define BRD_POOL_SLOT_SPAN  (512u * 1024)         /* one slot per 512 KiB of segment */
#define BRD_POOL_REAPING    (1ull << 62)          /* owner = this | reaper's pid */
#define BRD_POOL_OWNER_PID  0xffffffffull         /* owner & this: the pid */
#define BRD_POOL_OWNER_TAG_SHIFT 32               /* bits 32-61: the claim's tag */
#define BRD_POOL_OWNER_TAG_MASK  ((1ull << (62 - BRD_POOL_OWNER_TAG_SHIFT)) - 1)
/* The start-time bits a tag holds (its bits 2-29), as brd__pid_gone()'s mask. */
#define BRD_POOL_OWNER_START_MASK (BRD_POOL_OWNER_TAG_MASK >> 2)

/*
 * A slot's owner word (or, with BRD_POOL_REAPING, a reaper's mark) for the
 * process @pid started at @start (normalised, brd__proc_start_time_of()).
 * Its tag (never 0: bit 0 set) holds the start time's low bits (bit 1 set),
 * so that a reaper can tell that process from a later one with its pid even
 * where no start_time was stamped (a claimer killed before it wrote it, a
 * reaper killed mid-reap): brd__pid_gone(pid, brd__pool_owner_start(),
 * BRD_POOL_OWNER_START_MASK).  Where the start time is unknown (0: a /proc
 * not of our pid namespace) the tag holds @nonce instead (bit 1 clear),
 * different at each claim.  Either way a later claim by another process
 * with the same pid has another word, so a reaper's CAS never takes it.
 */
static inline uint64_t brd__pool_owner_word(uint64_t pid, uint64_t start, uint64_t nonce)
{
        uint64_t tag = start ? (start & BRD_POOL_OWNER_START_MASK) << 2 | 3 :
                               (nonce & BRD_POOL_OWNER_START_MASK) << 2 | 1;

        return tag << BRD_POOL_OWNER_TAG_SHIFT | pid;
}

/* The start-time bits of owner word @w's tag; 0: unknown. */
static inline uint64_t brd__pool_owner_start(uint64_t w)
{
        uint64_t tag = (w >> BRD_POOL_OWNER_TAG_SHIFT) & BRD_POOL_OWNER_TAG_MASK;

        return tag & 2 ? tag >> 2 : 0;
}

struct brd_pool_slot {
        AO_t     owner;         /* 0 = free; brd__pool_owner_word() of the owner; or
                                   BRD_POOL_REAPING | that of the reaper */
        AO_t     start_time;    /* the owner's /proc start time; 0 = not known yet */
        AO_t     pid_ns;        /* inode of the owner's pid namespace; 0 = unknown */
        uint8_t  n[BRD_POOL_NCLASSES];            /* entries of blk[c] in use */
        uint8_t  pad[BRD_CACHELINE - 3 * sizeof(AO_t) - BRD_POOL_NCLASSES];
        uint32_t blk[BRD_POOL_NCLASSES][BRD_POOL_SLOT_CAP];       /* granule indices */
};
_Static_assert(offsetof(struct brd_pool_slot, blk) == BRD_CACHELINE, "entries start on line 1");
_Static_assert(sizeof(struct brd_pool_slot) % BRD_CACHELINE == 0, "slots own their lines");

struct brd_pool_hdr {
        /* Immutable after create: checked on attach against a layout
         * recomputed from the segment size (-EPROTO on any mismatch). */
        uint64_t magic;
        uint32_t version;
        uint32_t npages;                /* data pages */
        uint64_t seg_size;              /* bytes of the segment */
        uint64_t pages_off;
        uint64_t states_off;
        uint64_t data_off;
        uint32_t page_size;             /* BRD_POOL_PAGE */
        uint32_t word_size;             /* sizeof(AO_t): every shared atomic is one */
        uint16_t gran_size;             /* BRD_POOL_GRAN */
        uint16_t nclasses;              /* BRD_POOL_NCLASSES */
        uint32_t hdr_size;              /* BRD_POOL_HDR_SIZE */

        /* The large-path lock: 0 = free, else the holder's owner word (pid
         * in bits 0..31, the low 32 bits of its /proc start time above;
         * threads of one process share it): an owner lock
         * (shm/owner-lock.c), never waited on longer than 2 s
         * (-ETIMEDOUT).  A waiter that finds the holder's
         * process gone takes it over and rebuilds the free lists from the
         * page words (or poisons the pool); a word whose pid cannot be a
         * process poisons it.  Not a pthread mutex: a robust one links
         * itself into the locker's robust list through pointers stored in
         * the mutex, i.e. in memory a peer can rewrite, and glibc and the
         * kernel then write through them into our address space. */
        AO_t lock BRD_ALIGNED_CACHELINE;
        AO_t poisoned;                  /* 1: corrupt, every call says -EBADMSG */
        uint64_t repairs;               /* under lock: dead holders repaired after */

        /* Buddy free lists, under lock: page index + 1 of the first block. */
        uint32_t free_head[BRD_POOL_MAX_ORDER] BRD_ALIGNED_CACHELINE;

        struct brd_pool_class cls[BRD_POOL_NCLASSES] BRD_ALIGNED_CACHELINE;
        /* Immutable after create, checked on attach like the offsets above. */
        uint64_t slots_off;             /* struct brd_pool_slot[nslots] */
        uint32_t nslots;
        uint32_t slot_size;             /* sizeof(struct brd_pool_slot) */
        /* Immutable after create: the inode of the creator's pid namespace
         * (0: unknown).  The lock names its holder by pid, so a process of
         * another pid namespace may not use the pool (-EXDEV). */
        uint64_t pid_ns;
};
_Static_assert(offsetof(struct brd_pool_hdr, lock) == 64, "lock on its own line");
_Static_assert(offsetof(struct brd_pool_hdr, free_head) == 128, "free lists on their own line");
_Static_assert(offsetof(struct brd_pool_hdr, cls) == 256, "class heads after the free lists");
_Static_assert(offsetof(struct brd_pool_hdr, cls) % BRD_CACHELINE == 0, "class heads own lines");
_Static_assert(sizeof(struct brd_pool_hdr) <= BRD_POOL_HDR_SIZE, "header fits its page");
_Static_assert(BRD_POOL_GRAN == 64, "BRD_POOL_ALIGN is 64");

/* ------------------------------------------------------------------ arrays */

#define BRD_ARRAY_MAGIC   0x79617272612e6472ull   /* "rd.array" little-endian */
#define BRD_ARRAY_VERSION 6u                      /* 2: the writer lock word, 3: its waiters bit, 4: floor,
                                                     5: seq tells a prepend from an overwrite,
                                                     6: gen */
#define BRD_ARRAY_HDR_SIZE 192u                   /* rows follow at block + this */

/*
 * An array: one pool block = this header + capacity * row_size bytes of rows.
 * Positions (first, last) run free as uint64; the row at position p lives in
 * slot p % capacity.  Without BRD_ARRAY_RING, 0 <= first <= last <= capacity.
 * With it, last - first <= capacity and pushing past capacity advances first.
 *
 * One writer at a time (push/prepend), any number of readers.  The writer
 * writes rows, then publishes last (push) or first (prepend) with a
 * release store.  Whenever first changes (prepend, or an overwriting push
 * in ring mode) the writer makes seq odd before and even after (a seqlock on
 * first only): a reader that sees the same even seq around its copy got an
 * exact snapshot; otherwise it trusts only rows at positions >= the first it
 * re-reads after copying, because the writer advances first (and fences)
 * before it overwrites a slot.  At rest seq is a multiple of 4; an overwrite
 * makes it 1 above, a prepend 3 above (BRD_ARRAY_SEQ_*), so that the next
 * writer can tell which one a dead writer left (writer_lock()).
 */
#define BRD_ARRAY_SEQ_OVERWRITE 1u
#define BRD_ARRAY_SEQ_PREPEND   3u
struct brd_array_hdr {
        AO_t magic;                     /* BRD_ARRAY_MAGIC; 0 once destroyed (claimed by CAS) */
        uint32_t version;
        uint32_t flags;                 /* enum brd_array_flags */
        uint64_t row_size;
        uint64_t capacity;
        uint64_t rows_off;              /* from the pool base */
        uint64_t block_off;             /* this header's own offset: a sanity check */
        AO_t gen;                       /* set at create, never 0: an array made at the
                                         * same offset later is another one */
        BRD_PAD(pad0, 56);
        AO_t first;                     /* written by the writer only */
        AO_t seq;                       /* odd while first is being moved */
        AO_t floor;                     /* ring: prepend never below (writer_lock()); 0: none */
        BRD_PAD(pad1, 3 * sizeof(AO_t));
        AO_t last;                      /* written by the writer only */
        AO_t writer;                    /* the writer lock: 0 free, else the holder's pid */
        BRD_PAD(pad2, 2 * sizeof(AO_t));
};
_Static_assert(offsetof(struct brd_array_hdr, first) == 64, "first on its own line");
_Static_assert(offsetof(struct brd_array_hdr, last) == 128, "last on its own line");
_Static_assert(sizeof(struct brd_array_hdr) == BRD_ARRAY_HDR_SIZE, "array header size");

/* ---------------------------------------------------------- internals */
struct brd_pool;
/* Process-local base of the mapping and the offset range of the data area. */
void *brd__pool_base(const struct brd_pool *pool);
/* Bytes of the block starting at @off if it is live, else -EINVAL; -EBADF
 * where the pool is not mapped (brd__pool_mapped()). */
int64_t brd__pool_block_size(struct brd_pool *pool, uint64_t off);
/* May this process take the pool's locks (its arrays' writer locks too)?
 * 0; -EBADF where it is not mapped (a forked child of a BRD_POOL_NOFORK
 * pool: nothing in it may be touched); -EXDEV in a process of another pid
 * namespace than the pool's creator (a forked child of a process that
 * called unshare(CLONE_NEWPID)), to which the lock words' pids mean other
 * processes. */
int brd__pool_where(const struct brd_pool *pool);
/*
 * brd_pool_stats() of the pool in file @fd (@size bytes) from a private
 * copy of its metadata: nothing mapped, no lock taken, nothing written to
 * the pool (brood ls looks at other processes' pools).  A pool in use may
 * be caught mid-change: then the figures are approximate, or -EBADMSG.
 * 0, -EPROTO (not a pool of this version), -EFBIG (metadata above
 * BRD_POOL_PEEK_MAX: a pool of ~3 GiB or more), -ENOMEM, or -errno of pread.
 */
#define BRD_POOL_PEEK_MAX (64u << 20)
int brd__pool_peek_stats(int fd, uint64_t size, struct brd_pool_stats *ret_stats);

/*
 * Test hook: take the pool lock and leave the shared state the way a holder
 * killed at @stage would (0: just holding; 1: mid-split of a free block;
 * 2: mid-carve of a span; 3: mid-merge).  Returns with the lock held;
 * the caller is expected to die.  0 or -errno.
 */
int brd__pool_test_die_locked(struct brd_pool *pool, int stage);
/*
 * Test hook: brd_pool_attach(), with @peer called on the mapped header right
 * after attach has made its one read of it and before it judges that copy:
 * a peer rewriting the header at the worst moment.  What attach checks and
 * what it keeps is that copy, so whatever @peer writes changes neither the
 * verdict nor the object's bounds.  @peer NULL: brd_pool_attach().
 */
int brd__pool_attach_test(const struct brd_handle *h, void (*peer)(void *hdr, void *arg),
                          void *arg, struct brd_pool **ret_pool);
/*
 * Test hook: from now on the reclaim pass (run under the pool lock when the
 * buddy allocator is dry) calls @peer(mapping base, class, pass, @arg) after
 * pass 1 (counting) and pass 2 (splitting) over each class stack it
 * detached, and, as it gives a wholly free span back, with pass 3 once half
 * the span's block states are cleared and pass 4 once half its page words
 * are: a peer rewriting shared memory (or a death) at those moments.
 * Two more places call it, a death's: pass BRD__POOL_HOOK_LIMBO after each
 * block the repair of a holder that died mid-reclaim pushes back from
 * limbo, and BRD__POOL_HOOK_DRAIN after each block a cache slot's drain
 * (close, or a reaper's) hands back; BRD__POOL_HOOK_DETACH after each
 * block the reclaim moves from its class stack into limbo; and
 * BRD__POOL_HOOK_CARVE once a new span's head word is set, before its
 * blocks are pushed; BRD__POOL_HOOK_TAKE once the release of a wholly free
 * span has taken the first half of its blocks from FREE.
 * @peer NULL: no calls.  For this handle only.
 */
#define BRD__POOL_HOOK_LIMBO  5
#define BRD__POOL_HOOK_DRAIN  6
#define BRD__POOL_HOOK_DETACH 7
#define BRD__POOL_HOOK_CARVE  8
#define BRD__POOL_HOOK_TAKE   9
void brd__pool_test_reclaim(struct brd_pool *pool,
                            void (*peer)(void *hdr, unsigned c, int pass, void *arg), void *arg);

#endif /* BROOD_POOL_H */
