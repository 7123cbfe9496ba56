/* SPDX-License-Identifier: MIT */
/*
 * fuzz-pool: the shared pool (shm/pool.c) with a peer scribbling on its
 * metadata between calls.  The input picks a pool size, then runs up to
 * 256 operations: alloc/free (of live blocks, of any offset), brd_pool_ptr,
 * stats, a second attach (through a handle that may lie about size, kind
 * or flags), and writes into the header, the page words, the granule
 * states, the cache slots, the class stacks and the free blocks' links.
 *
 * Invariants: every call returns one of its documented values; a block
 * lies inside the data area, is 64-byte aligned and reachable by
 * brd_pool_ptr(); once a handle says -EBADMSG for the first time every call
 * of every handle says it (poisoned) until the next scribble, and every call
 * through that handle keeps saying it, scribbles or not, until it is closed
 * (the creator's never is); and while nothing was scribbled: blocks never overlap,
 * their contents survive other calls, frees of live blocks succeed, of
 * anything else give -EINVAL, and stats add up.  ASan+UBSan and the guard
 * regions of guard.c turn any access outside the segment into a crash; no
 * fd leaks.
 *
 * The lock word gets only values a waiter decides at once (fuzz_lock_word():
 * free, impossible, a dead holder).  A live pid would be right too (the
 * call waits 2 s and gives -ETIMEDOUT) but slows the fuzzer to a crawl.
 *
 * Run: scripts/fuzz.sh pool [SECONDS].  The pool's per-process cache is
 * used only while the process is single-threaded, so fuzz.sh runs this
 * target with -rss_limit_mb=0 (libFuzzer's RSS thread would bypass it).
 */
#include <errno.h>
#include <string.h>

#include <brood/shm.h>
#include "internal/brd-private.h"
#include "internal/brd-pool.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        fuzz_dead_pid();
        return 0;
}

#define MAXLIVE 512
struct blk {
        uint64_t off, size;
};

struct st {
        struct brd_pool *pa;    /* the creator's */
        struct brd_pool *pb;    /* attached through a handle, as a peer would */
        struct brd_pool *cur;   /* the one the calls go to */
        unsigned char *base;
        struct brd_pool_hdr *h;
        /* the layout as created: what a scribble may not change for us */
        uint64_t seg_size, data_off, data_size, npages, ngran, pages_off, states_off, slots_off;
        uint32_t nslots;
        struct blk live[MAXLIVE];       /* blocks handed out and not freed */
        unsigned nlive;
        bool scribbled;
        bool poisoned; /* -EBADMSG seen with no scribble since */
        bool latched[2]; /* pa, pb: that handle said -EBADMSG (poisoned until closed) */
};

static const size_t sizes[] = {
        12 * 1024,  16 * 1024,  20 * 1024,   36 * 1024,   68 * 1024,
        72 * 1024,  132 * 1024, 140 * 1024,  260 * 1024,  300 * 1024,
        540 * 1024, 600 * 1024, 1100 * 1024, 2200 * 1024, 4 * 1024 * 1024 + 4096,
};

static void pattern(struct st *s, const struct blk *b, bool check)
{
        unsigned char *p = s->base + b->off;
        uint64_t n = b->size < 32 ? b->size / 2 : 16, i;

        for (i = 0; i < n; i++) {
                unsigned char v = (unsigned char)(b->off * 131 + i * 7 + 1);

                if (check) {
                        if (p[i] != v || p[b->size - n + i] != (unsigned char)(v ^ 0x5a))
                                FUZZ_FAIL("live block at %#llx (size %llu) was overwritten",
                                          (unsigned long long)b->off, (unsigned long long)b->size);
                } else {
                        p[i] = v;
                        p[b->size - n + i] = (unsigned char)(v ^ 0x5a);
                }
        }
}

static void saw_rc(struct st *s, int64_t r, const char *what)
{
        bool *latched = &s->latched[s->cur == s->pb];

        if (r == -EBADMSG) {
                if (!s->scribbled)
                        FUZZ_FAIL("%s: -EBADMSG without any corruption", what);
                /* A latched handle says it whatever the shared word is; one
                 * that was not says it because the word is set (or it just
                 * set it): then every handle must. */
                if (!*latched)
                        s->poisoned = true;
                *latched = true;
        } else if (s->poisoned) {
                FUZZ_FAIL("%s: poisoned pool answered %lld instead of -EBADMSG", what,
                          (long long)r);
        } else if (*latched) {
                FUZZ_FAIL("%s: a handle that said -EBADMSG answered %lld (a scribble since)", what,
                          (long long)r);
        }
}

/*
 * Can @size never fit this pool (brd_pool_alloc()'s -EINVAL)?  0, more than
 * the data area, or a block larger than the largest the pool can have: its
 * class (a power of two, from BRD_POOL_GRAN) for a small size, its pages
 * rounded up to a power of two for a large one, which is the same number.
 */
static bool never_fits(const struct st *s, size_t size)
{
        uint64_t max_block = (uint64_t)BRD_POOL_PAGE << (63 - __builtin_clzll(s->npages));
        uint64_t need = BRD_POOL_GRAN;

        if (size == 0 || size > s->data_size)
                return true;
        while (need < size)
                need <<= 1;
        return need > max_block;
}

static void do_alloc(struct st *s, size_t size)
{
        int64_t r = brd_pool_alloc(s->cur, size);

        if (!s->scribbled && (r == -EINVAL) != never_fits(s, size))
                FUZZ_FAIL("alloc(%zu) = %lld, and the size %s", size, (long long)r,
                          never_fits(s, size) ? "can never fit" : "can fit");
        if (r < 0) {
                if (r != -EINVAL && r != -ENOSPC && r != -EBADMSG)
                        FUZZ_FAIL("alloc(%zu) = %lld", size, (long long)r);
                /* A size that can fit always fits an empty pool. */
                if (r == -ENOSPC && !s->scribbled && s->nlive == 0)
                        FUZZ_FAIL("alloc(%zu) = -ENOSPC from an empty pool", size);
                if (r != -EINVAL)
                        saw_rc(s, r, "alloc");
                return;
        }
        saw_rc(s, r, "alloc");
        if (r == 0 || (r & (BRD_POOL_ALIGN - 1)))
                FUZZ_FAIL("alloc(%zu) = %#llx: zero or misaligned", size, (long long)r);
        if ((uint64_t)r < s->data_off || (uint64_t)r - s->data_off >= s->data_size ||
            size > s->data_off + s->data_size - (uint64_t)r)
                FUZZ_FAIL("alloc(%zu) = %#llx: block not inside the data area [%#llx, %#llx)", size,
                          (long long)r, (unsigned long long)s->data_off,
                          (unsigned long long)(s->data_off + s->data_size));
        if (!brd_pool_ptr(s->cur, (uint64_t)r) || !brd_pool_ptr(s->cur, (uint64_t)r + size - 1))
                FUZZ_FAIL("alloc: brd_pool_ptr NULL for a returned block");
        if (!s->scribbled) {
                for (unsigned i = 0; i < s->nlive; i++) {
                        const struct blk *b = &s->live[i];

                        if ((uint64_t)r < b->off + b->size && b->off < (uint64_t)r + size)
                                FUZZ_FAIL("alloc(%zu) = %#llx overlaps live block %#llx+%llu", size,
                                          (long long)r, (unsigned long long)b->off,
                                          (unsigned long long)b->size);
                }
        }
        if (s->nlive < MAXLIVE) {
                s->live[s->nlive] = (struct blk){ (uint64_t)r, size };
                if (!s->scribbled)
                        pattern(s, &s->live[s->nlive], false);
                s->nlive++;
        } else {
                /* no room to track it: give it back */
                int fr = brd_pool_free(s->cur, (uint64_t)r);

                if (fr && !s->scribbled)
                        FUZZ_FAIL("free of fresh block = %d", fr);
        }
}

static void do_free_live(struct st *s, unsigned i)
{
        struct blk b = s->live[i];
        int r;

        if (!s->scribbled)
                pattern(s, &b, true);
        r = brd_pool_free(s->cur, b.off);
        if (r != 0 && r != -EINVAL && r != -EBADMSG)
                FUZZ_FAIL("free(live %#llx) = %d", (unsigned long long)b.off, r);
        if (r && !s->scribbled)
                FUZZ_FAIL("free(live %#llx) = %d without corruption", (unsigned long long)b.off, r);
        saw_rc(s, r, "free");
        s->live[i] = s->live[--s->nlive];
}

static void do_free_any(struct st *s, uint64_t off)
{
        int r;
        unsigned i;

        for (i = 0; i < s->nlive; i++)
                if (s->live[i].off == off) {
                        do_free_live(s, i);
                        return;
                }
        r = brd_pool_free(s->cur, off);
        if (r != 0 && r != -EINVAL && r != -EBADMSG)
                FUZZ_FAIL("free(%#llx) = %d", (unsigned long long)off, r);
        if (r != -EINVAL && !s->scribbled && !s->poisoned)
                FUZZ_FAIL("free(%#llx) of no live block = %d, expected -EINVAL",
                          (unsigned long long)off, r);
        if (r != -EINVAL)
                saw_rc(s, r, "free");
}

static void do_stats(struct st *s)
{
        struct brd_pool_stats ps;
        int r = brd_pool_stats(s->cur, &ps);
        uint64_t used;

        if (r != 0 && r != -EBADMSG)
                FUZZ_FAIL("stats = %d", r);
        saw_rc(s, r, "stats");
        if (r || s->scribbled)
                return;
        used = 0;
        for (unsigned i = 0; i < s->nlive; i++) {
                int64_t b = brd__pool_block_size(s->cur, s->live[i].off);

                if (b < (int64_t)s->live[i].size)
                        FUZZ_FAIL("block_size(%#llx) = %lld < %llu",
                                  (unsigned long long)s->live[i].off, (long long)b,
                                  (unsigned long long)s->live[i].size);
                used += (uint64_t)b;
        }
        if (ps.blocks != s->nlive || ps.used != used)
                FUZZ_FAIL("stats: blocks %llu used %llu, expected %u / %llu",
                          (unsigned long long)ps.blocks, (unsigned long long)ps.used, s->nlive,
                          (unsigned long long)used);
        if (ps.capacity != s->data_size || ps.used > ps.capacity || ps.largest_free > ps.capacity)
                FUZZ_FAIL("stats: capacity %llu used %llu largest %llu",
                          (unsigned long long)ps.capacity, (unsigned long long)ps.used,
                          (unsigned long long)ps.largest_free);
}

/*
 * Here and below, no expression reads the input twice: the order of the
 * reads would be unspecified, and gcc and clang could replay an input of the
 * corpus differently.  Each read is an initializer or an assignment of its
 * own, in order.
 */
static uint64_t value(struct st *s, struct fuzz_in *r)
{
        uint8_t k = fuzz_u8(r);

        switch (k % 16) {
        case 0:
                return 0;
        case 1:
                return 1;
        case 2:
                return s->npages;
        case 3:
                return s->npages + 1;
        case 4:
                return s->ngran;
        case 5:
                return s->ngran - 1;
        case 6:
                return 0xffffffffull;
        case 7: {
                uint64_t lo = fuzz_u8(r), hi = fuzz_u8(r);

                return lo | hi << 8; /* page word */
        }
        case 8: {
                unsigned c = fuzz_u8(r), st = fuzz_u8(r);

                return (c % 12 + 1) << 2 | (st & 3); /* state byte */
        }
        case 9:
                return fuzz_u32(r) % (s->npages + 2);
        case 10:
                return fuzz_u32(r) % (s->ngran + 2);
        case 11: {
                uint64_t hi = fuzz_u16(r), lo = fuzz_u32(r) % (s->ngran + 2);

                return hi << 32 | lo;
        }
        default:
                return fuzz_u64(r);
        }
}

static void wr(void *p, unsigned w, uint64_t v)
{
        switch (w) {
        case 1: {
                uint8_t x = (uint8_t)v;
                memcpy(p, &x, 1);
                break;
        }
        case 2: {
                uint16_t x = (uint16_t)v;
                memcpy(p, &x, 2);
                break;
        }
        case 4: {
                uint32_t x = (uint32_t)v;
                memcpy(p, &x, 4);
                break;
        }
        default:
                memcpy(p, &v, 8);
                break;
        }
}

static void scribble(struct st *s, struct fuzz_in *r)
{
        struct brd_pool_hdr *h = s->h;
        uint8_t what = fuzz_u8(r);
        uint64_t v;
        unsigned i;

        s->scribbled = true;
        s->poisoned = false;
        switch (what % 14) {
        case 0: { /* any metadata bytes but the lock word (case 9) */
                unsigned w = 1u << (fuzz_u8(r) & 3);
                uint64_t off = fuzz_u32(r) % s->data_off;

                if (off + w > s->data_off)
                        off = s->data_off - w;
                if (off + w > offsetof(struct brd_pool_hdr, lock) &&
                    off < offsetof(struct brd_pool_hdr, lock) + sizeof(AO_t))
                        break;
                wr(s->base + off, w, value(s, r));
                break;
        }
        case 1:
                v = value(s, r);
                i = fuzz_u8(r) % BRD_POOL_MAX_ORDER;
                h->free_head[i] = (uint32_t)v;
                break;
        case 2:
                v = value(s, r);
                i = fuzz_u8(r) % BRD_POOL_NCLASSES;
                AO_store(&h->cls[i].head, v);
                break;
        case 3:
                i = fuzz_u32(r) % s->npages;
                switch (fuzz_u8(r) % 3) {
                case 0:
                        AO_store(&((struct brd_pool_page *)(s->base + s->pages_off))[i].word,
                                 value(s, r));
                        break;
                case 1:
                        ((struct brd_pool_page *)(s->base + s->pages_off))[i].prev =
                                (uint32_t)value(s, r);
                        break;
                default:
                        ((struct brd_pool_page *)(s->base + s->pages_off))[i].next =
                                (uint32_t)value(s, r);
                        break;
                }
                break;
        case 4:
                v = value(s, r);
                s->base[s->states_off + fuzz_u32(r) % s->ngran] = (unsigned char)v;
                break;
        case 5: { /* a slot field */
                struct brd_pool_slot *sl, *x;
                uint8_t f;

                if (!s->nslots)
                        break;
                sl = (void *)(s->base + s->slots_off);
                x = &sl[fuzz_u8(r) % s->nslots];
                f = fuzz_u8(r);
                switch (f % 5) {
                case 0:
                        AO_store(&x->owner, value(s, r));
                        break;
                case 1:
                        x->n[f / 5 % BRD_POOL_NCLASSES] = (uint8_t)value(s, r);
                        break;
                case 2:
                        v = value(s, r);
                        i = fuzz_u8(r) % BRD_POOL_SLOT_CAP;
                        x->blk[f / 5 % BRD_POOL_NCLASSES][i] = (uint32_t)v;
                        break;
                case 3:
                        AO_store(&x->start_time, value(s, r));
                        break;
                default: /* a dead owner in our namespace: reapable */
                        AO_store(&x->owner,
                                 (AO_t)fuzz_dead_pid() | ((f & 0x80) ? BRD_POOL_REAPING : 0));
                        AO_store(&x->start_time, (f & 0x40) ? 12345 : 0);
                        AO_store(&x->pid_ns, brd__pid_ns());  /* a dead slot owner's must match ours */
                        break;
                }
                break;
        }
        case 6:
                AO_store(&h->poisoned, fuzz_u8(r) & 1);
                break;
        case 7: { /* a word in the data area: free blocks' links live there */
                uint64_t g = value(s, r) % s->ngran;
                unsigned wd = fuzz_u8(r) & 7;

                wr(s->base + s->data_off + g * 64 + wd * 8, 8, value(s, r));
                break;
        }
        case 8: { /* the link word of a live block (what a user writes) */
                const struct blk *b;

                if (!s->nlive)
                        break;
                b = &s->live[fuzz_u8(r) % s->nlive];
                if (b->size >= 8)
                        wr(s->base + b->off, 8, value(s, r));
                break;
        }
        case 9: /* the lock: free, impossible or a dead holder (see fuzz.h) */
                AO_store(&h->lock, fuzz_lock_word(fuzz_u64(r)));
                break;
        case 10: { /* an immutable header field (seen by the next attach) */
                unsigned o = fuzz_u8(r) % 64, w = 1u << (fuzz_u8(r) & 3);

                wr(s->base + (o + w > 64 ? 64 - w : o), w, value(s, r));
                break;
        }
        case 11: { /* a class head pointing at a chain built from input */
                unsigned c = fuzz_u8(r) % BRD_POOL_NCLASSES;
                uint64_t g = value(s, r) % s->ngran;

                AO_store(&h->cls[c].head, (uint64_t)fuzz_u16(r) << 32 | (g + 1));
                s->base[s->states_off + g] = (unsigned char)(((c + 1) << 2) | (fuzz_u8(r) & 3));
                break;
        }
        case 12: /* state byte of a granule inside a live block */
                if (s->nlive) {
                        const struct blk *b = &s->live[fuzz_u8(r) % s->nlive];
                        uint64_t g =
                                (b->off - s->data_off) / 64 + fuzz_u8(r) % ((b->size + 63) / 64);

                        if (g < s->ngran)
                                s->base[s->states_off + g] = (unsigned char)value(s, r);
                }
                break;
        default: /* page word of a live block's page */
                if (s->nlive) {
                        const struct blk *b = &s->live[fuzz_u8(r) % s->nlive];
                        uint64_t pi = (b->off - s->data_off) / 4096;

                        AO_store(&((struct brd_pool_page *)(s->base + s->pages_off))[pi].word,
                                 value(s, r));
                }
                break;
        }
}

static void do_attach(struct st *s, struct fuzz_in *r)
{
        struct brd_handle h, d;
        struct brd_pool *p = NULL;
        uint8_t f = fuzz_u8(r);
        uint32_t kind;
        int rc;

        if (s->pb)
                return;
        rc = brd_pool_export(s->pa, &h);
        if (rc)
                FUZZ_FAIL("export = %d", rc);
        if (f & 1) {
                rc = brd_handle_dup(&h, &d);
                if (rc)
                        FUZZ_FAIL("dup = %d", rc);
                brd_handle_close(&h);
                h = d;
        }
        if (f & 2)
                scribble(s, r);
        kind = h.kind;
        if (f & 4) { /* a lying handle */
                switch (fuzz_u8(r) % 5) {
                case 0:
                        h.size = fuzz_u64(r);
                        break;
                case 1:
                        h.flags = fuzz_u64(r) & 0xf;
                        break;
                case 2:
                        h.kind = fuzz_u8(r) % 6;
                        break;
                case 3:
                        h.size = s->seg_size + 4096 * (fuzz_u8(r) % 3);
                        break;
                default:
                        h.size = fuzz_u32(r) % (s->seg_size + 1);
                        break;
                }
        }
        rc = brd_pool_attach(&h, &p);
        /* -EXDEV: the creator's pid namespace word, scribbled */
        if (rc != 0 && rc != -EINVAL && rc != -EPROTO && rc != -EBADMSG && rc != -EXDEV)
                FUZZ_FAIL("attach = %d", rc);
        if (rc == 0 && !p)
                FUZZ_FAIL("attach: 0 but no pool");
        if (rc && !(f & 6) && !s->scribbled)
                FUZZ_FAIL("attach of an intact pool with an intact handle = %d", rc);
        /* Its own kind back: a handle of a kind none of brood's owns
         * nothing, and closing it would leave the fd open (handle.h). */
        h.kind = kind;
        brd_handle_close(&h);
        if (rc == 0) {
                s->pb = p;
                s->latched[1] = false;
                if (brd__pool_base(p) == NULL)
                        FUZZ_FAIL("attach: no base");
        }
}

/* One operation; @cfg bit 7 set: a run without scribbles. */
static void run_op(struct st *s, struct fuzz_in *r, uint8_t cfg)
{
        uint8_t op = fuzz_u8(r);

        switch (op % 16) {
        case 0:
        case 1: {
                uint8_t t = fuzz_u8(r);
                size_t sz;

                if (t < 150)
                        sz = 1 + fuzz_u16(r) % 4096;
                else if (t < 220)
                        sz = 1 + fuzz_u32(r) % 65536;
                else if (t < 250)
                        sz = 1 + fuzz_u32(r) % (2 * s->data_size);
                else
                        sz = (size_t)fuzz_u64(r);
                do_alloc(s, sz);
                break;
        }
        case 2:
        case 3:
                if (s->nlive)
                        do_free_live(s, fuzz_u8(r) % s->nlive);
                break;
        case 4: {
                uint8_t t = fuzz_u8(r);
                uint64_t off;

                if (t < 64)
                        off = fuzz_u64(r);
                else if (t < 128)
                        off = s->data_off + (fuzz_u32(r) % s->data_size & ~63ull);
                else if (t < 192 && s->nlive) {
                        uint8_t i = fuzz_u8(r);
                        int8_t d = (int8_t)fuzz_u8(r);

                        off = s->live[i % s->nlive].off + d * 64;
                }
                else
                        off = s->data_off + fuzz_u32(r) % s->data_size;
                do_free_any(s, off);
                break;
        }
        case 5: {
                uint64_t off = fuzz_u8(r) & 1 ? fuzz_u64(r)
                                              : s->data_off - 8 + fuzz_u32(r) % (s->data_size + 16);
                void *p = brd_pool_ptr(s->cur, off);
                bool in = off >= s->data_off && off - s->data_off < s->data_size;

                if ((p != NULL) != in || (p && p != (unsigned char *)brd__pool_base(s->cur) + off))
                        FUZZ_FAIL("ptr(%#llx) = %p", (unsigned long long)off, p);
                break;
        }
        case 6:
                do_stats(s);
                break;
        case 7:
        case 8:
        case 9:
                if (cfg & 0x80) /* scribble-free run: every invariant is checked */
                        break;
                scribble(s, r);
                break;
        case 10:
                do_attach(s, r);
                break;
        case 11:
                if (s->pb)
                        s->cur = s->cur == s->pa ? s->pb : s->pa;
                break;
        case 12:
                if (s->pb) {
                        brd_pool_close(s->pb);
                        s->pb = NULL;
                        s->cur = s->pa;
                        s->latched[1] = false;
                }
                break;
        case 13: {
                uint8_t n = fuzz_u8(r) % 64;
                uint32_t v = fuzz_u32(r);
                size_t sz = 1 + v % (fuzz_u8(r) & 1 ? 65536 : 4096);

                while (n--)
                        do_alloc(s, sz);
                break;
        }
        case 14: {
                uint8_t k = fuzz_u8(r);

                for (unsigned i = s->nlive; i-- > 0;)
                        if ((i + k) & 1)
                                do_free_live(s, i);
                break;
        }
        default: { /* a legit write into a live block (user data) */
                struct blk *b;
                uint64_t o, n;

                if (!s->nlive)
                        break;
                b = &s->live[fuzz_u8(r) % s->nlive];
                o = fuzz_u32(r) % b->size;
                n = b->size - o < 64 ? b->size - o : 64;

                /* keep the checked pattern: write only the middle */
                if (b->size > 40 && o >= 16 && o + n <= b->size - 16)
                        memset(s->base + b->off + o, fuzz_u8(r), n);
                break;
        }
        }
}

static void pool_setup(struct st *s, uint8_t cfg)
{
        int rc = brd_pool_create(sizes[cfg % (sizeof(sizes) / sizeof(sizes[0]))], 0, &s->pa);

        if (rc)
                FUZZ_FAIL("create = %d", rc);
        s->cur = s->pa;
        s->base = brd__pool_base(s->pa);
        s->h = (struct brd_pool_hdr *)(void *)s->base;
        s->seg_size = s->h->seg_size;
        s->data_off = s->h->data_off;
        s->npages = s->h->npages;
        s->pages_off = s->h->pages_off;
        s->states_off = s->h->states_off;
        s->slots_off = s->h->slots_off;
        s->nslots = s->h->nslots;
        s->data_size = s->npages * BRD_POOL_PAGE;
        s->ngran = s->npages * BRD_POOL_GRANS_PER_PAGE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct fuzz_in r = { data, size };
        struct st s = { 0 };
        uint8_t b0 = fuzz_u8(&r), b1 = fuzz_u8(&r);
        int fds = fuzz_count_fds();
        unsigned ops = 0;

        pool_setup(&s, b0);
        /* a few legit blocks first, so that spans and large blocks exist */
        for (unsigned i = 0; i < (b1 & 7); i++)
                do_alloc(&s, (size_t)64 << (i * 3 % 12));
        while (fuzz_more(&r) && ops++ < 256)
                run_op(&s, &r, b1);
        if (!s.scribbled) {
                do_stats(&s);
                while (s.nlive)
                        do_free_live(&s, s.nlive - 1);
                do_stats(&s);
        }
        if (s.pb)
                brd_pool_close(s.pb);
        brd_pool_close(s.pa);
        fuzz_fd_check(fds);
        return 0;
}
