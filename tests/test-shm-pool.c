/* SPDX-License-Identifier: MIT */
/* The shared pool: accounting, bad frees, exhaustion, churn, hostile state,
 * a process tree, fork during allocation, a lock holder SIGKILLed. */
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/stat.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"

#define MiB (1024 * 1024)

static struct brd_pool_hdr *hdr_of(struct brd_pool *p)
{
        return brd__pool_base(p);
}

static uint64_t rounded(size_t size)
{
        uint64_t c = BRD_POOL_ALIGN, pg = BRD_POOL_PAGE;

        if (size <= BRD_POOL_SMALL_MAX) {
                while (c < size)
                        c <<= 1;
                return c;
        }
        while (pg < size)
                pg <<= 1;
        return pg;
}

static void fill(void *p, size_t n, uint64_t seed)
{
        uint64_t *w = p;
        size_t i;

        for (i = 0; i < n / 8; i++)
                w[i] = seed + i;
}

static int check(const void *p, size_t n, uint64_t seed)
{
        const uint64_t *w = p;
        size_t i;

        for (i = 0; i < n / 8; i++)
                if (w[i] != seed + i)
                        return -1;
        return 0;
}

static void stats_expect(struct brd_pool *p, uint64_t used, uint64_t blocks)
{
        struct brd_pool_stats s;

        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.used, used);
        assert_int_equal(s.blocks, blocks);
}

/* ------------------------------------------------------------------ tests */

static void test_pool_create_bad_args(void **state)
{
        struct brd_pool *p = (struct brd_pool *)0x1;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(0, 0, &p), -EINVAL);
        assert_int_equal(brd_pool_create(4096, 0, &p), -EINVAL);
        assert_int_equal(brd_pool_create(MiB, 1u << 7, &p), -EINVAL);
        assert_int_equal(brd_pool_create(SIZE_MAX, 0, &p), -EINVAL);
        /* Past 2^32 granules of 64 B: refused before anything is made. */
        assert_int_equal(brd_pool_create((size_t)257 << 30, 0, &p), -EINVAL);
        assert_int_equal(brd_pool_create(MiB, 0, NULL), -EINVAL);
        assert_ptr_equal(p, (struct brd_pool *)0x1);
        assert_int_equal(brd_pool_alloc(NULL, 64), -EINVAL);
        assert_int_equal(brd_pool_free(NULL, 4096), -EINVAL);
        assert_null(brd_pool_ptr(NULL, 4096));
        brd_pool_close(NULL);
        /* The smallest pool works and serves a 64 B block from a page. */
        assert_int_equal(brd_pool_create(12288, 0, &p), 0);
        {
                int64_t off = brd_pool_alloc(p, 64);

                assert_true(off > 0);
                assert_int_equal(brd_pool_alloc(p, 64 * 1024), -EINVAL);       /* never fits */
                assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
        }
        brd_pool_close(p);
        /* A small size whose class is larger than any block of a 20 KiB
         * pool (8 KiB at most) never fits either: -EINVAL, not -ENOSPC
         * (it was, on an empty pool), while 8 KiB fits. */
        assert_int_equal(brd_pool_create(20480, 0, &p), 0);
        {
                int64_t off = brd_pool_alloc(p, 8192);

                assert_true(off > 0);
                assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
                assert_int_equal(brd_pool_alloc(p, 8193), -EINVAL);
                assert_int_equal(brd_pool_alloc(p, 12288), -EINVAL);
                assert_int_equal(brd_pool_alloc(p, 12289), -EINVAL);
        }
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_pool_alloc_free_accounting(void **state)
{
        static const size_t sizes[] = { 1, 63, 64, 65, 100, 128, 500, 1024, 4000, 4096, 4097,
                                        10000, 32768, 65536, 65537, 100000, 262144, 1000000 };
        int64_t offs[BRD_ARRAY_SIZE(sizes)];
        struct brd_pool_stats s;
        struct brd_pool *p;
        uint64_t used = 0;
        struct t_leak l;
        size_t i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(16 * MiB, 0, &p), 0);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_true(s.size >= 16 * MiB);
        assert_true(s.capacity > 15 * MiB && s.capacity <= s.size);
        assert_int_equal(s.used, 0);
        assert_int_equal(s.blocks, 0);
        for (i = 0; i < BRD_ARRAY_SIZE(sizes); i++) {
                offs[i] = brd_pool_alloc(p, sizes[i]);
                assert_true(offs[i] > 0);
                assert_int_equal(offs[i] % BRD_POOL_ALIGN, 0);
                fill(brd_pool_ptr(p, (uint64_t)offs[i]), sizes[i], (uint64_t)i << 32);
                used += rounded(sizes[i]);
                stats_expect(p, used, i + 1);
        }
        for (i = 0; i < BRD_ARRAY_SIZE(sizes); i++)
                assert_int_equal(check(brd_pool_ptr(p, (uint64_t)offs[i]), sizes[i], (uint64_t)i << 32), 0);
        assert_null(brd_pool_ptr(p, 0));
        assert_null(brd_pool_ptr(p, s.size + 4096));
        for (i = 0; i < BRD_ARRAY_SIZE(sizes); i++) {
                assert_int_equal(brd_pool_free(p, (uint64_t)offs[i]), 0);
                used -= rounded(sizes[i]);
                stats_expect(p, used, BRD_ARRAY_SIZE(sizes) - i - 1);
        }
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_pool_double_and_foreign_free(void **state)
{
        struct brd_pool *p;
        struct t_leak l;
        int64_t a, b, big, base;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        a = brd_pool_alloc(p, 256);
        b = brd_pool_alloc(p, 256);
        big = brd_pool_alloc(p, 300000);
        assert_true(a > 0 && b > 0 && big > 0);
        base = (int64_t)hdr_of(p)->data_off;
        stats_expect(p, 512 + 512 * 1024, 3);
        /* Not block starts, not in the data area, unaligned, never allocated. */
        assert_int_equal(brd_pool_free(p, 0), -EINVAL);
        assert_int_equal(brd_pool_free(p, 64), -EINVAL);
        assert_int_equal(brd_pool_free(p, (uint64_t)base - 64), -EINVAL);
        assert_int_equal(brd_pool_free(p, (uint64_t)a + 1), -EINVAL);
        assert_int_equal(brd_pool_free(p, (uint64_t)a + 64), -EINVAL);        /* inside a 256 B block */
        assert_int_equal(brd_pool_free(p, (uint64_t)a + 512), -EINVAL);       /* a free block of the span */
        assert_int_equal(brd_pool_free(p, (uint64_t)big + 4096), -EINVAL);    /* inside a large block */
        assert_int_equal(brd_pool_free(p, (uint64_t)big + 64), -EINVAL);
        assert_int_equal(brd_pool_free(p, UINT64_MAX & ~63ull), -EINVAL);
        assert_int_equal(brd_pool_free(p, (uint64_t)base), -EINVAL);           /* a free buddy block */
        assert_int_equal(brd_pool_free(p, (uint64_t)base + MiB), -EINVAL);     /* inside one */
        stats_expect(p, 512 + 512 * 1024, 3);
        /* Double frees, small and large. */
        assert_int_equal(brd_pool_free(p, (uint64_t)a), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)a), -EINVAL);
        assert_int_equal(brd_pool_free(p, (uint64_t)big), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)big), -EINVAL);
        stats_expect(p, 256, 1);
        /* The pool is still consistent: the same blocks come back. */
        assert_int_equal(brd_pool_alloc(p, 200), a);
        assert_int_equal(brd_pool_free(p, (uint64_t)a), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)b), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)b), -EINVAL);
        stats_expect(p, 0, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* Threads racing to free the same blocks: exactly one free of each wins. */
struct race {
        struct brd_pool *p;
        int64_t *offs;
        size_t n;
        AO_t go;
        AO_t wins;
};

static void *race_free(void *arg)
{
        struct race *r = arg;
        size_t i;

        while (!AO_load_acquire(&r->go))
                brd__cpu_relax();
        for (i = 0; i < r->n; i++)
                if (brd_pool_free(r->p, (uint64_t)r->offs[i]) == 0)
                        AO_fetch_and_add1_full(&r->wins);
        return NULL;
}

static void test_pool_racing_double_free(void **state)
{
        struct race r = { 0 };
        pthread_t th[3];
        struct t_leak l;
        size_t i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(8 * MiB, 0, &r.p), 0);
        r.n = 20000;
        r.offs = calloc(r.n, sizeof(*r.offs));
        assert_non_null(r.offs);
        for (i = 0; i < r.n; i++) {
                r.offs[i] = brd_pool_alloc(r.p, 64 + (i % 3) * 64);
                assert_true(r.offs[i] > 0);
        }
        for (i = 0; i < 3; i++)
                assert_int_equal(pthread_create(&th[i], NULL, race_free, &r), 0);
        AO_store_release(&r.go, 1);
        for (i = 0; i < 3; i++)
                pthread_join(th[i], NULL);
        assert_int_equal(AO_load(&r.wins), r.n);
        stats_expect(r.p, 0, 0);
        free(r.offs);
        brd_pool_close(r.p);
        t_leak_end(&l);
}

static void test_pool_exhaustion_and_reuse(void **state)
{
        struct brd_pool_stats s;
        struct brd_pool *p;
        struct t_leak l;
        int64_t *offs, off;
        size_t n = 0, cap = 1 << 16, i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(2 * MiB, 0, &p), 0);
        offs = calloc(cap, sizeof(*offs));
        assert_non_null(offs);
        /* Fill with small blocks until the pool says no. */
        for (;;) {
                off = brd_pool_alloc(p, 64);
                if (off == -ENOSPC)
                        break;
                assert_true(off > 0);
                assert_true(n < cap);
                offs[n++] = off;
        }
        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.blocks, n);
        /* Spans first, then single pages for what no span fits in. */
        assert_true(s.used >= s.capacity - 64 * 1024 && s.used <= s.capacity);
        assert_int_equal(brd_pool_alloc(p, 100000), -ENOSPC);
        /* Free all: the small blocks' spans go back and the largest block fits. */
        for (i = 0; i < n; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)offs[i]), 0);
        stats_expect(p, 0, 0);
        off = brd_pool_alloc(p, 1 * MiB);
        assert_true(off > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
        /* Same with large blocks, then small ones again. */
        for (n = 0;;) {
                off = brd_pool_alloc(p, 100 * 1024);
                if (off == -ENOSPC)
                        break;
                assert_true(off > 0);
                offs[n++] = off;
        }
        assert_true(n >= 10);
        for (i = 0; i < n; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)offs[i]), 0);
        off = brd_pool_alloc(p, 1 * MiB);
        assert_true(off > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
        stats_expect(p, 0, 0);
        free(offs);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_pool_churn_steady_state(void **state)
{
        enum { SLOTS = 512 };
        struct { int64_t off; size_t size; } live[SLOTS] = { { 0, 0 } };
        struct brd_pool_stats s;
        struct brd_pool *p;
        uint64_t rnd = 42, used = 0, blocks = 0, budget;
        struct t_leak l;
        long op, fails = 0;
        int64_t off;
        size_t i;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(32 * MiB, 0, &p), 0);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        budget = s.capacity / 3;
        for (op = 0; op < 300000; op++) {
                size_t k = t_rand(&rnd) % SLOTS, size;
                uint64_t x = t_rand(&rnd);

                if (live[k].off) {
                        assert_int_equal(check(brd_pool_ptr(p, (uint64_t)live[k].off),
                                               live[k].size < 256 ? live[k].size : 256,
                                               (uint64_t)live[k].off), 0);
                        assert_int_equal(brd_pool_free(p, (uint64_t)live[k].off), 0);
                        used -= rounded(live[k].size);
                        blocks--;
                        live[k].off = 0;
                        continue;
                }
                /* Mostly small, sometimes large: 64 B .. 512 KiB, log-uniform. */
                size = (size_t)1 << (6 + x % 14);
                size += (x >> 8) % size;
                if (used + rounded(size) > budget)
                        continue;
                off = brd_pool_alloc(p, size);
                if (off == -ENOSPC) {
                        fails++;
                        continue;
                }
                assert_true(off > 0);
                fill(brd_pool_ptr(p, (uint64_t)off), size < 256 ? size : 256, (uint64_t)off);
                live[k].off = off;
                live[k].size = size;
                used += rounded(size);
                blocks++;
        }
        /* Steady state at a third of the capacity never ran out. */
        assert_int_equal(fails, 0);
        stats_expect(p, used, blocks);
        for (i = 0; i < SLOTS; i++)
                if (live[i].off)
                        assert_int_equal(brd_pool_free(p, (uint64_t)live[i].off), 0);
        stats_expect(p, 0, 0);
        /* No lasting fragmentation: the largest block the pool can have fits. */
        off = brd_pool_alloc(p, 16 * MiB);
        assert_true(off > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void test_pool_export_attach_validation(void **state)
{
        struct brd_handle h, sh;
        struct brd_pool *p, *q = (struct brd_pool *)0x1;
        struct brd_seg *seg;
        struct t_leak l;
        int64_t off;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        off = brd_pool_alloc(p, 1000);
        assert_true(off > 0);
        strcpy(brd_pool_ptr(p, (uint64_t)off), "hello");
        assert_int_equal(brd_pool_export(p, &h), 0);
        assert_int_equal(h.kind, BRD_HANDLE_POOL);
        assert_int_equal(brd_pool_attach(&h, &q), 0);
        assert_string_equal(brd_pool_ptr(q, (uint64_t)off), "hello");
        /* Either mapping frees what the other allocated. */
        assert_int_equal(brd_pool_free(q, (uint64_t)off), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)off), -EINVAL);
        brd_pool_close(q);
        /* Wrong kind. */
        h.kind = BRD_HANDLE_SEG;
        q = (struct brd_pool *)0x1;
        assert_int_equal(brd_pool_attach(&h, &q), -EINVAL);
        h.kind = BRD_HANDLE_POOL;
        /* Bad magic / version / layout: -EPROTO, nothing left mapped. */
        hdr_of(p)->version++;
        assert_int_equal(brd_pool_attach(&h, &q), -EPROTO);
        hdr_of(p)->version--;
        hdr_of(p)->npages++;
        assert_int_equal(brd_pool_attach(&h, &q), -EPROTO);
        hdr_of(p)->npages--;
        hdr_of(p)->data_off += 4096;
        assert_int_equal(brd_pool_attach(&h, &q), -EPROTO);
        hdr_of(p)->data_off -= 4096;
        /* Another layout: a peer whose shared words are 4 bytes (a 32-bit
         * build), or whose header is larger. */
        hdr_of(p)->word_size = 4;
        assert_int_equal(brd_pool_attach(&h, &q), -EPROTO);
        hdr_of(p)->word_size = sizeof(AO_t);
        hdr_of(p)->hdr_size += 64;
        assert_int_equal(brd_pool_attach(&h, &q), -EPROTO);
        hdr_of(p)->hdr_size -= 64;
        assert_ptr_equal(q, (struct brd_pool *)0x1);
        brd_handle_close(&h);
        /* A segment that is not a pool. */
        assert_int_equal(brd_seg_create("notpool", MiB, 0, &seg), 0);
        assert_int_equal(brd_seg_export(seg, &sh), 0);
        sh.kind = BRD_HANDLE_POOL;
        assert_int_equal(brd_pool_attach(&sh, &q), -EPROTO);
        brd_handle_close(&sh);
        brd_seg_close(seg);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* The header fields attach derives a pool's bounds from. */
struct geom {
        uint64_t seg_size, pages_off, states_off, data_off, slots_off, pid_ns;
        uint32_t npages, nslots;
};

static void geom_get(const struct brd_pool_hdr *h, struct geom *g)
{
        g->seg_size = h->seg_size;
        g->pages_off = h->pages_off;
        g->states_off = h->states_off;
        g->data_off = h->data_off;
        g->slots_off = h->slots_off;
        g->pid_ns = h->pid_ns;
        g->npages = h->npages;
        g->nslots = h->nslots;
}

static void geom_put(struct brd_pool_hdr *h, const struct geom *g)
{
        h->seg_size = g->seg_size;
        h->pages_off = g->pages_off;
        h->states_off = g->states_off;
        h->data_off = g->data_off;
        h->slots_off = g->slots_off;
        h->pid_ns = g->pid_ns;
        h->npages = g->npages;
        h->nslots = g->nslots;
}

/* Geometry no pool of that segment has: a data area reaching terabytes
 * past the mapping, and a pid namespace that is not ours. */
static const struct geom hostile_geom = {
        .seg_size = ~0ull >> 1, .pages_off = 1ull << 40, .states_off = 1ull << 41,
        .data_off = 1ull << 42, .slots_off = 1ull << 43, .pid_ns = 1,
        .npages = 0x7ffffff0u, .nslots = BRD_POOL_SLOTS_MAX,
};

static void poke_hostile(void *hdr, void *arg)
{
        (void)arg;
        geom_put(hdr, &hostile_geom);
}

static void poke_back(void *hdr, void *arg)
{
        geom_put(hdr, arg);
}

/* @q (attached to @p's segment, whose valid geometry is @g) has exactly
 * @g's bounds: nothing past the data area resolves, frees or is walked. */
static void bounds_expect(struct brd_pool *p, struct brd_pool *q, const struct geom *g)
{
        uint64_t end = g->data_off + (uint64_t)g->npages * BRD_POOL_PAGE;
        struct brd_pool_stats sp, sq;
        unsigned char *base = brd__pool_base(q);

        assert_ptr_equal(brd_pool_ptr(q, g->data_off), base + g->data_off);
        assert_ptr_equal(brd_pool_ptr(q, end - 1), base + end - 1);
        assert_null(brd_pool_ptr(q, end));
        assert_null(brd_pool_ptr(q, g->seg_size + MiB));
        assert_null(brd_pool_ptr(q, 1ull << 42));
        assert_int_equal(brd_pool_free(q, end), -EINVAL);
        assert_int_equal(brd_pool_free(q, 1ull << 40), -EINVAL);
        assert_int_equal(brd_pool_stats(p, &sp), 0);
        assert_int_equal(brd_pool_stats(q, &sq), 0);
        assert_int_equal(sq.size, g->seg_size);
        assert_int_equal(sq.capacity, (uint64_t)g->npages * BRD_POOL_PAGE);
        assert_int_equal(sq.size, sp.size);
        assert_int_equal(sq.capacity, sp.capacity);
}

/*
 * A peer rewrites the header at the worst moment: right after attach read
 * it (brd__pool_attach_test()'s hook).  The verdict and the bounds are those
 * of what attach read: a valid header rewritten to nonsense still attaches
 * with the valid bounds (before the fix, attach checked one read and kept
 * a second, so this pool reached terabytes past its mapping), and nonsense
 * rewritten to a valid header is still refused.
 */
static void test_pool_attach_reads_header_once(void **state)
{
        struct brd_pool *p, *q = NULL;
        struct brd_pool_hdr *h;
        struct brd_handle hd;
        struct t_leak l;
        struct geom g, now;
        int64_t off;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_pool_export(p, &hd), 0);
        h = hdr_of(p);
        geom_get(h, &g);

        /* Valid when read, hostile from then on. */
        assert_int_equal(brd__pool_attach_test(&hd, poke_hostile, NULL, &q), 0);
        geom_get(h, &now);
        assert_memory_equal(&now, &hostile_geom, sizeof(now));  /* the peer did write */
        bounds_expect(p, q, &g);
        /* And it serves: a block allocated through it is @p's block. */
        off = brd_pool_alloc(q, 200000);
        assert_true(off > 0 && (uint64_t)off + 200000 <= g.data_off +
                    (uint64_t)g.npages * BRD_POOL_PAGE);
        strcpy(brd_pool_ptr(q, (uint64_t)off), "once");
        assert_string_equal(brd_pool_ptr(p, (uint64_t)off), "once");
        assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
        brd_pool_close(q);

        /* Hostile when read, valid from then on: still refused. */
        q = (struct brd_pool *)0x1;
        assert_int_equal(brd__pool_attach_test(&hd, poke_back, &g, &q), -EPROTO);
        assert_ptr_equal(q, (struct brd_pool *)0x1);
        geom_get(h, &now);
        assert_memory_equal(&now, &g, sizeof(now));
        /* One field at a time, too: npages alone read wrong. */
        h->npages = 0x7ffffff0u;
        assert_int_equal(brd__pool_attach_test(&hd, poke_back, &g, &q), -EPROTO);
        assert_ptr_equal(q, (struct brd_pool *)0x1);

        /* No hook: brd_pool_attach() itself. */
        assert_int_equal(brd__pool_attach_test(&hd, NULL, NULL, &q), 0);
        bounds_expect(p, q, &g);
        brd_pool_close(q);
        brd_handle_close(&hd);
        brd_pool_close(p);
        t_leak_end(&l);
}

#define FLIP_ATTACHES 2000

/*
 * The same with a real peer: a child rewrites the header's geometry to
 * nonsense and back as fast as it can while this process attaches again
 * and again.  Each attach either fails with -EPROTO or yields a pool with
 * the valid bounds.  Not a race to win: it asserts every outcome, whichever
 * interleavings the scheduler gives (the deterministic check is
 * test_pool_attach_reads_header_once()).
 */
static void test_pool_attach_header_flipping(void **state)
{
        struct brd_pool *p, *q;
        struct brd_pool_hdr *h;
        struct brd_handle hd;
        struct t_leak l;
        struct geom g, now;
        AO_t *flag;
        unsigned i, ok = 0, refused = 0;
        pid_t pid;
        int r;

        (void)state;
        t_leak_begin(&l);
        flag = t_shared_page();
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_pool_export(p, &hd), 0);
        h = hdr_of(p);
        geom_get(h, &g);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* flag[0]: started; flag[1]: stop.  Every store is an AO
                 * one, so that none of them is merged away. */
                AO_store_release(&flag[0], 1);
                while (!AO_load_acquire(&flag[1])) {
                        AO_int_store(&h->npages, 0x7ffffff0u);
                        AO_store((AO_t *)&h->data_off, 1ull << 42);
                        AO_store((AO_t *)&h->seg_size, ~0ull >> 1);
                        AO_int_store(&h->npages, g.npages);
                        AO_store((AO_t *)&h->data_off, g.data_off);
                        AO_store((AO_t *)&h->seg_size, g.seg_size);
                        AO_int_store(&h->npages, g.npages * 2);
                        AO_int_store(&h->npages, g.npages);
                }
                _exit(0);
        }
        T_UNTIL(AO_load_acquire(&flag[0]));
        for (i = 0; i < FLIP_ATTACHES; i++) {
                q = NULL;
                r = brd_pool_attach(&hd, &q);
                if (r == -EPROTO) {
                        assert_null(q);
                        refused++;
                        continue;
                }
                assert_int_equal(r, 0);
                bounds_expect(p, q, &g);
                brd_pool_close(q);
                ok++;
        }
        AO_store_release(&flag[1], 1);
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(ok + refused, FLIP_ATTACHES);
        /* The child ended each round with the valid geometry. */
        geom_get(h, &now);
        assert_memory_equal(&now, &g, sizeof(now));
        assert_int_equal(brd_pool_attach(&hd, &q), 0);
        bounds_expect(p, q, &g);
        brd_pool_close(q);
        brd_handle_close(&hd);
        brd_pool_close(p);
        t_shared_page_free(flag);
        t_leak_end(&l);
}

static void test_pool_hostile_state(void **state)
{
        struct brd_pool_hdr *h;
        struct brd_pool_stats s;
        struct brd_pool *p;
        struct t_leak l;
        int64_t a;

        (void)state;
        t_leak_begin(&l);
        /* A class head pointing outside the pool: -EBADMSG, poisoned, no access. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 64);
        assert_true(a > 0);
        AO_store(&h->cls[0].head, 0xffffff00ull);
        assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
        assert_int_equal(brd_pool_alloc(p, 4096), -EBADMSG);            /* poisoned */
        assert_int_equal(brd_pool_free(p, (uint64_t)a), -EBADMSG);
        assert_int_equal(brd_pool_stats(p, &s), -EBADMSG);
        brd_pool_close(p);

        /* A cycle in a class stack: the second visit is caught by the state byte. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 64);
        assert_true(a > 0);
        {
                uint64_t g = (uint64_t)(a - (int64_t)h->data_off) / 64 + 1;     /* the next block */
                AO_t *link = brd_pool_ptr(p, (uint64_t)a + 64);

                AO_store(link, g + 1);          /* block g links to itself */
        }
        {
                int64_t r;
                int n = 0;

                while ((r = brd_pool_alloc(p, 64)) > 0 && n < 10000)
                        n++;
                assert_int_equal(r, -EBADMSG);
                assert_true(n < 3);
        }
        brd_pool_close(p);

        /* A buddy free list pointing at a page that is not a free block. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        {
                unsigned k;

                for (k = 0; k < BRD_POOL_MAX_ORDER; k++)
                        if (h->free_head[k])
                                h->free_head[k] = 0x7fffffff;
        }
        assert_int_equal(brd_pool_alloc(p, 200000), -EBADMSG);
        brd_pool_close(p);

        /* A buddy free-list head scribbled while the list is in use: the
         * next push onto it (a free whose buddy is allocated) must not
         * write through it.  Out of range, then in range but naming an
         * allocated block. */
        for (int k = 0; k < 2; k++) {
                int64_t blk[16], b = 0;
                int n = 0, i, j;

                assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
                h = hdr_of(p);
                /* Every order-5 block (128 KiB), to find two buddies. */
                while (n < 16 && (blk[n] = brd_pool_alloc(p, 65 * 1024)) > 0)
                        n++;
                assert_int_equal(blk[n], -ENOSPC);
                for (i = 0, a = 0; i < n && !a; i++)
                        for (j = 0; j < n; j++)
                                if ((uint64_t)(blk[i] - (int64_t)h->data_off) ==
                                    ((uint64_t)(blk[j] - (int64_t)h->data_off) ^ (32 * 4096))) {
                                        a = blk[i];
                                        b = blk[j];
                                }
                assert_true(a > 0 && b > 0);
                h->free_head[5] = k == 0 ? 0x10000000u
                                         : (uint32_t)((uint64_t)(b - (int64_t)h->data_off) / 4096 + 1);
                assert_int_equal(brd_pool_free(p, (uint64_t)a), -EBADMSG);
                assert_int_equal(AO_load(&h->poisoned), 1);
                assert_int_equal(brd_pool_free(p, (uint64_t)b), -EBADMSG);
                assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
                assert_int_equal(brd_pool_alloc(p, 65 * 1024), -EBADMSG);
                assert_int_equal(brd_pool_stats(p, &s), -EBADMSG);
                brd_pool_close(p);
        }

        /* Garbage page words: stats walks, bounded, and says -EBADMSG. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        {
                struct brd_pool_page *pg = (void *)((char *)h + h->pages_off);

                AO_store(&pg[0].word, BRD_PG_WORD(BRD_PG_FREE, 31));
        }
        assert_int_equal(brd_pool_stats(p, &s), -EBADMSG);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * Poisoned is poisoned for the handle that saw it: a peer that puts the
 * corrupt word back and clears the pool's shared "poisoned" word does not
 * bring the handle back (shm.h: every later call says -EBADMSG), nor a
 * second handle that saw the word set, nor a forked child's copy of them.
 * A handle attached afterwards is a new object and works.
 */
static void test_pool_poison_latched(void **state)
{
        struct brd_pool *p, *q, *fresh;
        struct brd_pool_stats s;
        struct brd_pool_hdr *h;
        struct brd_handle hd;
        struct t_leak l;
        int64_t a, f;
        AO_t saved;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_pool_export(p, &hd), 0);
        assert_int_equal(brd_pool_attach(&hd, &q), 0);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 8192);
        assert_true(a > 0);
        saved = AO_load(&h->cls[0].head);
        AO_store(&h->cls[0].head, 0xffffff0ull);        /* a peer's scribble */
        assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
        assert_int_equal(AO_load(&h->poisoned), 1);
        assert_int_equal(brd_pool_stats(q, &s), -EBADMSG);     /* q sees the word */

        /* The peer undoes it all. */
        AO_store(&h->cls[0].head, saved);
        AO_store(&h->poisoned, 0);
        assert_int_equal(brd_pool_alloc(p, 8192), -EBADMSG);
        assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
        assert_int_equal(brd_pool_free(p, (uint64_t)a), -EBADMSG);
        assert_int_equal(brd_pool_stats(p, &s), -EBADMSG);
        assert_int_equal(brd_pool_alloc(q, 8192), -EBADMSG);
        assert_int_equal(brd_pool_free(q, (uint64_t)a), -EBADMSG);
        assert_int_equal(AO_load(&h->poisoned), 0);     /* answering is not poisoning again */

        /* In a forked child, the first call since the fork takes the slow path. */
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(brd_pool_alloc(p, 64) == -EBADMSG && brd_pool_stats(q, &s) == -EBADMSG ? 0 : 1);
        assert_int_equal(t_wait_child(pid), 0);

        /* A new handle: not poisoned, the block still live. */
        assert_int_equal(brd_pool_attach(&hd, &fresh), 0);
        f = brd_pool_alloc(fresh, 64);
        assert_true(f > 0);
        assert_int_equal(brd_pool_free(fresh, (uint64_t)f), 0);
        assert_int_equal(brd_pool_free(fresh, (uint64_t)a), 0);
        brd_pool_close(fresh);
        brd_handle_close(&hd);
        brd_pool_close(q);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* The cache slots are shared memory too: an entry count past the cap or an
 * entry outside the pool poisons; a dead owner's slot full of garbage is
 * reaped without an access outside the pool and without freeing a block
 * that is not cached. */
static void test_pool_hostile_slots(void **state)
{
        struct brd_pool_slot *slots, *mine;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        struct stat ns;
        int64_t a, b, keep;
        pid_t dead;
        unsigned c, i;
        long n;

        (void)state;
        assert_true(__libc_single_threaded);
        t_leak_begin(&l);
        for (int k = 0; k < 2; k++) {
                assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
                h = hdr_of(p);
                slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
                a = brd_pool_alloc(p, 64);
                assert_true(a > 0);
                assert_int_equal(brd_pool_free(p, (uint64_t)a), 0);     /* cached */
                mine = &slots[0];
                assert_int_equal(AO_load(&mine->owner) & BRD_POOL_OWNER_PID, (AO_t)getpid());
                /* Tagged: a reaper that judged an earlier owner of this
                 * pid dead cannot take this claim over. */
                assert_true((AO_load(&mine->owner) & ~BRD_POOL_REAPING) >> BRD_POOL_OWNER_TAG_SHIFT);
                assert_int_equal(mine->n[0], 1);
                if (k == 0)
                        mine->n[0] = 200;                       /* past the cap */
                else
                        mine->blk[0][0] = 0xfffffff0u;          /* outside the pool */
                assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
                assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);      /* poisoned */
                brd_pool_close(p);
        }

        /* A dead process's slot with garbage entries, and one that names a
         * block someone holds. */
        dead = t_fork();
        assert_true(dead >= 0);
        if (dead == 0)
                _exit(0);
        assert_int_equal(t_wait_child(dead), 0);
        assert_int_equal(stat("/proc/self/ns/pid", &ns), 0);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        keep = brd_pool_alloc(p, 64);
        assert_true(keep > 0);
        AO_store(&slots[1].owner, (AO_t)dead);
        AO_store(&slots[1].start_time, 0);
        AO_store(&slots[1].pid_ns, (AO_t)ns.st_ino);
        for (c = 0; c < BRD_POOL_NCLASSES; c++) {
                slots[1].n[c] = 255;
                for (i = 0; i < BRD_POOL_SLOT_CAP; i++)
                        slots[1].blk[c][i] = i & 1 ? 0xffffffffu : (uint32_t)(i * 977);
        }
        slots[1].blk[0][0] = (uint32_t)((uint64_t)(keep - (int64_t)h->data_off) / 64);
        n = 0;
        while ((b = brd_pool_alloc(p, 64)) > 0)
                n++;
        assert_int_equal(b, -ENOSPC);
        assert_true(n > 1000);
        assert_int_equal(AO_load(&slots[1].owner), 0);          /* reaped */
        assert_int_equal(brd_pool_free(p, (uint64_t)keep), 0);  /* still ours, freed once */
        assert_int_equal(brd_pool_free(p, (uint64_t)keep), -EINVAL);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * Slots whose owner's pid a live process took over, where no start time was
 * stamped: a claimer killed before it stamped its own, and a reaper killed
 * mid-reap (its mark has none).  A reaper tells each from the live process
 * by the start time in the word's tag, and frees it; a live claimer not
 * stamped yet keeps its slot.  Before, both stayed taken for as long as the
 * process that reused the pid lived.
 */
static void test_pool_slot_pid_reused_unstamped(void **state)
{
        struct brd_pool_slot *slots;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        struct stat ns;
        uint64_t st = 0;
        AO_t live;
        int64_t b;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        pid = t_fork();                 /* the process that took the pid over */
        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;)
                        pause();
        }
        assert_int_equal(brd__proc_start_time_of(pid, &st), 0);
        assert_int_equal(stat("/proc/self/ns/pid", &ns), 0);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        h = hdr_of(p);
        slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        assert_true(h->nslots >= 4);
        /* Slot 1: a claimer killed before its stamp; 2: a reaper killed
         * mid-reap; 3: the live process, claiming (its stamp to come). */
        AO_store(&slots[1].owner, brd__pool_owner_word((uint64_t)pid, st ^ 0x100, 0));
        AO_store(&slots[2].owner, BRD_POOL_REAPING |
                                  brd__pool_owner_word((uint64_t)pid, st ^ 0x200, 0));
        AO_store(&slots[2].start_time, st ^ 0x400);     /* the dead owner's */
        live = brd__pool_owner_word((uint64_t)pid, st, 0);
        AO_store(&slots[3].owner, live);
        for (int i = 1; i <= 3; i++)
                AO_store(&slots[i].pid_ns, (AO_t)ns.st_ino);
        while ((b = brd_pool_alloc(p, 64)) > 0)
                ;
        assert_int_equal(b, -ENOSPC);                   /* full: the caches reaped */
        assert_int_equal(AO_load(&slots[1].owner), 0);
        assert_int_equal(AO_load(&slots[2].owner), 0);
        assert_int_equal(AO_load(&slots[3].owner), live);
        AO_store(&slots[3].owner, 0);
        brd_pool_close(p);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        t_leak_end(&l);
}

/* The child of test_pool_slot_waits_for_start_time(): exit 0 when its
 * first allocation, at its fd limit, claimed no slot and, needing the pool
 * lock (a fresh pool: a span to carve), answered -EMFILE, and the next
 * one, with the limit back up, claimed one stamped with its start time;
 * else the failed check. */
static int child_claims_at_fd_limit(struct brd_pool *p)
{
        struct brd_pool_hdr *h = hdr_of(p);
        struct brd_pool_slot *slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        struct rlimit old;
        int64_t a;

        if (t_fd_limit_spare(0, &old))          /* /proc cannot be read */
                return 12;
        /* The lock word names its holder by its start time too: one stamped
         * 0 would be judged alive for good once its pid is reused. */
        if (brd_pool_alloc(p, 64) != -EMFILE)
                return 13;
        if (AO_load(&slots[0].owner))
                return 1;                       /* claimed, with a start time of 0 */
        if (AO_load(&h->lock))
                return 4;                       /* the lock was touched */
        if (setrlimit(RLIMIT_NOFILE, &old))
                return 14;
        a = brd_pool_alloc(p, 64);
        if (a <= 0 || brd_pool_free(p, (uint64_t)a))
                return 15;
        if ((AO_load(&slots[0].owner) & BRD_POOL_OWNER_PID) != (AO_t)getpid())
                return 2;                       /* never claimed */
        if (AO_load(&slots[0].start_time) != brd__proc_start_time(getpid()) ||
            !AO_load(&slots[0].start_time))
                return 3;
        return 0;
}

/* A process whose start time cannot be read for now (at its fd limit)
 * claims no cache slot and takes no pool lock until it can (-EMFILE): it
 * used to stamp either with a start time of 0, which no reaper or waiter
 * could judge once its pid was reused (a lock so stamped held for good). */
static void test_pool_slot_waits_for_start_time(void **state)
{
        struct brd_pool *p;
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_claims_at_fd_limit(p));
        assert_int_equal(t_wait_child(pid), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

static void *idle_thread(void *arg)
{
        (void)arg;
        for (;;)
                pause();
        return NULL;
}

/* The grandchild of test_pool_child_reaps_dead_parents_slot(): threaded
 * (its calls bypass the cache), its handle still naming the slot of its
 * parent @parent.  Once that parent is dead, an alloc that finds the pool
 * full reaps that slot.  Exit 0 when it did; 1 when it stayed the dead
 * parent's; else the failed check. */
static int grandchild_reaps_slot(struct brd_pool *p, pid_t parent, int ready_fd)
{
        struct brd_pool_hdr *h = hdr_of(p);
        struct brd_pool_slot *slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        int64_t end = t_now_ms() + 10000;
        pthread_t t;
        uint32_t i;

        if (pthread_create(&t, NULL, idle_thread, NULL))
                return 10;
        if (write(ready_fd, "r", 1) != 1)
                return 11;
        while (getppid() == parent)             /* until the parent is dead */
                if (t_now_ms() > end || poll(NULL, 0, 1) < 0)
                        return 12;
        if (brd_pool_alloc(p, 64) != -ENOSPC)
                return 13;
        for (i = 0; i < h->nslots; i++)
                if ((AO_load(&slots[i].owner) & BRD_POOL_OWNER_PID) == (AO_t)parent)
                        return 1;
        return 0;
}

/* Caches (a slot is its own), fills the pool (the cache given back, the
 * slot kept), forks the grandchild, and dies once it runs. */
static int child_caches_forks_dies(struct brd_pool *p)
{
        int64_t a = brd_pool_alloc(p, 64);
        int ready[2];
        pid_t g;
        char c;

        if (a <= 0 || brd_pool_free(p, (uint64_t)a))
                return 20;
        while (brd_pool_alloc(p, 64) > 0)
                ;
        if (pipe(ready))
                return 21;
        g = fork();
        if (g < 0)
                return 22;
        if (g == 0)
                _exit(grandchild_reaps_slot(p, getppid(), ready[1]));
        if (read(ready[0], &c, 1) != 1)
                return 23;
        raise(SIGKILL);
        return 24;
}

/*
 * A forked child's handle names its parent's cache slot until a cached call
 * forgets it; a threaded child makes none.  The parent dead, that child's
 * reap skipped the slot as if it were its own: taken for as long as the
 * child lived.  It reaps it now.
 */
static void test_pool_child_reaps_dead_parents_slot(void **state)
{
        struct brd_pool *p;
        struct t_leak l;
        pid_t pid, g, r;
        int st, pst;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);   /* the grandchild comes to us */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_caches_forks_dies(p));
        /* Both reaped and the subreaper off before any assertion: a failed
         * one must leave no grandchild and no setting to later tests (the
         * grandchild ends within 10 s whatever happened). */
        do
                r = waitpid(pid, &pst, 0);
        while (r < 0 && errno == EINTR);
        do
                g = waitpid(-1, &st, 0);
        while (g < 0 && errno == EINTR);
        assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
        assert_int_equal(r, pid);
        assert_true(WIFSIGNALED(pst) && WTERMSIG(pst) == SIGKILL);
        assert_true(g > 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* Every slot claimed by a process that died before it wrote its start time
 * and pid namespace (killed inside slot_claim()): the next process that
 * wants a slot reaps them and caches.  One whose owner could not tell its
 * namespace (its pid may be another namespace's) is left alone. */
static void test_pool_slot_claimer_killed(void **state)
{
        struct brd_pool_slot *slots;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int64_t a;
        uint32_t i, mine = 0, freed = 0;
        pid_t dead;

        (void)state;
        assert_true(__libc_single_threaded);    /* the cache needs it */
        t_leak_begin(&l);
        dead = t_fork();
        assert_true(dead >= 0);
        if (dead == 0)
                _exit(0);
        assert_int_equal(t_wait_child(dead), 0);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        h = hdr_of(p);
        slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        assert_true(h->nslots >= 3);
        for (i = 0; i < h->nslots; i++) {
                assert_int_equal(AO_load(&slots[i].owner), 0);         /* none claimed yet */
                AO_store(&slots[i].owner, (AO_t)dead);
        }
        AO_store(&slots[0].pid_ns, 1);                  /* SLOT_NS_UNKNOWN */
        a = brd_pool_alloc(p, 64);
        assert_true(a > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)a), 0);
        for (i = 0; i < h->nslots; i++) {
                AO_t o = AO_load(&slots[i].owner);

                mine += (o & BRD_POOL_OWNER_PID) == (AO_t)getpid();
                freed += o == 0;
        }
        assert_int_equal(AO_load(&slots[0].owner), (AO_t)dead);
        assert_int_equal(mine, 1);
        assert_int_equal(freed, h->nslots - 2);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* The granule of block @off, and its state byte. */
static uint64_t gran_of(struct brd_pool *p, int64_t off)
{
        return (uint64_t)(off - (int64_t)hdr_of(p)->data_off) / BRD_POOL_GRAN;
}

static unsigned char *state_of(struct brd_pool *p, uint64_t g)
{
        return (unsigned char *)hdr_of(p) + hdr_of(p)->states_off + g;
}

/* A state byte says what a granule is only at a block start of a span of
 * its class that ends inside the pool: a scribbled byte (or cache entry, or
 * stack top) naming any other granule never yields a block past the pool or
 * overlapping a live one.  Alloc says -EBADMSG (poisoned); a free of a
 * granule that is no block start says -EINVAL and changes nothing. */
static void test_pool_hostile_block_starts(void **state)
{
        struct brd_pool_slot *slots;
        struct brd_pool_stats s0, s1;
        struct brd_pool_page *pg;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int64_t a, b;
        uint64_t g, ngran;
        unsigned c, k;

        (void)state;
        assert_true(__libc_single_threaded);    /* the cache needs it */
        t_leak_begin(&l);
        /* Cache entries: inside a live block; the pool's last granule; an
         * aligned granule of a page that is no span. */
        for (k = 0; k < 3; k++) {
                assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
                h = hdr_of(p);
                slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
                c = k == 1 ? 10 : 2;
                a = brd_pool_alloc(p, (size_t)BRD_POOL_GRAN << c);
                b = brd_pool_alloc(p, (size_t)BRD_POOL_GRAN << c);
                assert_true(a > 0 && b > 0);
                assert_int_equal(brd_pool_free(p, (uint64_t)b), 0);     /* cached */
                assert_int_equal(AO_load(&slots[0].owner) & BRD_POOL_OWNER_PID, (AO_t)getpid());
                assert_int_equal(slots[0].n[c], 1);
                ngran = (uint64_t)h->npages * BRD_POOL_GRANS_PER_PAGE;
                g = k == 0 ? gran_of(p, a) + 1 : k == 1 ? ngran - 1 : ngran - BRD_POOL_GRANS_PER_PAGE;
                slots[0].blk[c][0] = (uint32_t)g;
                *state_of(p, g) = BRD_GS(c, BRD_GS_CACHED);
                assert_int_equal(brd_pool_alloc(p, (size_t)BRD_POOL_GRAN << c), -EBADMSG);
                assert_int_equal(AO_load(&h->poisoned), 1);
                assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
                brd_pool_close(p);
        }

        /* A class stack top inside a live block (state byte FREE). */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 256);             /* carves a span: the rest is stacked */
        assert_true(a > 0);
        g = gran_of(p, a) + 1;
        *state_of(p, g) = BRD_GS(2, BRD_GS_FREE);
        AO_store(&h->cls[2].head, (AO_load(&h->cls[2].head) & ~0xffffffffull) | (g + 1));
        assert_int_equal(brd_pool_alloc(p, 256), -EBADMSG);
        assert_int_equal(AO_load(&h->poisoned), 1);
        brd_pool_close(p);

        /* Freeing a granule inside a live block whose state byte says
         * ALLOC: not a block, -EINVAL, nothing changes. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 256);
        assert_true(a > 0);
        assert_int_equal(brd_pool_stats(p, &s0), 0);
        *state_of(p, gran_of(p, a) + 1) = BRD_GS(2, BRD_GS_ALLOC);
        assert_int_equal(brd_pool_free(p, (uint64_t)a + 64), -EINVAL);
        assert_int_equal(AO_load(&h->poisoned), 0);
        assert_int_equal(*state_of(p, gran_of(p, a) + 1), BRD_GS(2, BRD_GS_ALLOC));
        assert_int_equal(brd_pool_stats(p, &s1), 0);
        assert_memory_equal(&s0, &s1, sizeof(s0));
        for (k = 0; k < 64; k++)                /* never handed out over a */
                assert_true(brd_pool_alloc(p, 256) != a + 64);
        assert_int_equal(brd_pool_free(p, (uint64_t)a), 0);
        brd_pool_close(p);

        /* Freeing a block whose (scribbled) span page says it runs past
         * the pool: -EBADMSG, poisoned, never stacked. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        pg = (struct brd_pool_page *)(void *)((char *)h + h->pages_off);
        for (c = 7; c <= 10; c++) {             /* a class whose aligned block overhangs */
                uint64_t pages = 1ull << (c - 6), i = (h->npages - 1) & ~(pages - 1);

                if (i + pages > h->npages)
                        break;
        }
        assert_true(c <= 10);
        g = (uint64_t)((h->npages - 1) & ~((1u << (c - 6)) - 1)) * BRD_POOL_GRANS_PER_PAGE;
        AO_store(&pg[g / BRD_POOL_GRANS_PER_PAGE].word, BRD_PG_WORD(BRD_PG_SPAN, c));
        *state_of(p, g) = BRD_GS(c, BRD_GS_ALLOC);
        assert_int_equal(brd_pool_free(p, h->data_off + g * BRD_POOL_GRAN), -EBADMSG);
        assert_int_equal(AO_load(&h->poisoned), 1);
        assert_int_equal(AO_load(&h->cls[c].head) & 0xffffffffull, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------- reclaim against a hostile peer */

/* A peer that rewrites the prev/next words of class-0 span heads (every
 * one, or the one at @page) when reclaim finishes pass @pass over class 0. */
struct reclaim_peer {
        struct brd_pool_page *pg;
        uint32_t npages;
        int pass;
        uint32_t page;          /* UINT32_MAX: every span head */
        uint32_t prev, next;    /* what it writes */
        unsigned calls;
};

static void reclaim_scribble(void *hdr, unsigned c, int pass, void *arg)
{
        struct reclaim_peer *rp = arg;
        uint32_t i;

        (void)hdr;
        if (c != 0 || pass != rp->pass)
                return;
        rp->calls++;
        for (i = 0; i < rp->npages; i += 16)    /* class 0 spans: 16 pages */
                if (AO_load(&rp->pg[i].word) == BRD_PG_WORD(BRD_PG_SPAN, 0) &&
                    (rp->page == UINT32_MAX || i == rp->page)) {
                        rp->pg[i].prev = rp->prev;
                        rp->pg[i].next = rp->next;
                }
}

#define RECLAIM_MAX 16384

/* In a forked child (the parent survives whatever happens to it): the
 * allocation that reclaims, then pages until the pool is full; none may
 * overlap @keep (0: none), which must still free.  0 or an exit code. */
static int reclaim_child(struct brd_pool *p, int64_t keep, const struct reclaim_peer *rp)
{
        int64_t big, b;
        int n = 0;

        big = brd_pool_alloc(p, 128 * 1024);
        if (big < 0)
                return 10 + (int)-big % 100;
        if (rp->calls == 0)
                return 2;                       /* it did not reclaim */
        if (keep && keep >= big && keep < big + 128 * 1024)
                return 3;
        while ((b = brd_pool_alloc(p, 4096)) > 0 && n++ < RECLAIM_MAX)
                if (keep && keep >= b && keep < b + 4096)
                        return 4;
        if (b != -ENOSPC)
                return 5;
        if (keep && brd_pool_free(p, (uint64_t)keep) != 0)
                return 6;
        return 0;
}

/* 64 KiB blocks until the pool is full, all freed again: how many. */
static int count_64k(struct brd_pool *p)
{
        static int64_t got[4096];
        int n = 0, i;
        int64_t o;

        while (n < 4096 && (o = brd_pool_alloc(p, 65536)) > 0)
                got[n++] = o;
        for (i = 0; i < n; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)got[i]), 0);
        return n;
}

static void reclaim_die(void *hdr, unsigned c, int pass, void *arg)
{
        (void)hdr;
        if (c == 0 && pass == *(int *)arg)
                kill(getpid(), SIGKILL);
}

/* A 4 MiB pool filled with 64 B blocks, all freed again: the 64 B class
 * stack holds most of it, so the next large allocation reclaims.  Its
 * count of 64 KiB blocks before (count_64k()) in *@ret_base. */
static struct brd_pool *pool_of_freed_64(int *ret_base)
{
        static int64_t offs64[70000];
        struct brd_pool *p;
        int64_t o;
        int n, i;

        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        *ret_base = count_64k(p);
        assert_true(*ret_base > 32);
        for (n = 0; n < 70000 && (o = brd_pool_alloc(p, 64)) > 0; n++)
                offs64[n] = o;
        assert_int_equal(o, -ENOSPC);
        for (i = 0; i < n; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)offs64[i]), 0);
        return p;
}

/* A child that sets @peer as @p's reclaim hook (with @arg) and makes the
 * large allocation that reclaims: it must die in it (the hook kills it). */
static void child_dies_reclaiming(struct brd_pool *p,
                                  void (*peer)(void *hdr, unsigned c, int pass, void *arg),
                                  void *arg)
{
        pid_t pid = t_fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                brd__pool_test_reclaim(p, peer, arg);
                (void)brd_pool_alloc(p, MiB);   /* reclaims, and dies in it */
                _exit(1);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
}

/* @p lost nothing: no block live, not poisoned, @base 64 KiB blocks free. */
static void pool_is_whole(struct brd_pool *p, int base)
{
        struct brd_pool_stats st;

        assert_int_equal(brd_pool_stats(p, &st), 0);
        assert_int_equal(AO_load(&hdr_of(p)->poisoned), 0);
        assert_int_equal(st.blocks, 0);
        assert_int_equal(count_64k(p), base);
}

/*
 * A process SIGKILLed in the middle of a reclaim (after it took the 64 B
 * class's stack whole: after counting, after handing every block on, and
 * inside the release of a wholly free span, its block states half cleared
 * or its page words half cleared) loses no free block: the next lock holder
 * finishes the span's release and pushes back what was left in limbo.
 * Before, the whole class's free blocks, most of the pool, were on no stack
 * for good (0 of 62 64 KiB blocks after it); then a span cut short stayed
 * neither free nor allocated (one 64 KiB block fewer).
 */
static void test_pool_reclaimer_killed(void **state)
{
        struct brd_pool *p;
        int base, pass;

        (void)state;
        for (pass = 1; pass <= 4; pass++) {
                p = pool_of_freed_64(&base);
                child_dies_reclaiming(p, reclaim_die, &pass);
                pool_is_whole(p, base);
                brd_pool_close(p);
        }
}

/* The hook's pass to die in (over class 0), and at which call of it. */
static int kill_pass, kill_at;

static void die_at_call(void *hdr, unsigned c, int pass, void *arg)
{
        (void)hdr;
        (void)arg;
        if (c == 0 && pass == kill_pass && --kill_at == 0)
                kill(getpid(), SIGKILL);
}

/*
 * A holder SIGKILLed while its reclaim moves the 64 B class stack into
 * limbo (after its first block, and after 5,000 of some 60,000) loses no
 * free block: the next holder pushes limbo back, and the rest is still on
 * the stack.  Before, the stack was taken whole by one CAS and named in
 * limbo by the next store: a death between the two (as at the first
 * block's hook here) lost the class's free blocks, most of the pool (0 of
 * the 64 KiB blocks back).
 */
static void test_pool_reclaimer_killed_detaching(void **state)
{
        static const int at[] = { 1, 5000 };
        struct brd_pool *p;
        int base, k;

        (void)state;
        for (k = 0; k < 2; k++) {
                p = pool_of_freed_64(&base);
                kill_pass = BRD__POOL_HOOK_DETACH;
                kill_at = at[k];
                child_dies_reclaiming(p, die_at_call, NULL);
                pool_is_whole(p, base);
                brd_pool_close(p);
        }
}

/* 64 B blocks a 4 MiB pool gives, then -ENOSPC. */
static int64_t count_64(struct brd_pool *p)
{
        int64_t n = 0, o;

        while ((o = brd_pool_alloc(p, 64)) > 0)
                n++;
        assert_int_equal(o, -ENOSPC);
        return n;
}

/*
 * A holder SIGKILLed as it carves a new span of 64 B blocks, once its head
 * word is set: the next holder pushes the span's other blocks from limbo,
 * and only the dead one's block is lost.  Before, they were FREE on no
 * stack, for good: 1,023 of them, a whole span.
 */
static void test_pool_carver_killed(void **state)
{
        int pass = BRD__POOL_HOOK_CARVE;
        struct brd_pool *p;
        int64_t fresh;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        fresh = count_64(p);
        brd_pool_close(p);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd__pool_test_reclaim(p, reclaim_die, &pass);
                (void)brd_pool_alloc(p, 64);            /* carves, and dies in it */
                _exit(1);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        assert_int_equal(count_64(p), fresh - 1);
        assert_int_equal(AO_load(&hdr_of(p)->poisoned), 0);
        brd_pool_close(p);
}

/*
 * A holder SIGKILLed mid-reclaim (its class stack whole in limbo), then the
 * next holder SIGKILLed while it pushed that back, after its first block:
 * the third finishes, and nothing is lost or listed twice.  The repairer
 * kept limbo's head until its end, so the third pushed that block again
 * and followed its link into the live stack (a cycle: the pool poisoned).
 */
static void test_pool_limbo_repairer_killed(void **state)
{
        int hook[2] = { 1, BRD__POOL_HOOK_LIMBO }, base, k;
        struct brd_pool *p;

        (void)state;
        p = pool_of_freed_64(&base);
        /* k 0: reclaims, dies after its count pass;
         * k 1: repairs that, dies after one block back. */
        for (k = 0; k < 2; k++)
                child_dies_reclaiming(p, reclaim_die, &hook[k]);
        pool_is_whole(p, base);
        brd_pool_close(p);
}

/*
 * A holder SIGKILLed mid-reclaim (the 64 B class stack in limbo), then a
 * peer that points limbo at two allocated blocks linked to each other: the
 * next holder's repair stops at the cycle, and the pool is poisoned.  It
 * followed the cycle for ngran steps (seconds of a large pool, all under
 * the lock), then went on unpoisoned.
 */
static void test_pool_limbo_cycle(void **state)
{
        struct brd_pool_stats st;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        int64_t a, b;
        int base, pass = 1;

        (void)state;
        p = pool_of_freed_64(&base);
        h = hdr_of(p);
        a = brd_pool_alloc(p, 64);
        b = brd_pool_alloc(p, 64);
        assert_true(a > 0 && b > 0);
        child_dies_reclaiming(p, reclaim_die, &pass);
        AO_store(&h->cls[0].limbo, ((uint64_t)a - h->data_off) / BRD_POOL_GRAN + 1);
        AO_store((AO_t *)brd_pool_ptr(p, (uint64_t)a), ((uint64_t)b - h->data_off) / BRD_POOL_GRAN + 1);
        AO_store((AO_t *)brd_pool_ptr(p, (uint64_t)b), ((uint64_t)a - h->data_off) / BRD_POOL_GRAN + 1);
        assert_int_equal(brd_pool_stats(p, &st), -EBADMSG);
        assert_int_not_equal(AO_load(&h->poisoned), 0);
        brd_pool_close(p);
}

/* A 64 B class span: 64 KiB, 1,024 blocks, aligned in the data area. */
#define SPAN64_BLOCKS 1024u

/* The granule test_pool_span_release_race() watches, 0 until chosen. */
static uint64_t race_block;

/*
 * A peer of a reclaim over the 64 B class.  After its count pass (1): the
 * span that pass 2 will release first is the first on the limbo chain whose
 * 1,024 blocks are all on it; watch its last block.  Inside that release,
 * its block states half cleared (3): take the block as another process's
 * class_pop() does, by a CAS of its state from FREE: it must fail.
 */
static void span_release_peer(void *hdr, unsigned c, int pass, void *arg)
{
        struct brd_pool_hdr *h = hdr;
        unsigned char *st = (unsigned char *)hdr + h->states_off;
        unsigned char *data = (unsigned char *)hdr + h->data_off;
        static uint32_t count[4096];
        uint64_t g, head = AO_load(&h->cls[0].limbo);

        (void)arg;
        if (c != 0)
                return;
        if (pass == 1) {
                for (g = head; g; g = AO_load((AO_t *)(void *)(data + (g - 1) * BRD_POOL_GRAN)))
                        count[(g - 1) / SPAN64_BLOCKS]++;
                for (g = head; g; g = AO_load((AO_t *)(void *)(data + (g - 1) * BRD_POOL_GRAN)))
                        if (count[(g - 1) / SPAN64_BLOCKS] == SPAN64_BLOCKS) {
                                race_block = ((g - 1) / SPAN64_BLOCKS + 1) * SPAN64_BLOCKS - 1;
                                return;
                        }
                _exit(2);
        }
        /* @arg: the pass to take the block in; at 3 the peer must lose, at
         * BRD__POOL_HOOK_TAKE (the release half done) win. */
        if (pass == *(int *)arg && pass == 3)
                _exit(AO_char_compare_and_swap_full(&st[race_block], BRD_GS(0, BRD_GS_FREE),
                                                    BRD_GS(0, BRD_GS_ALLOC)) ? 3 : 0);
        if (pass == *(int *)arg && pass == BRD__POOL_HOOK_TAKE &&
            !AO_char_compare_and_swap_full(&st[race_block], BRD_GS(0, BRD_GS_FREE),
                                           BRD_GS(0, BRD_GS_ALLOC)))
                _exit(4);
}

/*
 * A block taken from a span while reclaim gives the span back to the buddy
 * allocator (as a pop of a block a peer's stray link listed twice can: one
 * of the span's blocks is then FREE on the live stack): the pop fails.  The
 * release checked the states, then cleared them, and a pop in between got
 * the block: two owners, once the buddy allocator handed the span out.
 */
static void test_pool_span_release_race(void **state)
{
        struct brd_pool *p;
        int base;
        pid_t pid;

        static int pass_late = 3, pass_mid = BRD__POOL_HOOK_TAKE;

        (void)state;
        p = pool_of_freed_64(&base);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd__pool_test_reclaim(p, span_release_peer, &pass_late);
                (void)brd_pool_alloc(p, MiB);   /* reclaims: the hook exits */
                _exit(1);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_pool_close(p);

        /* The peer first, half-way through the release: it has the block,
         * the release fails on it (-EBADMSG, the pool poisoned) and puts
         * the half it took back to FREE, leaving the span whole. */
        p = pool_of_freed_64(&base);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct brd_pool_hdr *h = hdr_of(p);
                unsigned char *st = (unsigned char *)h + h->states_off;

                brd__pool_test_reclaim(p, span_release_peer, &pass_mid);
                if (brd_pool_alloc(p, MiB) != -EBADMSG)
                        _exit(5);
                if (st[race_block + 1 - SPAN64_BLOCKS] != BRD_GS(0, BRD_GS_FREE) ||
                    st[race_block] != BRD_GS(0, BRD_GS_ALLOC))
                        _exit(6);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_pool_close(p);
}

#define DRAIN_CACHED 10
#define DRAIN_BACK   4

/*
 * A process SIGKILLed while its close hands its cache back, after
 * DRAIN_BACK of DRAIN_CACHED blocks: those go to another process (this
 * one), which caches them in turn; a third fills the pool, reaping the
 * dead one's slot on the way.  It must hand back only what the slot still
 * had.  The slot counted down only at the end, so the reaper handed back
 * the DRAIN_BACK blocks cached here too: taken by the filler, this cache's
 * next allocations found them allocated (the pool poisoned).
 */
static void test_pool_cache_drain_killed(void **state)
{
        int64_t mine[DRAIN_BACK], got[DRAIN_BACK];
        struct brd_pool_stats st;
        struct brd_pool *p;
        int i, j;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int64_t o[DRAIN_CACHED];

                for (i = 0; i < DRAIN_CACHED; i++)
                        if ((o[i] = brd_pool_alloc(p, 64)) < 0)
                                _exit(2);
                for (i = 0; i < DRAIN_CACHED; i++)
                        if (brd_pool_free(p, (uint64_t)o[i]) < 0)
                                _exit(3);
                kill_pass = BRD__POOL_HOOK_DRAIN;
                kill_at = DRAIN_BACK;
                brd__pool_test_reclaim(p, die_at_call, NULL);
                brd_pool_close(p);              /* drains its cache, dies in it */
                _exit(1);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        /* The blocks it handed back are on top of the stack: ours, cached. */
        for (i = 0; i < DRAIN_BACK; i++)
                assert_true((mine[i] = brd_pool_alloc(p, 64)) > 0);
        for (i = 0; i < DRAIN_BACK; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)mine[i]), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int64_t o;

                /* Fills the pool, its blocks kept: the last allocations
                 * reap the dead slot first. */
                while ((o = brd_pool_alloc(p, 64)) > 0)
                        ;
                _exit(o == -ENOSPC ? 0 : 4);
        }
        assert_int_equal(t_wait_child(pid), 0);
        for (i = 0; i < DRAIN_BACK; i++) {
                got[i] = brd_pool_alloc(p, 64);
                assert_true(got[i] > 0);
                for (j = 0; j < i; j++)
                        assert_true(got[j] != got[i]);
        }
        assert_int_equal(brd_pool_stats(p, &st), 0);
        assert_int_equal(AO_load(&hdr_of(p)->poisoned), 0);
        brd_pool_close(p);
}

/*
 * Reclaim's bookkeeping (which spans to release, how many free blocks each
 * has) is the reclaiming process's own, not words of the pool's page table
 * that a peer can rewrite mid-reclaim: a peer that makes a span head's
 * "next" name a page far past the pool does not send the reclaimer there
 * (it used to: SIGSEGV), and one that raises a span's count to "all free"
 * while a block of it is live does not get that span handed out again.
 * The peer writes through brd__pool_test_reclaim() at the exact moment.
 */
static void test_pool_reclaim_scratch_is_private(void **state)
{
        static int64_t offs[RECLAIM_MAX];
        struct reclaim_peer rp;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int64_t o, keep;
        int n, i, k;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        for (k = 0; k < 2; k++) {
                assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
                h = hdr_of(p);
                n = 0;
                while (n < RECLAIM_MAX && (o = brd_pool_alloc(p, 64)) > 0)
                        offs[n++] = o;
                assert_int_equal(o, -ENOSPC);
                /* k = 1: one block stays live, in a span whose other blocks
                 * are all on the class stack (the first 32 frees are cached). */
                keep = k == 1 ? offs[n - 100] : 0;
                for (i = 0; i < n; i++)
                        if (offs[i] != keep)
                                assert_int_equal(brd_pool_free(p, (uint64_t)offs[i]), 0);
                rp = (struct reclaim_peer){
                        .pg = (struct brd_pool_page *)(void *)((char *)h + h->pages_off),
                        .npages = h->npages,
                };
                if (k == 0) {
                        /* after the split pass: every head's next far out */
                        rp.pass = 2;
                        rp.page = UINT32_MAX;
                        rp.prev = UINT32_MAX;
                        rp.next = 0xfff00000u;
                } else {
                        /* after the count pass: keep's span "all free" */
                        rp.pass = 1;
                        rp.page = (uint32_t)(((uint64_t)keep - h->data_off) / BRD_POOL_PAGE) & ~15u;
                        rp.prev = (BRD_POOL_PAGE << 4) / 64;
                        rp.next = 0;
                }
                brd__pool_test_reclaim(p, reclaim_scribble, &rp);
                pid = t_fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        signal(SIGSEGV, SIG_DFL);       /* cmocka catches it in the parent's image */
                        signal(SIGBUS, SIG_DFL);
                        _exit(reclaim_child(p, keep, &rp));
                }
                assert_int_equal(t_wait_child(pid), 0);
                assert_int_equal(AO_load(&h->poisoned), 0);
                brd_pool_close(p);
        }

        /* A free block on a class stack in a "span" that would run past
         * the pool (the last page, its word scribbled to SPAN): reclaim
         * says -EBADMSG before it counts anything for that span. */
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        h = hdr_of(p);
        for (k = 31; k >= 0; k--)               /* the buddy allocator, dry */
                while (brd_pool_alloc(p, (size_t)BRD_POOL_PAGE << k) > 0)
                        ;
        {
                struct brd_pool_page *pg = (void *)((char *)h + h->pages_off);
                uint64_t g = (uint64_t)(h->npages - 1) * BRD_POOL_GRANS_PER_PAGE;

                assert_true(((h->npages - 1) & ~15u) + 16 > h->npages);      /* overhangs */
                AO_store(&pg[h->npages - 1].word, BRD_PG_WORD(BRD_PG_SPAN, 0));
                *state_of(p, g) = BRD_GS(0, BRD_GS_FREE);
                AO_store((AO_t *)brd_pool_ptr(p, h->data_off + g * BRD_POOL_GRAN), 0);
                AO_store(&h->cls[0].head, g + 1);
        }
        assert_int_equal(brd_pool_alloc(p, 128 * 1024), -EBADMSG);
        assert_int_equal(AO_load(&h->poisoned), 1);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* ---------------------------------------------------------- process tree */

#define TREE_PROCS 7
#define TREE_OPS 4000
#define TREE_KEEP 64

struct tree_row {
        uint64_t proc, seq, off, size, sum;
};

static uint64_t row_sum(const struct tree_row *r)
{
        return (r->proc * 0x9e3779b97f4a7c15ull) ^ (r->seq * 31) ^ (r->off << 1) ^ r->size;
}

/* One process's work: churn blocks, push one row per kept block.  Returns
 * 0 or an exit code (no cmocka in children). */
static int tree_work(struct brd_pool *p, uint64_t arr_off, unsigned id)
{
        struct { int64_t off; size_t size; } live[TREE_KEEP] = { { 0, 0 } };
        struct brd_array *a;
        uint64_t rnd = 1000 + id;
        unsigned i, k;

        if (brd_array_open(p, arr_off, &a) < 0)
                return 10;
        for (i = 0; i < TREE_OPS; i++) {
                size_t size = 64 + t_rand(&rnd) % 8000;
                int64_t off;

                k = i % TREE_KEEP;
                if (live[k].off) {
                        if (check(brd_pool_ptr(p, (uint64_t)live[k].off), live[k].size,
                                  (uint64_t)live[k].off * 7 + id))
                                return 11;
                        if (brd_pool_free(p, (uint64_t)live[k].off))
                                return 12;
                }
                off = brd_pool_alloc(p, size);
                if (off <= 0)
                        return 13;
                fill(brd_pool_ptr(p, (uint64_t)off), size, (uint64_t)off * 7 + id);
                live[k].off = off;
                live[k].size = size;
        }
        for (k = 0; k < TREE_KEEP; k++) {
                struct tree_row r = { id, k, (uint64_t)live[k].off, live[k].size, 0 };

                r.sum = row_sum(&r);
                if (brd_array_push(a, &r, 1))
                        return 14;
        }
        brd_array_close(a);
        return 0;
}

static void test_pool_process_tree(void **state)
{
        struct brd_array *arr[TREE_PROCS];
        uint64_t arr_off[TREE_PROCS], used = 0;
        struct tree_row rows[TREE_KEEP];
        struct brd_pool *p;
        struct t_leak l;
        pid_t kids[2];
        unsigned i, k;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(64 * MiB, 0, &p), 0);
        for (i = 0; i < TREE_PROCS; i++) {
                assert_int_equal(brd_array_create(p, sizeof(struct tree_row), TREE_KEEP, 0, 0, &arr[i]), 0);
                arr_off[i] = brd_array_offset(arr[i]);
                used += rounded(BRD_ARRAY_HDR_SIZE + TREE_KEEP * sizeof(struct tree_row));
        }
        /* root = 0, children 1 and 2, grandchildren 3,4 (of 1) and 5,6 (of 2). */
        for (i = 0; i < 2; i++) {
                kids[i] = t_fork();
                assert_true(kids[i] >= 0);
                if (kids[i] == 0) {
                        pid_t g[2];
                        int rc = 0, j;

                        for (j = 0; j < 2; j++) {
                                g[j] = t_fork();
                                if (g[j] < 0)
                                        _exit(20);
                                if (g[j] == 0) {
                                        rc = tree_work(p, arr_off[3 + 2 * i + j], 3 + 2 * i + j);
                                        brd_pool_close(p);
                                        _exit(rc);
                                }
                        }
                        rc = tree_work(p, arr_off[1 + i], 1 + i);
                        for (j = 0; j < 2; j++) {
                                int st;

                                while (waitpid(g[j], &st, 0) < 0)
                                        if (errno != EINTR)
                                                _exit(21);
                                if (!WIFEXITED(st) || WEXITSTATUS(st))
                                        rc = rc ? rc : 30 + (WIFEXITED(st) ? WEXITSTATUS(st) : 99);
                        }
                        brd_pool_close(p);
                        _exit(rc);
                }
        }
        assert_int_equal(tree_work(p, arr_off[0], 0), 0);
        for (i = 0; i < 2; i++)
                assert_int_equal(t_wait_child(kids[i]), 0);
        /* Every row of every process, and every block it kept, intact. */
        for (i = 0; i < TREE_PROCS; i++) {
                uint64_t first = 99;

                assert_int_equal(brd_array_read(arr[i], &first, rows, TREE_KEEP), TREE_KEEP);
                assert_int_equal(first, 0);
                for (k = 0; k < TREE_KEEP; k++) {
                        assert_int_equal(rows[k].proc, i);
                        assert_int_equal(rows[k].seq, k);
                        assert_int_equal(rows[k].sum, row_sum(&rows[k]));
                        assert_int_equal(check(brd_pool_ptr(p, rows[k].off), rows[k].size,
                                               rows[k].off * 7 + i), 0);
                        used += rounded(rows[k].size);
                }
        }
        /* The accounting is exact: arrays + kept blocks, nothing else. */
        stats_expect(p, used, TREE_PROCS + TREE_PROCS * TREE_KEEP);
        for (i = 0; i < TREE_PROCS; i++) {
                assert_int_equal(brd_array_read(arr[i], NULL, rows, TREE_KEEP), TREE_KEEP);
                for (k = 0; k < TREE_KEEP; k++)
                        assert_int_equal(brd_pool_free(p, rows[k].off), 0);
                assert_int_equal(brd_array_destroy(arr[i]), 0);
        }
        stats_expect(p, 0, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------------ fork while allocating */

/* Ownership table in its own shared mapping: one word per 64 B granule of
 * the pool; whoever allocates a block claims its word with a CAS 0 -> pid.
 * A failed claim is a block owned twice. */
struct owners {
        struct brd_pool *p;
        AO_t *own;
        uint64_t base, ngran;
        AO_t stop, twice, iters;
};

static int claim(struct owners *o, int64_t off, AO_t who)
{
        AO_t *w = &o->own[((uint64_t)off - o->base) / 64];

        return AO_compare_and_swap_full(w, 0, who) ? 0 : -1;
}

static void unclaim(struct owners *o, int64_t off)
{
        AO_store(&o->own[((uint64_t)off - o->base) / 64], 0);
}

static void *alloc_loop(void *arg)
{
        struct owners *o = arg;
        int64_t held[32] = { 0 };
        uint64_t rnd = 7;
        unsigned i = 0;

        while (!AO_load(&o->stop)) {
                unsigned k = i++ % 32;

                if (held[k]) {
                        unclaim(o, held[k]);
                        if (brd_pool_free(o->p, (uint64_t)held[k]))
                                AO_fetch_and_add1_full(&o->twice);
                }
                /* Mix small (lock-free) and large (locked) blocks. */
                held[k] = brd_pool_alloc(o->p, (t_rand(&rnd) & 1) ? 64 + k * 64 : 70000 + k * 4096);
                if (held[k] <= 0 || claim(o, held[k], (AO_t)getpid() << 1))
                        AO_fetch_and_add1_full(&o->twice);
                AO_fetch_and_add1_full(&o->iters);
        }
        for (i = 0; i < 32; i++)
                if (held[i] > 0) {
                        unclaim(o, held[i]);
                        brd_pool_free(o->p, (uint64_t)held[i]);
                }
        return NULL;
}

static void test_pool_fork_while_allocating(void **state)
{
        struct owners o = { 0 };
        struct brd_pool_hdr *h;
        pthread_t th;
        struct t_leak l;
        int round;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(32 * MiB, 0, &o.p), 0);
        h = hdr_of(o.p);
        o.base = h->data_off;
        o.ngran = (uint64_t)h->npages * BRD_POOL_GRANS_PER_PAGE;
        o.own = mmap(NULL, o.ngran * sizeof(AO_t), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(o.own != MAP_FAILED);
        assert_int_equal(pthread_create(&th, NULL, alloc_loop, &o), 0);
        for (round = 0; round < 20; round++) {
                uint64_t seen = AO_load(&o.iters);
                pid_t pid;

                /* Fork only while the other thread is busy allocating. */
                T_UNTIL(AO_load(&o.iters) >= seen + 50);
                pid = t_fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        /* Child: one thread.  Allocate a lot; every block must
                         * be unclaimed by anyone (parent thread or other). */
                        int64_t mine[256];
                        int i, j, rc = 0;

                        alarm(30);      /* a deadlock fails the test instead of hanging it */
                        for (j = 0; j < 20 && !rc; j++) {
                                for (i = 0; i < 256; i++) {
                                        mine[i] = brd_pool_alloc(o.p, (i & 1) ? 64 + i : 66000 + i * 64);
                                        if (mine[i] <= 0)
                                                rc = 2;
                                        else if (claim(&o, mine[i], (AO_t)getpid() << 1 | 1))
                                                rc = 3;
                                        if (rc)
                                                break;
                                }
                                for (int k = 0; k < i; k++) {
                                        unclaim(&o, mine[k]);
                                        if (brd_pool_free(o.p, (uint64_t)mine[k]))
                                                rc = rc ? rc : 4;
                                }
                        }
                        _exit(rc);
                }
                assert_int_equal(t_wait_child(pid), 0);
        }
        AO_store(&o.stop, 1);
        pthread_join(th, NULL);
        assert_int_equal(AO_load(&o.twice), 0);
        stats_expect(o.p, 0, 0);
        munmap(o.own, o.ngran * sizeof(AO_t));
        brd_pool_close(o.p);
        t_leak_end(&l);
}


/* Single-threaded parent: its free blocks sit in its private cache when it
 * forks.  The child must not hand out the same blocks from its copy. */
static void test_pool_fork_drops_inherited_cache(void **state)
{
        struct owners o = { 0 };
        struct brd_pool_hdr *h;
        AO_t *flag;
        struct t_leak l;
        int64_t mine[64];
        int i, bad = 0;
        pid_t pid;

        int64_t before[64];

        (void)state;
        /* The cache only exists while the process is single-threaded: this
         * test runs before any test starts a thread. */
        assert_true(__libc_single_threaded);
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(8 * MiB, 0, &o.p), 0);
        h = hdr_of(o.p);
        o.base = h->data_off;
        o.ngran = (uint64_t)h->npages * BRD_POOL_GRANS_PER_PAGE;
        o.own = mmap(NULL, o.ngran * sizeof(AO_t) + 4096, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(o.own != MAP_FAILED);
        flag = o.own + o.ngran;
        /* Fill this process's cache: allocate, then free (frees go to the cache). */
        for (i = 0; i < 64; i++)
                assert_true((mine[i] = brd_pool_alloc(o.p, 64)) > 0);
        for (i = 0; i < 64; i++)
                assert_int_equal(brd_pool_free(o.p, (uint64_t)mine[i]), 0);
        memcpy(before, mine, sizeof(before));
        stats_expect(o.p, 0, 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int64_t kid[64];
                int rc = 0;

                for (i = 0; i < 64 && !rc; i++) {
                        kid[i] = brd_pool_alloc(o.p, 64);
                        if (kid[i] <= 0)
                                rc = 1;
                        else if (claim(&o, kid[i], 2))
                                rc = 2;
                }
                AO_store_release(flag, 1);              /* holding them */
                while (AO_load_acquire(flag) != 2)       /* until the parent took its own */
                        brd__cpu_relax();
                for (i = 0; i < 64 && !rc; i++) {
                        unclaim(&o, kid[i]);
                        if (brd_pool_free(o.p, (uint64_t)kid[i]))
                                rc = 3;
                }
                brd_pool_close(o.p);
                _exit(rc);
        }
        T_UNTIL(AO_load_acquire(flag) == 1);
        /* The parent's cache hands its blocks out now: none may be the child's. */
        for (i = 0; i < 64; i++) {
                mine[i] = brd_pool_alloc(o.p, 64);
                assert_true(mine[i] > 0);
                if (claim(&o, mine[i], 4))
                        bad++;
        }
        AO_store_release(flag, 2);
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(bad, 0);
        /* The parent did use its cache: its newest frees came back first. */
        for (i = 0; i < 32; i++)
                assert_int_equal(mine[i], before[31 - i]);      /* 32 cached, LIFO */
        stats_expect(o.p, 64 * 64, 64);
        for (i = 0; i < 64; i++) {
                unclaim(&o, mine[i]);
                assert_int_equal(brd_pool_free(o.p, (uint64_t)mine[i]), 0);
                assert_int_equal(brd_pool_free(o.p, (uint64_t)mine[i]), -EINVAL);   /* cached: still caught */
        }
        stats_expect(o.p, 0, 0);
        munmap(o.own, o.ngran * sizeof(AO_t) + 4096);
        brd_pool_close(o.p);
        t_leak_end(&l);
}

/* -------------------------------------------- a cache's owner dies */

/* Allocate 64 B blocks until the pool is full (-ENOSPC), free them all:
 * how many there were. */
static long count_until_full(struct brd_pool *p)
{
        size_t cap = 1 << 16;
        int64_t *offs = malloc(cap * sizeof(*offs)), off;
        long n = 0, i;

        assert_non_null(offs);
        while ((off = brd_pool_alloc(p, 64)) > 0) {
                assert_true((size_t)n < cap);
                offs[n++] = off;
        }
        assert_int_equal(off, -ENOSPC);
        for (i = 0; i < n; i++)
                assert_int_equal(brd_pool_free(p, (uint64_t)offs[i]), 0);
        free(offs);
        return n;
}

/* A child that caches 32 blocks (alloc + free), then, once told, dies
 * the way @how says: 0 exit without brd_pool_close(), else that signal. */
static pid_t start_caching_child(struct brd_pool *p, int ready_w, int go_r, int how)
{
        pid_t pid = t_fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int64_t offs[32];
                char c;
                int i;

                for (i = 0; i < 32; i++)
                        if ((offs[i] = brd_pool_alloc(p, 64)) <= 0)
                                _exit(1);
                for (i = 0; i < 32; i++)
                        if (brd_pool_free(p, (uint64_t)offs[i]))
                                _exit(2);
                if (write(ready_w, "r", 1) != 1 || read(go_r, &c, 1) != 1)
                        _exit(3);
                if (how)
                        raise(how);
                _exit(0);       /* no brd_pool_close(): the slot stays claimed */
        }
        return pid;
}

/* A child that caches what it can of every size class (alloc up to 32
 * blocks of each, then free them), says so, and lives until told. */
static pid_t start_greedy_child(struct brd_pool *p, int ready_w, int go_r)
{
        pid_t pid = t_fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                int64_t offs[32];
                char ch;
                int c, i, n;

                for (c = BRD_POOL_NCLASSES - 1; c >= 0; c--) {
                        for (n = 0; n < 32; n++)
                                if ((offs[n] = brd_pool_alloc(p, (size_t)64 << c)) <= 0)
                                        break;
                        for (i = 0; i < n; i++)
                                if (brd_pool_free(p, (uint64_t)offs[i]))
                                        _exit(2);
                }
                if (write(ready_w, "r", 1) != 1 || read(go_r, &ch, 1) != 1)
                        _exit(3);
                brd_pool_close(p);
                _exit(0);
        }
        return pid;
}

/*
 * Live processes that cache all they can, in every size class, keep at
 * most half the pool from the others (in bytes of blocks): in a 1 MiB pool
 * with two such children alive, the blocks cached are at most half of it.
 */
static void test_pool_live_caches_bounded(void **state)
{
        struct brd_pool_slot *slots;
        struct brd_pool_stats st;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int ready[2], go[2], k;
        uint64_t cached = 0;
        unsigned c, i;
        pid_t pid[2];
        long n;
        char ch;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(brd_pool_stats(p, &st), 0);
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(go), 0);
        for (k = 0; k < 2; k++) {
                pid[k] = start_greedy_child(p, ready[1], go[0]);
                assert_int_equal(read(ready[0], &ch, 1), 1);
        }
        /* What the slots list: at most half (more than half without the
         * budget). */
        h = hdr_of(p);
        slots = (struct brd_pool_slot *)(void *)((char *)h + h->slots_off);
        for (i = 0; i < h->nslots; i++)
                for (c = 0; c < BRD_POOL_NCLASSES; c++)
                        cached += (uint64_t)slots[i].n[c] << (6 + c);
        assert_true(cached <= st.capacity / 2);
        /* Spans that hold a cached block serve only their class, so this
         * process gets less than the other half: 45% here (the layout is
         * deterministic), against 25% with caches bounded only per class. */
        n = count_until_full(p);
        assert_true(n * 64 >= (long)(st.capacity * 2 / 5));
        for (k = 0; k < 2; k++)
                assert_int_equal(write(go[1], "gg", 1), 1);
        for (k = 0; k < 2; k++)
                assert_int_equal(t_wait_child(pid[k]), 0);
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        assert_int_equal(brd_pool_stats(p, &st), 0);
        assert_int_equal(st.used, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/*
 * A process's cached blocks are listed in a slot in the pool: a living
 * owner's stay its own even when the pool runs full, a dead owner's (exit
 * without close, SIGKILL) come back before an alloc reports -ENOSPC.
 */
static void test_pool_dead_cache_reaped(void **state)
{
        int ready[2], go[2], how[2] = { 0, SIGKILL }, k;
        struct brd_pool_stats st;
        struct brd_pool *p;
        struct t_leak l;
        long full;
        char c;

        (void)state;
        assert_true(__libc_single_threaded);    /* the cache needs it */
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_true(hdr_of(p)->nslots >= 2);
        full = count_until_full(p);
        assert_true(full > 1000);
        for (k = 0; k < 2; k++) {
                pid_t pid;

                assert_int_equal(pipe(ready), 0);
                assert_int_equal(pipe(go), 0);
                pid = start_caching_child(p, ready[1], go[0], how[k]);
                assert_int_equal(read(ready[0], &c, 1), 1);
                /* Alive: its 32 blocks are its own, even at -ENOSPC. */
                assert_int_equal(count_until_full(p), full - 32);
                assert_int_equal(write(go[1], "g", 1), 1);
                assert_int_equal(t_wait_child(pid), how[k] ? 128 + how[k] : 0);
                /* Dead: they come back. */
                assert_int_equal(count_until_full(p), full);
                close(ready[0]);
                close(ready[1]);
                close(go[0]);
                close(go[1]);
        }
        assert_int_equal(brd_pool_stats(p, &st), 0);
        assert_int_equal(st.used, 0);
        assert_int_equal(st.blocks, 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------- a cancelled lock holder */

struct cancelled_alloc {
        struct brd_pool *p;
        int64_t ret;
        bool returned;
};

/* An alloc by a thread whose cancellation is pending: a cancellation point
 * reached under the pool's lock would end the thread holding it. */
static void *cancelled_alloc(void *arg)
{
        struct cancelled_alloc *a = arg;

        pthread_cancel(pthread_self());
        a->ret = brd_pool_alloc(a->p, (MiB / 2));
        a->returned = true;
        pthread_testcancel();
        return NULL;
}

/*
 * Under its lock an alloc that meets -ENOSPC looks at the other processes'
 * cache slots, reading /proc for a live one (a caching child here).  A
 * thread cancelled before it started still returns from it (-ENOSPC: the
 * pool holds a 512 KiB block of 1 MiB), and leaves the lock free: the
 * next locked alloc succeeds.  Before, the /proc read was a cancellation
 * point: the thread ended there, holding the lock in its live process's
 * name, and the next alloc answered -ETIMEDOUT.  The thread runs in a
 * child of its own (this process stays single-threaded for its cache).
 */
static void test_pool_cancelled_thread_frees_lock(void **state)
{
        int ready[2], go[2];
        struct brd_pool *p;
        struct t_leak l;
        pid_t cacher, pid;
        char c;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(go), 0);
        cacher = start_caching_child(p, ready[1], go[0], 0);
        assert_int_equal(read(ready[0], &c, 1), 1);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct cancelled_alloc a = { .p = p };
                int64_t big = brd_pool_alloc(p, (MiB / 2)), again;
                pthread_t t;
                void *res;

                if (big <= 0)
                        _exit(1);
                if (pthread_create(&t, NULL, cancelled_alloc, &a) || pthread_join(t, &res))
                        _exit(2);
                if (res != PTHREAD_CANCELED || !a.returned)
                        _exit(3);       /* cancelled inside the alloc */
                if (a.ret != -ENOSPC)
                        _exit(4);
                if (brd_pool_free(p, (uint64_t)big))
                        _exit(5);
                again = brd_pool_alloc(p, (MiB / 2));
                if (again <= 0)
                        _exit(again == -ETIMEDOUT ? 6 : 7);
                _exit(brd_pool_free(p, (uint64_t)again) ? 8 : 0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(write(go[1], "g", 1), 1);
        assert_int_equal(t_wait_child(cacher), 0);
        close(ready[0]);
        close(ready[1]);
        close(go[0]);
        close(go[1]);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* Large blocks of 128 KiB that fit in @p, taken and given back. */
static int large_fit(struct brd_pool *p)
{
        int64_t off[64];
        int n = 0;

        while (n < 64 && (off[n] = brd_pool_alloc(p, 128 * 1024)) > 0)
                n++;
        for (int i = 0; i < n; i++)
                if (brd_pool_free(p, (uint64_t)off[i]))
                        return -1;
        return n;
}

static void *nothing(void *arg)
{
        return arg;
}

/*
 * A process caches small blocks while it has one thread, starts a thread,
 * then makes only large calls: an alloc that finds the pool full gives that
 * cache back first (it answered -ENOSPC with up to half the pool cached).
 * In a child: the process must be single-threaded when it caches (this
 * test runs first, before any of this binary's threads).
 */
static void test_pool_cache_given_back_once_threaded(void **state)
{
        pid_t pid;

        (void)state;
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct brd_pool *p;
                int64_t off[2048];
                int n = 0, whole, after;
                pthread_t t;

                if (!__libc_single_threaded)
                        _exit(9);
                if (brd_pool_create(MiB, 0, &p))
                        _exit(1);
                whole = large_fit(p);
                if (whole < 2)
                        _exit(2);
                while (n < 2048 && (off[n] = brd_pool_alloc(p, 8192)) > 0)
                        n++;
                for (int i = 0; i < n; i++)
                        if (brd_pool_free(p, (uint64_t)off[i]))
                                _exit(3);
                if (pthread_create(&t, NULL, nothing, NULL) || pthread_join(t, NULL))
                        _exit(4);
                after = large_fit(p);
                brd_pool_close(p);
                _exit(after == whole ? 0 : 5);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

/* -------------------------------------------------- lock holder killed */

static void check_pool_whole(struct brd_pool *p, uint64_t maxblock)
{
        struct brd_pool_stats s;
        int64_t off;

        assert_int_equal(brd_pool_stats(p, &s), 0);
        assert_int_equal(s.used, 0);
        assert_int_equal(s.blocks, 0);
        assert_int_equal(s.largest_free, maxblock);
        off = brd_pool_alloc(p, maxblock);
        assert_true(off > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
}

/* A child dies holding the lock at each stage of a locked operation, and is
 * reaped or left a zombie: the next locker (its parent, which has not
 * reaped it yet, in the zombie case) repairs at once. */
static void test_pool_lock_holder_sigkilled(void **state)
{
        struct brd_pool_stats s;
        struct brd_pool *p;
        struct t_leak l;
        int stage;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(8 * MiB, 0, &p), 0);
        assert_int_equal(brd_pool_stats(p, &s), 0);
        for (stage = 0; stage <= 7; stage++) {
                uint64_t repairs = hdr_of(p)->repairs;
                bool zombie = stage & 4;
                siginfo_t si;
                pid_t pid = t_fork();

                assert_true(pid >= 0);
                if (pid == 0) {
                        if (brd__pool_test_die_locked(p, stage & 3) < 0)
                                _exit(1);
                        raise(SIGKILL);
                        _exit(2);
                }
                /* Reaped first, or left a zombie (dead, not reaped: its
                 * parent, this process, is the one that next locks). */
                if (zombie) {
                        memset(&si, 0, sizeof(si));
                        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
                        assert_int_equal(si.si_code, CLD_KILLED);
                } else {
                        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
                }
                /* It died holding the lock: its word is still there. */
                assert_int_equal((uint32_t)AO_load(&hdr_of(p)->lock), (uint32_t)pid);
                /* The next locker repairs; nothing is lost, no deadlock. */
                check_pool_whole(p, s.largest_free);
                assert_int_equal(hdr_of(p)->repairs, repairs + 1);
                assert_int_equal(AO_load(&hdr_of(p)->lock), 0);
                if (zombie)
                        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        }
        brd_pool_close(p);
        t_leak_end(&l);
}

/* Run @what (a locked call) with the lock held by someone alive: it must
 * give up after about 2 s with -ETIMEDOUT and leave the holder's word alone
 * (it may add the waiters bit, having slept on it). */
#define ASSERT_TIMES_OUT(h, word, what)                                         \
        do {                                                                    \
                int64_t t0_ = t_now_ns(), r_ = (what), dt_ = t_now_ns() - t0_;  \
                                                                                \
                assert_int_equal(r_, -ETIMEDOUT);                               \
                assert_true(dt_ >= 1900000000ll && dt_ <= 10000000000ll);      \
                assert_int_equal(AO_load(&(h)->lock) & ~(AO_t)BRD__OWNER_WAITERS, \
                                 (word));                                       \
        } while (0)

/* A lock word naming a live process that never lets go (a forked child
 * waiting on a pipe, then this very process): every locked call returns
 * -ETIMEDOUT after about 2 s having changed nothing, and once the word is
 * cleared the pool works again. */
static void test_pool_lock_held_by_live_peer(void **state)
{
        struct brd_pool_stats s0, s1;
        struct brd_pool_hdr *h;
        struct brd_pool *p;
        struct t_leak l;
        int64_t big, small;
        AO_t word;
        int go[2];
        pid_t pid;
        char c;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(4 * MiB, 0, &p), 0);
        h = hdr_of(p);
        big = brd_pool_alloc(p, 200000);
        small = brd_pool_alloc(p, 64);
        assert_true(big > 0 && small > 0);
        assert_int_equal(brd_pool_stats(p, &s0), 0);
        assert_int_equal(pipe(go), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(go[1]);
                _exit(read(go[0], &c, 1) == 0 ? 0 : 1);         /* EOF: done */
        }
        close(go[0]);
        word = brd__owner_word_of(pid);
        assert_true((word >> 32) != 0);                         /* start time known */
        AO_store(&h->lock, word);
        ASSERT_TIMES_OUT(h, word, brd_pool_alloc(p, 200000));
        ASSERT_TIMES_OUT(h, word, brd_pool_free(p, (uint64_t)big));
        /* Our own word: another thread of ours would hold it.  Waited for. */
        word = brd__owner_word_of(getpid());
        AO_store(&h->lock, word);
        ASSERT_TIMES_OUT(h, word, brd_pool_stats(p, &s1));
        AO_store(&h->lock, 0);
        /* Nothing changed: same accounting, the large block still live. */
        assert_int_equal(AO_load(&h->poisoned), 0);
        assert_int_equal(brd_pool_stats(p, &s1), 0);
        assert_memory_equal(&s0, &s1, sizeof(s0));
        assert_int_equal(brd_pool_free(p, (uint64_t)big), 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)small), 0);
        big = brd_pool_alloc(p, 200000);
        assert_true(big > 0);
        assert_int_equal(brd_pool_free(p, (uint64_t)big), 0);
        assert_int_equal(AO_load(&h->lock), 0);
        close(go[1]);
        assert_int_equal(t_wait_child(pid), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* A lock word whose pid no process can have: corrupt, -EBADMSG at once
 * (no wait), poisoned. */
static void test_pool_lock_word_impossible(void **state)
{
        static const AO_t words[] = { 1ull << 32, (1ull << 22) + 1, 0xffffffffull, ~0ull,
                                      BRD__OWNER_WAITERS };
        struct brd_pool_stats s;
        struct brd_pool *p;
        struct t_leak l;
        unsigned k;

        (void)state;
        t_leak_begin(&l);
        for (k = 0; k < BRD_ARRAY_SIZE(words); k++) {
                int64_t t0;

                assert_int_equal(brd_pool_create(MiB, 0, &p), 0);
                AO_store(&hdr_of(p)->lock, words[k]);
                t0 = t_now_ns();
                assert_int_equal(brd_pool_alloc(p, 200000), -EBADMSG);
                assert_true(t_now_ns() - t0 < 1000000000ll);
                assert_int_equal(AO_load(&hdr_of(p)->poisoned), 1);
                assert_int_equal(brd_pool_alloc(p, 64), -EBADMSG);
                assert_int_equal(brd_pool_stats(p, &s), -EBADMSG);
                brd_pool_close(p);
        }
        t_leak_end(&l);
}

/*
 * The owner lock's sleepers.  A page shared by the processes below: the lock
 * word, a counter only the holder touches, and a flag set by a holder that
 * found the waiters bit.
 */
struct owner_page {
        AO_t lock;
        AO_t count;     /* plain increments under the lock */
        AO_t saw_waiters;
};

/*
 * Take the lock and wait until a waiter has announced itself in the word
 * ('w'), or for 1 s ('n': on a loaded machine the waiter may still be
 * yielding, and its own bound is 2 s).  The waiter bit means: a process
 * gave up spinning and sleeps, or is about to.  0 on a failed lock.
 */
static char owner_hold_until_waiter(struct owner_page *pg)
{
        int64_t end = t_now_ns() + 1000000000ll;

        if (brd__owner_lock(&pg->lock) != 0)
                return 0;
        while (!(AO_load(&pg->lock) & BRD__OWNER_WAITERS)) {
                if (t_now_ns() > end)
                        return 'n';
                sched_yield();
        }
        return 'w';
}

enum { SLEEPERS_PROCS = 3, SLEEPERS_ROUNDS = 2000 };

/* One round of test_owner_lock_sleepers_exclude(). */
static void sleepers_exclude_round(struct owner_page *pg)
{
        pid_t pid[SLEEPERS_PROCS];
        int k;

        AO_store(&pg->count, 0);
        for (k = 0; k < SLEEPERS_PROCS; k++) {
                pid[k] = t_fork();
                assert_true(pid[k] >= 0);
                if (pid[k] == 0) {
                        for (int i = 0; i < SLEEPERS_ROUNDS; i++) {
                                AO_t c;

                                if (brd__owner_lock(&pg->lock) != 0)
                                        _exit(1);
                                if (AO_load(&pg->lock) & BRD__OWNER_WAITERS)
                                        AO_store(&pg->saw_waiters, 1);
                                c = AO_load(&pg->count);
                                if (i % 50 == 0) {      /* hold ~2 ms: others sleep */
                                        int64_t end = t_now_ns() + 2000000;

                                        while (t_now_ns() < end)
                                                sched_yield();
                                }
                                AO_store(&pg->count, c + 1);
                                brd__owner_unlock(&pg->lock);
                        }
                        _exit(0);
                }
        }
        for (k = 0; k < SLEEPERS_PROCS; k++)
                assert_int_equal(t_wait_child(pid[k]), 0);
        assert_int_equal(AO_load(&pg->count), SLEEPERS_PROCS * SLEEPERS_ROUNDS);
        assert_int_equal(AO_load(&pg->lock), 0);
}

/* Processes that take turns, holding the lock now and then long enough for
 * the others to fall asleep on it: every increment counted, the word free
 * at the end; and a holder saw the waiters bit (sleepers, not only
 * spinners), in one of five rounds (a loaded machine may keep every waiter
 * yielding in one). */
static void test_owner_lock_sleepers_exclude(void **state)
{
        struct owner_page *pg = t_shared_page();
        int round;

        (void)state;
        for (round = 0; round < 5 && !AO_load(&pg->saw_waiters); round++)
                sleepers_exclude_round(pg);
        print_message("  a holder saw the waiters bit after %d round(s)\n", round);
        assert_true(AO_load(&pg->saw_waiters));
        t_shared_page_free(pg);
}

/* Pin the calling process to CPU @cpu: 0, or -errno. */
static int pin_to(int cpu)
{
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/*
 * A waiter that shares its CPU with a CPU-bound process, each yield then
 * lasting a scheduler slice, still goes to sleep on the lock (the waiters
 * bit) within 100 ms (t_tries()): its yield phase is timed.  Counted, its
 * 960 yields took seconds there: it never slept before its 2 s deadline,
 * and its looks for a dead holder waited as long.
 */
static bool yield_phase_timed_try(void)
{
        struct owner_page *pg = t_shared_page();
        pid_t hog = -1, waiter = -1;
        int64_t t0, dt = -1;
        int rc_waiter = -1, rc_hog = -1, locked, pinned;
        cpu_set_t mask;

        assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
        pinned = pin_to(1);                     /* keep off the hog's CPU */
        locked = brd__owner_lock(&pg->lock);
        if (pinned < 0 || locked != 0)
                goto out;
        hog = t_fork();
        if (hog == 0) {
                if (pin_to(0) < 0)
                        _exit(1);
                for (;;)
                        AO_store(&pg->count, AO_load(&pg->count) + 1);
        }
        waiter = t_fork();
        if (waiter == 0) {
                if (pin_to(0) < 0)
                        _exit(1);
                if (brd__owner_lock(&pg->lock) != 0)
                        _exit(2);
                brd__owner_unlock(&pg->lock);
                _exit(0);
        }
        t0 = t_now_ms();
        while (hog > 0 && waiter > 0 && t_now_ms() - t0 < 3000) {
                if (AO_load(&pg->lock) & BRD__OWNER_WAITERS) {
                        dt = t_now_ms() - t0;
                        break;
                }
                sched_yield();
        }
        brd__owner_unlock(&pg->lock);
out:
        /* Everything undone before any check: a failed one must leave no
         * hog spinning, nor this process pinned, for the tests after. */
        if (waiter > 0)
                rc_waiter = t_wait_child(waiter);
        if (hog > 0) {
                kill(hog, SIGKILL);
                rc_hog = t_wait_child(hog);
        }
        (void)sched_setaffinity(0, sizeof(mask), &mask);
        t_shared_page_free(pg);
        assert_int_equal(pinned, 0);
        assert_int_equal(locked, 0);
        assert_int_equal(rc_waiter, 0);
        assert_int_equal(rc_hog, 128 + SIGKILL);
        if (dt < 0 || dt > 100) {
                print_message("the waiter slept after %lld ms\n", (long long)dt);
                return false;
        }
        return true;
}

static void test_owner_lock_yield_phase_timed(void **state)
{
        cpu_set_t mask;

        (void)state;
        assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
        if (!CPU_ISSET(0, &mask) || !CPU_ISSET(1, &mask))
                skip();                 /* needs CPUs 0 and 1 */
        t_tries(yield_phase_timed_try, "owner_lock_yield_phase_timed");
}

/* One try of test_owner_lock_sleeper_handoff(): what the holder saw. */
static char sleeper_handoff_try(struct owner_page *pg, int die)
{
        pid_t holder, waiter;
        int go[2], st;
        char c = 0;

        assert_int_equal(pipe(go), 0);
        holder = t_fork();
        assert_true(holder >= 0);
        if (holder == 0) {
                close(go[0]);
                c = owner_hold_until_waiter(pg);
                if (!c)
                        _exit(1);
                /* Say what we saw, then let go or be killed holding. */
                if (write(go[1], &c, 1) != 1)
                        _exit(2);
                if (die)
                        pause();
                AO_store(&pg->count, 7);
                brd__owner_unlock(&pg->lock);
                _exit(0);
        }
        close(go[1]);
        /* The holder has the lock before the waiter starts. */
        T_UNTIL(AO_load(&pg->lock) != 0);
        waiter = t_fork();
        assert_true(waiter >= 0);
        if (waiter == 0) {
                int r = brd__owner_lock(&pg->lock);
                AO_t w = AO_load(&pg->lock), me = 0;
                int code = brd__owner_word(&me) == 0 && w == (me | BRD__OWNER_WAITERS) ? 0 : 6;

                if (r != die)
                        _exit(10 + (r < 0 ? -r : r));
                if ((w & ~(AO_t)BRD__OWNER_WAITERS) != me)
                        _exit(3);
                if (!die && AO_load(&pg->count) != 7)
                        _exit(4);       /* the holder's store is visible */
                brd__owner_unlock(&pg->lock);
                _exit(AO_load(&pg->lock) == 0 ? code : 5);
        }
        assert_int_equal(read(go[0], &c, 1), 1);
        close(go[0]);
        if (die) {
                assert_int_equal(kill(holder, SIGKILL), 0);
                assert_int_equal(t_wait_child(holder), 128 + SIGKILL);
        } else {
                assert_int_equal(t_wait_child(holder), 0);
        }
        st = t_wait_child(waiter);
        if (c == 'w')
                assert_int_equal(st, 0);
        else
                assert_true(st == 0 || st == 6);
        print_message("  %s holder: the waiter %s\n", die ? "dead" : "live",
                      st == 0 ? "slept" : "never slept (loaded machine)");
        assert_int_equal(AO_load(&pg->lock), 0);
        AO_store(&pg->count, 0);
        return c;
}

/*
 * A waiter asleep on a live holder gets the lock from the holder's unlock,
 * and takes it with the waiters bit (more sleepers may follow); asleep on
 * a holder that dies (SIGKILL, reaped), it takes the lock over (1), the bit
 * kept for whoever else sleeps.  The waiter reports by exit code only: 0
 * having slept (its word carries the bit), 6 without (the holder let go
 * before it slept: only when the holder reported 'n').  Each case until
 * the waiter slept, in one of five tries (on a loaded machine it may still
 * be yielding when the holder lets go).
 */
static void test_owner_lock_sleeper_handoff(void **state)
{
        struct owner_page *pg = t_shared_page();
        int die, try;
        char c;

        (void)state;
        for (die = 0; die <= 1; die++) {
                c = 0;
                for (try = 0; try < 5 && c != 'w'; try++)
                        c = sleeper_handoff_try(pg, die);
                assert_int_equal(c, 'w');
        }
        t_shared_page_free(pg);
}

/* A child churning large (locked) blocks is SIGKILLed at arbitrary points. */
static void test_pool_killed_mid_operation(void **state)
{
        struct brd_pool_stats s;
        struct brd_pool *p;
        AO_t *progress;
        struct t_leak l;
        int round;
        int64_t off;

        (void)state;
        t_leak_begin(&l);
        progress = t_shared_page();
        assert_int_equal(brd_pool_create(16 * MiB, 0, &p), 0);
        for (round = 0; round < 30; round++) {
                pid_t pid;

                AO_store(progress, 0);
                pid = t_fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        uint64_t rnd = (uint64_t)round + 1;

                        for (;;) {
                                int64_t a = brd_pool_alloc(p, 70000 + t_rand(&rnd) % 500000);
                                int64_t b = brd_pool_alloc(p, 64 + t_rand(&rnd) % 60000);

                                if (a > 0)
                                        brd_pool_free(p, (uint64_t)a);
                                if (b > 0)
                                        brd_pool_free(p, (uint64_t)b);
                                AO_fetch_and_add1_full(progress);
                        }
                }
                /* Kill it at a point that varies round to round. */
                T_UNTIL(AO_load(progress) >= 100 + (AO_t)round * 37);
                kill(pid, SIGKILL);
                assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
                /* Still serves, still walks, no deadlock. */
                off = brd_pool_alloc(p, 200000);
                assert_true(off > 0);
                assert_int_equal(brd_pool_free(p, (uint64_t)off), 0);
                assert_int_equal(brd_pool_stats(p, &s), 0);
                /* The dead held at most two blocks at any instant. */
                assert_true(s.blocks <= 2 * (uint64_t)(round + 1));
        }
        brd_pool_close(p);
        t_shared_page_free(progress);
        t_leak_end(&l);
}

static void test_pool_nofork(void **state)
{
        struct brd_pool *p;
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, BRD_POOL_NOFORK, &p), 0);
        assert_true(brd_pool_alloc(p, 64) > 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int rc = 0;

                if (brd_pool_alloc(p, 64) != -EBADF)
                        rc = 1;
                if (brd_pool_ptr(p, 8192))
                        rc = 2;
                brd_pool_close(p);
                _exit(rc);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_pool_close(p);
        t_leak_end(&l);
}

/* What the grandchild in another pid namespace gets (test_pool_other_pidns). */
struct pidns_case {
        struct brd_pool *p;
        struct brd_handle h;            /* the pool, exported */
        struct brd_array *a;
        int64_t small, large;           /* live blocks, their bytes a pattern */
        uint64_t rows[4];               /* the array's contents, first at 0 */
};

/* Exit code = the number of the first check that failed. */
static int pidns_child(void *arg)
{
        struct pidns_case *c = arg;
        struct brd_pool *q = NULL;
        struct brd_pool_stats ps;
        struct brd_array *b = NULL;
        uint64_t got[8], first = 99, row = 7;
        const unsigned char *m;
        int fds = t_fd_count(), i;

        if (getpid() != 1)
                return 1;               /* not in a new namespace after all */
        if (brd_pool_attach(&c->h, &q) != -EXDEV || q)
                return 2;
        if (t_fd_count() != fds)
                return 3;               /* the failed attach left nothing open */
        /* Inherited through fork(): every call that takes the lock refuses. */
        if (brd_pool_alloc(c->p, 64) != -EXDEV || brd_pool_alloc(c->p, 64 * 1024) != -EXDEV)
                return 4;
        if (brd_pool_free(c->p, (uint64_t)c->small) != -EXDEV ||
            brd_pool_free(c->p, (uint64_t)c->large) != -EXDEV)
                return 5;
        if (brd_pool_stats(c->p, &ps) != -EXDEV)
                return 6;
        if (brd_array_push(c->a, &row, 1) != -EXDEV || brd_array_prepend(c->a, &row, 1) != -EXDEV)
                return 7;
        /* Reading takes no lock: the memory is as the parent left it. */
        m = brd_pool_ptr(c->p, (uint64_t)c->large);
        for (i = 0; m && i < 64 * 1024; i++)
                if (m[i] != (unsigned char)(i * 7))
                        return 8;
        if (!m)
                return 8;
        if (brd_array_read(c->a, &first, got, 8) != 4 || first != 0 ||
            memcmp(got, c->rows, sizeof(c->rows)))
                return 9;
        if (brd_array_open(c->p, brd_array_offset(c->a), &b) != 0)
                return 10;
        if (brd_array_destroy(b) != -EXDEV)     /* closes only this view */
                return 11;
        return 0;
}

/*
 * A pool (and its array) reaches a process of another pid namespace: by a
 * handle (attach) or through fork() after unshare(CLONE_NEWPID).  There the
 * lock words' pids name other processes (pid 1 is that namespace's init), so
 * every call that takes a lock answers -EXDEV and changes nothing; reads
 * work.  Skipped without the privilege to make a pid namespace.
 */
static void test_pool_other_pidns(void **state)
{
        struct pidns_case c;
        struct brd_pool_stats before, after;
        uint64_t got[8], first;
        unsigned char *m;
        struct t_leak l;
        int i, rc;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &c.p), 0);
        c.small = brd_pool_alloc(c.p, 64);
        c.large = brd_pool_alloc(c.p, 64 * 1024);
        assert_true(c.small > 0 && c.large > 0);
        m = brd_pool_ptr(c.p, (uint64_t)c.large);
        for (i = 0; i < 64 * 1024; i++)
                m[i] = (unsigned char)(i * 7);
        assert_int_equal(brd_array_create(c.p, sizeof(uint64_t), 16, 0, 0, &c.a), 0);
        for (i = 0; i < 4; i++)
                c.rows[i] = 0x1000 + (uint64_t)i;
        assert_int_equal(brd_array_push(c.a, c.rows, 4), 0);
        assert_int_equal(brd_pool_export(c.p, &c.h), 0);
        assert_int_equal(brd_pool_stats(c.p, &before), 0);
        rc = t_run_in_new_pidns(pidns_child, &c);
        brd_handle_close(&c.h);
        if (rc == T_EXIT_SKIP) {
                brd_array_close(c.a);
                brd_pool_close(c.p);
                skip();
        }
        assert_int_equal(rc, 0);
        /* Nothing changed here, and all of it still works. */
        assert_int_equal(brd_pool_stats(c.p, &after), 0);
        assert_int_equal(after.blocks, before.blocks);
        assert_int_equal(after.used, before.used);
        assert_int_equal(brd_array_read(c.a, &first, got, 8), 4);
        assert_int_equal(first, 0);
        assert_memory_equal(got, c.rows, sizeof(c.rows));
        assert_int_equal(brd_array_destroy(c.a), 0);
        assert_int_equal(brd_pool_free(c.p, (uint64_t)c.small), 0);
        assert_int_equal(brd_pool_free(c.p, (uint64_t)c.large), 0);
        brd_pool_close(c.p);
        t_leak_end(&l);
}

/* ------------------------------------- a process blind to its namespace */

static struct brd_pool *blind_pool;

/* In a forked child: /proc hidden (a tmpfs over it, in a mount namespace
 * of its own) and pidfd_open() refused (as before Linux 6.11 no pidfd
 * says the namespace): the child cannot tell its pid namespace. */
static int blind_child(void)
{
        struct sock_filter f[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("blind", "/proc", "tmpfs", 0, NULL) < 0)
                return T_EXIT_SKIP;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return T_EXIT_SKIP;
        if (brd__pid_ns() != 0)
                return 2;               /* still told: the premise failed */
        return brd_pool_alloc(blind_pool, 4096) == -EXDEV ? 0 : 1;
}

/*
 * A process that cannot tell its pid namespace is refused (-EXDEV) by a
 * pool whose creator could: nothing proves the lock's pids its own, and a
 * holder's pid that kill() finds nowhere was taken for a dead one (a live
 * lock taken over, the lists rebuilt under it).  It allocated before.
 */
static void test_pool_refuses_blind_namespace(void **state)
{
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_pool_create(MiB, 0, &blind_pool), 0);
        assert_true(brd__pid_ns() != 0);
        t_run_forked(blind_child);
        brd_pool_close(blind_pool);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                /* First: its child must start single-threaded. */
                cmocka_unit_test(test_pool_cache_given_back_once_threaded),
                cmocka_unit_test(test_pool_create_bad_args),
                cmocka_unit_test(test_pool_alloc_free_accounting),
                cmocka_unit_test(test_pool_double_and_foreign_free),
                cmocka_unit_test(test_pool_exhaustion_and_reuse),
                cmocka_unit_test(test_pool_churn_steady_state),
                cmocka_unit_test(test_pool_export_attach_validation),
                cmocka_unit_test(test_pool_attach_reads_header_once),
                cmocka_unit_test(test_pool_attach_header_flipping),
                cmocka_unit_test(test_pool_hostile_state),
                cmocka_unit_test(test_pool_poison_latched),
                cmocka_unit_test(test_pool_hostile_slots),
                cmocka_unit_test(test_pool_slot_pid_reused_unstamped),
                cmocka_unit_test(test_pool_slot_waits_for_start_time),
                cmocka_unit_test(test_pool_child_reaps_dead_parents_slot),
                cmocka_unit_test(test_pool_slot_claimer_killed),
                cmocka_unit_test(test_pool_live_caches_bounded),
                cmocka_unit_test(test_pool_hostile_block_starts),
                cmocka_unit_test(test_pool_reclaim_scratch_is_private),
                cmocka_unit_test_setup_teardown(test_pool_reclaimer_killed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_reclaimer_killed_detaching, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_carver_killed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_limbo_repairer_killed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_limbo_cycle, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_span_release_race, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_pool_cache_drain_killed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_pool_process_tree),
                cmocka_unit_test(test_pool_fork_drops_inherited_cache),
                cmocka_unit_test(test_pool_dead_cache_reaped),
                cmocka_unit_test(test_pool_lock_holder_sigkilled),
                cmocka_unit_test(test_pool_lock_held_by_live_peer),
                cmocka_unit_test(test_pool_lock_word_impossible),
                cmocka_unit_test(test_owner_lock_sleepers_exclude),
                cmocka_unit_test(test_owner_lock_sleeper_handoff),
                cmocka_unit_test(test_owner_lock_yield_phase_timed),
                cmocka_unit_test(test_pool_killed_mid_operation),
                cmocka_unit_test(test_pool_nofork),
                cmocka_unit_test(test_pool_other_pidns),
                /* These start threads: from here on the process-local cache is bypassed. */
                cmocka_unit_test(test_pool_cancelled_thread_frees_lock),
                cmocka_unit_test(test_pool_racing_double_free),
                cmocka_unit_test(test_pool_fork_while_allocating),
                cmocka_unit_test(test_pool_refuses_blind_namespace),
        };

        return cmocka_run_group_tests_name("shm-pool", tests, NULL, NULL);
}
