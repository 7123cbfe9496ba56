/* SPDX-License-Identifier: MIT */
/*
 * Producer and consumer as two threads of one process, no fork: the test to
 * run under ThreadSanitizer (-Db_sanitize=thread).  Copy, zero-copy and
 * byte-stream paths, batching, sleepers asking for fences, and interrupt()
 * from a third thread.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include "internal/brd-private.h"
#include "internal/brd-ring.h"

#define N 200000

struct side {
        struct brd_ring *r;
        int mode;               /* 0 copy, 1 zero-copy, 2 stream */
        int ret;
        struct t_sha256 sha;
};

/*
 * One message into the side's hash: its bytes, and (messages, not the byte
 * stream of mode 2) its length, so that a lost or doubled empty message, or
 * two merged into one, changes the hash.
 */
static void hash_msg(struct side *s, const void *p, size_t len)
{
        uint64_t len64 = len;

        if (s->mode != 2)
                t_sha256_update(&s->sha, &len64, sizeof(len64));
        t_sha256_update(&s->sha, p, len);
}

static void *producer(void *arg)
{
        struct side *s = arg;
        uint8_t buf[512];
        uint64_t seed = 77;
        int i;

        t_sha256_init(&s->sha);
        for (i = 0; i < N; i++) {
                size_t len = (size_t)(t_rand(&seed) % sizeof(buf));
                void *w;

                for (size_t k = 0; k < len; k++)
                        buf[k] = (uint8_t)(i + k);
                hash_msg(s, buf, len);
                if (s->mode == 1) {
                        if (brd_ring_reserve(s->r, len, &w, -1) || !w)
                                goto fail;
                        memcpy(w, buf, len);
                        if (brd_ring_commit(s->r, len))
                                goto fail;
                } else if (s->mode == 2) {
                        if (brd_ring_write(s->r, buf, len, -1) != (ssize_t)len)
                                goto fail;
                } else if (brd_ring_send(s->r, buf, len, -1)) {
                        goto fail;
                }
        }
        brd_ring_close(s->r);
        s->ret = 0;
        return NULL;
fail:
        s->ret = -1;
        return NULL;
}

static void *consumer(void *arg)
{
        struct side *s = arg;
        uint8_t buf[512] = { 0 };
        const void *v;
        ssize_t n;

        t_sha256_init(&s->sha);
        for (;;) {
                if (s->mode == 1) {
                        n = brd_ring_peek(s->r, &v, -1);
                        if (n < 0)
                                break;
                        hash_msg(s, v, (size_t)n);
                        if (brd_ring_release(s->r))
                                goto fail;
                } else if (s->mode == 2) {
                        n = brd_ring_read(s->r, buf, 1 + (size_t)(buf[0] % sizeof(buf)), -1);
                        if (n <= 0) {
                                n = n == 0 ? -EPIPE : n;
                                break;
                        }
                        hash_msg(s, buf, (size_t)n);
                } else {
                        n = brd_ring_recv(s->r, buf, sizeof(buf), -1);
                        if (n < 0)
                                break;
                        hash_msg(s, buf, (size_t)n);
                }
        }
        s->ret = n == -EPIPE ? 0 : (int)n;
        return NULL;
fail:
        s->ret = -1;
        return NULL;
}

static void run(int mode, size_t cap, unsigned flags)
{
        struct side p = { 0 }, c = { 0 };
        pthread_t tp, tc;
        uint8_t d1[32], d2[32];
        struct t_leak l;

        t_leak_begin(&l);
        t_ring_pair(cap, flags, &p.r, &c.r);
        p.mode = c.mode = mode;
        assert_int_equal(pthread_create(&tc, NULL, consumer, &c), 0);
        assert_int_equal(pthread_create(&tp, NULL, producer, &p), 0);
        assert_int_equal(pthread_join(tp, NULL), 0);
        assert_int_equal(pthread_join(tc, NULL), 0);
        assert_int_equal(p.ret, 0);
        assert_int_equal(c.ret, 0);
        t_sha256_final(&p.sha, d1);
        t_sha256_final(&c.sha, d2);
        assert_memory_equal(d1, d2, 32);
        brd_ring_close(c.r);
        t_leak_end(&l);
}

static void test_threads_copy(void **state)
{
        (void)state;
        run(0, 4096, 0);
}

static void test_threads_zero_copy(void **state)
{
        (void)state;
        run(1, 8192, 0);
}

static void test_threads_stream(void **state)
{
        (void)state;
        run(2, 4096, 0);
}

static void test_threads_batch_nospin(void **state)
{
        (void)state;
        run(0, 65536, BRD_RING_BATCH | BRD_RING_NOSPIN);
}

/* Every sleeper asks its peer to fence (the fence mode, brd-ring.h): the
 * peers switch between fencing and not while they stream. */
static void test_threads_fence_requests(void **state)
{
        (void)state;
        brd__fence_policy = BRD_FENCE_ALWAYS;
        run(0, 4096, BRD_RING_NOSPIN);
        run(1, 8192, 0);
        brd__fence_policy = BRD_FENCE_AUTO;
}

struct blocked {
        struct brd_ring *r;
        AO_t entered;
        ssize_t ret;
};

static void *blocked_recv(void *arg)
{
        struct blocked *b = arg;
        char buf[8];

        AO_store_release(&b->entered, 1);
        b->ret = brd_ring_recv(b->r, buf, sizeof(buf), -1);
        return NULL;
}

static void test_threads_interrupt(void **state)
{
        struct brd_ring *p, *c;
        struct blocked b = { 0 };
        struct t_leak l;
        pthread_t th;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        b.r = c;
        assert_int_equal(pthread_create(&th, NULL, blocked_recv, &b), 0);
        while (!AO_load_acquire(&b.entered))
                sched_yield();
        /* Latched: whether the recv is already asleep or not yet. */
        assert_int_equal(brd_ring_interrupt(c), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(b.ret, -ECANCELED);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

#define INTR_ROUNDS 5000

struct interrupter {
        struct brd_ring *r;
        AO_t go, done;          /* rounds asked for, rounds whose interrupt returned */
};

/* Interrupts once per round, as soon as the round is asked for: while the
 * asking thread is entering its call, or spinning in it. */
static void *interrupt_rounds(void *arg)
{
        struct interrupter *it = arg;
        AO_t i;

        for (i = 1; i <= INTR_ROUNDS; i++) {
                while (AO_load_acquire(&it->go) < i)
                        sched_yield();
                brd_ring_interrupt(it->r);
                AO_store_release(&it->done, i);
        }
        return NULL;
}

/*
 * An interrupt from another thread that the blocked call consumes while
 * the interrupt is still running (the call spins on the flag, which comes
 * first) leaves nothing behind: once both are done and a timeout-0 call
 * answered -EAGAIN, the fd of brd_ring_fd() is quiet.  A doorbell write
 * that landed after the call had drained the interrupt's eventfd once kept
 * it readable for good (a poll loop spinning, an epoll sleep too).
 */
static void test_threads_interrupt_leaves_fd_quiet(void **state)
{
        struct interrupter it = { 0 };
        struct brd_ring *p, *c;
        struct pollfd pf;
        struct t_leak l;
        pthread_t th;
        char buf[8];
        int loud = 0;
        AO_t i;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        pf = (struct pollfd){ .fd = brd_ring_fd(c), .events = POLLIN };
        assert_true(pf.fd >= 0);
        it.r = c;
        assert_int_equal(pthread_create(&th, NULL, interrupt_rounds, &it), 0);
        for (i = 1; i <= INTR_ROUNDS; i++) {
                AO_store_release(&it.go, i);
                assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), -1), -ECANCELED);
                while (AO_load_acquire(&it.done) < i)
                        sched_yield();
                assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
                loud += poll(&pf, 1, 0) != 0;
        }
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(loud, 0);
        /* And it still works: a message, an interrupt. */
        assert_int_equal(brd_ring_send(p, "ok", 2, 0), 0);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 2);
        assert_int_equal(brd_ring_interrupt(c), 0);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -ECANCELED);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_threads_copy),
                cmocka_unit_test(test_threads_zero_copy),
                cmocka_unit_test(test_threads_stream),
                cmocka_unit_test(test_threads_batch_nospin),
                cmocka_unit_test(test_threads_fence_requests),
                cmocka_unit_test(test_threads_interrupt),
                cmocka_unit_test(test_threads_interrupt_leaves_fd_quiet),
        };

        return cmocka_run_group_tests_name("ringbuf-threads", tests, NULL, NULL);
}
