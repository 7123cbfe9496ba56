/* SPDX-License-Identifier: MIT */
/*
 * ring-bench's peers that are not brood: exact-length fd I/O (pipe,
 * socketpair, eventfd), a C port of the seed's (tractor's) shared-memory
 * protocol and a plain spin ring, header-only so that the benchmark loops
 * inline them as they inline brood's calls.
 *
 * The seed protocol: one shared buffer, a u32 length header + payload
 * written as a byte stream that splits at the buffer's end, one eventfd
 * write per send (bytes written); at the end the writer waits on a second
 * eventfd until the reader has consumed everything (lock-step wrap); the
 * reader blocks in read() on the first eventfd and copies out.  EOF = a
 * 0xffffffff header.
 */
#ifndef BROOD_BENCH_PEERS_H
#define BROOD_BENCH_PEERS_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal/brd-private.h"
#include "internal/brd-ring.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* --------------------------------------------------- fd I/O helpers */

static ALWAYS_INLINE int write_full(int fd, const void *p, size_t n)
{
        const char *b = p;

        while (n) {
                ssize_t k = write(fd, b, n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Exactly @n bytes: n, 0 at EOF before the first byte, -EPROTO on a torn
 * message, or -errno. */
static ALWAYS_INLINE ssize_t read_full(int fd, void *p, size_t n)
{
        char *b = p;
        size_t got = 0;

        while (got < n) {
                ssize_t k = read(fd, b + got, n - got);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return got ? -EPROTO : 0;
                got += (size_t)k;
        }
        return (ssize_t)n;
}

static inline int efd_read(int fd, uint64_t *v)
{
        ssize_t k;

        do
                k = read(fd, v, sizeof(*v));
        while (k < 0 && errno == EINTR);
        return k == sizeof(*v) ? 0 : (k < 0 ? -errno : -EPROTO);
}

static inline int efd_write(int fd, uint64_t v)
{
        ssize_t k;

        do
                k = write(fd, &v, sizeof(v));
        while (k < 0 && errno == EINTR);
        return k == sizeof(v) ? 0 : (k < 0 ? -errno : -EPROTO);
}

/* ------------------------------------------- the seed protocol, in C */

#define SEED_EOF 0xffffffffu

struct seed {
        int            memfd, efd_data, efd_wrap;   /* data: bytes written; wrap: reader wrapped */
        unsigned char *buf;
        size_t         cap, ptr;
        uint64_t       avail;           /* reader: bytes announced, not consumed */
        uint64_t       pending;         /* writer: bytes written, not announced */
};

static inline int seed_create(struct seed *s, size_t cap)
{
        memset(s, 0, sizeof(*s));
        s->efd_data = s->efd_wrap = -1;
        s->cap = cap;
        s->memfd = memfd_create("seed-ring", MFD_CLOEXEC);
        if (s->memfd < 0)
                return -errno;
        if (ftruncate(s->memfd, (off_t)cap) < 0)
                return -errno;
        /* Blocking eventfds, as the seed reads them. */
        s->efd_data = eventfd(0, EFD_CLOEXEC);
        s->efd_wrap = eventfd(0, EFD_CLOEXEC);
        if (s->efd_data < 0 || s->efd_wrap < 0)
                return -errno;
        return 0;
}

/* Each side maps the buffer itself, after fork, as an attaching actor would. */
static inline int seed_map(struct seed *s)
{
        s->buf = mmap(NULL, s->cap, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
        return s->buf == MAP_FAILED ? (s->buf = NULL, -errno) : 0;
}

static inline void seed_destroy(struct seed *s)
{
        if (s->buf)
                munmap(s->buf, s->cap);
        if (s->memfd >= 0)
                close(s->memfd);
        if (s->efd_data >= 0)
                close(s->efd_data);
        if (s->efd_wrap >= 0)
                close(s->efd_wrap);
        s->buf = NULL;
        s->memfd = s->efd_data = s->efd_wrap = -1;
}

static ALWAYS_INLINE int seed_put(struct seed *s, const void *p, size_t n)
{
        const unsigned char *b = p;

        while (n) {
                size_t k = s->cap - s->ptr < n ? s->cap - s->ptr : n;
                uint64_t v;
                int e;

                memcpy(s->buf + s->ptr, b, k);
                s->ptr += k;
                s->pending += k;
                b += k;
                n -= k;
                if (s->ptr == s->cap) {
                        /* Lock-step wrap: announce, then wait for the reader
                         * to consume everything up to the end. */
                        e = efd_write(s->efd_data, s->pending);
                        if (e < 0)
                                return e;
                        s->pending = 0;
                        e = efd_read(s->efd_wrap, &v);
                        if (e < 0)
                                return e;
                        s->ptr = 0;
                }
        }
        return 0;
}

static ALWAYS_INLINE int seed_send(struct seed *s, const void *msg, uint32_t len)
{
        int e = seed_put(s, &len, sizeof(len));

        if (e == 0)
                e = seed_put(s, msg, len);
        if (e == 0 && s->pending) {
                /* the one eventfd write per send */
                e = efd_write(s->efd_data, s->pending);
                s->pending = 0;
        }
        return e;
}

static ALWAYS_INLINE int seed_get(struct seed *s, void *dst, size_t n)
{
        unsigned char *d = dst;

        while (n) {
                size_t k;
                int e;

                if (!s->avail) {
                        e = efd_read(s->efd_data, &s->avail);     /* blocks */
                        if (e < 0)
                                return e;
                }
                k = s->cap - s->ptr;
                if (k > s->avail)
                        k = s->avail;
                if (k > n)
                        k = n;
                memcpy(d, s->buf + s->ptr, k);
                s->ptr += k;
                s->avail -= k;
                d += k;
                n -= k;
                if (s->ptr == s->cap) {
                        s->ptr = 0;
                        e = efd_write(s->efd_wrap, 1);
                        if (e < 0)
                                return e;
                }
        }
        return 0;
}

/* Length, -EPIPE at EOF, -EMSGSIZE if larger than @cap. */
static ALWAYS_INLINE ssize_t seed_recv(struct seed *s, void *buf, size_t cap)
{
        uint32_t len;
        int e = seed_get(s, &len, sizeof(len));

        if (e < 0)
                return e;
        if (len == SEED_EOF)
                return -EPIPE;
        if (len > cap)
                return -EMSGSIZE;
        e = seed_get(s, buf, len);
        return e < 0 ? e : (ssize_t)len;
}

/* ------------------------------------------------- a plain spin ring */

/*
 * The floor of a shared-memory stream (ring-bench's PEER_RAW), the streaming twin
 * of the round trip's struct rt_raw: a hand-written SPSC ring that lays frames out
 * as brood does (an 8-byte frame word, the payload padded to 8, payloads
 * line-aligned from BRD_RING_LINE_ALIGN_MIN and page-aligned from
 * BRD_RING_PAGE_ALIGN_MIN, a gap = one pad word) but wraps with a pad frame
 * where brood's double mapping lets a frame run on, and takes none of
 * brood's care.  Free-running byte indices on lines of their own, each side
 * caching the other's and rereading it only when it shows no room / no
 * message; the producer copies in and release-stores its tail per message,
 * the consumer copies out and release-stores its head per message.  Spins
 * forever: no sleep, no timeout, no batching, no validation of what it
 * reads, no peer-death care.  Both copies are brood's small-copy routine
 * (brd__copy(): inline up to 64 B, else libc's memcpy), so against brood's
 * copy API it shows what brood's checks, waiting and bookkeeping cost, and
 * against the pipe what a ring of this design reaches on this host and
 * placement.
 */
#define RAW_PAD ((uint64_t)1 << 63)     /* frame word of a gap: RAW_PAD | its bytes */

struct raw_ctl {
        _Alignas(128) AO_t tail;        /* producer's line: bytes published */
        AO_t eof;                       /* set after the last tail */
        _Alignas(128) AO_t head;        /* consumer's line: bytes consumed */
};

struct raw_ring {
        struct raw_ctl *ctl;            /* mapped before the fork, shared */
        unsigned char  *data;           /* the page after ctl's page */
        size_t          map_len;
        uint64_t        pos, peer;      /* own index, cached peer's index */
};

static inline int raw_setup(struct raw_ring *w, size_t cap)
{
        void *m;

        w->map_len = 4096 + cap;
        m = mmap(NULL, w->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return -errno;
        w->ctl = m;
        w->data = (unsigned char *)m + 4096;
        w->pos = w->peer = 0;
        return 0;
}

static inline void raw_destroy(struct raw_ring *w)
{
        if (w->ctl)
                munmap(w->ctl, w->map_len);
        w->ctl = NULL;
}

static ALWAYS_INLINE uint64_t *raw_at(struct raw_ring *w, size_t cap, uint64_t at)
{
        return (uint64_t *)(void *)(w->data + (at & (cap - 1)));
}

/* Where a frame of @n payload bytes goes from @pos: its frame word. */
static ALWAYS_INLINE uint64_t raw_place(uint64_t pos, size_t n)
{
        uint64_t a = n >= BRD_RING_PAGE_ALIGN_MIN ? BRD_RING_ALIGN_PAGE :
                     n >= BRD_RING_LINE_ALIGN_MIN ? BRD_CACHELINE : 8;

        return ((pos + 8 + a - 1) & ~(a - 1)) - 8;
}

static ALWAYS_INLINE int raw_send(struct raw_ring *w, size_t cap, const void *msg, size_t n)
{
        uint64_t size = 8 + ((n + 7) & ~(uint64_t)7), hdr = raw_place(w->pos, n);

        if ((hdr & (cap - 1)) + size > cap)                     /* past the lap's end */
                hdr = raw_place(w->pos - (w->pos & (cap - 1)) + cap, n);
        while (hdr + size - w->peer > cap) {
                /* pairs with the consumer's release of head: it is done
                 * reading what we are about to overwrite */
                w->peer = AO_load_acquire(&w->ctl->head);
                if (hdr + size - w->peer > cap)
                        brd__cpu_relax();
        }
        if (hdr != w->pos)
                *raw_at(w, cap, w->pos) = RAW_PAD | (hdr - w->pos);
        brd__copy(raw_at(w, cap, hdr) + 1, msg, n);
        *raw_at(w, cap, hdr) = n;
        w->pos = hdr + size;
        AO_store_release(&w->ctl->tail, w->pos);        /* pairs with raw_recv's load */
        return 0;
}

static inline void raw_eof(struct raw_ring *w)
{
        AO_store_release(&w->ctl->eof, 1);              /* after the last tail */
}

/* Copies the next message to @dst: its length, or -EPIPE at EOF. */
static ALWAYS_INLINE ssize_t raw_recv(struct raw_ring *w, size_t cap, void *dst)
{
        uint64_t n;

        for (;;) {
                while (w->peer == w->pos) {
                        w->peer = AO_load_acquire(&w->ctl->tail);  /* pairs with raw_send's */
                        if (w->peer != w->pos)
                                break;
                        if (AO_load_acquire(&w->ctl->eof)) {
                                /* eof was stored after the last tail */
                                w->peer = AO_load_acquire(&w->ctl->tail);
                                if (w->peer == w->pos)
                                        return -EPIPE;
                                break;
                        }
                        brd__cpu_relax();
                }
                n = *raw_at(w, cap, w->pos);
                if (!(n & RAW_PAD))
                        break;
                w->pos += n & ~RAW_PAD;
        }
        brd__copy(dst, raw_at(w, cap, w->pos) + 1, n);
        w->pos += 8 + ((n + 7) & ~(uint64_t)7);
        AO_store_release(&w->ctl->head, w->pos);        /* pairs with raw_send's load */
        return (ssize_t)n;
}

#endif /* BROOD_BENCH_PEERS_H */
