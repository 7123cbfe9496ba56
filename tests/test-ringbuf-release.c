/* SPDX-License-Identifier: MIT */
/*
 * The consumer's line-release controller (internal/brd-release.h), driven
 * with synthetic epoch times: a probe whose two epochs run faster than the
 * last two steady ones is kept, one that does not is undone (after one
 * epoch when that one is clearly slower) and the next probe comes four
 * times as late (up to 1024 epochs), epochs whose sleeps' wake-ups could
 * make a tenth of them are never compared, a new ring starts where the
 * last verdict for its capacity settled, a small ring probes without
 * settling epochs; flushing lines keeps their bytes; inside a ring, an
 * epoch counts payload bytes, not bytes of the index.  Then a stream
 * through a ring in two threads, long enough for the controller to run
 * many epochs, checked byte for byte.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include "internal/brd-release.h"

#define CAP   (8u << 20)        /* an epoch is a lap: a settling epoch after each flip */
#define EPOCH (8u << 20)        /* max(CAP, 8 MiB) */

/* Ends the current epoch @ns after it began, with @waits sleeps so far. */
static void epoch(struct brd__release *rl, int64_t ns, uint64_t waits)
{
        brd__release_step(rl, rl->mark, waits, rl->t0 + ns);
}

static bool started(struct brd__release *rl)
{
        brd__release_forget();
        brd__release_init(rl, 1000, CAP, BRD_RELEASE_LINES);
        if (rl->mark == UINT64_MAX) {
                assert_int_equal(rl->on, 0);
                return false;   /* no CLFLUSHOPT: off for good, nothing else to test */
        }
        assert_int_equal(rl->on, 1);
        assert_int_equal(rl->mark, 1000 + EPOCH);
        {
                struct brd__release big;        /* a lap per epoch when the ring is larger */

                brd__release_init(&big, 0, (uint64_t)64 << 20, BRD_RELEASE_LINES);
                assert_true(big.mark == (uint64_t)64 << 20);
        }
        return true;
}

/* @n epochs of @ns each, no sleeps. */
static void steady(struct brd__release *rl, unsigned n, int64_t ns)
{
        while (n--)
                epoch(rl, ns, 0);
}

static void test_probe_kept_when_faster(void **state)
{
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        epoch(&rl, 5000000, 0);                 /* first touches: not timed */
        steady(&rl, 1, 1000000);
        assert_int_equal(rl.on, 1);
        steady(&rl, 1, 1000000);                /* 2nd steady epoch: probe "off" */
        assert_int_equal(rl.on, 0);
        epoch(&rl, 100, 0);                     /* settling: whatever it took */
        assert_int_equal(rl.on, 0);
        epoch(&rl, 900000, 0);
        assert_int_equal(rl.on, 0);
        epoch(&rl, 980000, 0);                  /* 6% faster over the two: kept */
        assert_int_equal(rl.on, 0);
        assert_int_equal(rl.interval, 4);
        /* And the next probe (back on) four steady epochs later. */
        steady(&rl, 3, 940000);
        assert_int_equal(rl.on, 0);
        steady(&rl, 1, 940000);
        assert_int_equal(rl.on, 1);
}

static void test_probe_undone_backs_off(void **state)
{
        struct brd__release rl;
        unsigned want = 2;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        epoch(&rl, 1, 0);
        for (int round = 0; round < 12; round++) {
                steady(&rl, want - 1, 1000000);
                assert_int_equal(rl.on, 1);
                steady(&rl, 1, 1000000);
                assert_int_equal(rl.on, 0);     /* probing */
                epoch(&rl, 1, 0);
                epoch(&rl, 900000, 0);          /* one fast epoch is not enough: */
                assert_int_equal(rl.on, 0);
                epoch(&rl, 1020000, 0);         /* 4% faster over the two: undone */
                assert_int_equal(rl.on, 1);
                epoch(&rl, 1, 0);               /* resettle */
                want = want * 4 < 1024 ? want * 4 : 1024;
                assert_int_equal(rl.interval, want);
        }
        assert_int_equal(rl.interval, 1024);
}

static void test_epochs_with_sleeps_not_compared(void **state)
{
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        epoch(&rl, 1, 0);
        /* Steady epochs that slept often (40 x 25 us, as long as the epoch)
         * are not a reference: no probe. */
        for (uint64_t w = 40; w <= 800; w += 40)
                epoch(&rl, 1000000, w);
        assert_int_equal(rl.on, 1);
        /* Two clean ones back to back are, and the count was reached long
         * ago: probe now. */
        epoch(&rl, 1000000, 800);
        assert_int_equal(rl.on, 1);
        epoch(&rl, 1000000, 804);               /* 4 sleeps: 0.1 ms of 1, still comparable */
        assert_int_equal(rl.on, 0);
        epoch(&rl, 1, 804);
        epoch(&rl, 10, 805);                    /* much faster, but slept: undone */
        assert_int_equal(rl.on, 1);
        assert_int_equal(rl.interval, 8);
        /* The same when the second epoch of the probe slept. */
        epoch(&rl, 1, 805);                     /* resettle */
        for (int i = 0; i < 8; i++)
                epoch(&rl, 1000000, 805);
        assert_int_equal(rl.on, 0);
        epoch(&rl, 1, 805);
        epoch(&rl, 10, 805);
        assert_int_equal(rl.on, 0);
        epoch(&rl, 10, 806);
        assert_int_equal(rl.on, 1);
        assert_int_equal(rl.interval, 32);
}

static void test_clear_loser_ends_probe_early(void **state)
{
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        epoch(&rl, 1, 0);
        steady(&rl, 2, 1000000);
        assert_int_equal(rl.on, 0);             /* probing "off" */
        epoch(&rl, 1, 0);                       /* settle */
        epoch(&rl, 1100000, 0);                 /* 10% slower: not clear yet */
        assert_int_equal(rl.on, 0);
        epoch(&rl, 1000000, 0);                 /* undone after two */
        assert_int_equal(rl.on, 1);
        assert_int_equal(rl.interval, 8);
        epoch(&rl, 1, 0);                       /* resettle */
        steady(&rl, 8, 1000000);
        assert_int_equal(rl.on, 0);
        epoch(&rl, 1, 0);
        epoch(&rl, 2700000, 0);                 /* 2.7x slower: undone at once */
        assert_int_equal(rl.on, 1);
        assert_int_equal(rl.interval, 32);
}

/* A new ring starts where the last verdict for its capacity settled. */
static void test_new_ring_starts_at_last_verdict(void **state)
{
        struct brd__release rl, next, other;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        epoch(&rl, 1, 0);
        steady(&rl, 2, 1000000);
        epoch(&rl, 1, 0);
        epoch(&rl, 500000, 0);
        epoch(&rl, 500000, 0);                  /* "off" kept */
        assert_int_equal(rl.on, 0);
        brd__release_init(&next, 0, CAP, BRD_RELEASE_LINES);
        assert_int_equal(next.on, 0);
        brd__release_init(&other, 0, 2 * CAP, BRD_RELEASE_LINES);  /* another capacity: no verdict yet */
        assert_int_equal(other.on, 1);
        /* And back: next probes "on", and it wins. */
        epoch(&next, 1, 0);
        steady(&next, 2, 1000000);
        assert_int_equal(next.on, 1);
        epoch(&next, 1, 0);
        epoch(&next, 500000, 0);
        epoch(&next, 500000, 0);
        brd__release_init(&other, 0, CAP, BRD_RELEASE_LINES);
        assert_int_equal(other.on, 1);
        brd__release_forget();
}

/* A ring of a small part of an epoch: no settling epoch around a probe. */
static void test_small_ring_probes_without_settling(void **state)
{
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        brd__release_init(&rl, 0, 4096, BRD_RELEASE_LINES);
        epoch(&rl, 1, 0);                       /* first touches */
        steady(&rl, 2, 1000000);
        assert_int_equal(rl.on, 0);             /* probing "off" */
        epoch(&rl, 2000000, 0);                 /* timed at once, and clearly lost */
        assert_int_equal(rl.on, 1);
        steady(&rl, 7, 1000000);                /* no resettling epoch either */
        assert_int_equal(rl.on, 1);
        steady(&rl, 1, 1000000);
        assert_int_equal(rl.on, 0);
        epoch(&rl, 900000, 0);
        epoch(&rl, 900000, 0);                  /* kept */
        assert_int_equal(rl.on, 0);
        brd__release_forget();
}

static void test_lines_keep_bytes(void **state)
{
        struct brd__release rl;
        uint8_t *buf, *copy;
        size_t n = 64 * 1024;

        (void)state;
        buf = aligned_alloc(4096, n);
        copy = malloc(n);
        assert_non_null(buf);
        assert_non_null(copy);
        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)(i * 131 + 7);
        memcpy(copy, buf, n);
        brd__release_forget();                  /* start releasing */
        brd__release_init(&rl, 0, n, BRD_RELEASE_LINES);
        /* Every line of the area, twice round (indices past the mask wrap). */
        for (uint64_t from = 0; from < 2 * n; from += 200)
                brd__release_lines(&rl, buf, n - 1, from, from + 200, true);
        assert_memory_equal(buf, copy, n);
        free(buf);
        free(copy);
}

/*
 * The producer's controller (streaming stores) starts with plain stores and
 * probes later than a consumer's; its verdicts are kept apart from the
 * line release's.
 */
static void test_stream_kind(void **state)
{
        struct brd__release rl, lines, next;

        (void)state;
        brd__release_forget();
        brd__release_init(&rl, 0, CAP, BRD_RELEASE_STREAM);
#if !defined(__x86_64__)
        assert_int_equal(rl.on, 0);
        assert_true(rl.mark == UINT64_MAX);
        return;
#endif
        assert_int_equal(rl.on, 0);
        assert_int_equal(rl.mark, EPOCH);
        epoch(&rl, 1, 0);                       /* first touches */
        steady(&rl, 5, 1000000);
        assert_int_equal(rl.on, 0);
        steady(&rl, 1, 1000000);                /* 6th steady epoch: probe "on" */
        assert_int_equal(rl.on, 1);
        epoch(&rl, 1, 0);                       /* settle */
        epoch(&rl, 500000, 0);
        epoch(&rl, 500000, 0);                  /* twice as fast: kept */
        assert_int_equal(rl.on, 1);
        assert_int_equal(brd__release_verdict(CAP, BRD_RELEASE_STREAM), 1);
        assert_int_equal(brd__release_verdict(CAP, BRD_RELEASE_LINES), 0);
        brd__release_init(&next, 0, CAP, BRD_RELEASE_STREAM);
        assert_int_equal(next.on, 1);           /* where the last verdict settled */
        if (started(&lines)) {                  /* (forgets every verdict) */
                brd__release_init(&next, 0, CAP, BRD_RELEASE_STREAM);
                assert_int_equal(next.on, 0);
        }
        brd__release_forget();
}

/* Streaming copies keep every byte, at every alignment, and touch nothing
 * outside the destination. */
static void test_stream_copy_bytes(void **state)
{
        static const size_t len[] = { 0, 1, 63, 64, 65, 127, 128, 1000, 1024, 4096 + 13, 70001 };
        size_t cap = 1100 * 64;         /* > 70001 + 63 + 23: a multiple of the alignment */
        uint8_t *src = malloc(cap), *dst = aligned_alloc(64, cap + 64), *want = malloc(cap + 64);

        (void)state;
        assert_non_null(src);
        assert_non_null(dst);
        assert_non_null(want);
        for (size_t i = 0; i < cap; i++)
                src[i] = (uint8_t)(i * 167 + 3);
        for (size_t l = 0; l < sizeof(len) / sizeof(len[0]); l++) {
                for (size_t doff = 0; doff < 64; doff += 7) {
                        for (size_t soff = 0; soff < 24; soff += 5) {
                                memset(dst, 0xa5, cap + 64);
                                memset(want, 0xa5, cap + 64);
                                memcpy(want + doff, src + soff, len[l]);
                                brd__stream_copy(dst + doff, src + soff, len[l]);
                                assert_memory_equal(dst, want, cap + 64);
                        }
                }
        }
        free(src);
        free(dst);
        free(want);
}

/* ------------------------------------- the controller inside a ring */

/*
 * Streams @n-byte copies of @msg from @p to @c, 16 at a time, each received
 * by recv or (@peek) by peek + release and compared, from @bytes payload
 * bytes passed until @until; returns the payload bytes passed.
 */
static uint64_t pump(struct brd_ring *p, struct brd_ring *c, const uint8_t *msg, size_t n,
                     bool peek, uint64_t bytes, uint64_t until)
{
        uint8_t buf[256];

        assert_true(n <= sizeof(buf));
        while (bytes < until) {
                for (int k = 0; k < 16; k++)
                        assert_int_equal(brd_ring_send(p, msg, n, 0), 0);
                for (int k = 0; k < 16; k++) {
                        const void *m = buf;

                        if (peek)
                                assert_int_equal(brd_ring_peek(c, &m, 0), (ssize_t)n);
                        else
                                assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), (ssize_t)n);
                        assert_memory_equal(m, msg, n);
                        if (peek)
                                assert_int_equal(brd_ring_release(c), 0);
                }
                bytes += 16 * n;        /* epochs count payload bytes */
        }
        return bytes;
}

/*
 * A ring's consumer ends each epoch out of line, after its publish
 * (cons_after() in ringbuf/ring.c), on every way a message is consumed: recv's
 * small inline path, peek + release, and recv of a larger message.  One
 * thread, so no epoch sleeps and each is comparable: the first probe's
 * verdict is due by the fifth epoch (first touches, two steady, the probe,
 * at most two timed), and seven are streamed.
 */
static void test_ring_controller_reaches_verdict(void **state)
{
        static const size_t size[] = { 64, 64, 200 };
        static const uint8_t msg[200] = { 1 };
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        for (int how = 0; how < 3; how++) {
                struct brd_ring *p, *c;

                brd__release_forget();
                assert_int_equal(brd__release_verdict(4096, BRD_RELEASE_LINES), 0);
                t_ring_pair(4096, 0, &p, &c);
                pump(p, c, msg, size[how], how == 1, 0, 7 * (uint64_t)EPOCH);
                assert_int_not_equal(brd__release_verdict(4096, BRD_RELEASE_LINES), 0);
                brd_ring_close(p);
                brd_ring_close(c);
        }
        brd__release_forget();
}

/*
 * An epoch is max(capacity, 8 MiB) payload bytes, however far the index
 * moved: here each 8-byte message moves it 16 bytes (its frame word), as an
 * early wrap moves it over the unread rest of a lap.  The first verdict
 * takes four epochs at least (the first touches, two steady, one of the
 * probe): none after 3.5 epochs of payload, which are 7 of the index, and
 * one by 7.
 */
static void test_epochs_count_payload_bytes(void **state)
{
        static const uint8_t msg[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
        struct brd__release rl;
        struct brd_ring *p, *c;
        uint64_t bytes;

        (void)state;
        if (!started(&rl))
                skip();         /* no CLFLUSHOPT: nothing to test */
        brd__release_forget();
        t_ring_pair(4096, 0, &p, &c);
        bytes = pump(p, c, msg, sizeof(msg), false, 0, 7 * (uint64_t)EPOCH / 2);
        assert_int_equal(brd__release_verdict(4096, BRD_RELEASE_LINES), 0);
        pump(p, c, msg, sizeof(msg), false, bytes, 7 * (uint64_t)EPOCH);
        assert_int_not_equal(brd__release_verdict(4096, BRD_RELEASE_LINES), 0);
        brd_ring_close(p);
        brd_ring_close(c);
        brd__release_forget();
}

/*
 * A producer ends its epochs after the commit of a large payload, by send
 * and by write: one thread, large messages, until the first probe's
 * verdict is due (first touches, six steady epochs, the probe, at most
 * two timed: ten), every message checked.
 */
static void test_ring_stream_controller_reaches_verdict(void **state)
{
        size_t cap = 64 * 1024, n = 12000;
        uint8_t *msg = malloc(n), *buf = malloc(n);

        (void)state;
        assert_non_null(msg);
        assert_non_null(buf);
#if !defined(__x86_64__)
        free(msg);
        free(buf);
        skip();
#endif
        for (int how = 0; how < 2; how++) {
                struct brd_ring *p, *c;
                uint64_t bytes = 0;
                uint32_t i = 0;

                brd__release_forget();
                t_ring_pair(cap, 0, &p, &c);
                while (bytes < 12 * (uint64_t)EPOCH) {
                        for (size_t k = 0; k < n; k++)
                                msg[k] = (uint8_t)(i * 31 + k);
                        if (how == 0) {
                                assert_int_equal(brd_ring_send(p, msg, n, 0), 0);
                                assert_int_equal(brd_ring_recv(c, buf, n, 0), (ssize_t)n);
                        } else {
                                assert_int_equal(brd_ring_write(p, msg, n, 0), (ssize_t)n);
                                assert_int_equal(brd_ring_read(c, buf, n, 0), (ssize_t)n);
                        }
                        assert_memory_equal(buf, msg, n);
                        bytes += n;
                        i++;
                }
                assert_int_not_equal(brd__release_verdict(cap, BRD_RELEASE_STREAM), 0);
                brd_ring_close(p);
                brd_ring_close(c);
        }
        free(msg);
        free(buf);
        brd__release_forget();
}

/*
 * Streaming stores forced on, producer here and consumer in a forked
 * child: 20,000 messages of 0..8 KiB (those from 1 KiB on copied with
 * them; offsets in the source vary), then a byte stream of 40 writes of
 * 1..64 KiB.  The child hashes what it received and exits 0 only when
 * every message had its length and both hashes match the parent's.
 */
#define NT_MSGS   20000u
#define NT_WRITES 40u

static uint8_t nt_byte(uint64_t i, size_t k)
{
        return (uint8_t)(i * 131 + k * 7 + (k >> 8));
}

static int nt_consumer(struct brd_handle *hc, const uint8_t want[2][32])
{
        struct brd_ring *c;
        struct t_sha256 sha;
        uint8_t *buf = malloc(64 * 1024), got[32];
        uint64_t rs = 7;
        ssize_t n;

        if (!buf || brd_ring_attach(hc, &c))
                return 2;
        t_sha256_init(&sha);
        for (uint32_t i = 0; i < NT_MSGS; i++) {
                size_t len = t_rand(&rs) % (8 * 1024 + 1);

                if (brd_ring_recv(c, buf, 64 * 1024, 10000) != (ssize_t)len)
                        return 3;
                t_sha256_update(&sha, buf, len);
        }
        t_sha256_final(&sha, got);
        if (memcmp(got, want[0], 32))
                return 4;
        t_sha256_init(&sha);
        while ((n = brd_ring_read(c, buf, 64 * 1024, 10000)) > 0)
                t_sha256_update(&sha, buf, (size_t)n);
        t_sha256_final(&sha, got);
        if (n != 0 || memcmp(got, want[1], 32))
                return 5;
        brd_ring_close(c);
        free(buf);
        return 0;
}

static void test_stream_stores_across_processes(void **state)
{
        size_t srclen = 64 * 1024 + 64;
        uint8_t *src = malloc(srclen), want[2][32];
        struct brd_handle hp, hc;
        struct t_sha256 sha;
        struct brd_ring *p;
        struct t_leak l;
        uint64_t rs = 7, ws = 11;
        pid_t pid;

        (void)state;
        assert_non_null(src);
        /* What the child must see, computed before the fork. */
        t_sha256_init(&sha);
        for (uint32_t i = 0; i < NT_MSGS; i++) {
                size_t len = t_rand(&rs) % (8 * 1024 + 1);

                for (size_t k = 0; k < len; k++)
                        src[k] = nt_byte(i, k);
                t_sha256_update(&sha, src, len);
        }
        t_sha256_final(&sha, want[0]);
        t_sha256_init(&sha);
        for (uint32_t i = 0; i < NT_WRITES; i++) {
                size_t len = 1 + t_rand(&ws) % (64 * 1024);

                for (size_t k = 0; k < len; k++)
                        src[k] = nt_byte(i + NT_MSGS, k);
                t_sha256_update(&sha, src, len);
        }
        t_sha256_final(&sha, want[1]);

        t_leak_begin(&l);
        brd__stream_policy = BRD_RELEASE_ON;
        pid = t_ring_fork(64 * 1024, 0, &hp, &hc, true, &p);
        if (pid == 0)
                _exit(nt_consumer(&hc, (const uint8_t (*)[32])want));
        brd__stream_policy = BRD_RELEASE_AUTO;
        rs = 7;
        ws = 11;
        for (uint32_t i = 0; i < NT_MSGS; i++) {
                size_t len = t_rand(&rs) % (8 * 1024 + 1), off = i % 64;

                for (size_t k = 0; k < len; k++)
                        src[off + k] = nt_byte(i, k);
                assert_int_equal(brd_ring_send(p, src + off, len, 10000), 0);
        }
        for (uint32_t i = 0; i < NT_WRITES; i++) {
                size_t len = 1 + t_rand(&ws) % (64 * 1024);

                for (size_t k = 0; k < len; k++)
                        src[k] = nt_byte(i + NT_MSGS, k);
                assert_int_equal(brd_ring_write(p, src, len, 10000), (ssize_t)len);
        }
        brd_ring_close(p);
        assert_int_equal(t_wait_child(pid), 0);
        free(src);
        t_leak_end(&l);
}

/* ------------------------------------------- a stream through a ring */

#define STREAM_MSGS 1000000u            /* 64 B each: ~69 MiB, eight epochs */

struct stream {
        struct brd_ring *p;
        uint64_t sum;
        int err;
};

static uint64_t mix(uint64_t h, uint64_t v)
{
        return (h ^ v) * 0x100000001b3ull;
}

static void *producer(void *arg)
{
        struct stream *s = arg;
        uint64_t msg[8], h = 0xcbf29ce484222325ull;

        for (uint32_t i = 0; i < STREAM_MSGS && !s->err; i++) {
                for (int k = 0; k < 8; k++)
                        msg[k] = (uint64_t)i * 8 + (uint64_t)k;
                for (int k = 0; k < 8; k++)
                        h = mix(h, msg[k]);
                s->err = brd_ring_send(s->p, msg, sizeof(msg), 5000);
        }
        s->sum = h;
        return NULL;
}

static void test_stream_intact(void **state)
{
        struct brd_ring *c = NULL;
        struct stream s = { 0 };
        struct t_leak l;
        pthread_t th;
        uint64_t msg[8], h = 0xcbf29ce484222325ull;
        uint32_t got = 0;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &s.p, &c);
        assert_int_equal(pthread_create(&th, NULL, producer, &s), 0);
        for (; got < STREAM_MSGS; got++) {
                ssize_t n = brd_ring_recv(c, msg, sizeof(msg), 5000);

                if (n != (ssize_t)sizeof(msg))
                        break;
                for (int k = 0; k < 8; k++) {
                        if (msg[k] != (uint64_t)got * 8 + (uint64_t)k)
                                goto out;
                        h = mix(h, msg[k]);
                }
        }
out:
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(s.err, 0);
        assert_int_equal(got, STREAM_MSGS);
        assert_true(h == s.sum);
        brd_ring_close(s.p);
        brd_ring_close(c);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_probe_kept_when_faster),
                cmocka_unit_test(test_probe_undone_backs_off),
                cmocka_unit_test(test_epochs_with_sleeps_not_compared),
                cmocka_unit_test(test_clear_loser_ends_probe_early),
                cmocka_unit_test(test_new_ring_starts_at_last_verdict),
                cmocka_unit_test(test_small_ring_probes_without_settling),
                cmocka_unit_test(test_lines_keep_bytes),
                cmocka_unit_test(test_stream_kind),
                cmocka_unit_test(test_stream_copy_bytes),
                cmocka_unit_test(test_ring_controller_reaches_verdict),
                cmocka_unit_test(test_epochs_count_payload_bytes),
                cmocka_unit_test(test_ring_stream_controller_reaches_verdict),
                cmocka_unit_test(test_stream_stores_across_processes),
                cmocka_unit_test(test_stream_intact),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
