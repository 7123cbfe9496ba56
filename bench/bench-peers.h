/* SPDX-License-Identifier: MIT */
/*
 * ring-bench's peers that are not brood: exact-length fd I/O (pipe,
 * socketpair, eventfd) and a C port of the seed's (tractor's) shared-memory
 * protocol, header-only so that the benchmark loops inline them as they
 * inline brood's calls.
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

#endif /* BROOD_BENCH_PEERS_H */
