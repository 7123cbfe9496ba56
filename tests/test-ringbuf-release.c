/* SPDX-License-Identifier: MIT */
/*
 * The consumer's line-release controller (internal/brd-release.h), driven
 * with synthetic epoch times: a probe whose two epochs run faster than the
 * last two steady ones is kept, one that does not is undone (after one
 * epoch when that one is clearly slower) and the next probe comes four
 * times as late (up to 1024 epochs), epochs whose sleeps' wake-ups could
 * make a tenth of them are never compared, a new ring starts where the
 * last verdict for its capacity settled, a small ring probes without
 * settling epochs; flushing lines keeps their bytes.  Then a stream through a ring in two threads, long enough
 * for the controller to run many epochs, checked byte for byte.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
        brd__release_init(rl, 1000, CAP);
        if (rl->mark == UINT64_MAX) {
                assert_int_equal(rl->on, 0);
                return false;   /* no CLFLUSHOPT: off for good, nothing else to test */
        }
        assert_int_equal(rl->on, 1);
        assert_int_equal(rl->mark, 1000 + EPOCH);
        {
                struct brd__release big;        /* a lap per epoch when the ring is larger */

                brd__release_init(&big, 0, (uint64_t)64 << 20);
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
                return;
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
                return;
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
                return;
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
                return;
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
                return;
        epoch(&rl, 1, 0);
        steady(&rl, 2, 1000000);
        epoch(&rl, 1, 0);
        epoch(&rl, 500000, 0);
        epoch(&rl, 500000, 0);                  /* "off" kept */
        assert_int_equal(rl.on, 0);
        brd__release_init(&next, 0, CAP);
        assert_int_equal(next.on, 0);
        brd__release_init(&other, 0, 2 * CAP);  /* another capacity: no verdict yet */
        assert_int_equal(other.on, 1);
        /* And back: next probes "on", and it wins. */
        epoch(&next, 1, 0);
        steady(&next, 2, 1000000);
        assert_int_equal(next.on, 1);
        epoch(&next, 1, 0);
        epoch(&next, 500000, 0);
        epoch(&next, 500000, 0);
        brd__release_init(&other, 0, CAP);
        assert_int_equal(other.on, 1);
        brd__release_forget();
}

/* A ring of a small part of an epoch: no settling epoch around a probe. */
static void test_small_ring_probes_without_settling(void **state)
{
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                return;
        brd__release_init(&rl, 0, 4096);
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
        brd__release_init(&rl, 0, n);
        /* Every line of the area, twice round (indices past the mask wrap). */
        for (uint64_t from = 0; from < 2 * n; from += 200)
                brd__release_lines(&rl, buf, n - 1, from, from + 200, true);
        assert_memory_equal(buf, copy, n);
        free(buf);
        free(copy);
}

/* ------------------------------------- the controller inside a ring */

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
        uint8_t msg[200] = { 1 }, buf[200];
        struct brd__release rl;

        (void)state;
        if (!started(&rl))
                return;
        for (int how = 0; how < 3; how++) {
                size_t n = size[how], frame = 8 + ((n + 7) & ~(size_t)7);
                struct brd_handle hp, hc;
                struct brd_ring *p, *c;
                uint64_t bytes = 0;

                brd__release_forget();
                assert_int_equal(brd__release_verdict(4096), 0);
                assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
                assert_int_equal(brd_ring_attach(&hp, &p), 0);
                assert_int_equal(brd_ring_attach(&hc, &c), 0);
                while (bytes < 7 * (uint64_t)EPOCH) {
                        for (int k = 0; k < 16; k++)
                                assert_int_equal(brd_ring_send(p, msg, n, 0), 0);
                        for (int k = 0; k < 16; k++) {
                                const void *m;

                                if (how == 1) {
                                        assert_int_equal(brd_ring_peek(c, &m, 0), (ssize_t)n);
                                        assert_int_equal(brd_ring_release(c), 0);
                                } else {
                                        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0),
                                                         (ssize_t)n);
                                }
                        }
                        bytes += 16 * frame;
                }
                assert_int_not_equal(brd__release_verdict(4096), 0);
                brd_ring_close(p);
                brd_ring_close(c);
                brd_handle_close(&hp);
                brd_handle_close(&hc);
        }
        brd__release_forget();
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
        struct brd_handle hp, hc;
        struct brd_ring *c = NULL;
        struct stream s = { 0 };
        struct t_leak l;
        pthread_t th;
        uint64_t msg[8], h = 0xcbf29ce484222325ull;
        uint32_t got = 0;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hp, &s.p), 0);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
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
        brd_handle_close(&hp);
        brd_handle_close(&hc);
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
                cmocka_unit_test(test_ring_controller_reaches_verdict),
                cmocka_unit_test(test_stream_intact),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
