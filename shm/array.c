/* SPDX-License-Identifier: MIT */
/*
 * Shared arrays: fixed-size rows in one pool block, with first/last indices
 * in the same block (the seed's ShmArray used three segments and plain byte
 * copies for the indices).  Any number of writers and readers in any
 * processes; the protocol is described at struct brd_array_hdr.
 *
 * Writers take turns through an owner lock in the header (shm/owner-lock.c:
 * the holder's pid and start time), held only while rows are copied and
 * indices published: a few hundred nanoseconds.  A writer that finds the
 * holder's process gone (exited, a zombie, or its pid recycled) takes the
 * lock over and repairs the one thing a dead writer can leave behind, an
 * odd seq.  Rows it wrote but never published are simply not
 * there: last/first moved only after them.  A holder that is alive but does
 * not let go (stopped, hostile, or a scribbled word naming a live process)
 * cannot be taken over safely: a writer waits for it at most 2 s, then
 * gives up with -ETIMEDOUT, having written nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"

struct brd_array {
        struct brd_pool *pool;
        struct brd_array_hdr *h;
        unsigned char *rows;
        /* Copied once from a validated header: never re-read for a bound. */
        uint64_t off;
        uint64_t row_size;
        uint64_t capacity;
        uint64_t gen;                   /* the header's at create/open */
        unsigned flags;
        AO_t poisoned;                  /* 1 once corruption was seen (array_poison()) */
};

/* Corrupt shared state poisons this handle: from then on push, prepend and
 * read answer -EBADMSG, whatever a peer writes next.  Returns @r. */
static int array_poison(struct brd_array *a, int r)
{
        if (r == -EBADMSG)
                AO_store(&a->poisoned, 1);
        return r;
}

static bool array_poisoned(const struct brd_array *a)
{
        return AO_load(&a->poisoned) != 0;
}

/* A reader gives up on an exact snapshot after this many torn attempts and
 * returns the rows it can prove intact (see brd_array_read). */
#define READ_EXACT_TRIES 3
/* ... and gives up (-EAGAIN) after this many copies all overwritten, or
 * past READ_EXACT_TRIES once its copies came to this many bytes: a large
 * array lapped at every copy (a writer as fast as the copy, or a peer
 * that moves the indices alone) must not hold the call for minutes (1000
 * copies of 1 GiB). */
#define READ_LAPPED_TRIES 1000
#define READ_LAPPED_BYTES (64u << 20)

/* Make @a (zeroed) the object for the array at @off whose geometry is
 * @row_size, @capacity and @flags, of the create that wrote @gen: values
 * the caller wrote (create) or read and checked (open), never read again
 * from the header. */
static struct brd_array *array_wrap(struct brd_array *a, struct brd_pool *pool, uint64_t off,
                                    uint64_t row_size, uint64_t capacity, unsigned flags,
                                    uint64_t gen)
{
        unsigned char *base = brd__pool_base(pool);

        a->pool = pool;
        a->h = (struct brd_array_hdr *)(void *)(base + off);
        a->off = off;
        a->row_size = row_size;
        a->capacity = capacity;
        a->flags = flags;
        a->rows = base + off + BRD_ARRAY_HDR_SIZE;
        a->gen = gen;
        return a;
}

BRD_EXPORT int brd_array_create(struct brd_pool *pool, size_t row_size, size_t capacity,
                                size_t start, unsigned flags, struct brd_array **ret_array)
{
        struct brd_array_hdr *h;
        struct brd_array *a;
        uint64_t gen;
        size_t bytes;
        int64_t off;

        if (!pool || !ret_array || row_size == 0 || capacity == 0 || start > capacity ||
            (flags & ~(unsigned)BRD_ARRAY_RING))
                return -EINVAL;
        if (__builtin_mul_overflow(row_size, capacity, &bytes) ||
            __builtin_add_overflow(bytes, (size_t)BRD_ARRAY_HDR_SIZE, &bytes) ||
            bytes > (size_t)INT64_MAX)
                return -EINVAL;
        /* Before the block: nothing may fail once it is taken (giving it
         * back can fail too, -ETIMEDOUT, which would leak it for good). */
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        off = brd_pool_alloc(pool, bytes);
        if (off < 0) {
                free(a);
                return (int)off;
        }
        h = brd_pool_ptr(pool, (uint64_t)off);
        h->version = BRD_ARRAY_VERSION;
        h->flags = flags;
        h->row_size = row_size;
        h->capacity = capacity;
        h->rows_off = (uint64_t)off + BRD_ARRAY_HDR_SIZE;
        h->block_off = (uint64_t)off;
        /* Creates at one offset follow one another (a destroy between
         * each): their clock readings differ. */
        gen = (uint64_t)brd__now_ns();
        AO_store(&h->gen, (AO_t)gen);
        AO_store(&h->first, start);
        AO_store(&h->last, start);
        AO_store(&h->seq, 0);
        AO_store(&h->floor, 0);         /* a pool block is not zeroed */
        AO_store(&h->writer, 0);
        /* Another process learns the offset through a syscall (socket, pipe,
         * fork), which orders these stores before its open; one that opens
         * the offset of an array destroyed meanwhile pairs its acquire load
         * of the magic with this release (brd_array_open()). */
        AO_store_release(&h->magic, BRD_ARRAY_MAGIC);
        *ret_array = array_wrap(a, pool, (uint64_t)off, row_size, capacity, flags, gen);
        return 0;
}

BRD_EXPORT int brd_array_open(struct brd_pool *pool, uint64_t off, struct brd_array **ret_array)
{
        const struct brd_array_hdr *h;
        uint64_t bytes, magic, gen, rs, cap, boff, roff;
        uint32_t version, flags;
        struct brd_array *a;
        int64_t bsz;

        if (!pool || !ret_array)
                return -EINVAL;
        bsz = brd__pool_block_size(pool, off);
        if (bsz == -EINVAL)
                return -EPROTO;         /* no live block starts there */
        if (bsz < 0)
                return (int)bsz;
        if ((uint64_t)bsz < BRD_ARRAY_HDR_SIZE)
                return -EPROTO;
        h = brd_pool_ptr(pool, off);
        if (!h)
                return -EBADF;
        /* Each field read once: what is checked is what the object keeps
         * (a peer may rewrite the header meanwhile).  The barrier (for the
         * compiler too: no field is loaded again instead of its copy) comes
         * before magic, gen and the block once more: the fields are of one
         * create, inside the block they were checked against, and not of a
         * destroy and a create of a smaller array at @off in between (the
         * object would keep the old geometry and the new gen, and write
         * past the new block). */
        magic = AO_load_acquire(&h->magic);
        gen = AO_load(&h->gen);
        version = h->version;
        flags = h->flags;
        rs = h->row_size;
        cap = h->capacity;
        boff = h->block_off;
        roff = h->rows_off;
        AO_nop_read();
        if (AO_load(&h->magic) != magic || AO_load(&h->gen) != gen || gen == 0 ||
            brd__pool_block_size(pool, off) != bsz)
                return -EPROTO;         /* gen 0: a destroy has claimed it */
        if (magic != BRD_ARRAY_MAGIC || version != BRD_ARRAY_VERSION ||
            (flags & ~(uint32_t)BRD_ARRAY_RING) || rs == 0 || cap == 0 ||
            boff != off || roff != off + BRD_ARRAY_HDR_SIZE ||
            __builtin_mul_overflow(rs, cap, &bytes) ||
            bytes > (uint64_t)bsz - BRD_ARRAY_HDR_SIZE)
                return -EPROTO;
        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        *ret_array = array_wrap(a, pool, off, rs, cap, flags, gen);
        return 0;
}

BRD_EXPORT uint64_t brd_array_offset(const struct brd_array *a)
{
        return a ? a->off : 0;
}

BRD_EXPORT size_t brd_array_row_size(const struct brd_array *a)
{
        return a ? (size_t)a->row_size : 0;
}

BRD_EXPORT size_t brd_array_capacity(const struct brd_array *a)
{
        return a ? (size_t)a->capacity : 0;
}

/* The rows and header are mapped here: not in a forked child of a
 * BRD_POOL_NOFORK pool, where every call answers without touching them.
 * (Another pid namespace, -EXDEV, may read: reads take no lock.) */
static inline bool array_mapped(const struct brd_array *a)
{
        return brd__pool_where(a->pool) != -EBADF;
}

/* Destroyed through another handle or in another process: its magic was
 * claimed (brd_array_destroy()), or the pool reused the block, for
 * something else or another array (gen).  A contract breach (every other
 * process must have stopped using the array first) that is caught when the
 * destroy came before the call, so that a stale handle writes nothing into
 * a block that is not its own. */
static inline bool array_destroyed(const struct brd_array *a)
{
        return AO_load(&a->h->magic) != BRD_ARRAY_MAGIC || AO_load(&a->h->gen) != a->gen;
}

BRD_EXPORT uint64_t brd_array_first(const struct brd_array *a)
{
        /* Pairs with the writer's release stores of first. */
        return a && array_mapped(a) ? AO_load_acquire(&a->h->first) : 0;
}

BRD_EXPORT uint64_t brd_array_last(const struct brd_array *a)
{
        /* Pairs with the writer's release stores of last. */
        return a && array_mapped(a) ? AO_load_acquire(&a->h->last) : 0;
}

/*
 * The writer lock, an owner lock (shm/owner-lock.c): 0; -EBADMSG when the
 * word cannot be a process (corrupt memory); -ETIMEDOUT when a live holder
 * kept it 2 s: stopped (SIGSTOP, a debugger), hostile, or a scribbled word
 * naming a live process.  None of these can be told from a slow holder and
 * none may be taken over (the holder may still write), so the wait is
 * bounded instead.  -EBADF, not held, when the array was destroyed.
 */
static int writer_lock(struct brd_array *a)
{
        int r = brd__owner_lock(&a->h->writer);

        if (r < 0)
                return r;
        /*
         * Destroyed while we waited (a contract breach): the block may be
         * another array's, whose create reset this word and whose writer
         * may hold it by now.  No repair (it would be of that array, by our
         * flags), and the lock let go only while it is still our word.
         */
        if (array_destroyed(a)) {
                brd__owner_unlock_mine(&a->h->writer);
                return -EBADF;
        }
        if (r == 1) {
                /*
                 * The holder died mid-write, maybe with seq odd: make it a
                 * multiple of 4 again.  An overwrite had moved first past
                 * every slot it may have touched; its rows below that first
                 * may be torn, and the ring is not full any more, so a
                 * prepend could bring first back over them: a reader whose
                 * copy began before the death would then take its torn copy
                 * for one nothing overwrote (first <= its start).  So
                 * prepends stop at this first for good.  A prepend wrote
                 * only free slots, which no reader's copy had in it: it
                 * leaves nothing to guard.
                 */
                AO_t s = AO_load(&a->h->seq);

                if (s & 1) {
                        if ((a->flags & BRD_ARRAY_RING) && (s & 3) == BRD_ARRAY_SEQ_OVERWRITE)
                                AO_store(&a->h->floor, AO_load(&a->h->first));
                        AO_store_release(&a->h->seq, (s | 3) + 1);
                }
                r = 0;
        }
        return r;
}

/* Is the writer lock held by a process that is gone (a writer that died
 * mid-write)?  Not when it is free: that writer finished meanwhile.  A
 * reader's question: judged by pids (our pid namespace's, see
 * brd__owner_gone()). */
static bool writer_died(const struct brd_array *a)
{
        AO_t w = AO_load(&a->h->writer) & ~(AO_t)BRD__OWNER_WAITERS;

        return w && brd__owner_gone(w);
}

static void writer_unlock(struct brd_array *a)
{
        brd__owner_unlock(&a->h->writer);
}

/* The writer is about to move first (@how: BRD_ARRAY_SEQ_*): seq odd.
 * Returns seq at rest, for seq_end(). */
static AO_t seq_begin(struct brd_array *a, AO_t how)
{
        AO_t s = AO_load(&a->h->seq) & ~(AO_t)3;

        AO_store(&a->h->seq, s + how);
        /* seq odd before first moves, for a CPU that may reorder stores (a
         * reader that saw the new first with the old seq would take an
         * overwrite's 0 rows as exact); a compiler barrier on x86. */
        AO_nop_write();
        return s;
}

/* First moved: seq at rest again.  Pairs with AO_load_acquire(seq) in
 * brd_array_read. */
static void seq_end(struct brd_array *a, AO_t s)
{
        AO_store_release(&a->h->seq, s + 4);
}

/* The writer's own indices (it holds the writer lock), checked. */
static int writer_indices(const struct brd_array *a, uint64_t *ret_f, uint64_t *ret_l)
{
        uint64_t f = AO_load(&a->h->first), l = AO_load(&a->h->last);

        /* A ring's last near 2^64 (never reached by pushes) would wrap l + n. */
        if (f > l || l - f > a->capacity || (!(a->flags & BRD_ARRAY_RING) && l > a->capacity) ||
            l > UINT64_MAX - a->capacity)
                return -EBADMSG;
        *ret_f = f;
        *ret_l = l;
        return 0;
}

/* Copy @n rows into the slots of positions pos.. (wrapping). */
static void rows_put(struct brd_array *a, uint64_t pos, const unsigned char *src, uint64_t n)
{
        uint64_t slot = pos % a->capacity, k = a->capacity - slot;

        if (k > n)
                k = n;
        brd__memcpy(a->rows + slot * a->row_size, src, k * a->row_size);
        if (n > k)
                brd__memcpy(a->rows, src + k * a->row_size, (n - k) * a->row_size);
}

static void rows_get(const struct brd_array *a, uint64_t pos, unsigned char *dst, uint64_t n)
{
        uint64_t slot = pos % a->capacity, k = a->capacity - slot;

        if (k > n)
                k = n;
        brd__memcpy(dst, a->rows + slot * a->row_size, k * a->row_size);
        if (n > k)
                brd__memcpy(dst + k * a->row_size, a->rows, (n - k) * a->row_size);
}

static int push_locked(struct brd_array *a, const void *rows, size_t n)
{
        uint64_t f, l, nf, s = 0;
        int r;

        r = writer_indices(a, &f, &l);
        if (r < 0)
                return r;
        if (n > a->capacity)
                return -ENOSPC;         /* never fits, ring or not: nothing written */
        if (!(a->flags & BRD_ARRAY_RING)) {
                if (n > a->capacity - l)
                        return -ENOSPC;
                brd__memcpy(a->rows + l * a->row_size, rows, n * a->row_size);
                /* Pairs with AO_load_acquire(last) in brd_array_read: the rows
                 * are written before a reader can count them. */
                AO_store_release(&a->h->last, l + n);
                return 0;
        }
        nf = l + n - f > a->capacity ? l + n - a->capacity : f;
        if (nf != f) {
                /* Overwrite: retire the oldest rows before touching their
                 * slots.  seq odd, then first, then a fence that pairs with
                 * AO_nop_read in brd_array_read: a reader whose copy saw any
                 * byte of the overwrite sees first advanced past it.  One
                 * that orders a large copy's streaming stores too. */
                s = seq_begin(a, BRD_ARRAY_SEQ_OVERWRITE);
                AO_store(&a->h->first, nf);
                brd__store_fence();
        }
        rows_put(a, l, rows, n);
        /* Pairs with AO_load_acquire(last) in brd_array_read. */
        AO_store_release(&a->h->last, l + n);
        if (nf != f)
                seq_end(a, s);
        return 0;
}

static int prepend_locked(struct brd_array *a, const void *rows, size_t n)
{
        uint64_t f, l, s;
        int r;

        r = writer_indices(a, &f, &l);
        if (r < 0)
                return r;
        /* Never below position 0 (or a ring's floor: writer_lock()), never
         * over a live row (ring or not).  A floor above first is a peer's
         * scribble: it only refuses prepends. */
        if (n > f || n > a->capacity - (l - f) || f - n < AO_load(&a->h->floor))
                return -ENOSPC;
        s = seq_begin(a, BRD_ARRAY_SEQ_PREPEND);
        rows_put(a, f - n, rows, n);
        /* Pairs with AO_load_acquire(first) in brd_array_read: the rows are
         * written before first covers them. */
        AO_store_release(&a->h->first, f - n);
        seq_end(a, s);
        return 0;
}

/* push and prepend: the same checks, under the writer lock. */
static int array_write(struct brd_array *a, const void *rows, size_t n,
                       int (*locked)(struct brd_array *, const void *, size_t))
{
        int r;

        if (!a || (!rows && n))
                return -EINVAL;
        /* Not mapped here (-EBADF), or the writer lock's pids are not ours
         * (-EXDEV: another pid namespace than the pool's creator). */
        r = brd__pool_where(a->pool);
        if (r < 0)
                return r;
        if (array_poisoned(a))
                return -EBADMSG;
        if (array_destroyed(a))
                return -EBADF;
        if (n == 0)
                return 0;
        r = writer_lock(a);
        if (r < 0)
                return array_poison(a, r);
        r = locked(a, rows, n);
        writer_unlock(a);
        return array_poison(a, r);
}

BRD_EXPORT int brd_array_push(struct brd_array *a, const void *rows, size_t n)
{
        return array_write(a, rows, n, push_locked);
}

BRD_EXPORT int brd_array_prepend(struct brd_array *a, const void *rows, size_t n)
{
        return array_write(a, rows, n, prepend_locked);
}

/* Indices a reader cannot take: the block is not the array's any more
 * (-EBADF), or they are corrupt (poisoned, -EBADMSG). */
static int read_corrupt(struct brd_array *a)
{
        return array_destroyed(a) ? -EBADF : array_poison(a, -EBADMSG);
}

BRD_EXPORT ssize_t brd_array_read(struct brd_array *a, uint64_t *ret_first, void *rows,
                                  size_t max_rows)
{
        unsigned char *dst = rows;
        uint64_t copied = 0;
        unsigned tries;

        if (!a || (!rows && max_rows))
                return -EINVAL;
        if (!array_mapped(a))
                return -EBADF;
        if (array_poisoned(a))
                return -EBADMSG;
        for (tries = 1; ; tries++) {
                uint64_t s1, s2, f, l, cs, n, f2;

                /* Pairs with the writer's release store of an even seq. */
                s1 = AO_load_acquire(&a->h->seq);
                /* first before last: first <= last holds at every instant and
                 * last only grows, so f <= l here (a stale f is only too small). */
                f = AO_load_acquire(&a->h->first);      /* pairs with prepend's release */
                l = AO_load_acquire(&a->h->last);       /* pairs with push's release */
                if (f > l)
                        return read_corrupt(a);
                if (!(a->flags & BRD_ARRAY_RING)) {
                        if (l > a->capacity)
                                return read_corrupt(a);
                } else if (l - f > a->capacity) {
                        f = l - a->capacity;            /* stale first: those rows are gone */
                }
                cs = l - f > max_rows ? l - max_rows : f;
                n = l - cs;
                if (n)
                        rows_get(a, cs, dst, n);
                copied += n * a->row_size;
                /* Pairs with brd__store_fence() in push_locked(): if the copy
                 * read any overwritten byte, the loads below see first past it. */
                AO_nop_read();
                s2 = AO_load(&a->h->seq);
                f2 = AO_load(&a->h->first);
                if (array_destroyed(a))
                        return -EBADF;  /* what was copied is not the array's */
                /* Nothing copied from a ring whose seq moved or was odd:
                 * first may have been at last amid an overwrite (a push of
                 * a whole capacity retires every row before it writes the
                 * new ones), and the ring was not empty.  Looked at again,
                 * not forever against a writer that keeps at it.  Then, a
                 * writer that is gone (it died mid-write, seq left odd) did
                 * retire the rows: empty until the next writer repairs it. */
                if ((a->flags & BRD_ARRAY_RING) && !n && max_rows && (s1 != s2 || (s1 & 1))) {
                        if (tries < READ_LAPPED_TRIES)
                                continue;
                        if (s1 != s2 || !writer_died(a))
                                return -EAGAIN;
                }
                if (!(a->flags & BRD_ARRAY_RING) || f2 <= cs) {
                        /* Nothing copied was overwritten.  With seq unchanged
                         * and even, first did not move either: [cs, l) is
                         * exactly what the array held when last was read. */
                        if ((s1 == s2 && !(s1 & 1)) || tries >= READ_EXACT_TRIES) {
                                if (ret_first)
                                        *ret_first = cs;
                                return (ssize_t)n;
                        }
                        continue;
                }
                if (f2 < l && tries >= READ_EXACT_TRIES) {
                        /* The writer lapped the oldest rows of the copy: keep
                         * the ones it provably did not touch (>= f2). */
                        memmove(dst, dst + (f2 - cs) * a->row_size, (l - f2) * a->row_size);
                        if (ret_first)
                                *ret_first = f2;
                        return (ssize_t)(l - f2);
                }
                /* f2 >= l: every copied row was overwritten; try again,
                 * but not forever against a writer that laps every copy. */
                if (tries >= READ_LAPPED_TRIES ||
                    (tries >= READ_EXACT_TRIES && copied >= READ_LAPPED_BYTES))
                        return -EAGAIN;
        }
}

BRD_EXPORT void brd_array_close(struct brd_array *a)
{
        free(a);
}

BRD_EXPORT int brd_array_destroy(struct brd_array *a)
{
        int r;

        if (!a)
                return 0;
        r = brd__pool_where(a->pool);
        if (r < 0) {
                free(a);        /* only this process's view */
                return r;
        }
        /*
         * The block is no longer ours once another process freed it (the
         * array destroyed there), nor once the pool handed it out again:
         * write nothing into it, close our view.  The generation is
         * claimed (set to 0, which no create writes), not checked then
         * cleared: of two destroys at once one wins, and the other writes
         * nothing and frees nothing.  The claim is of this array's
         * generation, not of the magic, which every array at this offset
         * has: a destroy that checked the generation, then lost the CPU
         * while another destroyed it and a create put a new array there,
         * claimed and freed that new one.  Magic and generation go before
         * the free: a freed block is no longer ours to write, and a large
         * one keeps its bytes, so a stale offset would open again.
         */
        if (brd__pool_block_size(a->pool, a->off) < 0 || a->h->block_off != a->off ||
            AO_load(&a->h->magic) != BRD_ARRAY_MAGIC ||
            !AO_compare_and_swap_full(&a->h->gen, a->gen, 0)) {
                free(a);
                return -EINVAL;
        }
        AO_store(&a->h->magic, 0);
        r = brd_pool_free(a->pool, a->off);
        if (r == -EINVAL) {
                free(a);        /* freed by another process meanwhile, as above */
                return r;
        }
        if (r < 0) {
                /* -ETIMEDOUT: the pool lock stayed held, nothing changed and
                 * the block is still ours; -EBADMSG: the pool is poisoned,
                 * nothing is allocated from it again.  The array stays whole
                 * and open: the caller may retry. */
                AO_store(&a->h->magic, BRD_ARRAY_MAGIC);
                AO_store_release(&a->h->gen, a->gen);
                return r;
        }
        free(a);
        return 0;
}
