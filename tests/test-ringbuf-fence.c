/* SPDX-License-Identifier: MIT */
/*
 * The fence mode (internal/brd-ring.h): a side about to sleep whose
 * membarriers are dear asks its peer to fence instead; the peer, finding it
 * asleep and asking, fences its next BRD_RING_FENCE_PUBLISHES publishes and
 * says so in its side (asym 0), and a sleeper that reads that pays no
 * membarrier.  The averages and thresholds; the state machine step by step
 * in one process, read off the shared header; ping-pongs with a forked
 * peer that lose nothing whatever the sleepers ask, and pay a membarrier
 * per sleep only when they never ask; a membarrier that fails.  The
 * membarriers are counted (and failed on demand) through a wrapped
 * syscall().
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/handle.h>
#include <brood/ringbuf.h>
#include "internal/brd-ring.h"
#include "../ringbuf/endpoint.h"        /* white box: a publisher's view */

/* ------------------------------------------- membarrier, counted */

static int mb_calls;            /* membarrier(GLOBAL_EXPEDITED) in this process */
static bool mb_fail;            /* make them fail (EPERM) */
static int pidfd_fail;          /* make pidfd_open fail with this errno (EPERM: seccomp) */
static void (*pidfd_hook)(void);        /* run once, at the next pidfd_open */
/* >= 0: the next write to this fd is made, then its thread stalls until a
 * byte comes on stall_gate (stall_stalled says it got there). */
static int stall_write_fd = -1, stall_gate = -1, stall_stalled;
static int futex_calls;         /* futex_waitv() in this process */
static bool futex_fail;         /* make them fail (ENOSYS, as on Linux < 5.16) */

/* The library's syscall() calls, with their argument counts: a call this
 * does not know aborts the test rather than read arguments never passed.
 * (capset: the tests' own, helpers.c, at start where the user is not root.) */
long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);
long __wrap_syscall(long nr, ...)
{
        int n = nr == SYS_membarrier ? 3 : nr == SYS_pidfd_open ? 2 : nr == SYS_futex ? 6 :
                nr == SYS_futex_waitv || nr == SYS_waitid ? 5 :
                nr == SYS_read || nr == SYS_write || nr == SYS_recvmsg ? 3 :
                nr == SYS_close ? 1 : nr == SYS_capset ? 2 : -1;
        long a[6] = { 0 };
        va_list ap;

        if (n < 0)
                abort();
        va_start(ap, nr);
        for (int i = 0; i < n; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (nr == SYS_membarrier && a[0] == MEMBARRIER_CMD_GLOBAL_EXPEDITED) {
                mb_calls++;
                if (mb_fail) {
                        errno = EPERM;
                        return -1;
                }
        }
        if (nr == SYS_futex_waitv) {
                futex_calls++;
                if (futex_fail) {
                        errno = ENOSYS;
                        return -1;
                }
        }
        if (nr == SYS_pidfd_open && pidfd_fail) {
                errno = pidfd_fail;
                return -1;
        }
        if (nr == SYS_write && (int)a[0] == stall_write_fd && stall_write_fd >= 0) {
                long ret = __real_syscall(nr, a[0], a[1], a[2]);
                char c;

                stall_write_fd = -1;    /* once */
                __atomic_store_n(&stall_stalled, 1, __ATOMIC_RELEASE);
                while (read(stall_gate, &c, 1) < 0 && errno == EINTR)
                        ;
                return ret;
        }
        if (nr == SYS_pidfd_open && pidfd_hook) {
                void (*hook)(void) = pidfd_hook;

                pidfd_hook = NULL;      /* once: the hook makes system calls too */
                hook();
        }
        return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ------------------------------------------- the policy's arithmetic */

static void test_average_and_thresholds(void **state)
{
        int64_t avg;

        (void)state;
        /* The first sample is taken as it is, then weight 1/8; samples
         * clamped to [0, BRD_RING_FENCE_MB_MAX_NS]. */
        assert_int_equal(brd__ring_mb_avg(0, 1300), 1300);
        assert_int_equal(brd__ring_mb_avg(1000, 9000), 2000);
        assert_int_equal(brd__ring_mb_avg(0, (int64_t)1 << 40), BRD_RING_FENCE_MB_MAX_NS);
        assert_int_equal(brd__ring_mb_avg(4000, -7), 3500);
        /* One preempted membarrier does not make cheap ones dear; a run of
         * dear ones does. */
        avg = brd__ring_mb_avg(1300, (int64_t)1 << 40);
        assert_false(brd__ring_fence_want(avg, false));
        avg = brd__ring_mb_avg(avg, 24000);
        assert_true(brd__ring_fence_want(avg, false));
        /* Asks above BRD_RING_FENCE_MB_NS; once asking, until below half. */
        assert_false(brd__ring_fence_want(0, false));
        assert_false(brd__ring_fence_want(BRD_RING_FENCE_MB_NS, false));
        assert_true(brd__ring_fence_want(BRD_RING_FENCE_MB_NS + 1, false));
        assert_true(brd__ring_fence_want(BRD_RING_FENCE_MB_NS, true));
        assert_true(brd__ring_fence_want(BRD_RING_FENCE_MB_NS / 2 + 1, true));
        assert_false(brd__ring_fence_want(BRD_RING_FENCE_MB_NS / 2, true));
}

/* ------------------------------------------- one process, step by step */

static void test_request_followed_then_expires(void **state)
{
        struct t_ring_view v;
        char buf[16];
        int mb0;

        (void)state;
        t_ring_view_open(&v, 4096, 0, false);
        if (!AO_load(&v.hdr->prod.asym)) {
                /* No membarrier here (seccomp, an old kernel): every publish
                 * fences, there is nothing to ask for. */
                t_ring_view_close(&v);
                skip();
        }
        brd__fence_policy = BRD_FENCE_ALWAYS;
        /* A brd_ring_fd() user: timeout 0 leaves the consumer armed. */
        assert_true(brd_ring_fd(v.c) >= 0);
        mb0 = mb_calls;
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(AO_load(&v.hdr->cons.fence_req), 1);
        assert_true(AO_load(&v.hdr->cons.state) & BRD_RING_ST_SLEEPING);
        assert_int_equal(mb_calls, mb0 + 1);    /* the producer still skipped its fence */

        /* The producer finds it asleep and asking: fences from now on. */
        assert_int_equal(brd_ring_send(v.p, "m0", 3, 0), 0);
        assert_int_equal(AO_load(&v.hdr->prod.asym), 0);
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), 3);
        assert_string_equal(buf, "m0");

        /* Asleep again: the producer fences, so no membarrier. */
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(mb_calls, mb0 + 1);

        /* The publish that rings renews the count; then it runs out and the
         * producer skips its fence again. */
        for (int i = 1; i <= BRD_RING_FENCE_PUBLISHES; i++) {
                snprintf(buf, sizeof(buf), "m%d", i);
                assert_int_equal(brd_ring_send(v.p, buf, strlen(buf) + 1, 0), 0);
                assert_int_equal(AO_load(&v.hdr->prod.asym), 0);
        }
        assert_int_equal(brd_ring_send(v.p, "last", 5, 0), 0);
        assert_int_equal(AO_load(&v.hdr->prod.asym), 1);
        for (int i = 1; i <= BRD_RING_FENCE_PUBLISHES; i++) {
                char want[16];

                snprintf(want, sizeof(want), "m%d", i);
                assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), (ssize_t)strlen(want) + 1);
                assert_string_equal(buf, want);
        }
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), 5);
        assert_string_equal(buf, "last");

        /* Never asking: the request is withdrawn, a membarrier per sleep,
         * and the producer keeps skipping its fence. */
        brd__fence_policy = BRD_FENCE_NEVER;
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(AO_load(&v.hdr->cons.fence_req), 0);
        assert_int_equal(mb_calls, mb0 + 2);
        assert_int_equal(brd_ring_send(v.p, "n", 2, 0), 0);
        assert_int_equal(AO_load(&v.hdr->prod.asym), 1);
        assert_int_equal(brd_ring_recv(v.c, buf, sizeof(buf), 0), 2);
        brd__fence_policy = BRD_FENCE_AUTO;
        t_ring_view_close(&v);
}

/* ------------------------------------------- ping-pong with a child */

#define PP_MSGS 2000
#define PP_LEN  64

static void pp_fill(uint8_t *m, uint32_t i, uint8_t salt)
{
        for (int k = 0; k < PP_LEN; k++)
                m[k] = (uint8_t)(i * 131 + (uint32_t)k * 7 + salt);
}

/* The child: echoes every message of @rx to @tx, each checked first. */
static int pp_child(struct brd_handle *rx_h, struct brd_handle *tx_h)
{
        struct brd_ring *rx, *tx;
        uint8_t m[PP_LEN], want[PP_LEN];

        if (brd_ring_attach(rx_h, &rx) < 0 || brd_ring_attach(tx_h, &tx) < 0)
                return 2;
        for (uint32_t i = 0; i < PP_MSGS; i++) {
                if (brd_ring_recv(rx, m, sizeof(m), 10000) != PP_LEN)
                        return 3;
                pp_fill(want, i, 1);
                if (memcmp(m, want, PP_LEN))
                        return 4;
                pp_fill(m, i, 2);
                if (brd_ring_send(tx, m, PP_LEN, 10000) != 0)
                        return 5;
        }
        return brd_ring_recv(rx, m, sizeof(m), 10000) == -EPIPE ? 0 : 6;
}

static uint64_t pp_waits;        /* sleeps of the parent's receives in the last ping_pong() */

/* PP_MSGS round trips through two NOSPIN rings (every wait sleeps); returns
 * the membarriers the parent paid. */
static int ping_pong(int policy)
{
        struct brd_handle ap, ac, bp, bc;
        struct brd_ring *tx, *rx;
        uint8_t m[PP_LEN], want[PP_LEN];
        struct t_leak l;
        int mb0;
        pid_t pid;

        t_leak_begin(&l);
        brd__fence_policy = policy;
        assert_int_equal(brd_ring_create(4096, BRD_RING_NOSPIN, &ap, &ac), 0);
        assert_int_equal(brd_ring_create(4096, BRD_RING_NOSPIN, &bp, &bc), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd_handle_close(&ap);
                brd_handle_close(&bc);
                _exit(pp_child(&ac, &bp));
        }
        brd_handle_close(&ac);
        brd_handle_close(&bp);
        assert_int_equal(brd_ring_attach(&ap, &tx), 0);
        assert_int_equal(brd_ring_attach(&bc, &rx), 0);
        brd_handle_close(&ap);
        brd_handle_close(&bc);
        mb0 = mb_calls;
        for (uint32_t i = 0; i < PP_MSGS; i++) {
                pp_fill(m, i, 1);
                assert_int_equal(brd_ring_send(tx, m, PP_LEN, 10000), 0);
                assert_int_equal(brd_ring_recv(rx, m, sizeof(m), 10000), PP_LEN);
                pp_fill(want, i, 2);
                assert_memory_equal(m, want, PP_LEN);
        }
        mb0 = mb_calls - mb0;
        {
                struct brd_ring_stats st;

                assert_int_equal(brd_ring_stats(rx, &st), 0);
                pp_waits = st.waits;
        }
        brd_ring_close(tx);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(rx);
        brd__fence_policy = BRD_FENCE_AUTO;
        t_leak_end(&l);
        return mb0;
}

static void test_ping_pong_loses_nothing(void **state)
{
        int never, always, aut;

        (void)state;
        /* Never asking costs a membarrier per sleep, and how many round
         * trips sleep is the scheduler's: a loaded machine lets most
         * replies in first.  Compared only over enough sleeps (up to three
         * tries for them); a sleeper that asks and is not heard pays one
         * per sleep however few there are. */
        for (int k = 0; k < 3; k++) {
                never = ping_pong(BRD_FENCE_NEVER);
                if (never >= PP_MSGS / 20)
                        break;
        }
        always = ping_pong(BRD_FENCE_ALWAYS);
        aut = ping_pong(BRD_FENCE_AUTO);
        print_message("membarriers in %d round trips: never asking %d, always %d, auto %d\n",
                      PP_MSGS, never, always, aut);
        if (never < PP_MSGS / 20)
                skip();         /* too few sleeps (or no membarrier here): nothing to compare */
        /* Asking, the parent pays a membarrier only when the child's fenced
         * publishes ran out before it slept: far fewer than one per sleep. */
        assert_true(always * 4 < never);
}

/* A membarrier that fails: the sleeper asks for fences for good and stops
 * calling it; the ring keeps every message. */
static void test_failing_membarrier(void **state)
{
        int n;

        (void)state;
        mb_fail = true;
        n = ping_pong(BRD_FENCE_AUTO);
        mb_fail = false;
        assert_true(n <= 1);
}

/*
 * Sleeps are futex sleeps first (ringbuf/wait.c): the parent's NOSPIN
 * receives sleep in futex_waitv().  Where that call fails, each endpoint
 * tries it once, then sleeps in its epoll set, and the ring keeps every
 * message.  (How many receives sleep at all depends on the scheduling: a
 * loaded machine lets the reply in before some of them.)
 */
static void test_futex_sleeps_and_their_failure(void **state)
{
        uint64_t waits;
        int n;

        (void)state;
        if (!t_have_futex_waitv())
                skip();         /* Linux < 5.16: the rings never call it */
        futex_calls = 0;
        ping_pong(BRD_FENCE_AUTO);
        n = futex_calls;
        waits = pp_waits;
        futex_fail = true;
        futex_calls = 0;
        ping_pong(BRD_FENCE_AUTO);
        futex_fail = false;
        print_message("%d round trips: %d futex_waitv() for %d sleeps; failing: %d for %d\n",
                      PP_MSGS, n, (int)waits, futex_calls, (int)pp_waits);
        /* A sleep is a futex sleep unless its wait already slept 20 ms:
         * nearly all of them, and at least half on any machine. */
        assert_true(waits > 0 && (uint64_t)n * 2 >= waits);
        assert_in_range(futex_calls, 1, 2);
        assert_true(pp_waits > 2);      /* the others slept in epoll */
}

/*
 * Where no pidfd can be had, a peer's death is polled: a producer that
 * attached and exited without closing, not yet reaped (a zombie), is dead:
 * the consumer answers -ECONNRESET (it took a zombie for alive and slept
 * to its 10 s timeout before).  Whatever pidfd_open() says: EPERM (seccomp)
 * or an errno of no known meaning here, EACCES from an LSM say (that one
 * poisoned the ring before, -EBADMSG as if its memory were corrupt).
 */
static void test_zombie_peer_without_pidfd(void **state)
{
        static const int errs[] = { EPERM, EACCES };
        struct brd_handle hp, hc;
        struct brd_ring *r, *p;
        struct t_leak l;
        char buf[16];
        pid_t pid;

        (void)state;
        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
                t_leak_begin(&l);
                pidfd_fail = errs[i];
                pid = t_ring_fork(8192, 0, &hp, &hc, false, &r);
                if (pid == 0)
                        _exit(brd_ring_attach(&hp, &p) == 0 ? 0 : 10);  /* no close */
                assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), -ECONNRESET);
                pidfd_fail = 0;
                assert_int_equal(t_wait_child(pid), 0);
                brd_ring_close(r);
                t_leak_end(&l);
        }
}

/* The producer of the next tests: three messages, then death when told,
 * after @idle_ms (not a synchronisation: the consumer is then past the
 * futex phase of its wait, asleep in its epoll set). */
static int child_send_then_die(struct brd_handle *h, int go_fd, int idle_ms,
                               volatile int64_t *death_ns)
{
        struct brd_ring *p;
        char c;

        if (brd_ring_attach(h, &p) < 0)
                return 10;
        for (uint32_t i = 0; i < 3; i++)
                if (brd_ring_send(p, &i, sizeof(i), 10000) != 0)
                        return 11;
        if (read(go_fd, &c, 1) != 1)
                return 12;
        if (idle_ms)
                poll(NULL, 0, idle_ms);
        *death_ns = t_now_ns();
        raise(SIGKILL);
        return 13;
}

/* The consumer's side of the next tests: no pidfd to be had, and a child
 * producer (child_send_then_die()) that dies when told on go. */
struct doomed {
        volatile int64_t *death_ns;
        struct brd_ring *r;
        struct t_leak l;
        int go;                         /* write a byte: the producer dies */
        pid_t pid;
};

static void doomed_start(struct doomed *d, int idle_ms)
{
        struct brd_handle hp, hc;
        int go[2];

        t_leak_begin(&d->l);
        d->death_ns = t_shared_page();
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        pidfd_fail = EPERM;
        d->pid = t_ring_fork(8192, 0, &hp, &hc, false, &d->r);
        if (d->pid == 0) {
                close(go[1]);
                _exit(child_send_then_die(&hp, go[0], idle_ms, d->death_ns));
        }
        close(go[0]);
        d->go = go[1];
}

static void doomed_end(struct doomed *d)
{
        pidfd_fail = 0;
        assert_int_equal(t_wait_child(d->pid), 128 + SIGKILL);
        brd_ring_close(d->r);
        close(d->go);
        t_shared_page_free((void *)d->death_ns);
        t_leak_end(&d->l);
}

/*
 * Where no pidfd can be had, a poll()-driven consumer still learns of a
 * death within 100 ms: its set holds a timer then, which its last -EAGAIN
 * set (RING_FALLBACK_MS).  Before it, nothing in the set could fire and
 * the poll() below slept its 10 s.  The 100 ms as t_tries() takes them.
 */
static bool poll_sees_death_without_pidfd_try(void)
{
        struct pollfd pf = { .events = POLLIN };
        uint32_t v, got = 0;
        struct doomed d;
        int64_t told = 0, now;
        int polls = 0;
        ssize_t n;
        bool kept;

        doomed_start(&d, 0);
        pf.fd = brd_ring_fd(d.r);
        assert_true(pf.fd >= 0);
        for (;;) {
                assert_int_equal(poll(&pf, 1, 10000), 1);
                polls += told != 0;
                while ((n = brd_ring_recv(d.r, &v, sizeof(v), 0)) >= 0) {
                        assert_int_equal(n, sizeof(v));
                        assert_int_equal(v, got);
                        got++;
                }
                if (n != -EAGAIN)
                        break;
                /* Everything read and the producer alive, as the -EAGAIN
                 * found it: now it dies, while we are in poll(). */
                if (got == 3 && !told) {
                        told = t_now_ns();
                        assert_int_equal(write(d.go, "x", 1), 1);
                }
        }
        assert_int_equal(n, -ECONNRESET);
        assert_int_equal(got, 3);
        assert_true(*d.death_ns > 0);
        now = t_now_ns();
        kept = now - *d.death_ns <= 100 * 1000000LL;
        /* Woken by a timer of 20 ms, not spinning. */
        assert_true(polls <= (now - told) / 20000000 + 3);
        doomed_end(&d);
        return kept;
}

static void test_poll_sees_death_without_pidfd(void **state)
{
        (void)state;
        t_tries(poll_sees_death_without_pidfd_try, "poll_sees_death_without_pidfd");
}

static void on_alarm(int sig)
{
        (void)sig;
}

/*
 * Where no pidfd can be had, signals coming faster than the polled death
 * check's 20 ms (an interval timer of 2 ms, SA_RESTART) into the epoll
 * sleep still leave that check its turn: the consumer answers -ECONNRESET
 * soon after the death.  Before, each signal went back to sleep before the
 * check, and the call slept to its 3 s timeout (-ETIMEDOUT).
 */
static void test_signals_hide_no_death_without_pidfd(void **state)
{
        struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART }, old;
        struct itimerval on = { { 0, 2000 }, { 0, 2000 } }, off = { { 0, 0 }, { 0, 0 } };
        struct doomed d;
        uint32_t v;
        ssize_t n;

        (void)state;
        doomed_start(&d, 100);
        for (uint32_t i = 0; i < 3; i++) {
                assert_int_equal(brd_ring_recv(d.r, &v, sizeof(v), 10000), sizeof(v));
                assert_int_equal(v, i);
        }
        assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
        assert_int_equal(setitimer(ITIMER_REAL, &on, NULL), 0);
        assert_int_equal(write(d.go, "x", 1), 1);
        n = brd_ring_recv(d.r, &v, sizeof(v), 3000);
        assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
        assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
        assert_int_equal(n, -ECONNRESET);
        assert_true(*d.death_ns > 0);
        assert_true(t_now_ns() - *d.death_ns <= 1000 * 1000000LL);
        doomed_end(&d);
}

/* ------------------------------------------- a ring lost to a stale arm */

static struct brd_ring *lost_p, *lost_c;

/* As a publisher that skipped its fence does it: its load of our state
 * still saw our previous arm, so its ring went that arm's way (none here:
 * the arm counts as rung), and our asking for fences made it clear asym. */
static void lose_ring(void)
{
        uint64_t v = 42;

        lost_p->rung = AO_load(&lost_c->own->state);
        lost_p->rung_woke = true;
        assert_int_equal(brd_ring_send(lost_p, &v, sizeof(v), 0), 0);
        AO_store(&lost_p->own->asym, 0);
}

struct timed_recv {
        ssize_t n;
        int64_t ms;
};

static void *timed_recv_main(void *arg)
{
        struct timed_recv *t = arg;
        uint64_t v = 0;
        int64_t t0 = t_now_ms();

        t->n = brd_ring_recv(lost_c, &v, sizeof(v), 10000);
        t->ms = t_now_ms() - t0;
        if (t->n == sizeof(v) && v != 42)
                t->n = -EBADMSG;
        return NULL;
}

/*
 * A sleeper whose membarrier failed, arming while its publisher skips its
 * fence (asym): the publisher may miss the arm, so the sleep is bounded
 * (RING_FALLBACK_MS).  The bound was taken from asym as read at the sleep,
 * after the arm: a publisher that had seen the previous arm and cleared
 * asym for the sleeper's asking left the sleep unbounded, and the message
 * it published waited for the call's 10 s timeout.  (The publisher's stale
 * load is what a missing fence allows; here it is played in the sleeper's
 * pidfd_open, between its arm and its sleep.)
 */
static void test_unfenced_arm_sleep_bounded(void **state)
{
        struct timed_recv t = { 0 };
        struct epoll_event ev[4];
        int futex_ms = brd__ring_futex_ms;
        struct t_leak l;
        pthread_t th;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &lost_p, &lost_c);
        lost_c->mb_failed = true;               /* its membarrier failed once */
        lost_p->mb_registered = true;
        lost_p->asym = true;
        AO_store(&lost_p->own->asym, 1);        /* the publisher skips its fence */
        brd__ring_futex_ms = 0;                 /* straight to the epoll sleep */
        /* The attaches' rings: shown once by the set (edge-triggered), they
         * would end the first sleep whatever it waited for. */
        while (epoll_wait(lost_c->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), 0) > 0)
                ;
        pidfd_hook = lose_ring;
        assert_int_equal(pthread_create(&th, NULL, timed_recv_main, &t), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        brd__ring_futex_ms = futex_ms;
        assert_null(pidfd_hook);                /* it ran */
        assert_int_equal(t.n, 8);
        if (t.ms >= 5000)
                fail_msg("the message waited %lld ms for a ring that never came", (long long)t.ms);
        brd_ring_close(lost_p);
        brd_ring_close(lost_c);
        t_leak_end(&l);
}

/* ------------------------------------------- a close during a flush */

static struct brd_ring *flush_c;

static void close_consumer(void)
{
        brd_ring_close(flush_c);
        flush_c = NULL;
}

/*
 * The consumer closes while a flush of held-back messages looks at its
 * pidfd, after the flush's own look at the closed flag: the publish that
 * follows reads the flag, and the flush answers -EPIPE (the messages were
 * never taken), as a send would.  It answered 0, and only the next call
 * told the producer.
 */
static void test_close_during_flush_is_epipe(void **state)
{
        struct brd_ring_stats st;
        struct brd_ring *p;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, BRD_RING_BATCH, &p, &flush_c);
        assert_int_equal(brd_ring_send(p, "held", 4, 0), 0);
        assert_int_equal(AO_load(p->peer_idx), 0);      /* nothing taken */
        pidfd_hook = close_consumer;
        assert_int_equal(brd_ring_flush(p), -EPIPE);
        assert_null(pidfd_hook);                        /* it ran, in the flush */
        assert_null(flush_c);
        assert_int_equal(brd_ring_send(p, "more", 4, 0), -EPIPE);
        assert_int_equal(brd_ring_stats(p, &st), 0);
        assert_int_equal(st.messages, 1);
        brd_ring_close(p);
        t_leak_end(&l);
}

/* ------------------------------------------- an interrupt stalled midway */

static struct brd_ring *intr_r;

static void *interrupt_main(void *arg)
{
        (void)arg;
        return (void *)(intptr_t)brd_ring_interrupt(intr_r);
}

struct sleeper {
        struct timed_recv t;
        pid_t tid;
};

static void *sleeper_main(void *arg)
{
        struct sleeper *sl = arg;
        uint64_t v;
        int64_t t0;

        __atomic_store_n(&sl->tid, gettid(), __ATOMIC_RELEASE);
        t0 = t_now_ms();
        sl->t.n = brd_ring_recv(intr_r, &v, sizeof(v), 10000);
        sl->t.ms = t_now_ms() - t0;
        return NULL;
}

/*
 * An interrupt whose thread stalls between its eventfd write and its flag
 * store, longer than a cancel waits for it (a stopped thread, a debugger):
 * the cancel of the interrupt before it drains that write, and a call that
 * then sleeps in epoll must still be woken when the flag lands.  Nothing
 * rang it but where brd_ring_fd() had been called: it slept its 10 s.
 */
static void test_stalled_interrupt_still_wakes(void **state)
{
        struct sleeper sl = { { 0 }, 0 };
        struct epoll_event ev[4];
        int futex_ms = brd__ring_futex_ms, gate[2];
        struct brd_ring *p;
        struct t_leak l;
        pthread_t ti, ts;
        uint64_t v;
        void *ir;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &intr_r);
        assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_interrupt(intr_r), 0);       /* the first, whole */
        stall_gate = gate[0];
        stall_write_fd = intr_r->efd_intr;
        assert_int_equal(pthread_create(&ti, NULL, interrupt_main, NULL), 0);
        while (!__atomic_load_n(&stall_stalled, __ATOMIC_ACQUIRE))
                sched_yield();
        /* The first interrupt's cancel: it drains both writes, waits its
         * yields for the stalled one, finds no flag and leaves none. */
        assert_int_equal(brd_ring_recv(intr_r, &v, sizeof(v), 1000), -ECANCELED);
        brd__ring_futex_ms = 0;                 /* straight to the epoll sleep */
        while (epoll_wait(intr_r->epfd, ev, (int)(sizeof(ev) / sizeof(ev[0])), 0) > 0)
                ;
        assert_int_equal(pthread_create(&ts, NULL, sleeper_main, &sl), 0);
        while (!__atomic_load_n(&sl.tid, __ATOMIC_ACQUIRE))
                sched_yield();
        t_wait_in_syscall(sl.tid, SYS_epoll_wait, SYS_epoll_pwait);
        assert_int_equal(write(gate[1], "g", 1), 1);           /* the flag lands */
        assert_int_equal(pthread_join(ti, &ir), 0);
        assert_int_equal(pthread_join(ts, NULL), 0);
        brd__ring_futex_ms = futex_ms;
        stall_stalled = 0;
        assert_int_equal((intptr_t)ir, 0);
        assert_int_equal(sl.t.n, -ECANCELED);
        if (sl.t.ms >= 5000)
                fail_msg("the interrupt reached the sleep after %lld ms", (long long)sl.t.ms);
        close(gate[0]);
        close(gate[1]);
        brd_ring_close(p);
        brd_ring_close(intr_r);
        t_leak_end(&l);
}

/*
 * An interrupt whose thread stalls between its eventfd write and its flag
 * store: the write shows to every waiter with no interrupt behind it yet.
 * A sleep in epoll that it wakes, and a brd_ring_fd() user's call after
 * the poll it made readable, take it, so that neither spins until the flag
 * lands; the flag's doorbell still wakes both then.  Before, the sleep
 * woke at once again and again (thousands of waits in 50 ms), and the fd
 * stayed readable through every -EAGAIN.
 */
static void test_interrupt_write_without_flag_taken(void **state)
{
        int futex_ms = brd__ring_futex_ms, gate[2], fd;
        struct brd_ring_stats st0, st1;
        struct brd_ring *p;
        struct pollfd pf;
        struct t_leak l;
        pthread_t ti;
        uint64_t v;
        void *ir;
        int round;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &intr_r);
        assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
        brd__ring_futex_ms = 0;                 /* straight to the epoll sleep */
        for (round = 0; round < 2; round++) {
                stall_gate = gate[0];
                stall_write_fd = intr_r->efd_intr;
                assert_int_equal(pthread_create(&ti, NULL, interrupt_main, NULL), 0);
                while (!__atomic_load_n(&stall_stalled, __ATOMIC_ACQUIRE))
                        sched_yield();
                if (round == 0) {
                        /* A sleep: woken once by the write, then sleeps out
                         * its 50 ms bound. */
                        assert_int_equal(brd_ring_stats(intr_r, &st0), 0);
                        assert_int_equal(brd_ring_recv(intr_r, &v, sizeof(v), 50), -ETIMEDOUT);
                        assert_int_equal(brd_ring_stats(intr_r, &st1), 0);
                        if (st1.waits - st0.waits > 4)
                                fail_msg("%llu sleeps in one 50 ms wait",
                                         (unsigned long long)(st1.waits - st0.waits));
                } else {
                        /* A brd_ring_fd() user: its first call shows the fd
                         * once; after a call, the write shows no more. */
                        fd = brd_ring_fd(intr_r);
                        assert_true(fd >= 0);
                        pf = (struct pollfd){ .fd = fd, .events = POLLIN };
                        assert_int_equal(poll(&pf, 1, 0), 1);
                        assert_int_equal(brd_ring_recv(intr_r, &v, sizeof(v), 0), -EAGAIN);
                        assert_int_equal(poll(&pf, 1, 0), 0);
                }
                assert_int_equal(write(gate[1], "g", 1), 1);   /* the flag lands */
                assert_int_equal(pthread_join(ti, &ir), 0);
                stall_stalled = 0;
                assert_int_equal((intptr_t)ir, 0);
                if (round == 1)
                        assert_int_equal(poll(&pf, 1, 10000), 1);
                assert_int_equal(brd_ring_recv(intr_r, &v, sizeof(v), round ? 0 : 10000), -ECANCELED);
        }
        brd__ring_futex_ms = futex_ms;
        close(gate[0]);
        close(gate[1]);
        brd_ring_close(p);
        brd_ring_close(intr_r);
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_average_and_thresholds),
                cmocka_unit_test(test_request_followed_then_expires),
                cmocka_unit_test(test_ping_pong_loses_nothing),
                cmocka_unit_test(test_failing_membarrier),
                cmocka_unit_test(test_futex_sleeps_and_their_failure),
                cmocka_unit_test(test_zombie_peer_without_pidfd),
                cmocka_unit_test(test_poll_sees_death_without_pidfd),
                cmocka_unit_test(test_signals_hide_no_death_without_pidfd),
                cmocka_unit_test(test_unfenced_arm_sleep_bounded),
                cmocka_unit_test(test_stalled_interrupt_still_wakes),
                cmocka_unit_test(test_interrupt_write_without_flag_taken),
                cmocka_unit_test(test_close_during_flush_is_epipe),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
