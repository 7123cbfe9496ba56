/* SPDX-License-Identifier: MIT */
/*
 * The ring's contract: sizes, messages, zero-copy, byte stream, EOF, and
 * data integrity through a forked peer (SHA-256 of everything).
 * Fork tests: the child reports only through _exit(code).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>
#include "helpers.h"
#include "../ringbuf/io.h"              /* RING_READ_EMPTY_MAX */
#include <brood/ringbuf.h>
#include "internal/brd-ring.h"

struct pair {
        struct brd_ring *p, *c;
};

static void pair_open(struct pair *x, size_t cap, unsigned flags)
{
        t_ring_pair(cap, flags, &x->p, &x->c);
}

static void pair_close(struct pair *x)
{
        brd_ring_close(x->p);
        brd_ring_close(x->c);
}

/* ------------------------------------------------------------ API basics */

static void test_create_rejects_bad_input(void **state)
{
        struct brd_handle hp = { .kind = 77 }, hc = { .kind = 77 };
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(0, 0, &hp, &hc), -EINVAL);
        assert_int_equal(brd_ring_create((size_t)1 << 40, 0, &hp, &hc), -EINVAL);
        assert_int_equal(brd_ring_create(SIZE_MAX, 0, &hp, &hc), -EINVAL);
        assert_int_equal(brd_ring_create(4096, 1u << 20, &hp, &hc), -EINVAL);
        assert_int_equal(brd_ring_create(4096, 0, NULL, &hc), -EINVAL);
        assert_int_equal(brd_ring_create(4096, 0, &hp, NULL), -EINVAL);
        /* One handle for both ends: the producer's fds would be lost (the
         * fd count of t_leak_end() tells). */
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hp), -EINVAL);
        /* ret_ params untouched on failure */
        assert_int_equal(hp.kind, 77);
        assert_int_equal(hc.kind, 77);
        t_leak_end(&l);
}

static void test_capacity_rounding(void **state)
{
        struct brd_ring_stats s;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 10 * 1024, 0);
        assert_int_equal(brd_ring_stats(x.p, &s), 0);
        assert_int_equal(s.capacity, 16384);
        assert_int_equal(s.max_msg, 8192);
        pair_close(&x);
        pair_open(&x, 1, 0);
        assert_int_equal(brd_ring_stats(x.c, &s), 0);
        assert_int_equal(s.capacity, 4096);
        assert_int_equal(s.max_msg, 2048);
        pair_close(&x);
        t_leak_end(&l);
}

static void test_handles_shape(void **state)
{
        struct brd_handle hp, hc, bad;
        struct brd_ring *r = (struct brd_ring *)&bad;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        assert_int_equal(hp.kind, BRD_HANDLE_RING_PRODUCER);
        assert_int_equal(hc.kind, BRD_HANDLE_RING_CONSUMER);
        assert_int_equal(hp.nfds, 3);
        assert_int_equal(hc.nfds, 3);
        assert_true(hp.id == hc.id);
        {
                struct stat st;

                /* aux: the memfd's inode, by which a stale copy is told. */
                assert_int_equal(fstat(hp.fds[0], &st), 0);
                assert_int_equal(hp.aux, st.st_ino);
                assert_int_equal(hc.aux, st.st_ino);
        }
        for (unsigned i = 0; i < 3; i++) {
                assert_true(fcntl(hp.fds[i], F_GETFD) & FD_CLOEXEC);
                assert_true(fcntl(hc.fds[i], F_GETFD) & FD_CLOEXEC);
        }
        /* Malformed handles: -EINVAL, ret untouched. */
        bad = hp;
        bad.kind = BRD_HANDLE_SEG;
        assert_int_equal(brd_ring_attach(&bad, &r), -EINVAL);
        bad = hp;
        bad.nfds = 2;
        assert_int_equal(brd_ring_attach(&bad, &r), -EINVAL);
        bad = hp;
        bad.fds[1] = hp.fds[0];         /* memfd where an eventfd belongs */
        assert_int_equal(brd_ring_attach(&bad, &r), -EINVAL);
        bad = hp;
        bad.id ^= 1;                    /* another ring's id */
        assert_int_equal(brd_ring_attach(&bad, &r), -EPROTO);
        bad = hp;
        bad.flags |= 1ull << 40;        /* a flag no ring has */
        assert_int_equal(brd_ring_attach(&bad, &r), -EINVAL);
        bad = hp;
        bad.flags ^= BRD_RING_BATCH;    /* a flag this ring does not have */
        assert_int_equal(brd_ring_attach(&bad, &r), -EPROTO);
        bad = hp;
        bad.aux ^= 1;                   /* another file's inode: a stale copy */
        assert_int_equal(brd_ring_attach(&bad, &r), -EBADF);
        assert_ptr_equal(r, (struct brd_ring *)&bad);
        assert_int_equal(brd_ring_attach(NULL, &r), -EINVAL);
        assert_int_equal(brd_ring_attach(&hp, NULL), -EINVAL);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

static void test_attach_rejects_bad_header(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring_hdr *h;
        struct brd_ring *r = NULL;
        struct t_leak l;
        size_t sz;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        sz = hp.size;
        h = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED, hp.fds[0], 0);
        assert_true(h != MAP_FAILED);
        h->magic ^= 1;
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        h->magic ^= 1;
        h->version = 99;
        assert_int_equal(brd_ring_attach(&hc, &r), -EPROTO);
        h->version = BRD_RING_VERSION;
        h->hdr_size += 8;               /* another layout (a 32-bit build's, say) */
        assert_int_equal(brd_ring_attach(&hc, &r), -EPROTO);
        h->hdr_size -= 8;
        h->capacity = 12288;            /* not a power of two */
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        h->capacity = 8192;
        h->mask = 4095;
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        h->mask = 8191;
        h->data_off = 64;
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        h->data_off = 4096;
        AO_store(&h->tail.idx, 8192 + 8);       /* tail - head > capacity */
        assert_int_equal(brd_ring_attach(&hc, &r), -EPROTO);
        /* Indices crafted to wrap 2^64 soon (a real ring never gets near):
         * the ends compare them as plain numbers. */
        AO_store(&h->tail.idx, BRD_RING_INDEX_MAX);
        AO_store(&h->head.idx, BRD_RING_INDEX_MAX);
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        /* A head past the tail, by a little or wrapped round 2^64 (where
         * tail - head comes out small): either side refuses it. */
        AO_store(&h->tail.idx, 0);
        AO_store(&h->head.idx, 8);
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        AO_store(&h->head.idx, (AO_t)-8);
        assert_int_equal(brd_ring_attach(&hp, &r), -EPROTO);
        assert_int_equal(brd_ring_attach(&hc, &r), -EPROTO);
        AO_store(&h->head.idx, 0);
        AO_store(&h->tail.idx, 0);
        assert_null(r);
        /* Repaired: attaches. */
        assert_int_equal(brd_ring_attach(&hc, &r), 0);
        brd_ring_close(r);
        munmap(h, sz);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

static void test_roles_and_sizes(void **state)
{
        char buf[16384];
        const void *view;
        void *w;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 8192, 0);
        memset(buf, 'x', sizeof(buf));
        /* Wrong role: -EBADF. */
        assert_int_equal(brd_ring_send(x.c, buf, 1, 0), -EBADF);
        assert_int_equal(brd_ring_recv(x.p, buf, 1, 0), -EBADF);
        assert_int_equal(brd_ring_reserve(x.c, 1, &w, 0), -EBADF);
        assert_int_equal(brd_ring_peek(x.p, &view, 0), -EBADF);
        assert_int_equal(brd_ring_write(x.c, buf, 1, 0), -EBADF);
        assert_int_equal(brd_ring_read(x.p, buf, 1, 0), -EBADF);
        /* Too long: -EMSGSIZE after the endpoint's checks (role, fork,
         * final error), before the others (ringbuf.h: brd_ring_send()). */
        assert_int_equal(brd_ring_send(x.p, buf, 4097, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_reserve(x.p, 4097, &w, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_send(x.c, buf, 4097, 0), -EBADF);
        assert_int_equal(brd_ring_send(x.p, NULL, 4097, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_reserve(x.p, 4097, NULL, 0), -EINVAL);
        assert_int_equal(brd_ring_send(x.p, buf, 4096, 0), 0);
        assert_int_equal(brd_ring_recv(x.c, buf, sizeof(buf), 0), 4096);
        /* NULL handling */
        assert_int_equal(brd_ring_send(NULL, buf, 1, 0), -EINVAL);
        assert_int_equal(brd_ring_recv(NULL, buf, 1, 0), -EINVAL);
        assert_int_equal(brd_ring_fd(NULL), -EINVAL);
        assert_int_equal(brd_ring_interrupt(NULL), -EINVAL);
        assert_int_equal(brd_ring_read(x.c, buf, 0, 0), -EINVAL);
        brd_ring_close(NULL);
        /* A final error comes before the size too. */
        brd_ring_close(x.c);
        x.c = NULL;
        assert_int_equal(brd_ring_send(x.p, buf, 1, 0), -EPIPE);
        assert_int_equal(brd_ring_send(x.p, buf, 4097, 0), -EPIPE);
        assert_int_equal(brd_ring_reserve(x.p, 4097, &w, 0), -EPIPE);
        pair_close(&x);
        t_leak_end(&l);
}

static void test_empty_and_full(void **state)
{
        char buf[512], out[512];
        struct pair x;
        struct t_leak l;
        int64_t t0;
        int n = 0, e;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        t0 = t_now_ms();
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 30), -ETIMEDOUT);
        assert_true(t_now_ms() - t0 >= 30);
        memset(buf, 1, sizeof(buf));
        while ((e = brd_ring_send(x.p, buf, 100, 0)) == 0)
                n++;
        assert_int_equal(e, -EAGAIN);
        assert_int_equal(n, 4096 / 112);
        t0 = t_now_ms();
        assert_int_equal(brd_ring_send(x.p, buf, 100, 20), -ETIMEDOUT);
        assert_true(t_now_ms() - t0 >= 20);
        /* One message out makes room for one more. */
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 100);
        assert_int_equal(brd_ring_send(x.p, buf, 100, 0), 0);
        assert_int_equal(brd_ring_send(x.p, buf, 100, 0), -EAGAIN);
        while (n--)
                assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 100);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        pair_close(&x);
        t_leak_end(&l);
}

/* Minor page faults this thread took so far (not the process's: a
 * sanitizer's background thread faults on its own). */
static long minor_faults(void)
{
        struct rusage ru;

        assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
        return ru.ru_minflt;
}

/*
 * BRD_RING_POPULATE: both ends attached in this process, messages that run
 * past the data area's end into its second view, lap after lap, and not one
 * page fault while they stream.
 */
static void test_populate_no_faults(void **state)
{
        static char buf[3000], out[3000];
        struct pair x;
        struct t_leak l;
        long f0;
        int i;

        (void)state;
        t_leak_begin(&l);
        memset(buf, 7, sizeof(buf));
        memset(out, 0, sizeof(out));
        pair_open(&x, 64 * 1024, BRD_RING_POPULATE);
        f0 = minor_faults();
        /* 3008-byte frames through 64 KiB: every lap's last one wraps, at a
         * different offset each lap (3008 does not divide 65536). */
        for (i = 0; i < 2000; i++) {
                assert_int_equal(brd_ring_send(x.p, buf, sizeof(buf), 0), 0);
                assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), (ssize_t)sizeof(out));
        }
        assert_int_equal(minor_faults() - f0, 0);
        assert_memory_equal(buf, out, sizeof(buf));
        pair_close(&x);
        t_leak_end(&l);
}

/*
 * POPULATE prefaults only space the ring's file has: holes punched in a
 * ring's data (as a peer may, the memfd is not write-sealed) stay holes at
 * the next attach, which would otherwise allocate them all again (a
 * peer's sparse ring of 4 GiB: all of it).
 */
static void test_populate_skips_sparse_file(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *p, *c;
        struct t_leak l;
        struct stat st;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4 << 20, BRD_RING_POPULATE, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hp, &p), 0);
        brd_handle_close(&hp);
        /* The data area: the header's page stays. */
        assert_int_equal(fallocate(hc.fds[0], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096,
                                   (off_t)hc.size - 4096), 0);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
        assert_int_equal(fstat(hc.fds[0], &st), 0);
        assert_true(st.st_blocks * 512 < (1 << 20));
        brd_handle_close(&hc);
        assert_int_equal(brd_ring_send(p, "ok", 2, 0), 0);      /* still a ring */
        brd_ring_close(c);
        brd_ring_close(p);
        t_leak_end(&l);
}

static void test_recv_small_buffer_keeps_message(void **state)
{
        char out[64];
        const void *view;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_send(x.p, "hello, world", 12, 0), 0);
        assert_int_equal(brd_ring_recv(x.c, out, 5, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_recv(x.c, out, 11, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 12);
        assert_memory_equal(view, "hello, world", 12);
        assert_int_equal(brd_ring_recv(x.c, out, 12, 0), 12);
        assert_memory_equal(out, "hello, world", 12);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        pair_close(&x);
        t_leak_end(&l);
}

static void test_zero_copy(void **state)
{
        const void *view;
        void *w;
        char out[8192];
        struct brd_ring_stats s;
        struct pair x;
        struct t_leak l;
        int i;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 16384, 0);
        assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);     /* nothing reserved */
        assert_int_equal(brd_ring_release(x.c), -EINVAL);       /* nothing peeked */
        for (i = 0; i < 200; i++) {
                size_t len = (size_t)(i * 37) % 8193;

                assert_int_equal(brd_ring_reserve(x.p, len, &w, 0), 0);
                /* From 1 KiB payloads start on a cache line. */
                if (len >= 1024)
                        assert_int_equal((uintptr_t)w % 64, 0);
                memset(w, i & 0xff, len);
                assert_int_equal(brd_ring_commit(x.p, len + 1), -EINVAL);
                /* commit may shorten the message */
                assert_int_equal(brd_ring_commit(x.p, len / 2), 0);
                assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);
                assert_int_equal(brd_ring_peek(x.c, &view, 0), (ssize_t)(len / 2));
                assert_int_equal(brd_ring_peek(x.c, &view, 0), (ssize_t)(len / 2));
                memset(out, i & 0xff, len / 2);
                assert_memory_equal(view, out, len / 2);
                assert_int_equal(brd_ring_release(x.c), 0);
                assert_int_equal(brd_ring_release(x.c), -EINVAL);
        }
        /* A reservation is invisible until committed. */
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), -EAGAIN);
        assert_int_equal(brd_ring_commit(x.p, 10), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 10);
        assert_int_equal(brd_ring_release(x.c), 0);
        /* A send abandons the reservation, a reserve that fails its
         * argument checks keeps it; wrong-role calls are -EBADF on the fast
         * paths too. */
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        assert_int_equal(brd_ring_send(x.p, "abc", 3, 0), 0);
        assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        assert_int_equal(brd_ring_reserve(x.p, 16384, &w, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_commit(x.p, 0), 0);   /* the failed size check came first */
        assert_int_equal(brd_ring_reserve(x.p, 16, &w, 0), 0);
        assert_int_equal(brd_ring_reserve(x.p, 16, NULL, 0), -EINVAL);
        assert_int_equal(brd_ring_commit(x.p, 16), 0);
        assert_int_equal(brd_ring_commit(x.c, 0), -EBADF);
        assert_int_equal(brd_ring_release(x.p), -EBADF);
        assert_int_equal(brd_ring_peek(x.p, &view, 0), -EBADF);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 3);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 0);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 16);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_stats(x.c, &s), 0);
        assert_int_equal(s.messages, 204);
        /* Once final, release answers the final error, peeked or not. */
        assert_int_equal(brd_ring_send(x.p, "z", 1, 0), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 1);
        brd_ring_close(x.p);
        x.p = NULL;
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), -EPIPE);
        assert_int_equal(brd_ring_release(x.c), -EPIPE);
        pair_close(&x);

        /* Payloads from 32 KiB sit at a fixed offset modulo 4 KiB, whatever
         * came before them; a shorter commit keeps the place. */
        pair_open(&x, 256 * 1024, 0);
        for (i = 0; i < 64; i++) {
                size_t len = i % 2 ? 32768 + (size_t)i * 1000 : (size_t)i * 77;
                const unsigned char *v;

                assert_int_equal(brd_ring_reserve(x.p, len, &w, 0), 0);
                if (len >= 32768)
                        assert_int_equal((uintptr_t)w % 4096, 0);
                memset(w, i, len);
                assert_int_equal(brd_ring_commit(x.p, len - len / 4), 0);
                assert_int_equal(brd_ring_peek(x.c, &view, 0), (ssize_t)(len - len / 4));
                assert_int_equal((uintptr_t)view % 4096, (uintptr_t)w % 4096);
                v = view;
                if (len)
                        assert_true(v[0] == i && v[len - len / 4 - 1] == i);
                assert_int_equal(brd_ring_release(x.c), 0);
        }
        pair_close(&x);
        t_leak_end(&l);
}

/*
 * A reserve, send or write that fails its argument checks (-EMSGSIZE,
 * -EINVAL) leaves an open reservation as it was; one that gets past them
 * abandons it, whether it then succeeds or fails (-EAGAIN here).
 */
static void test_reservation_kept_by_bad_input_only(void **state)
{
        static char big[4096];
        char out[64];
        void *w, *w2;
        struct pair x;
        struct t_leak l;
        int i, n = 0;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        /* Bad input: the reservation stays, and is committed. */
        assert_int_equal(brd_ring_reserve(x.p, 5, &w, 0), 0);
        memcpy(w, "hello", 5);
        w2 = &w2;
        assert_int_equal(brd_ring_reserve(x.p, sizeof(big), &w2, 0), -EMSGSIZE);
        assert_ptr_equal(w2, &w2);
        assert_int_equal(brd_ring_reserve(x.p, 5, NULL, 0), -EINVAL);
        assert_int_equal(brd_ring_send(x.p, big, sizeof(big), 0), -EMSGSIZE);
        assert_int_equal(brd_ring_send(x.p, NULL, 3, 0), -EINVAL);
        assert_int_equal(brd_ring_write(x.p, NULL, 3, 0), -EINVAL);
        assert_int_equal(brd_ring_commit(x.p, 5), 0);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 5);
        assert_memory_equal(out, "hello", 5);

        /* Past the checks: abandoned, even by a call that fails.  Room is
         * left for 5 bytes, not for 2000. */
        while (brd_ring_send(x.p, big, 512, 0) == 0)
                n++;
        assert_int_equal(brd_ring_reserve(x.p, 5, &w, 0), 0);
        assert_int_equal(brd_ring_reserve(x.p, 2000, &w2, 0), -EAGAIN);
        assert_int_equal(brd_ring_commit(x.p, 5), -EINVAL);
        assert_int_equal(brd_ring_reserve(x.p, 5, &w, 0), 0);
        assert_int_equal(brd_ring_send(x.p, big, 2000, 0), -EAGAIN);
        assert_int_equal(brd_ring_commit(x.p, 5), -EINVAL);
        assert_int_equal(brd_ring_reserve(x.p, 5, &w, 0), 0);
        assert_int_equal(brd_ring_write(x.p, big, 0, 0), 0);
        assert_int_equal(brd_ring_commit(x.p, 5), -EINVAL);
        /* A write that may not wait takes the room there is (a frame for
         * 4096 - n * 520 - 8 bytes): it abandons the reservation too. */
        assert_int_equal(brd_ring_reserve(x.p, 5, &w, 0), 0);
        assert_int_equal(brd_ring_write(x.p, big, 2000, 0), 4096 - n * 520 - 8);
        assert_int_equal(brd_ring_commit(x.p, 5), -EINVAL);
        /* Nothing of the abandoned ones arrives. */
        for (i = 0; i < n; i++)
                assert_int_equal(brd_ring_recv(x.c, big, sizeof(big), 0), 512);
        assert_int_equal(brd_ring_recv(x.c, big, sizeof(big), 0), 4096 - n * 520 - 8);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        pair_close(&x);
        t_leak_end(&l);
}

/* A committed reservation stays used whatever moves pos next: laps of
 * sends, a write (commit stores nothing to use it up). */
static void test_used_reservation_stays_used(void **state)
{
        char out[64];
        void *w;
        struct pair x;
        struct t_leak l;
        int i;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 16384, 0);
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        assert_int_equal(brd_ring_commit(x.p, 10), 0);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 10);
        for (i = 0; i < 3 * 16384 / 16; i++) {
                assert_int_equal(brd_ring_send(x.p, "12345678", 8, 0), 0);
                assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 8);
                assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);
        }
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        assert_int_equal(brd_ring_commit(x.p, 10), 0);
        assert_int_equal(brd_ring_write(x.p, "xyz", 3, 0), 3);
        assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 10);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 3);
        assert_int_equal(brd_ring_commit(x.p, 0), -EINVAL);
        pair_close(&x);
        t_leak_end(&l);
}

static void test_empty_messages_then_eof(void **state)
{
        const char *m[] = { "", "a", "", "bc" };
        char out[8];
        struct pair x;
        struct t_leak l;
        unsigned i;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        for (i = 0; i < 4; i++)
                assert_int_equal(brd_ring_send(x.p, m[i], strlen(m[i]), 0), 0);
        /* No buffer at all for an empty message (UBSan: no memcpy of NULL). */
        assert_int_equal(brd_ring_send(x.p, NULL, 0, 0), 0);
        brd_ring_close(x.p);
        assert_int_equal(brd_ring_recv(x.c, NULL, 0, -1), 0);
        assert_int_equal(brd_ring_recv(x.c, NULL, 0, -1), -EMSGSIZE);  /* "a" stays */
        for (i = 1; i < 4; i++) {
                memset(out, 0, sizeof(out));
                assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), -1), (ssize_t)strlen(m[i]));
                assert_string_equal(out, m[i]);
        }
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), -1), 0);    /* the NULL one */
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), -1), -EPIPE);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EPIPE);
        assert_int_equal(brd_ring_read(x.c, out, sizeof(out), -1), 0);
        brd_ring_close(x.c);
        t_leak_end(&l);
}

/* A read that takes runs of empty messages, whose producer then closed,
 * answers EOF (0) at once, as a wait would: it answered the stop's -EAGAIN
 * (timeout 0), or took the pending interrupt (-ECANCELED).  Also where the
 * run reaches the most one call takes (RING_READ_EMPTY_CAP). */
static void test_read_eof_after_empty_runs(void **state)
{
        static const unsigned runs[] = { 2 * RING_READ_EMPTY_MAX, RING_READ_EMPTY_CAP };
        char out[8];
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (int k = 0; k < 4; k++) {
                int intr = k & 1;

                pair_open(&x, 262144, 0);
                for (unsigned i = 0; i < runs[k / 2]; i++)
                        assert_int_equal(brd_ring_send(x.p, NULL, 0, 0), 0);
                brd_ring_close(x.p);
                if (intr)
                        assert_int_equal(brd_ring_interrupt(x.c), 0);
                assert_int_equal(brd_ring_read(x.c, out, sizeof(out), intr ? -1 : 0), 0);
                brd_ring_close(x.c);
        }
        t_leak_end(&l);
}

static void test_eof_when_nothing_sent(void **state)
{
        char out[8];
        const void *view;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        brd_ring_close(x.p);
        assert_int_equal(brd_ring_read(x.c, out, sizeof(out), -1), 0);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), -1), -EPIPE);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), -EPIPE);
        brd_ring_close(x.c);
        t_leak_end(&l);
}

static void test_consumer_close_gives_epipe(void **state)
{
        char buf[64] = { 0 };
        void *w;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_send(x.p, buf, 10, 0), 0);
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, 0), 0);
        brd_ring_close(x.c);
        assert_int_equal(brd_ring_commit(x.p, 10), -EPIPE);
        assert_int_equal(brd_ring_send(x.p, buf, 10, 0), -EPIPE);
        assert_int_equal(brd_ring_send(x.p, buf, 10, -1), -EPIPE);
        assert_int_equal(brd_ring_write(x.p, buf, 10, -1), -EPIPE);
        assert_int_equal(brd_ring_reserve(x.p, 10, &w, -1), -EPIPE);
        brd_ring_close(x.p);
        t_leak_end(&l);
}

/* The producer's stats count what it sent: not a message that send() or
 * commit() dropped with -EPIPE because the consumer had closed. */
static void test_stats_exclude_dropped_messages(void **state)
{
        struct brd_ring_stats s;
        char buf[64] = { 0 };
        void *w;
        struct pair x;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_send(x.p, buf, 10, 0), 0);
        brd_ring_close(x.c);
        x.c = NULL;
        assert_int_equal(brd_ring_send(x.p, buf, 5, 0), -EPIPE);
        assert_int_equal(brd_ring_send(x.p, buf, 7, 0), -EPIPE);
        assert_int_equal(brd_ring_write(x.p, buf, 9, 0), -EPIPE);
        assert_int_equal(brd_ring_stats(x.p, &s), 0);
        assert_int_equal(s.messages, 1);
        assert_int_equal(s.bytes, 10);
        pair_close(&x);

        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_reserve(x.p, 100, &w, 0), 0);
        brd_ring_close(x.c);
        x.c = NULL;
        assert_int_equal(brd_ring_commit(x.p, 100), -EPIPE);
        assert_int_equal(brd_ring_stats(x.p, &s), 0);
        assert_int_equal(s.messages, 0);
        assert_int_equal(s.bytes, 0);
        pair_close(&x);
        t_leak_end(&l);
}

static void test_stream_partial_reads(void **state)
{
        uint8_t in[20000], out[20000];
        struct pair x;
        struct t_leak l;
        size_t got = 0;
        ssize_t n;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 32768, 0);
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i * 7 + 3);
        assert_int_equal(brd_ring_send(x.p, "", 0, 0), 0);     /* empty message: skipped */
        assert_int_equal(brd_ring_write(x.p, in, sizeof(in), 0), (ssize_t)sizeof(in));
        while (got < sizeof(in)) {
                n = brd_ring_read(x.c, out + got, 333, 0);
                assert_true(n > 0 && n <= 333);
                got += (size_t)n;
        }
        assert_memory_equal(in, out, sizeof(in));
        assert_int_equal(brd_ring_read(x.c, out, 10, 0), -EAGAIN);
        /* A message read in part continues at recv. */
        assert_int_equal(brd_ring_send(x.p, "abcdef", 6, 0), 0);
        assert_int_equal(brd_ring_read(x.c, out, 2, 0), 2);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 4);
        assert_memory_equal(out, "cdef", 4);
        pair_close(&x);
        t_leak_end(&l);
}

/*
 * A write that may not wait (timeout 0), or whose wait ran out, takes the
 * room that is free, less than a quarter of the ring: before, it answered
 * -EAGAIN (-ETIMEDOUT after its wait) with 600 bytes free, and a poll loop
 * on brd_ring_fd() woke at every release to be refused again.
 */
static void test_stream_write_takes_crumbs(void **state)
{
        uint8_t in[2000], out[4096], m[100] = { 0 };
        struct pair x;
        struct t_leak l;
        size_t got = 0, put = 0;
        ssize_t n;
        int k;

        (void)state;
        t_leak_begin(&l);
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t)(i * 13 + 5);
        for (int timed = 0; timed < 2; timed++) {
                pair_open(&x, 4096, 0);
                while (brd_ring_send(x.p, m, sizeof(m), 0) == 0)
                        ;
                for (k = 0; k < 5; k++)        /* 5 frames of 112 bytes back */
                        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), sizeof(m));
                n = brd_ring_write(x.p, in, sizeof(in), timed ? 20 : 0);
                assert_true(n >= 560 - 8 && n < (ssize_t)sizeof(in));
                put = (size_t)n;
                /* Full now: nothing more without a wait. */
                assert_int_equal(brd_ring_write(x.p, in + put, sizeof(in) - put, 0), -EAGAIN);
                while ((n = brd_ring_recv(x.c, out, sizeof(m), 0)) == sizeof(m) &&
                       !memcmp(out, m, sizeof(m)))
                        ;
                /* The first recv past the 100-byte messages met the chunk:
                 * read it as a stream. */
                assert_int_equal(n, -EMSGSIZE);
                got = 0;
                while (got < put) {
                        n = brd_ring_read(x.c, out + got, sizeof(out) - got, 0);
                        assert_true(n > 0);
                        got += (size_t)n;
                }
                assert_int_equal(got, put);
                assert_memory_equal(out, in, put);
                pair_close(&x);
        }
        t_leak_end(&l);
}

/*
 * A peeked message stays in the ring until release, whatever comes between:
 * peek again, recv, read (in part, then peek shows the rest and release
 * takes it), and its space goes back to the producer only at release (a
 * full ring stays full while the first message is peeked).  Peek moves the
 * consumer's position past the frame and every other call moves it back:
 * each of these got the next message instead if one did not.
 */
static void test_peeked_message_stays_until_release(void **state)
{
        char big[1000] = { 0 }, out[64];
        const void *v;
        struct pair x;
        struct t_leak l;
        int sent = 0;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        assert_int_equal(brd_ring_send(x.p, "first", 5, 0), 0);
        assert_int_equal(brd_ring_send(x.p, "second", 6, 0), 0);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), 5);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), 5);
        assert_memory_equal(v, "first", 5);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 5);
        assert_memory_equal(out, "first", 5);
        assert_int_equal(brd_ring_release(x.c), -EINVAL);      /* recv took it */
        assert_int_equal(brd_ring_peek(x.c, &v, 0), 6);
        assert_int_equal(brd_ring_read(x.c, out, 2, 0), 2);
        assert_memory_equal(out, "se", 2);
        assert_int_equal(brd_ring_release(x.c), -EINVAL);      /* read dropped the peek */
        assert_int_equal(brd_ring_peek(x.c, &v, 0), 4);
        assert_memory_equal(v, "cond", 4);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), -EAGAIN);
        /* A recv too small for the peeked message leaves it, drops the peek. */
        assert_int_equal(brd_ring_send(x.p, "third", 5, 0), 0);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), 5);
        assert_int_equal(brd_ring_recv(x.c, out, 2, 0), -EMSGSIZE);
        assert_int_equal(brd_ring_release(x.c), -EINVAL);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 5);
        assert_memory_equal(out, "third", 5);

        /* Full: the space of a peeked message is not free before release. */
        while (brd_ring_send(x.p, big, sizeof(big), 0) == 0)
                sent++;
        assert_true(sent >= 3);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), sizeof(big));
        assert_int_equal(brd_ring_send(x.p, big, sizeof(big), 0), -EAGAIN);
        assert_int_equal(brd_ring_peek(x.c, &v, 0), sizeof(big));
        assert_int_equal(brd_ring_send(x.p, big, sizeof(big), 0), -EAGAIN);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_send(x.p, big, sizeof(big), 0), 0);
        for (int i = 0; i < sent; i++) {
                assert_int_equal(brd_ring_peek(x.c, &v, 0), sizeof(big));
                assert_int_equal(brd_ring_release(x.c), 0);
        }
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        pair_close(&x);
        t_leak_end(&l);
}

/*
 * The consumer's stats count a message once, whole, whichever call
 * finishes it after read() took a part: recv, peek + release, or read; so
 * they equal the producer's.
 */
static void test_stats_count_partly_read_messages_once(void **state)
{
        struct brd_ring_stats sp, sc;
        const void *view;
        char out[64];
        struct pair x;
        struct t_leak l;
        int i;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 4096, 0);
        for (i = 0; i < 4; i++)
                assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        assert_int_equal(brd_ring_read(x.c, out, 3, 0), 3);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 7);
        assert_int_equal(brd_ring_read(x.c, out, 4, 0), 4);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 6);
        assert_memory_equal(view, "456789", 6);
        assert_int_equal(brd_ring_release(x.c), 0);
        assert_int_equal(brd_ring_read(x.c, out, 2, 0), 2);
        assert_int_equal(brd_ring_peek(x.c, &view, 0), 8);
        assert_int_equal(brd_ring_read(x.c, out, 8, 0), 8);
        assert_int_equal(brd_ring_read(x.c, out, 5, 0), 5);
        assert_int_equal(brd_ring_read(x.c, out, sizeof(out), 0), 5);
        assert_int_equal(brd_ring_stats(x.p, &sp), 0);
        assert_int_equal(brd_ring_stats(x.c, &sc), 0);
        assert_int_equal(sp.messages, 4);
        assert_int_equal(sp.bytes, 40);
        assert_int_equal(sc.messages, 4);
        assert_int_equal(sc.bytes, 40);
        pair_close(&x);
        t_leak_end(&l);
}

/*
 * Copies between the caller's buffers and the ring at every alignment the
 * copy helpers tell apart (line-aligned to each other or not, below and past
 * the chunk size, past the page-by-page size): exact bytes, and nothing
 * written outside the caller's buffer.
 */
static void test_copies_at_any_alignment(void **state)
{
        static const size_t sizes[] = { 65, 2047, 2048, 2049, 2113, 4096, 4099,
                                        65536 + 3, 300 * 1024 + 5 };
        static const size_t offs[] = { 0, 1, 8, 16, 31, 33, 63, 64 + 16 };
        const size_t max = 300 * 1024 + 5, room = max + 4096 + 256;
        uint8_t *src = malloc(room), *dst = malloc(room), *cmp = malloc(room);
        struct pair x;
        struct t_leak l;

        (void)state;
        assert_non_null(src);
        assert_non_null(dst);
        assert_non_null(cmp);
        t_leak_begin(&l);
        pair_open(&x, 1 << 20, 0);
        for (size_t i = 0; i < room; i++)
                src[i] = (uint8_t)(i * 131 + (i >> 8) + 7);
        for (size_t si = 0; si < BRD_ARRAY_SIZE(sizes); si++) {
                size_t n = sizes[si];

                for (size_t a = 0; a < BRD_ARRAY_SIZE(offs); a++) {
                        size_t so = offs[a], d0 = offs[(a + si) % BRD_ARRAY_SIZE(offs)];
                        size_t d1 = offs[(a + 3) % BRD_ARRAY_SIZE(offs)], got = 0;
                        ssize_t k;

                        /* A message: send from src + so, recv into dst + d0. */
                        memset(dst, 0xa5, room);
                        assert_int_equal(brd_ring_send(x.p, src + so, n, 0), 0);
                        assert_int_equal(brd_ring_recv(x.c, dst + d0, n, 0), (ssize_t)n);
                        assert_memory_equal(dst + d0, src + so, n);
                        memset(cmp, 0xa5, room);
                        assert_memory_equal(dst, cmp, d0);
                        assert_memory_equal(dst + d0 + n, cmp, room - d0 - n);

                        /* The byte stream: write from src + d1, read into dst + so. */
                        memset(dst, 0x5a, room);
                        assert_int_equal(brd_ring_write(x.p, src + d1, n, 0), (ssize_t)n);
                        while (got < n) {
                                k = brd_ring_read(x.c, dst + so + got, n - got, 0);
                                assert_true(k > 0);
                                got += (size_t)k;
                        }
                        assert_memory_equal(dst + so, src + d1, n);
                        memset(cmp, 0x5a, room);
                        assert_memory_equal(dst, cmp, so);
                        assert_memory_equal(dst + so + n, cmp, room - so - n);
                }
        }
        pair_close(&x);
        t_leak_end(&l);
        free(src);
        free(dst);
        free(cmp);
}

static void test_batching_flush(void **state)
{
        char out[64];
        struct pair x;
        struct t_leak l;
        int i;

        (void)state;
        t_leak_begin(&l);
        pair_open(&x, 65536, BRD_RING_BATCH);
        for (i = 0; i < 10; i++)
                assert_int_equal(brd_ring_send(x.p, "0123456789", 10, 0), 0);
        /* Held back (the consumer is not sleeping). */
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EAGAIN);
        assert_int_equal(brd_ring_flush(x.p), 0);
        for (i = 0; i < 10; i++)
                assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 10);
        assert_int_equal(brd_ring_flush(x.c), 0);
        /* close publishes too */
        assert_int_equal(brd_ring_send(x.p, "z", 1, 0), 0);
        brd_ring_close(x.p);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), 1);
        assert_int_equal(brd_ring_recv(x.c, out, sizeof(out), 0), -EPIPE);
        brd_ring_close(x.c);
        t_leak_end(&l);
}

/*
 * A batching producer whose consumer closed while messages were held back:
 * its flush answers -EPIPE (what it held is never delivered), and so does
 * every flush after.  It answered 0 and published into a ring nobody
 * reads, so a producer that only flushes never heard of it.
 */
static void test_batching_flush_consumer_closed(void **state)
{
        struct brd_ring *p, *c;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(65536, BRD_RING_BATCH, &p, &c);
        assert_int_equal(brd_ring_send(p, "held", 4, 0), 0);
        brd_ring_close(c);
        assert_int_equal(brd_ring_flush(p), -EPIPE);
        assert_int_equal(brd_ring_flush(p), -EPIPE);
        assert_int_equal(brd_ring_send(p, "more", 4, 0), -EPIPE);
        brd_ring_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------------- through a forked peer */

static void msg_gen(uint64_t *seed, uint8_t *buf, size_t *len, size_t maxlen)
{
        size_t i;

        *len = (size_t)(t_rand(seed) % (maxlen + 1));
        for (i = 0; i < *len; i++)
                buf[i] = (uint8_t)t_rand(seed);
}

#define NMSG 100000

static int child_send_random(struct brd_handle *h, unsigned flags)
{
        struct brd_ring *r;
        uint8_t buf[1001];
        uint64_t seed = 0x1234567;
        size_t len;
        int i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < NMSG; i++) {
                msg_gen(&seed, buf, &len, 1000);
                if (brd_ring_send(r, buf, len, -1))
                        return 11;
        }
        brd_ring_close(r);
        return 0;
}

static void run_random_messages(unsigned flags)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_sha256 got, want;
        uint8_t buf[1001], exp[1001], d1[32], d2[32];
        uint64_t seed = 0x1234567;
        struct t_leak l;
        size_t len;
        ssize_t n;
        pid_t pid;
        int i;

        t_leak_begin(&l);
        pid = t_ring_fork(10 * 1024, flags, &hp, &hc, false, &r);
        if (pid == 0) {
                _exit(child_send_random(&hp, flags));
        }
        t_sha256_init(&got);
        t_sha256_init(&want);
        for (i = 0; i < NMSG; i++) {
                uint32_t le;

                n = brd_ring_recv(r, buf, sizeof(buf), 10000);
                assert_true(n >= 0 && n <= 1000);
                le = (uint32_t)n;
                t_sha256_update(&got, &le, 4);
                t_sha256_update(&got, buf, (size_t)n);
                msg_gen(&seed, exp, &len, 1000);
                le = (uint32_t)len;
                t_sha256_update(&want, &le, 4);
                t_sha256_update(&want, exp, len);
        }
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), -EPIPE);
        t_sha256_final(&got, d1);
        t_sha256_final(&want, d2);
        assert_memory_equal(d1, d2, 32);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
}

/*
 * Large frames wrap early while the consumer waits for them: 64 KiB
 * messages through a 4 MiB ring, each sent once the consumer (a thread) has
 * taken the last one and waits in peek, land in the ring's first few frames
 * only (the window is 4 frames), every byte intact, the producer alternating
 * send and reserve/commit.  A consumer that does not wait gets the whole
 * capacity: the producer fills the ring as before.
 */
#define EARLY_LEN (64 * 1024)
#define EARLY_N   200

struct early_cons {
        struct brd_ring *c;
        AO_t taken;                     /* messages consumed */
        ptrdiff_t lo, hi;               /* payload addresses, relative to the first */
        int bad;
};

static void early_fill(uint8_t *buf, int i)
{
        for (size_t j = 0; j < EARLY_LEN; j++)
                buf[j] = (uint8_t)(j * 13 + (size_t)i * 7);
}

static void *early_consumer(void *arg)
{
        struct early_cons *ec = arg;
        uint8_t *want = malloc(EARLY_LEN);
        const uint8_t *first = NULL;
        const void *view;
        int i;

        for (i = 0; want && i < EARLY_N; i++) {
                ptrdiff_t d;

                if (brd_ring_peek(ec->c, &view, 10000) != EARLY_LEN) {
                        ec->bad = 1;
                        break;
                }
                early_fill(want, i);
                if (memcmp(view, want, EARLY_LEN))
                        ec->bad = 2;
                if (!first)
                        first = view;
                d = (const uint8_t *)view - first;
                ec->lo = d < ec->lo ? d : ec->lo;
                ec->hi = d > ec->hi ? d : ec->hi;
                if (brd_ring_release(ec->c))
                        ec->bad = 3;
                AO_store_release(&ec->taken, (AO_t)i + 1);
        }
        if (!want || (!ec->bad && brd_ring_peek(ec->c, &view, 10000) != -EPIPE))
                ec->bad = 4;
        free(want);
        return NULL;
}

static void test_large_frames_wrap_early(void **state)
{
        const size_t cap = 4 << 20, frame = EARLY_LEN + 4096;
        uint8_t *in = malloc(EARLY_LEN), *out = malloc(EARLY_LEN);
        struct early_cons ec = { 0 };
        struct t_ring_view v;
        struct t_leak l;
        pthread_t th;
        void *w;
        int i, k;

        (void)state;
        assert_non_null(in);
        assert_non_null(out);
        t_leak_begin(&l);
        t_ring_view_open(&v, cap, 0, false);
        ec.c = v.c;
        assert_int_equal(pthread_create(&th, NULL, early_consumer, &ec), 0);
        for (i = 0; i < EARLY_N; i++) {
                int64_t until = t_now_ns() + 10 * 1000000000ll;

                /* The last one taken, and the consumer back in its wait. */
                while (i && (AO_load_acquire(&ec.taken) < (AO_t)i ||
                             !AO_int_load(&v.hdr->cons.waiting)) && t_now_ns() < until)
                        sched_yield();
                assert_true(t_now_ns() < until);
                early_fill(in, i);
                if (i % 2) {
                        assert_int_equal(brd_ring_send(v.p, in, EARLY_LEN, 10000), 0);
                } else {
                        assert_int_equal(brd_ring_reserve(v.p, EARLY_LEN, &w, 10000), 0);
                        memcpy(w, in, EARLY_LEN);
                        assert_int_equal(brd_ring_commit(v.p, EARLY_LEN), 0);
                        assert_int_equal(brd_ring_commit(v.p, EARLY_LEN), -EINVAL);    /* used */
                }
        }
        brd_ring_close(v.p);
        v.p = NULL;
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(ec.bad, 0);
        /* The first payload sits a page into the ring: one page below it is
         * the lap's start, where early frames go. */
        assert_true(ec.lo >= -4096);
        assert_true(ec.hi - ec.lo < (ptrdiff_t)(5 * frame));
        t_ring_view_close(&v);

        /* A consumer that keeps up without waiting, then stops: the
         * producer still fills the whole ring. */
        t_ring_view_open(&v, cap, 0, false);
        for (i = 0; i < 40; i++) {
                early_fill(in, i);
                assert_int_equal(brd_ring_send(v.p, in, EARLY_LEN, 0), 0);
                assert_int_equal(brd_ring_recv(v.c, out, EARLY_LEN, 0), EARLY_LEN);
                assert_memory_equal(out, in, EARLY_LEN);
        }
        for (k = 0; brd_ring_send(v.p, in, EARLY_LEN, 0) == 0; k++)
                ;
        assert_true((size_t)k * frame >= cap - 2 * frame);
        for (i = 0; i < k; i++) {
                assert_int_equal(brd_ring_recv(v.c, out, EARLY_LEN, 0), EARLY_LEN);
                assert_memory_equal(out, in, EARLY_LEN);
        }
        assert_int_equal(brd_ring_recv(v.c, out, EARLY_LEN, 0), -EAGAIN);
        t_ring_view_close(&v);
        t_leak_end(&l);
        free(in);
        free(out);
}

/*
 * Large messages of random sizes (0..300 KiB) through a 4 MiB ring to a
 * forked consumer, the producer alternating send and reserve/commit, the
 * consumer recv and peek/release: early wraps, their PAD frames and ordinary
 * wraps mixed at full speed.  The producer hashes what it sends and sends
 * the SHA-256 last; the consumer's hash of what arrived must equal it.  The
 * producer also makes the bytes, so the consumer is the faster side and
 * waits (which is what lets frames wrap early).
 */
#define NBIG 600
#define BIGMAX (300 * 1024)

static void sha_msg(struct t_sha256 *h, const void *msg, size_t len)
{
        uint32_t le = (uint32_t)len;

        t_sha256_update(h, &le, 4);
        t_sha256_update(h, msg, len);
}

static int child_send_big(struct brd_handle *h)
{
        struct brd_ring *r;
        struct t_sha256 sent;
        uint8_t *buf = malloc(BIGMAX), d[32];
        uint64_t seed = 0xb16;
        size_t len;
        void *w;
        int i;

        if (!buf || brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        t_sha256_init(&sent);
        for (i = 0; i < NBIG; i++) {
                msg_gen(&seed, buf, &len, BIGMAX);
                sha_msg(&sent, buf, len);
                if (i % 2) {
                        if (brd_ring_send(r, buf, len, -1))
                                return 11;
                } else {
                        if (brd_ring_reserve(r, len, &w, -1))
                                return 12;
                        memcpy(w, buf, len);
                        if (brd_ring_commit(r, len))
                                return 13;
                }
        }
        t_sha256_final(&sent, d);
        if (brd_ring_send(r, d, sizeof(d), -1))
                return 14;
        brd_ring_close(r);
        free(buf);
        return 0;
}

static void test_large_messages_forked(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_sha256 got;
        uint8_t *buf = malloc(BIGMAX), d1[32], d2[32];
        const void *view;
        struct t_leak l;
        ssize_t n;
        pid_t pid;
        int i;

        (void)state;
        assert_non_null(buf);
        t_leak_begin(&l);
        pid = t_ring_fork(4 << 20, 0, &hp, &hc, false, &r);
        if (pid == 0)
                _exit(child_send_big(&hp));
        t_sha256_init(&got);
        for (i = 0; i < NBIG; i++) {
                if (i % 3) {
                        n = brd_ring_recv(r, buf, BIGMAX, 10000);
                        view = buf;
                } else {
                        n = brd_ring_peek(r, &view, 10000);
                }
                assert_true(n >= 0 && n <= BIGMAX);
                sha_msg(&got, view, (size_t)n);
                if (!(i % 3))
                        assert_int_equal(brd_ring_release(r), 0);
        }
        assert_int_equal(brd_ring_recv(r, d2, sizeof(d2), 10000), (ssize_t)sizeof(d2));
        assert_int_equal(brd_ring_recv(r, buf, BIGMAX, 10000), -EPIPE);
        t_sha256_final(&got, d1);
        assert_memory_equal(d1, d2, 32);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
        free(buf);
}

static void test_random_messages_forked(void **state)
{
        (void)state;
        run_random_messages(0);
}

static void test_random_messages_forked_batch_nospin(void **state)
{
        (void)state;
        run_random_messages(BRD_RING_BATCH | BRD_RING_NOSPIN);
}

static int child_stream_writer(struct brd_handle *h, uint64_t total_writes, size_t fixed)
{
        struct brd_ring *r;
        static uint8_t buf[20 * 1024];
        uint64_t seed = 99, s2 = 7;
        uint64_t i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < total_writes; i++) {
                size_t len = fixed ? fixed : 10 * 1024 + (size_t)(t_rand(&seed) % (10 * 1024 + 1));

                for (size_t k = 0; k < len; k++)
                        buf[k] = (uint8_t)t_rand(&s2);
                if (brd_ring_write(r, buf, len, -1) != (ssize_t)len)
                        return 11;
        }
        brd_ring_close(r);
        return 0;
}

static void run_stream(uint64_t writes, size_t fixed, size_t expect_total)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_sha256 got, want;
        static uint8_t buf[20 * 1024];
        uint8_t d1[32], d2[32];
        uint64_t seed = 99, s2 = 7, i, total = 0, rs = 5;
        struct t_leak l;
        ssize_t n;
        pid_t pid;

        t_leak_begin(&l);
        pid = t_ring_fork(10 * 1024, 0, &hp, &hc, false, &r);
        if (pid == 0) {
                _exit(child_stream_writer(&hp, writes, fixed));
        }
        t_sha256_init(&got);
        for (;;) {
                size_t want_n = 1 + (size_t)(t_rand(&rs) % sizeof(buf));

                n = brd_ring_read(r, buf, want_n, 10000);
                assert_true(n >= 0);
                if (n == 0)
                        break;
                t_sha256_update(&got, buf, (size_t)n);
                total += (uint64_t)n;
        }
        t_sha256_init(&want);
        for (i = 0; i < writes; i++) {
                size_t len = fixed ? fixed : 10 * 1024 + (size_t)(t_rand(&seed) % (10 * 1024 + 1));

                for (size_t k = 0; k < len; k++)
                        buf[k] = (uint8_t)t_rand(&s2);
                t_sha256_update(&want, buf, len);
        }
        if (expect_total)
                assert_int_equal(total, expect_total);
        t_sha256_final(&got, d1);
        t_sha256_final(&want, d2);
        assert_memory_equal(d1, d2, 32);
        assert_int_equal(brd_ring_read(r, buf, 10, 0), 0);     /* EOF stays EOF */
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
}

static void test_stream_forked(void **state)
{
        (void)state;
        run_stream(100, 0, 0);
}

/*
 * A byte stream in 256 KiB writes through a 4 MiB ring, read in pieces of
 * random sizes by a consumer that mostly waits (the writer also makes and
 * hashes the bytes): its frames take the early wrap too.  The writer ends the
 * stream with the SHA-256 of what it wrote; the reader's hash of the bytes
 * before it must equal it.
 */
#define SW_LEN    (256 * 1024)
#define SW_WRITES 200

static void test_stream_large_writes_forked(void **state)
{
        const uint64_t body = (uint64_t)SW_WRITES * SW_LEN;
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_sha256 got;
        uint8_t *buf = malloc(SW_LEN), d1[32], d2[32];
        uint64_t rs = 11, total = 0;
        struct t_leak l;
        ssize_t n;
        pid_t pid;
        int i;

        (void)state;
        assert_non_null(buf);
        t_leak_begin(&l);
        pid = t_ring_fork(4 << 20, 0, &hp, &hc, false, &r);
        if (pid == 0) {
                struct t_sha256 sent;
                struct brd_ring *w;
                uint64_t seed = 3;

                if (brd_ring_attach(&hp, &w))
                        _exit(10);
                brd_handle_close(&hp);
                t_sha256_init(&sent);
                for (i = 0; i < SW_WRITES; i++) {
                        for (size_t k = 0; k < SW_LEN; k++)
                                buf[k] = (uint8_t)t_rand(&seed);
                        t_sha256_update(&sent, buf, SW_LEN);
                        if (brd_ring_write(w, buf, SW_LEN, -1) != SW_LEN)
                                _exit(11);
                }
                t_sha256_final(&sent, d1);
                if (brd_ring_write(w, d1, sizeof(d1), -1) != sizeof(d1))
                        _exit(12);
                brd_ring_close(w);
                _exit(0);
        }
        t_sha256_init(&got);
        for (;;) {
                size_t want = 1 + (size_t)(t_rand(&rs) % SW_LEN);

                if (total < body && want > body - total)
                        want = (size_t)(body - total);          /* the digest apart */
                if (total >= body)
                        want = sizeof(d2) - (size_t)(total - body);
                n = brd_ring_read(r, total < body ? buf : d2 + (total - body), want, 10000);
                assert_true(n >= 0);
                if (n == 0)
                        break;
                if (total < body)
                        t_sha256_update(&got, buf, (size_t)n);
                total += (uint64_t)n;
                if (total == body + sizeof(d2))
                        break;
        }
        assert_int_equal(total, body + sizeof(d2));
        assert_int_equal(brd_ring_read(r, buf, 1, 10000), 0);          /* EOF */
        t_sha256_final(&got, d1);
        assert_memory_equal(d1, d2, 32);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
        free(buf);
}

static void test_stream_exact_multiple_of_capacity(void **state)
{
        (void)state;
        /* 3 x 16 KiB (the 10 KiB ring's real capacity) */
        run_stream(3, 16384, 3 * 16384);
}

/* ------------------------------------- every call, mixed, as a byte model */

#define MIX_STEPS 20000

/* Byte @i of everything the producer ever hands over, in order. */
static uint8_t mix_byte(uint64_t i)
{
        return (uint8_t)(i * 131 + (i >> 9));
}

static void mix_fill(uint8_t *b, uint64_t from, size_t n)
{
        for (size_t k = 0; k < n; k++)
                b[k] = mix_byte(from + k);
}

static void mix_check(const uint8_t *b, uint64_t from, size_t n)
{
        for (size_t k = 0; k < n; k++)
                assert_int_equal(b[k], mix_byte(from + k));
}

/*
 * One thread drives both ends with every call in random order: send, reserve
 * + commit of a part (or abandoned), write of up to 2.5x the ring, flush;
 * recv, peek + release, read of any size; interrupts of either side;
 * timeouts 0, and 1 ms now and then (each that waits costs its 1 ms here).
 * The model is the byte sequence: whatever each call reports as handed over
 * or taken is checked in order, so no answer may lose, repeat or invent a
 * byte, whatever it interleaves with (a message read in part continues at
 * the next read, recv or peek).
 */
static void mix_run(uint64_t seed, unsigned flags)
{
        static uint8_t buf[12000];
        uint64_t put = 0, took = 0;
        unsigned interrupted = 0, timed_out = 0, partial = 0;
        struct pair x;
        int step;

        pair_open(&x, 4096, flags);
        for (step = 0; step < MIX_STEPS; step++) {
                int tmo = t_rand(&seed) % 16 == 0 ? 1 : 0;
                size_t n = (size_t)(t_rand(&seed) % 301), k;
                const void *m;
                void *w;
                ssize_t e;

                switch (t_rand(&seed) % 11) {
                case 0: case 1:                 /* send */
                        mix_fill(buf, put, n);
                        e = brd_ring_send(x.p, buf, n, tmo);
                        if (e == 0)
                                put += n;
                        break;
                case 2:                         /* reserve, commit a part or abandon */
                        e = brd_ring_reserve(x.p, n, &w, tmo);
                        if (e == 0 && t_rand(&seed) % 5) {
                                k = n ? (size_t)(t_rand(&seed) % (n + 1)) : 0;
                                mix_fill(w, put, k);
                                assert_int_equal(brd_ring_commit(x.p, k), 0);
                                put += k;
                        }
                        break;
                case 3:                         /* write, up to 2.5 rings */
                        n = (size_t)(t_rand(&seed) % sizeof(buf));
                        mix_fill(buf, put, n);
                        e = brd_ring_write(x.p, buf, n, tmo);
                        if (e > 0) {
                                put += (uint64_t)e;
                                partial += (size_t)e < n;
                        }
                        break;
                case 4:
                        e = brd_ring_flush(x.p);
                        break;
                case 5: case 6:                 /* recv */
                        e = brd_ring_recv(x.c, buf, sizeof(buf), tmo);
                        if (e >= 0) {
                                mix_check(buf, took, (size_t)e);
                                took += (uint64_t)e;
                        }
                        break;
                case 7:                         /* peek, release */
                        e = brd_ring_peek(x.c, &m, tmo);
                        if (e >= 0) {
                                mix_check(m, took, (size_t)e);
                                took += (uint64_t)e;
                                assert_int_equal(brd_ring_release(x.c), 0);
                        }
                        break;
                case 8: case 9:                 /* read, any size */
                        n = 1 + (size_t)(t_rand(&seed) % 5000);
                        e = brd_ring_read(x.c, buf, n, tmo);
                        if (e > 0) {
                                assert_true((size_t)e <= n);
                                mix_check(buf, took, (size_t)e);
                                took += (uint64_t)e;
                        }
                        break;
                default:
                        e = brd_ring_interrupt(t_rand(&seed) & 1 ? x.p : x.c);
                        break;
                }
                assert_true(e >= 0 || e == -EAGAIN || e == -ETIMEDOUT || e == -ECANCELED);
                interrupted += e == -ECANCELED;
                timed_out += e == -ETIMEDOUT;
                assert_true(took <= put);
        }
        /* Everything handed over comes out, then nothing more. */
        assert_int_equal(brd_ring_flush(x.p), 0);
        brd_ring_close(x.p);
        for (;;) {
                ssize_t e = brd_ring_read(x.c, buf, sizeof(buf), 0);

                if (e == -ECANCELED)
                        continue;       /* a latched interrupt */
                if (e == 0)
                        break;
                assert_true(e > 0);
                mix_check(buf, took, (size_t)e);
                took += (uint64_t)e;
        }
        assert_int_equal(took, put);
        assert_true(put > MIX_STEPS * 50);
        assert_true(interrupted && timed_out && partial);
        brd_ring_close(x.c);
}

static void test_every_call_mixed(void **state)
{
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (uint64_t seed = 1; seed <= 3; seed++) {
                mix_run(seed, 0);
                mix_run(seed, BRD_RING_BATCH);
        }
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_rejects_bad_input),
                cmocka_unit_test(test_capacity_rounding),
                cmocka_unit_test(test_handles_shape),
                cmocka_unit_test(test_attach_rejects_bad_header),
                cmocka_unit_test(test_roles_and_sizes),
                cmocka_unit_test(test_empty_and_full),
                cmocka_unit_test(test_populate_no_faults),
                cmocka_unit_test(test_populate_skips_sparse_file),
                cmocka_unit_test(test_recv_small_buffer_keeps_message),
                cmocka_unit_test(test_zero_copy),
                cmocka_unit_test(test_used_reservation_stays_used),
                cmocka_unit_test(test_reservation_kept_by_bad_input_only),
                cmocka_unit_test(test_empty_messages_then_eof),
                cmocka_unit_test(test_read_eof_after_empty_runs),
                cmocka_unit_test(test_eof_when_nothing_sent),
                cmocka_unit_test(test_consumer_close_gives_epipe),
                cmocka_unit_test(test_stats_exclude_dropped_messages),
                cmocka_unit_test(test_stream_partial_reads),
                cmocka_unit_test(test_stream_write_takes_crumbs),
                cmocka_unit_test(test_peeked_message_stays_until_release),
                cmocka_unit_test(test_stats_count_partly_read_messages_once),
                cmocka_unit_test(test_copies_at_any_alignment),
                cmocka_unit_test(test_batching_flush),
                cmocka_unit_test(test_batching_flush_consumer_closed),
                cmocka_unit_test(test_random_messages_forked),
                cmocka_unit_test(test_random_messages_forked_batch_nospin),
                cmocka_unit_test(test_large_frames_wrap_early),
                cmocka_unit_test(test_large_messages_forked),
                cmocka_unit_test(test_stream_forked),
                cmocka_unit_test(test_stream_large_writes_forked),
                cmocka_unit_test(test_stream_exact_multiple_of_capacity),
                cmocka_unit_test(test_every_call_mixed),
        };

        return cmocka_run_group_tests_name("ringbuf-spsc", tests, NULL, NULL);
}
