/* SPDX-License-Identifier: MIT */
/*
 * fuzz-array: a shared array (shm/array.c) in a pool, with a peer
 * scribbling on its header (indices, geometry, magic, the writer lock) and
 * on the pool's page word and granule state for its block.  The input picks
 * row size, capacity, start position and flags (RING or not), then runs up
 * to 200 operations: push, prepend, read, a second open (at the array's
 * offset, near it, or anywhere) and scribbles.
 *
 * Invariants: every call returns one of its documented values; a read
 * never returns bytes from outside the array's rows (the rest of the data
 * area is filled with POISON, which no row holds); an open that succeeds is
 * at the array's offset and its geometry fits the block; while nothing was
 * scribbled, results, indices and row contents match a model.  ASan+UBSan
 * and guard.c catch accesses outside the segment; no fd leaks.
 *
 * The writer lock gets only values a waiter decides at once (see
 * fuzz_lock_word() in fuzz-util.c: a live pid would make every push wait
 * out its 2 s bound).
 *
 * Run: scripts/fuzz.sh array [SECONDS]
 */
#include <errno.h>
#include <string.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"
#include "fuzz.h"

#define POISON 0xEE

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        fuzz_dead_pid();
        return 0;
}

struct slotm {
        uint64_t pos;
        uint32_t k;
        bool set;
};

struct st {
        struct brd_pool *pool;
        struct brd_array *a, *b, *cur;
        unsigned char *base;
        struct brd_array_hdr *h;
        uint64_t off, bsz, rs, cap;
        unsigned flags;
        bool scribbled;
        bool pool_scribbled; /* the block's page word or state byte too */
        bool noscribble; /* a run without scribbles: every invariant is checked */
        /* model (valid while !scribbled) */
        uint64_t f, l;
        struct slotm *m;
        uint32_t wk;
};

static unsigned char rowbyte(uint64_t pos, uint32_t k, uint64_t i)
{
        return (unsigned char)((pos * 31 + k * 7 + i) % 0xE0); /* never POISON */
}

static unsigned char *mkrows(struct st *s, uint64_t pos0, uint64_t n, uint32_t k)
{
        unsigned char *buf = malloc(n * s->rs + 1);

        for (uint64_t j = 0; j < n; j++)
                for (uint64_t i = 0; i < s->rs; i++)
                        buf[j * s->rs + i] = rowbyte(pos0 + j, k, i);
        return buf;
}

static void model_put(struct st *s, uint64_t pos0, uint64_t n, uint32_t k)
{
        for (uint64_t j = 0; j < n; j++)
                s->m[(pos0 + j) % s->cap] = (struct slotm){ pos0 + j, k, true };
}

static void do_write(struct st *s, uint64_t n, bool prepend)
{
        uint32_t k = ++s->wk;
        uint64_t pos0;
        unsigned char *rows;
        int r, want;

        /* the rows' content is keyed by the positions they should land at */
        pos0 = prepend ? s->f - (n <= s->f ? n : 0) : s->l;
        rows = mkrows(s, pos0, n ? n : 1, k);
        r = prepend ? brd_array_prepend(s->cur, rows, n) : brd_array_push(s->cur, rows, n);
        if (r != 0 && r != -ENOSPC && r != -EINVAL && r != -EBADMSG && r != -EBADF)
                FUZZ_FAIL("%s(%llu) = %d", prepend ? "prepend" : "push", (unsigned long long)n, r);
        if (!s->scribbled) {
                if (!prepend) {
                        if (n > s->cap)
                                want = -ENOSPC;
                        else if (!(s->flags & BRD_ARRAY_RING) && n > s->cap - s->l)
                                want = -ENOSPC;
                        else
                                want = 0;
                } else {
                        want = (n > s->f || n > s->cap - (s->l - s->f)) ? -ENOSPC : 0;
                }
                if (r != want)
                        FUZZ_FAIL("%s(%llu) = %d, expected %d (f %llu l %llu cap %llu)",
                                  prepend ? "prepend" : "push", (unsigned long long)n, r, want,
                                  (unsigned long long)s->f, (unsigned long long)s->l,
                                  (unsigned long long)s->cap);
                if (r == 0 && n) {
                        model_put(s, pos0, n, k);
                        if (prepend) {
                                s->f -= n;
                        } else {
                                s->l += n;
                                if (s->l - s->f > s->cap)
                                        s->f = s->l - s->cap;
                        }
                }
                if (brd_array_first(s->cur) != s->f || brd_array_last(s->cur) != s->l)
                        FUZZ_FAIL("indices %llu/%llu, model %llu/%llu",
                                  (unsigned long long)brd_array_first(s->cur),
                                  (unsigned long long)brd_array_last(s->cur),
                                  (unsigned long long)s->f, (unsigned long long)s->l);
        }
        free(rows);
}

static void do_read(struct st *s, uint64_t max)
{
        size_t bytes = max * s->rs;
        unsigned char *buf = malloc(bytes ? bytes : 1);
        uint64_t first = 0xdeadbeef;
        ssize_t r = brd_array_read(s->cur, &first, bytes ? buf : NULL, max);

        if (!bytes && max)
                FUZZ_FAIL("read: overflow in harness");
        if (r < 0) {
                if (r != -EBADMSG && r != -EAGAIN && r != -EINVAL && r != -EBADF)
                        FUZZ_FAIL("read = %zd", r);
                if (!s->scribbled)
                        FUZZ_FAIL("read = %zd without corruption", r);
                free(buf);
                return;
        }
        if ((uint64_t)r > max)
                FUZZ_FAIL("read = %zd > max %llu", r, (unsigned long long)max);
        for (size_t i = 0; i < (size_t)r * s->rs; i++)
                if (buf[i] == POISON)
                        FUZZ_FAIL("read returned bytes from outside the array's rows (row %zu)",
                                  i / s->rs);
        if (!s->scribbled) {
                uint64_t want = s->l - s->f < max ? s->l - s->f : max;

                if ((uint64_t)r != want || (r && first != s->l - want))
                        FUZZ_FAIL("read = %zd first %llu, expected %llu first %llu", r,
                                  (unsigned long long)first, (unsigned long long)want,
                                  (unsigned long long)(s->l - want));
                for (uint64_t j = 0; j < (uint64_t)r; j++) {
                        uint64_t pos = first + j;
                        struct slotm *sm = &s->m[pos % s->cap];

                        if (!sm->set || sm->pos != pos)
                                continue; /* never written: zeros */
                        for (uint64_t i = 0; i < s->rs; i++)
                                if (buf[j * s->rs + i] != rowbyte(pos, sm->k, i))
                                        FUZZ_FAIL("read: row at %llu has wrong content",
                                                  (unsigned long long)pos);
                }
        }
        free(buf);
}

static uint64_t val(struct st *s, struct fuzz_in *r)
{
        switch (fuzz_u8(r) % 10) {
        case 0:
                return 0;
        case 1:
                return s->cap;
        case 2:
                return s->cap + 1;
        case 3:
                return s->l + (int8_t)fuzz_u8(r);
        case 4:
                return s->f + (int8_t)fuzz_u8(r);
        case 5:
                return UINT64_MAX - fuzz_u8(r);
        case 6:
                return fuzz_u16(r);
        case 7:
                return (uint64_t)1 << (fuzz_u8(r) % 64);
        default:
                return fuzz_u64(r);
        }
}

static void scribble(struct st *s, struct fuzz_in *r)
{
        struct brd_array_hdr *h = s->h;
        uint8_t w = fuzz_u8(r);
        uint64_t v = val(s, r);

        s->scribbled = true;
        switch (w % 13) {
        case 0:
                AO_store(&h->first, v);
                break;
        case 1:
                AO_store(&h->last, v);
                break;
        case 2:
                AO_store(&h->seq, v);
                break;
        case 3:
                h->capacity = v;
                break;
        case 4:
                h->row_size = v;
                break;
        case 5:
                h->flags = (uint32_t)v;
                break;
        case 6:
                h->rows_off = v;
                break;
        case 7:
                h->block_off = v;
                break;
        case 8:
                h->magic = v;
                break;
        case 9:
                h->version = (uint32_t)v;
                break;
        case 10:
                AO_store(&h->writer, fuzz_lock_word(v));
                break;
        case 11: { /* any header byte but the writer word */
                unsigned o = fuzz_u8(r) % BRD_ARRAY_HDR_SIZE;

                if (o >= offsetof(struct brd_array_hdr, writer) &&
                    o < offsetof(struct brd_array_hdr, writer) + 8)
                        break;
                ((unsigned char *)h)[o] = (unsigned char)v;
                break;
        }
        default: { /* a pool page word / state byte of the array's block */
                unsigned char *pb = s->base;
                struct brd_pool_hdr *ph = (struct brd_pool_hdr *)(void *)pb;
                uint64_t rel = s->off - ph->data_off;

                s->pool_scribbled = true;

                if (w & 0x80)
                        AO_store(&((struct brd_pool_page *)(pb + ph->pages_off))[rel / 4096].word,
                                 v & 0xffff);
                else
                        pb[ph->states_off + rel / 64] = (unsigned char)v;
                break;
        }
        }
}

static void do_open(struct st *s, struct fuzz_in *r)
{
        struct brd_array *a = NULL;
        uint8_t t = fuzz_u8(r);
        uint64_t off;
        struct brd_pool_hdr *ph = (struct brd_pool_hdr *)(void *)s->base;
        int rc;

        if (t < 128)
                off = s->off;
        else if (t < 192)
                off = s->off + (int16_t)fuzz_u16(r) * 64;
        else if (t < 224)
                off = ph->data_off + fuzz_u32(r) % ((uint64_t)ph->npages * 4096);
        else
                off = fuzz_u64(r);
        rc = brd_array_open(s->pool, off, &a);
        if (rc != 0 && rc != -EPROTO && rc != -EINVAL && rc != -EBADMSG)
                FUZZ_FAIL("open(%#llx) = %d", (unsigned long long)off, rc);
        if (rc == 0 && off != s->off)
                FUZZ_FAIL("open(%#llx) succeeded at an offset with no array",
                          (unsigned long long)off);
        if (rc && off == s->off && !s->scribbled)
                FUZZ_FAIL("open of an intact array = %d", rc);
        if (rc == 0) {
                /* The block as the pool describes it: once its page word or
                 * state byte was scribbled, a larger block the pool now
                 * reports (inside the data area, brd__pool_block_size()
                 * checks) is as good as any: a hostile peer could write
                 * the blocks past it directly. */
                int64_t bsz = s->pool_scribbled ? brd__pool_block_size(s->pool, off)
                                                : (int64_t)s->bsz;

                if (bsz < 0 ||
                    brd_array_row_size(a) * brd_array_capacity(a) + BRD_ARRAY_HDR_SIZE >
                            (uint64_t)bsz)
                        FUZZ_FAIL("open: geometry %zu x %zu does not fit the block of %lld",
                                  brd_array_row_size(a), brd_array_capacity(a), (long long)bsz);
                if (!s->scribbled &&
                    (brd_array_row_size(a) != s->rs || brd_array_capacity(a) != s->cap))
                        FUZZ_FAIL("open: wrong geometry");
                if (brd_array_row_size(a) != s->rs || brd_array_capacity(a) != s->cap) {
                        /* a forged but self-consistent header: rows land inside the block, fine,
                         * but the harness's model is for the original geometry */
                        brd_array_close(a);
                        return;
                }
                if (s->b)
                        brd_array_close(s->b);
                s->b = a;
                s->cur = a;
        }
}

static const size_t psizes[] = { 16 * 1024, 132 * 1024, 300 * 1024, 1100 * 1024 };

/* The pool and the array described by the first bytes; false if the
 * array does not fit (nothing left to fuzz). */
static bool array_setup(struct st *s, struct fuzz_in *r)
{
        uint8_t b0 = fuzz_u8(r), b1 = fuzz_u8(r);
        uint64_t rs = 1 + fuzz_u16(r) % ((b1 & 0x40) ? 4096 : 64);
        uint64_t cap = 1 + fuzz_u16(r) % ((b1 & 0x20) ? 4096 : 64);
        uint64_t start = fuzz_u16(r) % (cap + 1);
        struct brd_pool_hdr *ph;
        uint64_t d0, d1, r1;
        int rc;

        rc = brd_pool_create(psizes[b0 % 4], 0, &s->pool);
        if (rc)
                FUZZ_FAIL("pool create = %d", rc);
        rc = brd_array_create(s->pool, rs, cap, start, b1 & 1, &s->a);
        if (rc) {
                if (rc != -ENOSPC && rc != -EINVAL)
                        FUZZ_FAIL("array create = %d", rc);
                brd_pool_close(s->pool);
                return false;
        }
        s->noscribble = b1 & 0x80;
        s->cur = s->a;
        s->base = brd__pool_base(s->pool);
        s->off = brd_array_offset(s->a);
        s->h = (struct brd_array_hdr *)(void *)(s->base + s->off);
        s->bsz = (uint64_t)brd__pool_block_size(s->pool, s->off);
        s->rs = rs;
        s->cap = cap;
        s->flags = b1 & 1;
        s->f = s->l = start;
        s->m = calloc(cap, sizeof(*s->m));
        /* everything in the data area that is not the array's rows reads POISON */
        ph = (struct brd_pool_hdr *)(void *)s->base;
        d0 = ph->data_off;
        d1 = d0 + (uint64_t)ph->npages * BRD_POOL_PAGE;
        r1 = s->off + BRD_ARRAY_HDR_SIZE + rs * cap;
        memset(s->base + d0, POISON, s->off - d0);
        memset(s->base + r1, POISON, d1 - r1);
        return true;
}

/* A row count: small mostly, up to a little past the capacity. */
static uint64_t rows(struct st *s, struct fuzz_in *r)
{
        return fuzz_u8(r) & 0x80 ? fuzz_u16(r) % (s->cap + 3) : fuzz_u8(r) % 8;
}

static void run_op(struct st *s, struct fuzz_in *r)
{
        switch (fuzz_u8(r) % 10) {
        case 0:
        case 1:
                do_write(s, rows(s, r), false);
                break;
        case 2:
                do_write(s, rows(s, r), true);
                break;
        case 3:
        case 4:
                do_read(s, rows(s, r));
                break;
        case 5:
        case 6:
                if (!s->noscribble)
                        scribble(s, r);
                break;
        case 7:
                do_open(s, r);
                break;
        case 8:
                if (!s->scribbled &&
                    (brd_array_first(s->cur) != s->f || brd_array_last(s->cur) != s->l))
                        FUZZ_FAIL("first/last %llu/%llu, model %llu/%llu",
                                  (unsigned long long)brd_array_first(s->cur),
                                  (unsigned long long)brd_array_last(s->cur),
                                  (unsigned long long)s->f, (unsigned long long)s->l);
                break;
        default:
                s->cur = (s->cur == s->a && s->b) ? s->b : s->a;
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in r = { data, size };
        struct st s = { 0 };
        int fds = fuzz_count_fds();
        unsigned ops = 0;

        if (array_setup(&s, &r)) {
                while (fuzz_more(&r) && ops++ < 200)
                        run_op(&s, &r);
                if (s.b)
                        brd_array_close(s.b);
                brd_array_close(s.a); /* the rows stay: the pool goes away below */
                free(s.m);
                brd_pool_close(s.pool);
        }
        fuzz_fd_check(fds);
        return 0;
}
