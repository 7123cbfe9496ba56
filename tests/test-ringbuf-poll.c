/* SPDX-License-Identifier: MIT */
/*
 * brd_ring_fd(): event loops drive a ring with poll/epoll and timeout-0
 * calls only.  The level-triggered loop must neither miss data nor spin.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "helpers.h"
#include "../ringbuf/io.h"              /* RING_READ_EMPTY_MAX */
#include <brood/ringbuf.h>

#define N 50000

/* Bursts of random size, with a yield now and then; a byte on @sent_fd
 * once the last send has returned (it rang whatever it rings), then idle
 * until a byte on @go_fd. */
static int child_bursty_producer(struct brd_handle *h, int sent_fd, int go_fd)
{
        struct brd_ring *r;
        uint64_t seed = 3;
        uint8_t buf[200];
        char c;
        int i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < N; i++) {
                size_t len = (size_t)(t_rand(&seed) % sizeof(buf));

                memset(buf, (int)(i & 0xff), len);
                if (brd_ring_send(r, buf, len, -1))
                        return 11;
                if (t_rand(&seed) % 500 == 0)
                        sched_yield();
        }
        if (write(sent_fd, "s", 1) != 1)
                return 13;
        /* Idle until the parent has checked that an idle fd stays quiet. */
        if (read(go_fd, &c, 1) != 1)
                return 12;
        brd_ring_close(r);
        return 0;
}

static void test_poll_driven_consumer(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct pollfd p = { .events = POLLIN };
        uint8_t buf[200], exp[200];
        uint64_t seed = 3, wakes = 0, empty_wakes = 0;
        struct t_leak l;
        int go[2], sent[2], n = 0;
        ssize_t e;
        pid_t pid;
        char c;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(sent, O_CLOEXEC), 0);
        pid = t_ring_fork(4096, 0, &hp, &hc, false, &r);
        if (pid == 0) {
                close(go[1]);
                close(sent[0]);
                _exit(child_bursty_producer(&hp, sent[1], go[0]));
        }
        close(go[0]);
        close(sent[1]);
        p.fd = brd_ring_fd(r);
        assert_true(p.fd >= 0);
        assert_int_equal(brd_ring_fd(r), p.fd);
        while (n < N) {
                int got = 0;

                assert_int_equal(poll(&p, 1, 10000), 1);
                wakes++;
                while ((e = brd_ring_recv(r, buf, sizeof(buf), 0)) >= 0) {
                        size_t len = (size_t)(t_rand(&seed) % sizeof(exp));

                        (void)t_rand(&seed);    /* the producer's yield draw */
                        memset(exp, (int)(n & 0xff), len);
                        assert_int_equal(e, (ssize_t)len);
                        assert_memory_equal(buf, exp, len);
                        n++;
                        got++;
                }
                assert_int_equal(e, -EAGAIN);
                if (!got)
                        empty_wakes++;
        }
        /* Everything read, producer idle: the fd must stay quiet (no spin).
         * A doorbell the last send rang after our last -EAGAIN (for data
         * that call took) is taken by one more -EAGAIN once the producer
         * says it is done. */
        assert_int_equal(read(sent[0], &c, 1), 1);
        close(sent[0]);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(poll(&p, 1, 100), 0);
        /* Spurious wake-ups happen (a doorbell rung for data the previous
         * batch already took) but stay a minority. */
        assert_true(empty_wakes <= wakes / 2 + 10);
        assert_int_equal(write(go[1], "g", 1), 1);
        close(go[1]);
        assert_int_equal(poll(&p, 1, 10000), 1);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 0), -EPIPE);
        assert_int_equal(poll(&p, 1, 0), 1);            /* final: stays readable */
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
}

static int child_slow_consumer(struct brd_handle *h)
{
        struct brd_ring *r;
        uint8_t buf[1000];
        int i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < N; i++) {
                ssize_t n = brd_ring_recv(r, buf, sizeof(buf), 10000);

                if (n != 1 + i % 999 || buf[0] != (uint8_t)i || buf[n - 1] != (uint8_t)i)
                        return 11;
        }
        if (brd_ring_recv(r, buf, sizeof(buf), 10000) != -EPIPE)
                return 12;
        brd_ring_close(r);
        return 0;
}

static void test_poll_driven_producer_epoll(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct epoll_event ev = { .events = EPOLLIN }, out;
        uint8_t buf[1000];
        struct t_leak l;
        int ep, i = 0, e;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        pid = t_ring_fork(8192, BRD_RING_NOSPIN, &hp, &hc, true, &r);
        if (pid == 0) {
                _exit(child_slow_consumer(&hc));
        }
        /* The ring's fd nested in the caller's own epoll set. */
        ep = epoll_create1(EPOLL_CLOEXEC);
        assert_true(ep >= 0);
        assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, brd_ring_fd(r), &ev), 0);
        while (i < N) {
                assert_int_equal(epoll_wait(ep, &out, 1, 10000), 1);
                for (;;) {
                        size_t len = 1 + (size_t)i % 999;

                        memset(buf, i & 0xff, len);
                        e = brd_ring_send(r, buf, len, 0);
                        if (e)
                                break;
                        if (++i == N)
                                break;
                }
                assert_true(e == 0 || e == -EAGAIN);
        }
        close(ep);
        brd_ring_close(r);
        assert_int_equal(t_wait_child(pid), 0);
        t_leak_end(&l);
}

/* @c's fd polls readable, the one message waiting comes out, the next
 * call says -EAGAIN, and from then on the fd is quiet. */
static void took_one_then_quiet(struct brd_ring *c, struct pollfd *pf)
{
        char buf[16];

        assert_int_equal(poll(pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(poll(pf, 1, 0), 0);
}

static void test_fd_interrupt_and_initial_readiness(void **state)
{
        struct brd_ring *p, *c;
        struct pollfd pf = { .events = POLLIN };
        char buf[8];
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        /* Data sent before anyone polled is found through the first readiness. */
        assert_int_equal(brd_ring_send(p, "q", 1, 0), 0);
        pf.fd = brd_ring_fd(c);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        /* Still readable until a call says -EAGAIN... */
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(poll(&pf, 1, 0), 0);
        /* ...then a send makes it readable. */
        assert_int_equal(brd_ring_send(p, "r", 1, 0), 0);
        took_one_then_quiet(c, &pf);
        /* An interrupt makes it readable; the call consumes it. */
        assert_int_equal(brd_ring_interrupt(c), 0);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -ECANCELED);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(poll(&pf, 1, 0), 0);
        /* -ECANCELED is not -EAGAIN: the fd stays readable after it, and a
         * message sent then is found through poll() alone. */
        assert_int_equal(brd_ring_interrupt(c), 0);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -ECANCELED);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_send(p, "s", 1, 0), 0);
        took_one_then_quiet(c, &pf);
        /* Close of the producer: readable, then EPIPE for good. */
        brd_ring_close(p);
        assert_int_equal(poll(&pf, 1, 0), 1);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EPIPE);
        assert_int_equal(poll(&pf, 1, 0), 1);
        brd_ring_close(c);
        t_leak_end(&l);
}

#define MIXED_ROUNDS 50

/* One message per go-ahead byte on @go_fd, numbered from 0; after each one
 * sent on a byte other than 'a', "s" on @back_fd. */
static int child_paced_producer(struct brd_handle *h, int go_fd, int back_fd)
{
        struct brd_ring *r;
        uint32_t v;
        char c;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (v = 0; v < 3 * MIXED_ROUNDS; v++) {
                if (read(go_fd, &c, 1) != 1)
                        return 11;
                if (brd_ring_send(r, &v, sizeof(v), -1))
                        return 12;
                if (c != 'a' && write(back_fd, "s", 1) != 1)
                        return 13;
        }
        brd_ring_close(r);
        return 0;
}

/* Have the producer send message @want while we make no call, then find
 * it through poll() alone (no doorbell needed beyond what the calls so far
 * left). */
static void next_through_poll(struct brd_ring *r, struct pollfd *p, int go, int back,
                              char cue, uint32_t want)
{
        uint32_t v;
        char c;

        assert_int_equal(write(go, &cue, 1), 1);
        assert_int_equal(read(back, &c, 1), 1);
        assert_int_equal(poll(p, 1, 10000), 1);
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), (ssize_t)sizeof(v));
        assert_int_equal(v, want);
}

/*
 * An fd user that also makes calls that may wait.  POLLIN stays up until a
 * call with timeout 0 said -EAGAIN: a blocking receive that slept and
 * returned, and one that timed out (it took over the arm of the last
 * -EAGAIN), must each leave a message published later visible to poll(),
 * though the producer rings for none of them (nobody is armed).
 */
static void test_fd_after_blocking_calls(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct pollfd p = { .events = POLLIN };
        struct t_leak l;
        int go[2], back[2];
        uint32_t v, k;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(back, O_CLOEXEC), 0);
        pid = t_ring_fork(4096, BRD_RING_NOSPIN, &hp, &hc, false, &r);
        if (pid == 0) {
                close(go[1]);
                close(back[0]);
                _exit(child_paced_producer(&hp, go[0], back[1]));
        }
        close(go[0]);
        close(back[1]);
        p.fd = brd_ring_fd(r);
        assert_true(p.fd >= 0);
        for (k = 0; k < MIXED_ROUNDS; k++) {
                /* The producer must wake before it sends: we are asleep
                 * in the receive by then, nearly always. */
                assert_int_equal(write(go[1], "a", 1), 1);
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10000), (ssize_t)sizeof(v));
                assert_int_equal(v, 3 * k);
                next_through_poll(r, &p, go[1], back[0], 'b', 3 * k + 1);
                /* Quiet, armed; then a wait that times out. */
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), -EAGAIN);
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 1), -ETIMEDOUT);
                next_through_poll(r, &p, go[1], back[0], 'c', 3 * k + 2);
        }
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10000), -EPIPE);
        close(go[1]);
        close(back[0]);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(r);
        t_leak_end(&l);
}

/*
 * The fd rule as a model, both endpoints at once, under random calls of
 * every kind from one thread, with flags 0, BATCH (a send while the
 * consumer is armed is published at once, not held back) and NOSPIN.  A
 * timeout-0 call that answers -EAGAIN leaves the endpoint armed, and its fd
 * may go quiet; from then on the fd must be readable at once after the peer
 * moves (publishes, releases), after an interrupt, and after any call that
 * answered an error other than that -EAGAIN (it may have taken the arm).  A
 * call that succeeds on what the ring already shows keeps the arm, and the
 * fd may stay quiet.
 */
#define MODEL_STEPS 20000

struct model_side {
        struct brd_ring *r;
        struct pollfd p;
        bool may_be_quiet;
        unsigned eagain, etimedout, ecanceled;  /* coverage */
};

/* After a call on @s that answered @e (timeout @tmo). */
static void model_after(struct model_side *s, ssize_t e, int tmo)
{
        s->eagain += e == -EAGAIN;
        s->etimedout += e == -ETIMEDOUT;
        s->ecanceled += e == -ECANCELED;
        if (e == -EAGAIN && tmo == 0)
                s->may_be_quiet = true;
        else if (e < 0)
                s->may_be_quiet = false;
}

static void model_check(struct model_side *s)
{
        if (!s->may_be_quiet)
                assert_int_equal(poll(&s->p, 1, 0), 1);
}

static void model_run(uint64_t seed, unsigned flags)
{
        struct model_side prod = { 0 }, cons = { 0 };
        uint32_t sent = 0, got = 0, v[64];
        int step;

        t_ring_pair(4096, flags, &prod.r, &cons.r);
        prod.p = (struct pollfd){ .fd = brd_ring_fd(prod.r), .events = POLLIN };
        cons.p = (struct pollfd){ .fd = brd_ring_fd(cons.r), .events = POLLIN };
        assert_true(prod.p.fd >= 0 && cons.p.fd >= 0);
        for (step = 0; step < MODEL_STEPS; step++) {
                uint64_t op = t_rand(&seed) % 10;
                int tmo = t_rand(&seed) % 4 == 0 ? 1 : 0;
                size_t words = 1 + (size_t)(t_rand(&seed) % 64), k;
                const void *m;
                ssize_t e;

                switch (op) {
                case 0: case 1: case 2:         /* send */
                        for (k = 0; k < words; k++)
                                v[k] = sent;
                        e = brd_ring_send(prod.r, v, words * 4, tmo);
                        assert_true(e == 0 || e == -EAGAIN || e == -ETIMEDOUT || e == -ECANCELED);
                        if (e == 0) {
                                sent++;
                                cons.may_be_quiet = false;      /* published */
                        }
                        model_after(&prod, e, tmo);
                        break;
                case 3: case 4:                 /* recv */
                        e = brd_ring_recv(cons.r, v, sizeof(v), tmo);
                        goto received;
                case 5:                         /* peek + release */
                        e = brd_ring_peek(cons.r, &m, tmo);
                        if (e > 0) {
                                memcpy(v, m, (size_t)e);
                                assert_int_equal(brd_ring_release(cons.r), 0);
                        }
                received:
                        assert_true(e > 0 || e == -EAGAIN || e == -ETIMEDOUT || e == -ECANCELED);
                        if (e > 0) {
                                assert_int_equal(e % 4, 0);
                                for (k = 0; k < (size_t)e / 4; k++)
                                        assert_int_equal(v[k], got);
                                got++;
                                prod.may_be_quiet = false;      /* released */
                        }
                        model_after(&cons, e, tmo);
                        break;
                case 6:                         /* interrupt either side */
                        if (t_rand(&seed) & 1) {
                                assert_int_equal(brd_ring_interrupt(prod.r), 0);
                                prod.may_be_quiet = false;
                        } else {
                                assert_int_equal(brd_ring_interrupt(cons.r), 0);
                                cons.may_be_quiet = false;
                        }
                        break;
                case 9:                         /* BATCH: publish what is held */
                        assert_int_equal(brd_ring_flush(prod.r), 0);
                        if (sent > got)
                                cons.may_be_quiet = false;
                        break;
                default:                        /* a poll that may sleep a little */
                        (void)poll(t_rand(&seed) & 1 ? &prod.p : &cons.p, 1, tmo);
                        break;
                }
                model_check(&prod);
                model_check(&cons);
        }
        assert_true(got > MODEL_STEPS / 10);
        assert_true(prod.eagain && prod.etimedout && prod.ecanceled);
        assert_true(cons.eagain && cons.etimedout && cons.ecanceled);
        /* The producer's close shows at once, whatever state the consumer
         * was left in; the rest comes out, then -EPIPE, readable for good. */
        brd_ring_close(prod.r);
        assert_int_equal(poll(&cons.p, 1, 0), 1);
        for (;;) {
                ssize_t e = brd_ring_recv(cons.r, v, sizeof(v), 0);

                if (e == -ECANCELED)
                        continue;               /* a latched interrupt */
                if (e == -EPIPE)
                        break;
                assert_true(e > 0);
                assert_int_equal(v[0], got);
                got++;
                assert_int_equal(poll(&cons.p, 1, 0), 1);
        }
        assert_int_equal(got, sent);
        assert_int_equal(poll(&cons.p, 1, 0), 1);
        brd_ring_close(cons.r);
}

static void test_fd_rule_under_random_calls(void **state)
{
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        for (uint64_t seed = 1; seed <= 3; seed++) {
                model_run(seed, 0);
                model_run(seed, BRD_RING_BATCH);
                model_run(seed, BRD_RING_NOSPIN);
        }
        t_leak_end(&l);
}

/*
 * An edge-triggered loop (EPOLLET on brd_ring_fd(), as tokio's AsyncFd
 * registers it): a read() that took RING_READ_EMPTY_MAX empty messages and
 * stopped with -EAGAIN must be followed by an edge for the data sent after
 * it.  The stop armed nothing afresh, and the producer, which had rung that
 * arm once, rang no more: the loop slept through the data.
 */
static void test_fd_edge_triggered_after_empty_messages(void **state)
{
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
        struct brd_ring *p, *c;
        struct t_leak l;
        char buf[64];
        int ep, i, guard;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(65536, 0, &p, &c);
        ep = epoll_create1(EPOLL_CLOEXEC);
        assert_true(ep >= 0);
        assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, brd_ring_fd(c), &ev), 0);
        assert_int_equal(brd_ring_read(c, buf, sizeof(buf), 0), -EAGAIN);
        for (i = 0; i < (int)RING_READ_EMPTY_MAX; i++)
                assert_int_equal(brd_ring_send(p, "", 0, 0), 0);
        assert_int_equal(epoll_wait(ep, &ev, 1, 10000), 1);
        assert_int_equal(brd_ring_read(c, buf, sizeof(buf), 0), -EAGAIN);
        /* The loop: an edge, a call, until the edges stop. */
        for (guard = 0; epoll_wait(ep, &ev, 1, 0) == 1; guard++) {
                assert_true(guard < 100);
                assert_int_equal(brd_ring_read(c, buf, sizeof(buf), 0), -EAGAIN);
        }
        assert_int_equal(brd_ring_send(p, "x", 1, 0), 0);
        assert_int_equal(epoll_wait(ep, &ev, 1, 10000), 1);
        assert_int_equal(brd_ring_read(c, buf, sizeof(buf), 0), 1);
        close(ep);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fd_interrupt_and_initial_readiness),
                cmocka_unit_test(test_poll_driven_consumer),
                cmocka_unit_test(test_poll_driven_producer_epoll),
                cmocka_unit_test(test_fd_after_blocking_calls),
                cmocka_unit_test(test_fd_rule_under_random_calls),
                cmocka_unit_test(test_fd_edge_triggered_after_empty_messages),
        };

        return cmocka_run_group_tests_name("ringbuf-poll", tests, NULL, NULL);
}
