/* SPDX-License-Identifier: MIT */
/* Shared arrays: push/prepend/read, overruns, ring mode, open validation,
 * hostile indices, and a writer process racing a reader process. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"

#define MiB (1024 * 1024)
#define ROWW 8                          /* 64-byte rows: 8 words */

struct row {
        uint64_t w[ROWW];
};

/* A row is a function of its position: torn or misplaced rows show. */
static void row_make(struct row *r, uint64_t pos)
{
        unsigned i;

        for (i = 0; i < ROWW; i++)
                r->w[i] = pos * 0x9e3779b97f4a7c15ull + i;
}

static int row_ok(const struct row *r, uint64_t pos)
{
        struct row e;

        row_make(&e, pos);
        return memcmp(r, &e, sizeof(e)) == 0;
}

/*
 * Linked with -Wl,--wrap=brd__owner_lock (tests/meson.build): with
 * recreate.armed, the next writer lock taken plays what other processes do
 * meanwhile: destroys the array (recreate.victim's), creates a ring array
 * in its block, marks that one's writer lock held by a live process (pid
 * 1), its seq odd (a write under way), then answers @recreate.answer (1:
 * "taken over from a dead holder").
 */
static struct {
        bool armed;
        int answer;
        struct brd_pool *pool;
        struct brd_array *victim, *made;
} recreate;

int __real_brd__owner_lock(AO_t *lk);
int __wrap_brd__owner_lock(AO_t *lk);
int __wrap_brd__owner_lock(AO_t *lk)
{
        int r = __real_brd__owner_lock(lk);

        if (r >= 0 && recreate.armed) {
                struct brd_array_hdr *h;

                recreate.armed = false;
                if (brd_array_destroy(recreate.victim) != 0 ||
                    brd_array_create(recreate.pool, 16, 100, 0, BRD_ARRAY_RING, &recreate.made) != 0)
                        return -EIO;
                h = brd_pool_ptr(recreate.pool, brd_array_offset(recreate.made));
                AO_store(&h->writer, brd__owner_word_of(1));
                AO_store(&h->seq, AO_load(&h->seq) + 1);
                r = recreate.answer;
        }
        return r;
}

static struct brd_array_hdr *hdr_of(struct brd_array *a, struct brd_pool *p)
{
        return brd_pool_ptr(p, brd_array_offset(a));
}

static void test_array_bad_args(void **state)
{
        struct brd_array *a = (struct brd_array *)0x1;
        struct brd_pool *p;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(NULL, 8, 8, 0, 0, &a), -EINVAL);
        assert_int_equal(brd_array_create(p, 0, 8, 0, 0, &a), -EINVAL);
        assert_int_equal(brd_array_create(p, 8, 0, 0, 0, &a), -EINVAL);
        assert_int_equal(brd_array_create(p, 8, 8, 9, 0, &a), -EINVAL);
        assert_int_equal(brd_array_create(p, 8, 8, 0, 1u << 5, &a), -EINVAL);
        assert_int_equal(brd_array_create(p, SIZE_MAX / 2, 3, 0, 0, &a), -EINVAL);     /* overflow */
        assert_int_equal(brd_array_create(p, 1, SIZE_MAX - 10, 0, 0, &a), -EINVAL);    /* + header */
        assert_int_equal(brd_array_create(p, 8, 8, 0, 0, NULL), -EINVAL);
        assert_int_equal(brd_array_create(p, 4096, 1024, 0, 0, &a), -EINVAL);          /* > pool */
        assert_ptr_equal(a, (struct brd_array *)0x1);
        assert_int_equal(brd_array_push(NULL, "x", 1), -EINVAL);
        assert_int_equal(brd_array_prepend(NULL, "x", 1), -EINVAL);
        assert_int_equal(brd_array_read(NULL, NULL, NULL, 0), -EINVAL);
        brd_array_close(NULL);
        assert_int_equal(brd_array_destroy(NULL), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_array_push_prepend_read(void **state)
{
        struct row in[16], out[32];
        struct brd_array *a, *b;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t first = 0;
        ssize_t n;
        int i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 32, 10, 0, &a), 0);
        assert_int_equal(brd_array_row_size(a), sizeof(struct row));
        assert_int_equal(brd_array_capacity(a), 32);
        assert_int_equal(brd_array_read(a, &first, out, 32), 0);
        assert_int_equal(first, 10);
        for (i = 0; i < 5; i++)
                row_make(&in[i], 10 + (uint64_t)i);
        assert_int_equal(brd_array_push(a, in, 5), 0);
        for (i = 0; i < 3; i++)
                row_make(&in[i], 7 + (uint64_t)i);
        assert_int_equal(brd_array_prepend(a, in, 3), 0);
        assert_int_equal(brd_array_first(a), 7);
        assert_int_equal(brd_array_last(a), 15);
        n = brd_array_read(a, &first, out, 32);
        assert_int_equal(n, 8);
        assert_int_equal(first, 7);
        for (i = 0; i < n; i++)
                assert_true(row_ok(&out[i], first + (uint64_t)i));
        /* The newest max_rows. */
        n = brd_array_read(a, &first, out, 3);
        assert_int_equal(n, 3);
        assert_int_equal(first, 12);
        for (i = 0; i < n; i++)
                assert_true(row_ok(&out[i], first + (uint64_t)i));
        /* Another view by offset sees the same rows. */
        assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), 0);
        n = brd_array_read(b, &first, out, 32);
        assert_int_equal(n, 8);
        assert_int_equal(first, 7);
        brd_array_close(b);
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_array_overrun_changes_nothing(void **state)
{
        struct row in[40], out[40], before[40];
        struct brd_array *a;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t f0, l0, first;
        int i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 32, 4, 0, &a), 0);
        for (i = 0; i < 40; i++)
                row_make(&in[i], 4 + (uint64_t)i);
        assert_int_equal(brd_array_push(a, in, 26), 0);
        f0 = brd_array_first(a);
        l0 = brd_array_last(a);
        assert_int_equal(brd_array_read(a, NULL, before, 40), 26);
        memset(in, 0xee, sizeof(in));
        assert_int_equal(brd_array_push(a, in, 3), -ENOSPC);           /* 2 slots left */
        assert_int_equal(brd_array_push(a, in, 33), -ENOSPC);
        assert_int_equal(brd_array_prepend(a, in, 5), -ENOSPC);        /* 4 slots below */
        assert_int_equal(brd_array_first(a), f0);
        assert_int_equal(brd_array_last(a), l0);
        assert_int_equal(brd_array_read(a, &first, out, 40), 26);
        assert_int_equal(first, 4);
        assert_memory_equal(out, before, 26 * sizeof(struct row));
        /* The bytes beyond last were not written either. */
        {
                const struct row *slots = (const void *)((const char *)hdr_of(a, p) + BRD_ARRAY_HDR_SIZE);

                for (i = 0; i < 4; i++)
                        assert_int_not_equal(slots[i].w[0], 0xeeeeeeeeeeeeeeeeull);
                for (i = 30; i < 32; i++)
                        assert_int_not_equal(slots[i].w[0], 0xeeeeeeeeeeeeeeeeull);
        }
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * A BRD_POOL_NOFORK pool is not mapped in a forked child, and neither are
 * its arrays: every array call there answers -EBADF (or 0) without touching
 * them (before, push, read, first and open faulted).  The child reports by
 * its exit code only: the number of the first check that failed.
 */
static void test_array_nofork_pool_in_child(void **state)
{
        struct row in[4], out[8];
        struct brd_array *a, *b = NULL;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t first;
        pid_t pid;
        int i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, BRD_POOL_NOFORK, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 16, 2, 0, &a), 0);
        for (i = 0; i < 4; i++)
                row_make(&in[i], 2 + (uint64_t)i);
        assert_int_equal(brd_array_push(a, in, 3), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int rc = 0;

                if (brd_array_push(a, &in[3], 1) != -EBADF)
                        rc = 1;
                else if (brd_array_prepend(a, in, 1) != -EBADF)
                        rc = 2;
                else if (brd_array_read(a, &first, out, 8) != -EBADF)
                        rc = 3;
                else if (brd_array_first(a) != 0 || brd_array_last(a) != 0)
                        rc = 4;
                else if (brd_array_open(p, brd_array_offset(a), &b) != -EBADF || b)
                        rc = 5;
                else if (brd_array_create(p, sizeof(struct row), 4, 0, 0, &b) != -EBADF || b)
                        rc = 6;
                else if (brd_array_row_size(a) != sizeof(struct row) || brd_array_capacity(a) != 16)
                        rc = 7;         /* process-local: still known */
                else if (brd_array_destroy(a) != -EBADF)
                        rc = 8;
                _exit(rc);
        }
        assert_int_equal(t_wait_child(pid), 0);
        /* The parent's array is untouched, and still works. */
        assert_int_equal(brd_array_first(a), 2);
        assert_int_equal(brd_array_last(a), 5);
        assert_int_equal(brd_array_push(a, &in[3], 1), 0);
        assert_int_equal(brd_array_read(a, &first, out, 8), 4);
        assert_int_equal(first, 2);
        for (i = 0; i < 4; i++)
                assert_true(row_ok(&out[i], 2 + (uint64_t)i));
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_array_ring_overwrites_oldest(void **state)
{
        struct row in[8], out[8];
        struct brd_array *a;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t pos = 0, first;
        ssize_t n;
        int i, k;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 8, 0, BRD_ARRAY_RING, &a), 0);
        for (k = 0; k < 50; k++) {
                int m = 1 + k % 5;

                for (i = 0; i < m; i++)
                        row_make(&in[i], pos + (uint64_t)i);
                assert_int_equal(brd_array_push(a, in, (size_t)m), 0);
                pos += (uint64_t)m;
                n = brd_array_read(a, &first, out, 8);
                assert_int_equal(n, pos < 8 ? pos : 8);
                assert_int_equal(first, pos - (uint64_t)n);
                for (i = 0; i < n; i++)
                        assert_true(row_ok(&out[i], first + (uint64_t)i));
        }
        assert_int_equal(brd_array_push(a, in, 9), -ENOSPC);           /* more than capacity */
        assert_int_equal(brd_array_prepend(a, in, 1), -ENOSPC);        /* full: never overwrites */
        assert_int_equal(brd_array_last(a), pos);
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * Bulk rows through the copy helper's chunked path: 3-byte rows, thousands
 * at a time from and into buffers at odd addresses, across the ring's wrap.
 */
static void test_array_bulk_rows_odd_alignment(void **state)
{
        enum { RS = 3, CAP = 3000, A = 2500, B = 2000 };
        uint8_t *src = malloc((A + B) * RS + 64), *dst = malloc(CAP * RS + 64);
        struct brd_array *a;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t first;

        (void)state;
        assert_non_null(src);
        assert_non_null(dst);
        t_leak_begin(&l);
        for (size_t i = 0; i < (A + B) * RS + 64; i++)
                src[i] = (uint8_t)(i * 37 + (i >> 7));
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, RS, CAP, 0, BRD_ARRAY_RING, &a), 0);
        assert_int_equal(brd_array_push(a, src + 1, A), 0);
        assert_int_equal(brd_array_push(a, src + 1 + A * RS, B), 0);     /* wraps */
        memset(dst, 0xee, CAP * RS + 64);
        assert_int_equal(brd_array_read(a, &first, dst + 5, CAP), CAP);
        assert_int_equal(first, A + B - CAP);
        assert_memory_equal(dst + 5, src + 1 + (A + B - CAP) * RS, CAP * RS);
        assert_int_equal(dst[4], 0xee);
        assert_int_equal(dst[5 + CAP * RS], 0xee);
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
        free(src);
        free(dst);
}

static void test_array_open_validation(void **state)
{
        struct brd_array *a, *b = (struct brd_array *)0x1;
        struct brd_array_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int64_t blk;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, 16, 100, 0, 0, &a), 0);
        blk = brd_pool_alloc(p, 4096);
        assert_true(blk > 0);
        assert_int_equal(brd_array_open(p, 12345, &b), -EPROTO);
        assert_int_equal(brd_array_open(p, brd_array_offset(a) + 64, &b), -EPROTO);
        assert_int_equal(brd_array_open(p, (uint64_t)blk, &b), -EPROTO);       /* not an array */
        h = hdr_of(a, p);
        h->version++;
        assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), -EPROTO);
        h->version--;
        h->capacity = 1000000;          /* rows would run past the block */
        assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), -EPROTO);
        h->capacity = 100;
        h->row_size = 0;
        assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), -EPROTO);
        h->row_size = 16;
        assert_ptr_equal(b, (struct brd_array *)0x1);
        assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), 0);
        brd_array_close(b);
        {
                uint64_t off = brd_array_offset(a);

                assert_int_equal(brd_array_destroy(a), 0);
                /* Destroyed: nothing to open there any more. */
                assert_int_equal(brd_array_open(p, off, &b), -EPROTO);
        }
        assert_int_equal(brd_pool_free(p, (uint64_t)blk), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * A second handle of an array destroyed through the first, its block since
 * handed out again by the pool: push, prepend and read through it are
 * -EBADF, before and after the block is reused (as raw memory, then by a
 * new array of the same shape), and destroy is -EINVAL;
 * none writes into the new owner's block (they did: they took its bytes
 * for the writer lock and rows, and destroy freed the block).
 */
/*
 * A stale handle whose writer lock was taken while the array was destroyed
 * and another made in its block (a contract breach by some process)
 * touches nothing of the new one: not its lock, which its create reset and
 * another process now holds (a plain store of 0 let a second writer in),
 * nor its seq, which a take-over's repair wrote with the stale handle's
 * flags before the handle found the array gone.
 */
static void test_array_stale_lock_leaves_new_array(void **state)
{
        char row[16] = "a row";
        struct brd_array_hdr *h;
        struct brd_array *a, *b;
        struct brd_pool *p;
        struct t_leak l;
        AO_t seq;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        for (int answer = 0; answer < 2; answer++) {
                assert_int_equal(brd_array_create(p, 16, 100, 0, 0, &a), 0);
                assert_int_equal(brd_array_open(p, brd_array_offset(a), &b), 0);
                recreate = (typeof(recreate)){ .armed = true, .answer = answer, .pool = p,
                                               .victim = a };
                assert_int_equal(brd_array_push(b, row, 1), -EBADF);
                assert_false(recreate.armed);
                assert_non_null(recreate.made);
                assert_int_equal(brd_array_offset(recreate.made), brd_array_offset(b));
                h = hdr_of(recreate.made, p);
                seq = AO_load(&h->seq);
                assert_true(AO_load(&h->writer) == brd__owner_word_of(1));
                assert_true(seq & 1);
                /* Its lock handed back: the new array's real writer may go on. */
                AO_store(&h->writer, 0);
                AO_store(&h->seq, seq + 3);
                brd_array_close(b);
                assert_int_equal(brd_array_push(recreate.made, row, 1), 0);
                assert_int_equal(brd_array_destroy(recreate.made), 0);
        }
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_array_stale_destroy(void **state)
{
        char row[16] = "a row", got[100 * 16];
        struct brd_array *a, *b, *c;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t off;
        int64_t blk;
        size_t i;
        char *q;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, 16, 100, 0, 0, &a), 0);
        off = brd_array_offset(a);
        assert_int_equal(brd_array_open(p, off, &b), 0);
        assert_int_equal(brd_array_push(b, row, 1), 0);
        assert_int_equal(brd_array_destroy(a), 0);
        assert_int_equal(brd_array_push(b, row, 1), -EBADF);    /* freed, not reused yet */
        assert_int_equal(brd_array_read(b, NULL, got, 100), -EBADF);
        blk = brd_pool_alloc(p, 100 * 16);
        assert_int_equal(blk, (int64_t)off);    /* the same block, someone else's now */
        q = brd_pool_ptr(p, (uint64_t)blk);
        memset(q, 0x5a, 100 * 16);
        assert_int_equal(brd_array_push(b, row, 1), -EBADF);
        assert_int_equal(brd_array_prepend(b, row, 1), -EBADF);
        assert_int_equal(brd_array_read(b, NULL, got, 100), -EBADF);
        assert_int_equal(brd_array_destroy(b), -EINVAL);
        for (i = 0; i < 100 * 16; i++)
                assert_int_equal(q[i], 0x5a);
        assert_int_equal(brd_pool_free(p, (uint64_t)blk), 0);   /* still live: ours to free */

        /* The block reused by a new array of the same shape: a stale
         * handle writes nothing into it, and destroys nothing (it pushed
         * into it, and destroyed it). */
        assert_int_equal(brd_array_create(p, 16, 100, 0, 0, &a), 0);
        assert_int_equal(brd_array_open(p, off, &b), 0);
        assert_int_equal(brd_array_destroy(a), 0);
        assert_int_equal(brd_array_create(p, 16, 100, 0, 0, &c), 0);
        assert_int_equal(brd_array_offset(c), off);
        assert_int_equal(brd_array_push(b, row, 1), -EBADF);
        assert_int_equal(brd_array_read(b, NULL, got, 100), -EBADF);
        assert_int_equal(brd_array_destroy(b), -EINVAL);
        assert_int_equal(brd_array_last(c), 0);
        assert_int_equal(brd_array_push(c, row, 1), 0);
        assert_int_equal(brd_array_destroy(c), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

struct lapper {
        struct brd_array_hdr *h;
        uint64_t cap;
        AO_t stop;
};

/* A peer that moves a ring's indices a lap at a time, writing no row:
 * every copy a reader makes is overwritten (first past its last) at once.
 * last before first: first <= last at every instant.  It stops by itself
 * after 60 s: a failed assertion leaves no spinning thread behind. */
static void *lap_indices(void *arg)
{
        struct lapper *x = arg;
        uint64_t l = x->cap, n = 0;
        int64_t end = t_now_ms() + 60000;

        while (!AO_load(&x->stop) && (++n & 0xffff || t_now_ms() < end)) {
                l += x->cap;
                AO_store_release(&x->h->last, l);
                AO_store_release(&x->h->first, l - x->cap);
        }
        return NULL;
}

/* 64 MiB with the header: one buddy block. */
#define LAP_ROWS ((64u * MiB - BRD_ARRAY_HDR_SIZE) / sizeof(struct row))

static struct brd_array *lap_array;
static struct row *lap_rows;

static bool lapped_read_bounded_try(void)
{
        int64_t t0 = t_now_ms(), dt;
        ssize_t r = brd_array_read(lap_array, NULL, lap_rows, LAP_ROWS);

        dt = t_now_ms() - t0;
        /* -EAGAIN; or, where the peer missed a whole copy (its CPU taken),
         * the rows it provably did not touch. */
        assert_true(r == -EAGAIN || r > 0);
        if (dt >= 2000)
                print_message("a lapped read took %lld ms\n", (long long)dt);
        return dt < 2000;
}

/*
 * A 64 MiB ring array whose indices a peer moves a lap at a time: a read
 * gives up after a few copies (64 MiB of them), not after 1000 (64 GiB of
 * memcpy, seconds to minutes).  The bound is a wall-clock one (t_tries()).
 */
static void test_array_lapped_read_bounded(void **state)
{
        struct lapper x = { 0 };
        struct brd_pool *p;
        struct t_leak l;
        pthread_t t;

        (void)state;
        t_leak_begin(&l);
        lap_rows = malloc(sizeof(struct row) * LAP_ROWS);
        assert_non_null(lap_rows);
        assert_int_equal(brd_pool_create(80 * MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), LAP_ROWS, 0, BRD_ARRAY_RING,
                                          &lap_array), 0);
        x.h = hdr_of(lap_array, p);
        x.cap = LAP_ROWS;
        assert_int_equal(pthread_create(&t, NULL, lap_indices, &x), 0);
        T_UNTIL(AO_load(&x.h->last) != 0);
        t_tries(lapped_read_bounded_try, "array_lapped_read_bounded");
        AO_store(&x.stop, 1);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(brd_array_destroy(lap_array), 0);
        brd_pool_close(p);
        free(lap_rows);
        t_leak_end(&l);
}

static void test_array_hostile_indices(void **state)
{
        struct row out[8], in[1];
        struct brd_array *a, *r4;
        struct brd_array_hdr *h, *h4;
        struct brd_pool *p;
        struct t_leak l;
        uint64_t off;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 8, 0, 0, &a), 0);
        off = brd_array_offset(a);
        h = hdr_of(a, p);
        row_make(&in[0], 0);
        /* first past last: a read finds it. */
        AO_store(&h->first, 5);
        AO_store(&h->last, 3);
        assert_int_equal(brd_array_read(a, NULL, out, 8), -EBADMSG);
        /* Poisoned: made whole again, the handle still says so and writes
         * nothing. */
        AO_store(&h->first, 0);
        AO_store(&h->last, 0);
        assert_int_equal(brd_array_push(a, in, 1), -EBADMSG);
        assert_int_equal(brd_array_prepend(a, in, 1), -EBADMSG);
        assert_int_equal(brd_array_read(a, NULL, out, 8), -EBADMSG);
        assert_int_equal(AO_load(&h->last), 0);
        brd_array_close(a);
        /* last past the capacity: a push finds it, and poisons reads too. */
        assert_int_equal(brd_array_open(p, off, &a), 0);
        AO_store(&h->last, 1000);
        assert_int_equal(brd_array_push(a, in, 1), -EBADMSG);
        AO_store(&h->last, 0);
        assert_int_equal(brd_array_read(a, NULL, out, 8), -EBADMSG);
        brd_array_close(a);
        /* The same, found by a prepend. */
        assert_int_equal(brd_array_open(p, off, &a), 0);
        AO_store(&h->last, 1000);
        assert_int_equal(brd_array_prepend(a, in, 1), -EBADMSG);
        AO_store(&h->last, 0);
        assert_int_equal(brd_array_push(a, in, 1), -EBADMSG);
        assert_int_equal(AO_load(&h->last), 0);
        brd_array_close(a);
        /* A ring's indices near 2^64, where a push's last would wrap: the
         * push finds them and writes nothing. */
        assert_int_equal(brd_array_create(p, sizeof(struct row), 4, 0, BRD_ARRAY_RING, &r4), 0);
        h4 = hdr_of(r4, p);
        AO_store(&h4->first, UINT64_MAX - 2);
        AO_store(&h4->last, UINT64_MAX);
        assert_int_equal(brd_array_push(r4, in, 1), -EBADMSG);
        assert_true(AO_load(&h4->first) == UINT64_MAX - 2 && AO_load(&h4->last) == UINT64_MAX);
        AO_store(&h4->first, 0);
        AO_store(&h4->last, 0);
        assert_int_equal(brd_array_destroy(r4), 0);
        /* A writer that died mid-prepend leaves seq odd: readers still return. */
        assert_int_equal(brd_array_open(p, off, &a), 0);
        AO_store(&h->last, 1);
        AO_store(&h->seq, 7);
        assert_int_equal(brd_array_read(a, NULL, out, 8), 1);
        brd_array_close(a);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------- writer process vs reader */

#define ROWS_TOTAL 300000

/* Has child @pid ended (left unreaped)? */
static bool child_ended(pid_t pid)
{
        siginfo_t si = { 0 };

        return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* The reader: snapshots until it has seen the last row.  Returns 0 or a
 * failure code (runs in the parent; cmocka asserts only at the end): 5
 * when the writer @pid has ended and 4096 reads after that saw no new row
 * (it failed, and the rows will never come). */
static int reader(struct brd_array *a, size_t max_rows, int ring, AO_t *ready, pid_t pid,
                  long *ret_snaps)
{
        static struct row out[4096];
        uint64_t first, prev_last = 0;
        long snaps = 0, idle = 0;
        bool ended = false;
        int any = 0;

        for (;;) {
                ssize_t n = brd_array_read(a, &first, out, max_rows);
                ssize_t i;

                AO_store_release(ready, 1);     /* the writer starts once we read */
                if (n > 0 && first + (uint64_t)n > prev_last) {
                        idle = 0;
                        ended = false;
                } else if (++idle % 4096 == 0 && child_ended(pid)) {
                        if (ended)
                                return 5;
                        ended = true;   /* the next 4096 reads see all it pushed */
                }
                if (n == -EAGAIN && ring)
                        continue;               /* lapped: call again */
                if (n < 0)
                        return 1;
                if (n == 0) {
                        if (any)
                                return 2;       /* empty after the first push */
                        continue;
                }
                any = 1;
                snaps++;
                AO_store_release(ready + 1, (AO_t)snaps);       /* progress, for the writer */
                for (i = 0; i < n; i++)
                        if (!row_ok(&out[i], first + (uint64_t)i))
                                return 3;       /* torn, unwritten or out of order */
                if (first + (uint64_t)n < prev_last)
                        return 4;               /* last went backwards */
                prev_last = first + (uint64_t)n;
                if (prev_last == ROWS_TOTAL + (ring ? 0 : 1000u))
                        break;
        }
        *ret_snaps = snaps;
        return 0;
}

/* @batch: rows per push, 0 for 1 to 4 in turn. */
static void writer_reader(size_t capacity, size_t start, unsigned flags, size_t max_rows,
                          unsigned batch)
{
        struct brd_array *a;
        struct brd_pool *p;
        struct t_leak l;
        long snaps = 0;
        AO_t *ready;
        pid_t pid;
        int got;

        t_leak_begin(&l);
        ready = t_shared_page();
        assert_int_equal(brd_pool_create(64 * MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), capacity, start, flags, &a), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* The writer: its own view, opened by offset like a peer would. */
                struct brd_array *w;
                struct row *r = calloc(batch > 4 ? batch : 4, sizeof(*r));
                uint64_t pos = start, low = start;
                int rc = 0;

                if (!r || brd_array_open(p, brd_array_offset(a), &w))
                        _exit(10);
                while (!AO_load_acquire(ready))
                        brd__cpu_relax();
                while (pos < start + ROWS_TOTAL) {
                        unsigned m = batch ? batch : 1 + (unsigned)(pos % 4), i;

                        if (pos + m > start + ROWS_TOTAL)
                                m = (unsigned)(start + ROWS_TOTAL - pos);
                        for (i = 0; i < m; i++)
                                row_make(&r[i], pos + i);
                        if (brd_array_push(w, r, m)) {
                                rc = 11;
                                break;
                        }
                        pos += m;
                        /* Every 4096 rows, let the reader finish a snapshot, so
                         * that a descheduled reader still races the writer. */
                        if (pos / 4096 != (pos - m) / 4096) {
                                AO_t seen = AO_load_acquire(ready + 1);

                                while (AO_load_acquire(ready + 1) == seen)
                                        sched_yield();
                        }
                        /* Without ring: a prepend every 300 rows, 1000 in all. */
                        if (!(flags & BRD_ARRAY_RING) && low > 0 && pos % 300 < m) {
                                row_make(&r[0], low - 1);
                                if (brd_array_prepend(w, r, 1)) {
                                        rc = 12;
                                        break;
                                }
                                low--;
                        }
                }
                if (!rc && !(flags & BRD_ARRAY_RING)) {
                        while (low > 0) {
                                row_make(&r[0], --low);
                                if (brd_array_prepend(w, r, 1))
                                        rc = 13;
                        }
                        /* Full now: overruns must fail and change nothing. */
                        memset(r, 0xee, sizeof(*r));
                        if (brd_array_push(w, r, 1) != -ENOSPC || brd_array_prepend(w, r, 1) != -ENOSPC)
                                rc = 14;
                }
                brd_array_close(w);
                free(r);
                _exit(rc);
        }
        got = reader(a, max_rows, !!(flags & BRD_ARRAY_RING), ready, pid, &snaps);
        assert_int_equal(t_wait_child(pid), 0);         /* the writer's reason first */
        assert_int_equal(got, 0);
        print_message("  %ld snapshots while 300000 rows were pushed\n", snaps);
        assert_true(snaps > 1);
        t_shared_page_free(ready);
        if (!(flags & BRD_ARRAY_RING)) {
                /* Every row, once the writer is done: the overruns left them. */
                static struct row all[ROWS_TOTAL + 1000];
                uint64_t first;
                size_t i;

                assert_int_equal(brd_array_read(a, &first, all, ROWS_TOTAL + 1000), ROWS_TOTAL + 1000);
                assert_int_equal(first, 0);
                for (i = 0; i < ROWS_TOTAL + 1000; i++)
                        assert_true(row_ok(&all[i], i));
        } else {
                assert_int_equal(brd_array_last(a), start + ROWS_TOTAL);
        }
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_array_writer_reader_linear_300k(void **state)
{
        (void)state;
        /* Capacity exactly what is pushed + prepended: ends full. */
        writer_reader(ROWS_TOTAL + 1000, 1000, 0, 4096, 0);
}

static void test_array_writer_reader_ring_300k(void **state)
{
        (void)state;
        /* A small ring: the writer laps it constantly while the reader copies. */
        writer_reader(1024, 0, BRD_ARRAY_RING, 1024, 0);
}

/*
 * A ring of 1024 rows, pushed 1024 at a time: each push retires every row
 * before it writes the new ones, and a reader then must never find it empty
 * (0 rows once a push landed): it gets rows or -EAGAIN (lapped).  It got 0,
 * the indices showing first at last while the writer copied.
 */
static void test_array_writer_reader_ring_whole_pushes(void **state)
{
        (void)state;
        writer_reader(1024, 0, BRD_ARRAY_RING, 1024, 1024);
}

/* A writer's row: (writer, seq) in every word, so a torn or mixed row shows. */
static void wrow_make(struct row *r, uint64_t writer, uint64_t seq)
{
        unsigned i;

        for (i = 0; i < ROWW; i++)
                r->w[i] = (writer << 48 | seq) * 0x9e3779b97f4a7c15ull + i;
}

#define NWRITERS 4
#define WROWS 20000

/* Four processes push into one array at once (brd_array_push takes turns
 * through the writer lock): every row lands exactly once, whole, and each
 * writer's rows keep their order. */
static void test_array_many_writers(void **state)
{
        static struct row snap[NWRITERS * WROWS];
        struct brd_pool *p;
        struct brd_array *a;
        pid_t pid[NWRITERS];
        uint64_t first, next[NWRITERS] = { 0 };
        ssize_t n, i;
        int w;

        assert_int_equal(brd_pool_create(16 * MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), NWRITERS * WROWS, 0, 0, &a), 0);
        for (w = 0; w < NWRITERS; w++) {
                pid[w] = t_fork();
                assert_true(pid[w] >= 0);
                if (pid[w] == 0) {
                        uint64_t k;

                        for (k = 0; k < WROWS; k++) {
                                struct row r;

                                wrow_make(&r, (uint64_t)w, k);
                                if (brd_array_push(a, &r, 1) < 0)
                                        _exit(1);
                        }
                        _exit(0);
                }
        }
        for (w = 0; w < NWRITERS; w++)
                assert_int_equal(t_wait_child(pid[w]), 0);
        n = brd_array_read(a, &first, snap, NWRITERS * WROWS);
        assert_int_equal(n, NWRITERS * WROWS);
        assert_int_equal(first, 0);
        for (i = 0; i < n; i++) {
                uint64_t id = UINT64_MAX;

                for (w = 0; w < NWRITERS && id == UINT64_MAX; w++) {
                        struct row e;

                        wrow_make(&e, (uint64_t)w, next[w]);
                        if (!memcmp(&snap[i], &e, sizeof(e)))
                                id = (uint64_t)w;
                }
                /* Whole, and the next row of exactly one writer. */
                assert_true(id != UINT64_MAX);
                next[id]++;
        }
        for (w = 0; w < NWRITERS; w++)
                assert_int_equal(next[w], WROWS);
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
}

/*
 * A ring writer that died in the middle of an overwrite: it had moved first
 * past the rows it was overwriting (4 rows in 4 slots, a push of 2: first
 * 2) and written part of one slot, but never last.  The ring is then not
 * full, and a prepend could bring first back over that torn slot, where a
 * reader's copy begun before the death would pass for one nothing
 * overwrote.  After the takeover a prepend below that first is refused;
 * the rows above it read whole, and pushes go on.
 */
/* A ring array of 4 rows in a new pool, holding positions @from..3 (in
 * slots @from..3): its header. */
static struct brd_array_hdr *ring4_from(uint64_t from, struct brd_pool **ret_p,
                                        struct brd_array **ret_a)
{
        struct row r;
        uint64_t i;

        assert_int_equal(brd_pool_create(1 * MiB, 0, ret_p), 0);
        assert_int_equal(brd_array_create(*ret_p, sizeof(struct row), 4, from, BRD_ARRAY_RING,
                                          ret_a), 0);
        for (i = from; i < 4; i++) {
                row_make(&r, i);
                assert_int_equal(brd_array_push(*ret_a, &r, 1), 0);
        }
        return hdr_of(*ret_a, *ret_p);
}

/* A forked writer that dies inside a write, as one killed there would: it
 * holds the lock, has moved seq by @seq_add (and first to @first, unless
 * UINT64_MAX), and wrote half of slot @slot. */
static void writer_dies_writing(struct brd_array_hdr *h, AO_t seq_add, uint64_t first, size_t slot)
{
        pid_t pid = t_fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                AO_store(&h->writer, brd__owner_word_of(getpid()));
                AO_store(&h->seq, AO_load(&h->seq) + seq_add);
                if (first != UINT64_MAX)
                        AO_store(&h->first, first);
                memset((unsigned char *)h + BRD_ARRAY_HDR_SIZE + slot * sizeof(struct row), 0xee,
                       sizeof(struct row) / 2);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

static void test_array_no_prepend_over_dead_overwrite(void **state)
{
        struct brd_pool *p;
        struct brd_array *a;
        struct brd_array_hdr *h;
        struct row r[2], got[4];
        uint64_t first;

        (void)state;
        h = ring4_from(0, &p, &a);
        /* Dies as a push of 2 rows would, inside its overwrite. */
        writer_dies_writing(h, 1, 2, 0);
        row_make(&r[0], 100);
        row_make(&r[1], 101);
        assert_int_equal(brd_array_prepend(a, r, 1), -ENOSPC);         /* takes over first */
        assert_int_equal(AO_load(&h->seq) & 1, 0);
        assert_int_equal(AO_load(&h->first), 2);
        assert_int_equal(brd_array_prepend(a, r, 2), -ENOSPC);
        assert_int_equal(brd_array_read(a, &first, got, 4), 2);
        assert_int_equal(first, 2);
        assert_true(row_ok(&got[0], 2) && row_ok(&got[1], 3));
        row_make(&r[0], 4);
        assert_int_equal(brd_array_push(a, &r[0], 1), 0);
        assert_int_equal(brd_array_read(a, &first, got, 4), 3);
        assert_true(row_ok(&got[2], 4));
        brd_array_close(a);
        brd_pool_close(p);
}

/*
 * A ring whose writer died inside a push of a whole capacity (seq left odd,
 * first moved up to last: every row retired): a read answers 0 rows, the
 * ring being empty until the next writer repairs it, after its bounded
 * retries; then a push takes over and reads go on.  It answered -EAGAIN
 * at every call, for good, to a reader that calls again on -EAGAIN.
 */
static void test_array_read_after_whole_overwrite_died(void **state)
{
        struct brd_pool *p;
        struct brd_array *a;
        struct brd_array_hdr *h;
        struct row r, got[4];
        uint64_t first;

        (void)state;
        h = ring4_from(0, &p, &a);
        writer_dies_writing(h, 1, 4, 0);
        assert_int_equal(brd_array_read(a, &first, got, 4), 0);
        assert_int_equal(first, 4);
        row_make(&r, 4);
        assert_int_equal(brd_array_push(a, &r, 1), 0);          /* takes over */
        assert_int_equal(brd_array_read(a, &first, got, 4), 1);
        assert_int_equal(first, 4);
        assert_true(row_ok(&got[0], 4));
        brd_array_close(a);
        brd_pool_close(p);
}

/*
 * A writer killed inside a prepend wrote only free slots, below first,
 * which no reader's copy had in it: the next writer takes over, and
 * prepends go on (an overwrite's death stops them, the test above).
 */
static void test_array_prepend_after_dead_prepend(void **state)
{
        struct brd_pool *p;
        struct brd_array *a;
        struct brd_array_hdr *h;
        struct row r[2], got[4];
        uint64_t first;
        int i;

        (void)state;
        h = ring4_from(2, &p, &a);              /* positions 2, 3 live, in slots 2, 3 */
        /* Dies as a prepend of 1 row would, half-way through it. */
        writer_dies_writing(h, BRD_ARRAY_SEQ_PREPEND, UINT64_MAX, 1);
        row_make(&r[0], 1);
        assert_int_equal(brd_array_prepend(a, r, 1), 0);        /* takes over */
        assert_int_equal(AO_load(&h->seq) & 3, 0);
        assert_int_equal(AO_load(&h->floor), 0);
        row_make(&r[0], 0);
        assert_int_equal(brd_array_prepend(a, r, 1), 0);
        assert_int_equal(brd_array_read(a, &first, got, 4), 4);
        assert_int_equal(first, 0);
        for (i = 0; i < 4; i++)
                assert_true(row_ok(&got[i], (uint64_t)i));
        brd_array_close(a);
        brd_pool_close(p);
}

/* A writer that died holding the lock (mid overwrite: seq odd) is taken
 * over by the next writer, and readers see an even seq again. */
static void test_array_dead_writer_taken_over(void **state)
{
        struct brd_pool *p;
        struct brd_array *a;
        struct brd_array_hdr *h;
        struct row r, got[4];
        uint64_t first;
        pid_t pid;

        assert_int_equal(brd_pool_create(1 * MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 4, 0, BRD_ARRAY_RING, &a), 0);
        h = hdr_of(a, p);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Die the way a writer killed inside a ring overwrite would. */
                AO_store(&h->writer, (AO_t)getpid());
                AO_store(&h->seq, AO_load(&h->seq) + 1);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);        /* reaped: its pid is gone */
        assert_int_equal(AO_load(&h->writer), (AO_t)pid);
        row_make(&r, 0);
        assert_int_equal(brd_array_push(a, &r, 1), 0);
        assert_int_equal(AO_load(&h->writer), 0);
        assert_int_equal(AO_load(&h->seq) & 1, 0);
        assert_int_equal(brd_array_read(a, &first, got, 4), 1);
        assert_true(row_ok(&got[0], 0));
        /* A lock word that cannot be a process: corrupt, said at once, and
         * for good on this handle. */
        AO_store(&h->writer, 0xffffffffu);
        assert_int_equal(brd_array_push(a, &r, 1), -EBADMSG);
        assert_int_equal(brd_array_last(a), 1);
        AO_store(&h->writer, 0);
        assert_int_equal(brd_array_push(a, &r, 1), -EBADMSG);
        assert_int_equal(brd_array_read(a, &first, got, 4), -EBADMSG);
        assert_int_equal(brd_array_last(a), 1);
        brd_array_close(a);
        brd_pool_close(p);
}

/*
 * With @word in the writer lock, a push (or a prepend) gives up after the
 * 2 s bound with -ETIMEDOUT and writes nothing: indices, seq, every slot and
 * the holder's lock word are as they were.
 */
static void write_times_out(struct brd_array *a, struct brd_pool *p, AO_t word, bool prepend)
{
        struct brd_array_hdr *h = hdr_of(a, p);
        size_t bytes = brd_array_capacity(a) * brd_array_row_size(a);
        unsigned char *slots = (unsigned char *)h + BRD_ARRAY_HDR_SIZE;
        unsigned char *before = malloc(bytes);
        uint64_t f0 = brd_array_first(a), l0 = brd_array_last(a);
        AO_t seq0 = AO_load(&h->seq);
        struct row r;
        int64_t t0, dt;

        assert_non_null(before);
        AO_store(&h->writer, word);
        memcpy(before, slots, bytes);
        memset(&r, 0xee, sizeof(r));
        t0 = t_now_ns();
        if (prepend)
                assert_int_equal(brd_array_prepend(a, &r, 1), -ETIMEDOUT);
        else
                assert_int_equal(brd_array_push(a, &r, 1), -ETIMEDOUT);
        dt = t_now_ns() - t0;
        print_message("  lock word %#llx: -ETIMEDOUT after %lld ms\n",
                      (unsigned long long)word, (long long)(dt / 1000000));
        assert_true(dt >= 1900000000ll);
        assert_true(dt <= 10000000000ll);
        /* Not taken over: the holder's word, perhaps with the bit of the
         * waiter that slept on it. */
        assert_int_equal(AO_load(&h->writer) & ~(AO_t)BRD__OWNER_WAITERS, word);
        assert_int_equal(brd_array_first(a), f0);
        assert_int_equal(brd_array_last(a), l0);
        assert_int_equal(AO_load(&h->seq), seq0);
        assert_memory_equal(slots, before, bytes);
        free(before);
}

/*
 * A writer lock held by a live process that does not let go (stopped,
 * hostile, or a scribbled word that names a live process) cannot be taken
 * over, and must not hang its waiters: push and prepend give up after 2 s
 * with -ETIMEDOUT, nothing written.  Tried with a forked child's real word
 * (pid + start time), with this process's own word (the waiter must not take
 * it: another thread of ours may hold it) and with the fuzzer's word, pid 1
 * with no start time.  Once the child is SIGKILLed (a zombie: not reaped
 * yet) the next push takes the lock over, and once the word is cleared
 * pushes work again.
 */
static void test_array_live_holder_times_out(void **state)
{
        struct brd_array *a;
        struct brd_array_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        struct row in[4], out[8];
        uint64_t first;
        int64_t t0;
        int pfd[2], i;
        siginfo_t si;
        pid_t pid;
        AO_t word;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_array_create(p, sizeof(struct row), 8, 2, 0, &a), 0);
        h = hdr_of(a, p);
        for (i = 0; i < 2; i++)
                row_make(&in[i], 2 + (uint64_t)i);
        assert_int_equal(brd_array_push(a, in, 2), 0);         /* rows 2, 3 */

        /* A live foreign holder: a child blocked on a pipe until killed. */
        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;

                close(pfd[1]);
                while (read(pfd[0], &c, 1) < 0)
                        ;
                _exit(0);
        }
        close(pfd[0]);
        word = brd__owner_word_of(pid);
        assert_true(word >> 32 != 0);   /* a real start time: only the deadline helps */
        write_times_out(a, p, word, false);

        /* The same holder SIGKILLed mid overwrite (seq odd), and not reaped
         * yet: a zombie, whose parent is the next writer.  Taken over. */
        AO_store(&h->seq, AO_load(&h->seq) + 1);
        assert_int_equal(kill(pid, SIGKILL), 0);
        memset(&si, 0, sizeof(si));
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
        assert_int_equal(si.si_code, CLD_KILLED);
        row_make(&in[0], 4);
        t0 = t_now_ms();
        assert_int_equal(brd_array_push(a, in, 1), 0);
        assert_true(t_now_ms() - t0 < 1000);
        assert_int_equal(AO_load(&h->writer), 0);
        assert_int_equal(AO_load(&h->seq) & 1, 0);
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        close(pfd[1]);

        /* Our own word, as if another thread of ours held the lock. */
        write_times_out(a, p, brd__owner_word_of(getpid()), true);
        /* pid 1 with a start time of 0: alive, and "unknown" start time. */
        write_times_out(a, p, 1, false);

        /* The word cleared, both calls work again. */
        AO_store(&h->writer, 0);
        row_make(&in[0], 5);
        assert_int_equal(brd_array_push(a, in, 1), 0);
        row_make(&in[0], 1);
        assert_int_equal(brd_array_prepend(a, in, 1), 0);
        assert_int_equal(brd_array_read(a, &first, out, 8), 5);
        assert_int_equal(first, 1);
        for (i = 0; i < 5; i++)
                assert_true(row_ok(&out[i], first + (uint64_t)i));
        assert_int_equal(AO_load(&h->writer), 0);
        assert_int_equal(brd_array_destroy(a), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * brd_array_destroy() whose free fails leaves the array whole: an array
 * above BRD_POOL_SMALL_MAX is freed under the pool lock, which a live peer
 * holds, so the free says -ETIMEDOUT.  Before the fix the handle was gone
 * and the magic cleared: the block stayed allocated with nothing left to
 * free it with, and the offset no longer opened.  Once the peer is gone the
 * same handle destroys it.  And an array another process destroyed first:
 * -EINVAL, only this view closed, nothing written into the freed block.
 */
static void test_array_destroy_failed_keeps_array(void **state)
{
        struct brd_array *a, *b, *c;
        struct brd_pool_stats s;
        struct brd_pool *p;
        struct t_leak l;
        struct row in[4], out[8];
        uint64_t off, first;
        int ready[2], go[2], i;
        pid_t pid;
        char ch;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        /* 4096 rows of 64 B: a 512 KiB block, a large one. */
        assert_int_equal(brd_array_create(p, sizeof(struct row), 4096, 0, 0, &a), 0);
        assert_true(brd_array_capacity(a) * sizeof(struct row) > BRD_POOL_SMALL_MAX);
        off = brd_array_offset(a);
        for (i = 0; i < 3; i++)
                row_make(&in[i], (uint64_t)i);
        assert_int_equal(brd_array_push(a, in, 3), 0);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.blocks, 1);

        /* A live peer inside the pool lock until it reads EOF. */
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                close(go[1]);
                if (brd__pool_test_die_locked(p, 0) != 0)
                        _exit(1);
                if (write(ready[1], "x", 1) != 1)
                        _exit(2);
                while (read(go[0], &ch, 1) < 0)
                        ;
                _exit(0);               /* still holding it: a dead holder */
        }
        close(ready[1]);
        close(go[0]);
        assert_int_equal(read(ready[0], &ch, 1), 1);
        assert_int_equal(brd_array_destroy(a), -ETIMEDOUT);

        /* Intact: same rows, still writable, the offset still opens. */
        assert_int_equal(brd_array_read(a, &first, out, 8), 3);
        assert_int_equal(first, 0);
        for (i = 0; i < 3; i++)
                assert_true(row_ok(&out[i], (uint64_t)i));
        row_make(&in[0], 3);
        assert_int_equal(brd_array_push(a, in, 1), 0);
        assert_int_equal(brd_array_open(p, off, &b), 0);
        assert_int_equal(brd_array_read(b, &first, out, 8), 4);
        assert_true(row_ok(&out[3], 3));
        brd_array_close(b);

        /* The holder exits; the next locker takes the lock over. */
        close(go[1]);
        assert_int_equal(t_wait_child(pid), 0);
        close(ready[0]);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.blocks, 1);                  /* still allocated */
        assert_int_equal(brd_array_destroy(a), 0);      /* the same handle */
        assert_int_equal(brd_array_open(p, off, &b), -EPROTO);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.blocks, 0);

        /* Destroyed through another handle first (another process's). */
        assert_int_equal(brd_array_create(p, sizeof(struct row), 4096, 0, 0, &b), 0);
        assert_int_equal(brd_array_open(p, brd_array_offset(b), &c), 0);
        assert_int_equal(brd_array_destroy(c), 0);
        assert_int_equal(brd_array_destroy(b), -EINVAL);        /* and b is closed */
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.blocks, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_array_bad_args),
                cmocka_unit_test(test_array_push_prepend_read),
                cmocka_unit_test(test_array_overrun_changes_nothing),
                cmocka_unit_test(test_array_ring_overwrites_oldest),
                cmocka_unit_test(test_array_bulk_rows_odd_alignment),
                cmocka_unit_test(test_array_open_validation),
                cmocka_unit_test(test_array_stale_destroy),
                cmocka_unit_test(test_array_stale_lock_leaves_new_array),
                cmocka_unit_test(test_array_hostile_indices),
                cmocka_unit_test(test_array_lapped_read_bounded),
                cmocka_unit_test(test_array_writer_reader_linear_300k),
                cmocka_unit_test(test_array_writer_reader_ring_300k),
                cmocka_unit_test(test_array_writer_reader_ring_whole_pushes),
                cmocka_unit_test_setup_teardown(test_array_many_writers, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_array_dead_writer_taken_over, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_array_no_prepend_over_dead_overwrite, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_array_read_after_whole_overwrite_died, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_array_prepend_after_dead_prepend, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_array_live_holder_times_out),
                cmocka_unit_test(test_array_destroy_failed_keeps_array),
                cmocka_unit_test(test_array_nofork_pool_in_child),
        };

        return cmocka_run_group_tests_name("shm-array", tests, NULL, NULL);
}
