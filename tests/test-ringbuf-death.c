/* SPDX-License-Identifier: MIT */
/*
 * Peer death (RELIABILITY A1-A4): a SIGKILLed peer is noticed within
 * 100 ms whether the survivor is blocked, polling or idle; everything
 * committed before the death is delivered; nothing half-written is; the
 * survivor does not burn CPU while it waits.  Children report only through
 * their exit code (or die by SIGKILL on purpose: 128 + 9).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include "internal/brd-ring.h"

#define KILLED (128 + SIGKILL)

/* Shared with the children (t_shared_page(), zeroed): when they died
 * (CLOCK_MONOTONIC, ns). */
struct shared {
        volatile int64_t death_ns;
};

static struct brd_ring_hdr *hdr_map(const struct brd_handle *h)
{
        void *p = mmap(NULL, h->size, PROT_READ | PROT_WRITE, MAP_SHARED, h->fds[0], 0);

        return p == MAP_FAILED ? NULL : p;
}

/* In a child: until @side sleeps; gives up (and fails) after 10 s. */
static int child_wait_sleeping(struct brd_ring_side *side)
{
        int64_t until = t_now_ms() + 10000;

        while (!(AO_load(&side->state) & BRD_RING_ST_SLEEPING)) {
                if (t_now_ms() > until)
                        return -1;
                sched_yield();
        }
        return 0;
}

static void child_die(struct shared *s, int idle_ms)
{
        /* A deliberate idle period (what is measured, not a synchronisation):
         * the survivor is blocked all along and must not spin. */
        if (idle_ms)
                poll(NULL, 0, idle_ms);
        s->death_ns = t_now_ns();
        raise(SIGKILL);
        _exit(99);
}

/* ------------------------------------- producer dies, consumer blocked */

static int child_producer_1000_then_die(struct brd_handle *h, struct shared *s)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        struct brd_ring *r;
        uint32_t i;

        if (!hdr || brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < 1000; i++)
                if (brd_ring_send(r, &i, sizeof(i), -1))
                        return 11;
        if (child_wait_sleeping(&hdr->cons))
                return 12;
        child_die(s, 300);
        return 13;
}

static bool producer_killed_consumer_blocked_try(void)
{
        struct shared *s = t_shared_page();
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        uint32_t i, v;
        int64_t cpu0, t_ret, lat;
        pid_t pid;
        bool kept;

        t_leak_begin(&l);
        pid = t_ring_fork(64 * 1024, 0, &hp, &hc, false, &r);
        if (pid == 0) {
                _exit(child_producer_1000_then_die(&hp, s));
        }
        for (i = 0; i < 1000; i++) {
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10000), sizeof(v));
                assert_int_equal(v, i);
        }
        cpu0 = t_cpu_ms();
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), -1), -ECONNRESET);
        t_ret = t_now_ns();
        /* ~300 ms blocked: a spin budget of microseconds, then sleeps. */
        assert_true(t_cpu_ms() - cpu0 <= 30);
        assert_true(s->death_ns > 0);
        lat = t_ret - s->death_ns;
        kept = lat <= 100 * 1000000LL;
        /* Final: stays so, the fd stays readable. */
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), -ECONNRESET);
        assert_int_equal(brd_ring_read(r, &v, sizeof(v), 0), -ECONNRESET);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        t_shared_page_free(s);
        t_leak_end(&l);
        if (!kept)
                print_message("death seen %lld ms after it\n", (long long)(lat / 1000000));
        return kept;
}

static void test_producer_killed_consumer_blocked(void **state)
{
        (void)state;
        t_tries(producer_killed_consumer_blocked_try, "producer_killed_consumer_blocked");
}

/* ------------------------ A10: a sibling holds dups of the producer's fds */

/*
 * A third process that holds its own dups of every fd of the producer
 * handle (the memfd and both doorbells: a forgotten close in a child), from
 * before the producer attaches until the end.  It says so with a byte on
 * @ready_fd and holds them until @hold_fd reads EOF; exit code 0 when its
 * dups were still open then.
 */
static int child_hold_dups(struct brd_handle *hp, struct brd_handle *hc, int ready_fd,
                           int hold_fd)
{
        int d[BRD_HANDLE_MAX_FDS];
        uint32_t i, n = hp->nfds;
        ssize_t k;
        char c;

        if (n == 0 || n > BRD_HANDLE_MAX_FDS)
                return 10;
        for (i = 0; i < n; i++)
                if ((d[i] = fcntl(hp->fds[i], F_DUPFD_CLOEXEC, 0)) < 0)
                        return 11;
        brd_handle_close(hp);
        brd_handle_close(hc);
        if (write(ready_fd, "r", 1) != 1)
                return 12;
        do
                k = read(hold_fd, &c, 1);
        while (k < 0 && errno == EINTR);
        if (k != 0)
                return 13;
        for (i = 0; i < n; i++)
                if (fcntl(d[i], F_GETFD) < 0)
                        return 14;
        return 0;
}

/*
 * RELIABILITY A10 (E14): the consumer's liveness check must not depend on
 * the producer's fds going away, since a sibling's dups keep every one of
 * them open (no HUP, no EOF, no last close) after the SIGKILL.  The
 * consumer still gets every message, then -ECONNRESET within 100 ms of the
 * death.  Its timeout is 10 s, not -1, so that a death hidden by the dups
 * fails the test instead of hanging it.
 */
static bool producer_killed_sibling_holds_dups_try(void)
{
        struct shared *s = t_shared_page();
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        int ready[2], hold[2];
        uint32_t i, v;
        int64_t t_ret, lat;
        pid_t sib, pid;
        char c;
        bool kept;

        t_leak_begin(&l);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_create(64 * 1024, 0, &hp, &hc), 0);
        assert_int_equal(hp.nfds, 3);
        sib = t_fork();
        assert_true(sib >= 0);
        if (sib == 0) {
                close(ready[0]);
                close(hold[1]);
                _exit(child_hold_dups(&hp, &hc, ready[1], hold[0]));
        }
        close(ready[1]);
        close(hold[0]);
        assert_int_equal(read(ready[0], &c, 1), 1);     /* the sibling holds its dups */
        close(ready[0]);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(hold[1]);
                brd_handle_close(&hc);
                _exit(child_producer_1000_then_die(&hp, s));
        }
        brd_handle_close(&hp);
        assert_int_equal(brd_ring_attach(&hc, &r), 0);
        brd_handle_close(&hc);
        for (i = 0; i < 1000; i++) {
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10000), sizeof(v));
                assert_int_equal(v, i);
        }
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10000), -ECONNRESET);
        t_ret = t_now_ns();
        assert_true(s->death_ns > 0);
        lat = t_ret - s->death_ns;
        kept = lat <= 100 * 1000000LL;
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), -ECONNRESET);
        assert_int_equal(t_wait_child(pid), KILLED);
        /* The sibling held its dups all along: alive until told. */
        assert_int_equal(kill(sib, 0), 0);
        close(hold[1]);
        assert_int_equal(t_wait_child(sib), 0);
        brd_ring_close(r);
        t_shared_page_free(s);
        t_leak_end(&l);
        if (!kept)
                print_message("death seen %lld ms after it\n", (long long)(lat / 1000000));
        return kept;
}

static void test_producer_killed_sibling_holds_dups(void **state)
{
        (void)state;
        t_tries(producer_killed_sibling_holds_dups_try, "producer_killed_sibling_holds_dups");
}

/* ------------------------- BATCH: what is held back dies with the producer */

static int child_batch_then_die(struct brd_handle *h)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        struct brd_ring *r;
        uint64_t tail;

        if (!hdr || brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (brd_ring_send(r, "first", 5, 0) || brd_ring_flush(r))
                return 11;
        tail = AO_load(&hdr->tail.idx);
        /* The consumer is awake (it waits for us, not for data): held back. */
        if (brd_ring_send(r, "held", 4, 0))
                return 12;
        if (AO_load(&hdr->tail.idx) != tail)
                return 13;
        raise(SIGKILL);
        return 14;
}

/*
 * BRD_RING_BATCH (ringbuf.h, at the flag and at recv): a message that
 * send() returned 0 for but that batching still held back is lost when the
 * producer is killed before publishing it; the consumer gets -ECONNRESET
 * after the last message published.
 */
static void test_batch_held_back_dies_with_producer(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        char buf[16];
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        pid = t_ring_fork(4096, BRD_RING_BATCH, &hp, &hc, false, &r);
        if (pid == 0)
                _exit(child_batch_then_die(&hp));
        assert_int_equal(t_wait_child(pid), KILLED);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), 5);
        assert_memory_equal(buf, "first", 5);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), -ECONNRESET);
        brd_ring_close(r);
        t_leak_end(&l);
}

/* ------------------------------------- consumer dies, producer blocked */

static int child_consumer_then_die(struct brd_handle *h, struct shared *s, int ready_fd)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        struct brd_ring *r;

        if (!hdr || brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (write(ready_fd, "r", 1) != 1)
                return 11;
        if (child_wait_sleeping(&hdr->prod))
                return 12;
        child_die(s, 300);
        return 13;
}

static bool consumer_killed_producer_blocked_try(void)
{
        struct shared *s = t_shared_page();
        struct brd_handle hp, hc;
        struct brd_ring *r;
        char buf[512] = { 0 }, c;
        struct t_leak l;
        int64_t cpu0, t_ret, lat;
        int ready[2];
        pid_t pid;
        bool kept;

        t_leak_begin(&l);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                brd_handle_close(&hp);
                _exit(child_consumer_then_die(&hc, s, ready[1]));
        }
        close(ready[1]);
        brd_handle_close(&hc);
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        assert_int_equal(read(ready[0], &c, 1), 1);     /* the consumer is attached */
        close(ready[0]);
        while (brd_ring_send(r, buf, sizeof(buf), 0) == 0)
                ;
        cpu0 = t_cpu_ms();
        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), -1), -EPIPE);
        t_ret = t_now_ns();
        assert_true(t_cpu_ms() - cpu0 <= 30);
        assert_true(s->death_ns > 0);
        lat = t_ret - s->death_ns;
        kept = lat <= 100 * 1000000LL;
        assert_int_equal(brd_ring_send(r, buf, 1, 0), -EPIPE);
        assert_int_equal(brd_ring_write(r, buf, 1, -1), -EPIPE);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        t_shared_page_free(s);
        t_leak_end(&l);
        if (!kept)
                print_message("death seen %lld ms after it\n", (long long)(lat / 1000000));
        return kept;
}

static void test_consumer_killed_producer_blocked(void **state)
{
        (void)state;
        t_tries(consumer_killed_producer_blocked_try, "consumer_killed_producer_blocked");
}

/* ---------------------------------- consumer dies asleep, producer sends */

/* A consumer that waits in brd_ring_recv() on an empty ring, in futexes
 * for the first @futex_ms of its wait (0: in its epoll set at once), or
 * (-1) a brd_ring_fd() user: armed by a recv that answers -EAGAIN, asleep
 * in its own poll() of the fd. */
static int child_consumer_sleeps(struct brd_handle *h, int futex_ms)
{
        struct pollfd p = { .events = POLLIN };
        struct brd_ring *r;
        char buf[64];

        brd__ring_futex_ms = futex_ms < 0 ? 0 : futex_ms;
        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (futex_ms >= 0) {
                (void)brd_ring_recv(r, buf, sizeof(buf), -1);
                return 11;      /* woken: only a death's wake-up comes, after it */
        }
        p.fd = brd_ring_fd(r);
        while (p.fd >= 0 && brd_ring_recv(r, buf, sizeof(buf), 0) == -EAGAIN)
                (void)poll(&p, 1, -1);
        return 12;
}

/*
 * A consumer killed in its sleep on an empty ring, with room to spare: a
 * message that finds it asleep rings it, and a ring that cannot tell
 * whether it woke anyone (a futex wake of nobody, a doorbell) is followed
 * by a look at its pidfd.  That message is sent (published, counted: a
 * consumer that took the role over would get it), and every call after it
 * answers -EPIPE, with timeout 0: nothing waits, nothing fills.
 * stopped: SIGSTOPped in the sleep first, and sent a message, whose look
 * finds it alive; killed then, it is found at the next message, which
 * finds the same sleep (a look at every chance: brd__ring_look_ms 0).
 * gated: stopped, with one look per 10 s at most: three messages after the
 * death find the same sleep and look not; with the gate lifted, the next
 * one does.  by_write: the message after the death is a byte-stream write
 * of two chunks: it stops after the first.
 */
struct asleep {
        int futex_ms;                   /* the consumer's futex phase; 0: epoll at once;
                                         * -1: a brd_ring_fd() user */
        bool stopped, gated, by_write;
};

static int look_default;                /* the library's brd__ring_look_ms */

/* Teardown: the library's own gate back, even after a failed assertion. */
static int look_reset(void **state)
{
        (void)state;
        brd__ring_look_ms = look_default;
        return 0;
}

/* One test of the table in main() per variant (ASLEEP()). */
static void test_consumer_killed_asleep(void **state)
{
        const struct asleep *v = *state;
        int futex_ms = v->futex_ms;
        bool stopped = v->stopped || v->gated, by_write = v->by_write;
        uint64_t asleep = BRD_RING_ST_SLEEPING | (futex_ms > 0 ? BRD_RING_ST_FUTEX : 0);
        struct brd_ring_stats st;
        struct brd_handle hp, hc;
        struct brd_ring_hdr *hdr;
        struct brd_ring *r;
        static char big[8192];
        struct t_leak l;
        int64_t until;
        siginfo_t si;
        size_t size;
        uint64_t sent, msgs, i, before = 0;
        pid_t pid;

        if (futex_ms > 0 && !t_have_futex_waitv())
                skip();
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        hdr = hdr_map(&hp);
        assert_non_null(hdr);
        size = hp.size;
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd_handle_close(&hp);
                _exit(child_consumer_sleeps(&hc, futex_ms));
        }
        brd_handle_close(&hc);
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        until = t_now_ms() + 10000;
        while ((AO_load(&hdr->cons.state) & (BRD_RING_ST_SLEEPING | BRD_RING_ST_FUTEX)) != asleep) {
                assert_true(t_now_ms() < until);
                sched_yield();
        }
        if (stopped) {
                brd__ring_look_ms = v->gated ? 10000 : 0;
                assert_int_equal(kill(pid, SIGSTOP), 0);
                assert_int_equal(waitid(P_PID, (id_t)pid, &si, WSTOPPED), 0);
                assert_int_equal(brd_ring_send(r, "a", 1, 0), 0);
                assert_int_equal(kill(pid, SIGKILL), 0);
                assert_int_equal(t_wait_child(pid), KILLED);
                before = 1;
                if (v->gated) {
                        for (i = 0; i < 3; i++)
                                assert_int_equal(brd_ring_send(r, "g", 1, 0), 0);
                        brd__ring_look_ms = 0;
                        before += 3;
                }
        } else {
                assert_int_equal(kill(pid, SIGKILL), 0);
                /* A zombie, not reaped: its pidfd is readable. */
                assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
        }
        assert_int_equal(brd_ring_stats(r, &st), 0);
        if (by_write) {
                assert_int_equal(brd_ring_write(r, big, st.max_msg + 1, 0), (ssize_t)st.max_msg);
                sent = st.max_msg;
                msgs = 1;
        } else {
                assert_int_equal(brd_ring_send(r, "b", 1, 0), 0);
                sent = msgs = 1;
        }
        assert_int_equal(brd_ring_stats(r, &st), 0);
        assert_int_equal(st.messages, before + msgs);
        assert_int_equal(st.bytes, before + sent);
        /* Final: whatever would fit. */
        assert_int_equal(brd_ring_send(r, "c", 1, 0), -EPIPE);
        assert_int_equal(brd_ring_write(r, "c", 1, -1), -EPIPE);
        if (!stopped)
                assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        munmap(hdr, size);
        t_leak_end(&l);
}

/* ------------------------------------------------ idle / non-blocking */

static int child_send_n_then_die(struct brd_handle *h, int n, bool reserve_last)
{
        struct brd_ring *r;
        void *w;
        int i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < n; i++)
                if (brd_ring_send(r, &i, sizeof(i), -1))
                        return 11;
        if (reserve_last) {
                /* A1: killed after reserving and writing, before commit. */
                if (brd_ring_reserve(r, 100, &w, -1))
                        return 12;
                memset(w, 0xee, 100);
        }
        raise(SIGKILL);
        return 13;
}

static void test_producer_killed_consumer_idle(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        char buf[128];
        int i, v;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hc, &r), 0);
        brd_handle_close(&hc);
        /* Not attached yet is not dead. */
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 20), -ETIMEDOUT);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_send_n_then_die(&hp, 10, true));
        brd_handle_close(&hp);
        /* Reaped before we ever look: no pidfd can be opened any more. */
        assert_int_equal(t_wait_child(pid), KILLED);
        for (i = 0; i < 10; i++) {
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), sizeof(v));
                assert_int_equal(v, i);
        }
        /* The reserved, uncommitted frame never shows up. */
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 0), -ECONNRESET);
        brd_ring_close(r);
        t_leak_end(&l);
}

/*
 * The same with the producer a zombie (not reaped): the first non-blocking
 * call that finds the ring empty opens its pidfd, finds it readable and
 * answers -ECONNRESET at once, not -EAGAIN first.
 */
static void test_producer_zombie_consumer_nonblocking(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        siginfo_t si;
        int i, v;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        pid = t_ring_fork(8192, 0, &hp, &hc, false, &r);
        if (pid == 0)
                _exit(child_send_n_then_die(&hp, 3, false));
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
        for (i = 0; i < 3; i++) {
                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), sizeof(v));
                assert_int_equal(v, i);
        }
        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 0), -ECONNRESET);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        t_leak_end(&l);
}

/*
 * A batching producer with room to spare whose consumer is SIGKILLed: its
 * flush answers -EPIPE, what it held never delivered.  No send looks while
 * there is room, and the flush answered 0, publishing into a ring nobody
 * reads.  Nor does the producer's close publish it after that -EPIPE: a
 * consumer that takes the dead one's role over finds EOF, not the message
 * flush called lost (a producer that sent it again elsewhere had it
 * delivered twice).
 */
static void test_flush_sees_dead_consumer(void **state)
{
        struct brd_handle hp, hc, hc2;
        struct brd_ring *r, *c;
        struct t_leak l;
        char b, out[8];
        int rdy[2];
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(pipe2(rdy, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_create(65536, BRD_RING_BATCH, &hp, &hc), 0);
        assert_int_equal(brd_handle_dup(&hc, &hc2), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd_handle_close(&hp);
                brd_handle_close(&hc2);
                if (brd_ring_attach(&hc, &c) || write(rdy[1], "r", 1) != 1)
                        _exit(10);
                for (;;)
                        pause();
        }
        brd_handle_close(&hc);
        close(rdy[1]);
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        assert_int_equal(read(rdy[0], &b, 1), 1);
        close(rdy[0]);
        assert_int_equal(brd_ring_send(r, "held", 4, 0), 0);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(t_wait_child(pid), KILLED);
        assert_int_equal(brd_ring_flush(r), -EPIPE);
        assert_int_equal(brd_ring_send(r, "more", 4, 0), -EPIPE);
        brd_ring_close(r);
        assert_int_equal(brd_ring_attach(&hc2, &c), 0);
        brd_handle_close(&hc2);
        assert_int_equal(brd_ring_recv(c, out, sizeof(out), 0), -EPIPE);
        brd_ring_close(c);
        t_leak_end(&l);
}

/* ------------------------------------------ short timeouts, in a loop */

/* Attach, say so on @ready_fd, wait for a byte on @go_fd; then send @n
 * ints and die (@n < 0: die as soon as told, or when the parent is gone). */
static int child_ready_go(struct brd_handle *h, int ready_fd, int go_fd, int n)
{
        struct brd_ring *r;
        char c;
        int i;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (write(ready_fd, "a", 1) != 1)
                return 11;
        if (read(go_fd, &c, 1) != 1)
                return 12;
        for (i = 0; i < n; i++)
                if (brd_ring_send(r, &i, sizeof(i), -1))
                        return 13;
        raise(SIGKILL);
        return 14;
}

/*
 * A survivor that calls with a short timeout, again and again, never
 * reaches the epoll sleep where the pidfd shows (10 ms: each wait is a
 * futex sleep).  It still learns of the death at its first call after it:
 * the consumer gets the 3 messages, then -ECONNRESET; the producer on a
 * full ring -EPIPE.  Each watched its peer (pidfd open) before the death,
 * and the dead peer stays a zombie.  Before, each got -ETIMEDOUT for good.
 */
static void test_peer_killed_short_timeouts(void **state)
{
        char buf[512] = { 0 }, c;
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        int ready[2], go[2], i, v;
        siginfo_t si;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        for (int prod_dies = 1; prod_dies >= 0; prod_dies--) {
                assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
                assert_int_equal(pipe2(go, O_CLOEXEC), 0);
                pid = t_ring_fork(8192, 0, &hp, &hc, !prod_dies, &r);
                if (pid == 0) {
                        close(ready[0]);
                        close(go[1]);
                        _exit(child_ready_go(prod_dies ? &hp : &hc, ready[1], go[0],
                                             prod_dies ? 3 : -1));
                }
                close(ready[1]);
                close(go[0]);
                assert_int_equal(read(ready[0], &c, 1), 1);     /* attached */
                close(ready[0]);
                if (prod_dies) {
                        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10), -ETIMEDOUT);
                        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10), -ETIMEDOUT);
                        assert_int_equal(write(go[1], "g", 1), 1);
                } else {
                        while (brd_ring_send(r, buf, sizeof(buf), 0) == 0)
                                ;
                        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), 10), -ETIMEDOUT);
                        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), 10), -ETIMEDOUT);
                        assert_int_equal(kill(pid, SIGKILL), 0);
                }
                close(go[1]);
                assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
                if (prod_dies) {
                        for (i = 0; i < 3; i++) {
                                assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10), sizeof(v));
                                assert_int_equal(v, i);
                        }
                        assert_int_equal(brd_ring_recv(r, &v, sizeof(v), 10), -ECONNRESET);
                } else {
                        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), 10), -EPIPE);
                }
                assert_int_equal(t_wait_child(pid), KILLED);
                brd_ring_close(r);
        }
        t_leak_end(&l);
}

static void test_producer_killed_consumer_polling(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct pollfd p;
        struct t_leak l;
        char buf[128];
        int i, v, n = 0, idle_rounds = 0;
        ssize_t e;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        pid = t_ring_fork(8192, 0, &hp, &hc, false, &r);
        if (pid == 0) {
                _exit(child_send_n_then_die(&hp, 10, false));
        }
        p.fd = brd_ring_fd(r);
        p.events = POLLIN;
        assert_true(p.fd >= 0);
        for (;;) {
                int before = n;

                assert_int_equal(poll(&p, 1, 5000), 1);
                while ((e = brd_ring_recv(r, &v, sizeof(v), 0)) >= 0) {
                        assert_int_equal(e, sizeof(v));
                        assert_int_equal(v, n);
                        n++;
                }
                if (e != -EAGAIN)
                        break;
                /* A readable fd with nothing to take: a wake-up meant for
                 * an arm left behind, now and then; never a poll loop. */
                if (n == before)
                        assert_true(++idle_rounds < 1000);
        }
        assert_int_equal(e, -ECONNRESET);
        assert_int_equal(n, 10);
        /* Level-triggered and final: still readable, still the same answer. */
        assert_int_equal(poll(&p, 1, 0), 1);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 0), -ECONNRESET);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        (void)i;
        t_leak_end(&l);
}

/* The consumer of test_room_then_consumer_death(): attached, then idle
 * until killed.  Exit code: what failed. */
static int child_consumer_idle(struct brd_handle *h, int ready_fd)
{
        struct brd_ring *r;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (write(ready_fd, "r", 1) != 1)
                return 11;
        for (;;)
                pause();
        return 12;
}

/* The producer: fills the ring, then blocks on the next send.  Exit 0 when
 * that send answered -EPIPE; 1 when it succeeded; else what failed. */
static int child_producer_fills(struct brd_handle *h)
{
        char msg[200] = { 0 };
        struct brd_ring *r;
        int e;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        while ((e = brd_ring_send(r, msg, sizeof(msg), 0)) == 0)
                ;
        if (e != -EAGAIN)
                return 11;
        e = brd_ring_send(r, msg, sizeof(msg), -1);
        if (e == 0)
                return 1;
        return e == -EPIPE ? 0 : 12;
}

/*
 * RELIABILITY A3: a producer blocked on a full ring, asleep in its epoll
 * set, when room appears (here a third process moves the head, as a
 * consumer's release would, without ringing) and the consumer is then
 * killed: it wakes on the consumer's pidfd and answers -EPIPE, where it
 * took the room and sent on into a dead ring until it filled.
 */
static void test_room_then_consumer_death(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring_hdr *hdr;
        struct t_leak l;
        int ready[2], e;
        pid_t cons, prod;
        AO_t st;
        char c;

        (void)state;
        /* The producer must sleep with no bound of its own: where it watches
         * no pidfd, or the asymmetric fence cannot be had, it wakes every
         * 20 ms and could take the room before the death. */
        e = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (e < 0)
                skip();
        close(e);
        e = (int)syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        if (e < 0 || !(e & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
                skip();
        t_leak_begin(&l);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_create(4096, BRD_RING_NOSPIN, &hp, &hc), 0);
        hdr = hdr_map(&hp);
        assert_non_null(hdr);
        cons = t_fork();
        assert_true(cons >= 0);
        if (cons == 0) {
                close(ready[0]);
                brd_handle_close(&hp);
                _exit(child_consumer_idle(&hc, ready[1]));
        }
        close(ready[1]);
        assert_int_equal(read(ready[0], &c, 1), 1);     /* attached */
        close(ready[0]);
        prod = t_fork();
        assert_true(prod >= 0);
        if (prod == 0) {
                brd_handle_close(&hc);
                _exit(child_producer_fills(&hp));
        }
        /* Asleep in its epoll set: past the futex phase, armed for it, and
         * inside epoll_wait() (armed, it still looks at the ring once). */
        T_UNTIL((st = AO_load(&hdr->prod.state), (st & BRD_RING_ST_SLEEPING) &&
                                                   !(st & BRD_RING_ST_FUTEX)));
        t_wait_in_syscall(prod, SYS_epoll_wait, SYS_epoll_pwait);
        AO_store_release(&hdr->head.idx, AO_load(&hdr->head.idx) + 8 + 200);
        assert_int_equal(kill(cons, SIGKILL), 0);
        assert_int_equal(t_wait_child(cons), KILLED);
        assert_int_equal(t_wait_child(prod), 0);
        munmap(hdr, hp.size);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

/* The consumer of test_reused_pid_unread_at_first_look(): at its fd limit
 * but for one fd, which its first look at the producer takes for the
 * pidfd, so that it cannot read the stamped pid's start time.  Exit 0 when
 * its receive answered -ECONNRESET; 1 when it slept to its timeout; else
 * what failed. */
static int child_consumer_one_fd_left(struct brd_handle *h)
{
        struct brd_ring *r;
        struct rlimit old;
        char buf[16];
        ssize_t n;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (t_fd_limit_spare(1, &old))
                return 12;
        n = brd_ring_recv(r, buf, sizeof(buf), 10000);
        if (n == -ETIMEDOUT)
                return 1;
        if (n != -ECONNRESET)
                return 13;
        brd_ring_close(r);
        return 0;
}

/*
 * The producer's stamp names a living process of another start time (its
 * pid reused), and the consumer's first look at it opens a pidfd but
 * cannot read that start time (EMFILE).  A failure that passes is no
 * verdict: the consumer looks again while it sleeps, and once its fd limit
 * is raised (prlimit() from here) it judges the producer dead.  It slept
 * on the living impostor's pidfd to its timeout before.
 */
static void test_reused_pid_unread_at_first_look(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring_hdr *hdr;
        struct rlimit rl;
        struct t_leak l;
        pid_t impostor, cons;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4096, BRD_RING_NOSPIN, &hp, &hc), 0);
        hdr = hdr_map(&hc);
        assert_non_null(hdr);
        impostor = t_fork();
        assert_true(impostor >= 0);
        if (impostor == 0)
                for (;;)
                        pause();
        assert_true(brd__proc_start_time(impostor) != 0);
        AO_store(&hdr->prod.start_time, brd__proc_start_time(impostor) + 1);
        AO_store(&hdr->prod.pid, (AO_t)impostor);
        cons = t_fork();
        assert_true(cons >= 0);
        if (cons == 0) {
                brd_handle_close(&hp);
                _exit(child_consumer_one_fd_left(&hc));
        }
        t_wait_in_syscall(cons, SYS_epoll_wait, SYS_epoll_pwait);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        assert_int_equal(prlimit(cons, RLIMIT_NOFILE, &rl, NULL), 0);
        assert_int_equal(t_wait_child(cons), 0);
        assert_int_equal(kill(impostor, SIGKILL), 0);
        assert_int_equal(t_wait_child(impostor), KILLED);
        munmap(hdr, hc.size);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

/* A2: committed (tail stored), killed before the doorbell could ring. */
static int child_commit_without_bell(struct brd_handle *h, struct shared *s)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        struct brd_ring *r;
        uint8_t *data;
        uint64_t t;

        if (!hdr || brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (child_wait_sleeping(&hdr->cons))
                return 11;
        /* What brd_ring_send does, minus the doorbell. */
        data = (uint8_t *)hdr + hdr->data_off;
        t = AO_load(&hdr->tail.idx);
        AO_store((AO_t *)(void *)(data + (t & hdr->mask)), brd__ring_frame(4, BRD_RING_FRAME_MSG));
        memcpy(data + ((t + 8) & hdr->mask), "ring", 4);
        AO_store_release(&hdr->tail.idx, t + 16);
        child_die(s, 0);
        return 12;
}

/* The sleeping consumer gets the message no doorbell announced, then
 * -ECONNRESET, within 100 ms of the death (t_tries()). */
static bool producer_killed_before_doorbell_try(void)
{
        struct shared *s = t_shared_page();
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        char buf[16];
        int64_t lat;
        pid_t pid;

        t_leak_begin(&l);
        pid = t_ring_fork(8192, BRD_RING_NOSPIN, &hp, &hc, false, &r);
        if (pid == 0) {
                _exit(child_commit_without_bell(&hp, s));
        }
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), 4);
        assert_memory_equal(buf, "ring", 4);
        assert_int_equal(brd_ring_recv(r, buf, sizeof(buf), 10000), -ECONNRESET);
        lat = t_now_ns() - s->death_ns;
        assert_true(s->death_ns > 0);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        t_shared_page_free(s);
        t_leak_end(&l);
        if (lat > 100 * 1000000LL)
                print_message("death seen %lld ms after it\n", (long long)(lat / 1000000));
        return lat <= 100 * 1000000LL;
}

static void test_producer_killed_before_doorbell(void **state)
{
        (void)state;
        t_tries(producer_killed_before_doorbell_try, "producer_killed_before_doorbell");
}

/* A producer that dies in its attach, after its pid stamp and before its
 * doorbell: stamp as brd_ring_attach() does, once the consumer sleeps. */
static int child_stamp_then_die(struct brd_handle *h)
{
        struct brd_ring_hdr *hdr = hdr_map(h);

        if (!hdr)
                return 10;
        if (child_wait_sleeping(&hdr->cons))
                return 11;
        AO_store(&hdr->prod.start_time, brd__proc_start_time(getpid()));
        AO_store(&hdr->prod.pid, (AO_t)getpid());
        raise(SIGKILL);
        return 12;
}

/* A consumer here against a producer child running @child on its handle:
 * the receive (10 s) answers -ECONNRESET; the child is then killed (by
 * itself, or here if @kill_it) and reaped. */
static void consumer_gets_reset(int (*child)(struct brd_handle *), bool kill_it)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        char buf[16];
        ssize_t n;
        pid_t pid;

        t_leak_begin(&l);
        pid = t_ring_fork(8192, 0, &hp, &hc, false, &r);
        if (pid == 0)
                _exit(child(&hp));
        n = brd_ring_recv(r, buf, sizeof(buf), 10000);
        if (kill_it)
                kill(pid, SIGKILL);
        assert_int_equal(n, -ECONNRESET);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        t_leak_end(&l);
}

/* The consumer went to sleep with no producer to watch: it must still
 * notice the death (-ECONNRESET), not sleep until its 10 s timeout. */
static void test_producer_killed_attaching(void **state)
{
        (void)state;
        consumer_gets_reset(child_stamp_then_die, false);
}

/* A producer stamp whose pid is a thread's now (the producer died and its
 * pid went to a thread of another process): a thread of this child, alive
 * until the child is killed. */
static void *park(void *arg)
{
        long *tid = arg;

        AO_store((AO_t *)(void *)&tid[1], (AO_t)gettid());
        for (;;)
                pause();
        return NULL;
}

static int child_stamp_thread(struct brd_handle *h)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        static long tid[2];
        pthread_t t;

        if (!hdr)
                return 10;
        if (child_wait_sleeping(&hdr->cons))
                return 11;
        if (pthread_create(&t, NULL, park, tid))
                return 12;
        while (!AO_load((AO_t *)(void *)&tid[1]))
                sched_yield();
        AO_store(&hdr->prod.start_time, 1);
        AO_store(&hdr->prod.pid, (AO_t)tid[1]);
        for (;;)
                pause();
        return 13;
}

/* The consumer finds, in the producer's stamp, the id of a live thread that
 * leads no process (pidfd_open(): -ENOENT, or -EINVAL before Linux 6.9):
 * the stamped producer is gone,
 * -ECONNRESET; it poisoned the ring (-EBADMSG) before. */
static void test_producer_pid_now_a_thread(void **state)
{
        (void)state;
        consumer_gets_reset(child_stamp_thread, true);
}

/* A hostile producer moves its bell word with plain stores, waking nobody:
 * each futex sleep of the consumer returns at once.  Tells @ready_fd once
 * the storm is on, then keeps it up until killed, counting its stores in
 * *@moves every 1024. */
static int child_bell_storm(struct brd_handle *h, int ready_fd, const cpu_set_t *cpu,
                            AO_t *moves)
{
        struct brd_ring_hdr *hdr = hdr_map(h);
        unsigned v = 1;

        if (!hdr)
                return 10;
        if (cpu && sched_setaffinity(0, sizeof(*cpu), cpu) < 0)
                return 13;
        AO_int_store(&hdr->prod.bell, v);
        if (write(ready_fd, "s", 1) != 1)
                return 11;
        for (;;) {
                AO_int_store(&hdr->prod.bell, ++v);
                if (!(v & 1023))
                        AO_store(moves, v);
        }
        return 12;
}

/* Under that storm a 200 ms wait times out having slept a bounded number of
 * times (RING_FUTEX_SLEEPS futex sleeps, then the epoll set's): it spun
 * through futex_waitv() for its whole futex phase before, ~10^4 sleeps.
 * The two on CPUs of their own where there are two: on one, the storm
 * stops while the consumer runs, and each sleep lasts.  A storm that a
 * loaded host starved during the wait (under 10^5 stores) proves nothing:
 * false, for t_tries(). */
static bool bell_storm_try(void)
{
        struct brd_ring_stats st;
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        cpu_set_t all, mine, its;
        bool pinned = false;
        char buf[16];
        int ready[2], c, n = 0;
        AO_t *moves = t_shared_page(), before = 0, after = 0;
        ssize_t got, e;
        pid_t pid;

        t_leak_begin(&l);
        assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
        CPU_ZERO(&mine);
        CPU_ZERO(&its);
        for (c = 0; c < CPU_SETSIZE && n < 2; c++) {
                if (CPU_ISSET(c, &all))
                        CPU_SET(c, n++ ? &its : &mine);
        }
        if (n == 2)
                pinned = sched_setaffinity(0, sizeof(mine), &mine) == 0;
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        pid = t_ring_fork(8192, 0, &hp, &hc, false, &r);
        if (pid == 0)
                _exit(child_bell_storm(&hp, ready[1], pinned ? &its : NULL, moves));
        close(ready[1]);
        /* Asserted once the storm is stopped and the pin undone: a failure
         * must not leave a child spinning, or the next tests on one CPU. */
        got = read(ready[0], buf, 1);
        close(ready[0]);
        if (got == 1) {
                before = AO_load(moves);
                e = brd_ring_recv(r, buf, sizeof(buf), 200);
                after = AO_load(moves);
        } else {
                e = 0;
        }
        kill(pid, SIGKILL);
        if (pinned)
                assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
        assert_int_equal(got, 1);
        assert_int_equal(e, -ETIMEDOUT);
        assert_int_equal(t_wait_child(pid), KILLED);
        assert_int_equal(brd_ring_stats(r, &st), 0);
        assert_true(st.waits <= 64);
        brd_ring_close(r);
        t_shared_page_free(moves);
        t_leak_end(&l);
        if (after - before < 100000)
                print_message("the storm made %lu stores in the wait\n",
                              (unsigned long)(after - before));
        return after - before >= 100000;
}

static void test_bell_storm_bounded(void **state)
{
        (void)state;
        t_tries(bell_storm_try, "a bell storm of 10^5 stores during the wait");
}

/* A4: consumer killed while it holds a peeked view. */
static int child_peek_then_die(struct brd_handle *h, int ready_fd)
{
        struct brd_ring *r;
        const void *v;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        if (brd_ring_peek(r, &v, 10000) != 100)
                return 11;
        if (write(ready_fd, "r", 1) != 1)
                return 12;
        raise(SIGKILL);
        return 13;
}

/* Sends of @len bytes with timeout 0 until one fails (its answer in
 * *@ret_err): how many went. */
static int fill_count(struct brd_ring *r, const void *buf, size_t len, int *ret_err)
{
        int n = 0, e;

        while ((e = brd_ring_send(r, buf, len, 0)) == 0)
                n++;
        *ret_err = e;
        return n;
}

/*
 * A4: the head moves only on release, so a consumer killed while it holds
 * a peeked view leaves it where it was: the view's frame is neither
 * consumed nor repaired away, and the producer gets exactly the room that
 * was left around it, then -EPIPE: at the first call that finds no room,
 * which opens the pidfd of a zombie (not reaped yet) and finds it readable.
 * A control ring whose message was released takes one frame more.
 */
static void test_consumer_killed_holding_view(void **state)
{
        /* A 100-byte message's frame: its word, the payload padded to 8. */
        const size_t frame = BRD_RING_FRAME_HDR + 104;
        struct brd_handle hp, hc;
        struct brd_ring *r, *cp, *cc;
        struct brd_ring_hdr *hdr;
        struct brd_ring_stats st;
        char buf[100] = { 0 }, c;
        const void *v;
        struct t_leak l;
        size_t size;
        int ready[2], n, room, e;
        siginfo_t si;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        /* The control: the same message peeked and released in-process. */
        t_ring_pair(4096, 0, &cp, &cc);
        assert_int_equal(brd_ring_send(cp, buf, sizeof(buf), 0), 0);
        assert_int_equal(brd_ring_peek(cc, &v, 0), (ssize_t)sizeof(buf));
        assert_int_equal(brd_ring_release(cc), 0);
        n = fill_count(cp, buf, sizeof(buf), &e);
        assert_int_equal(e, -EAGAIN);
        brd_ring_close(cp);
        brd_ring_close(cc);

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        hdr = hdr_map(&hc);
        assert_non_null(hdr);
        size = hc.size;
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        assert_int_equal(brd_ring_stats(r, &st), 0);
        /* Every frame the control took, the released one's place included. */
        assert_int_equal(n, (int)(st.capacity / frame));
        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), 0), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                _exit(child_peek_then_die(&hc, ready[1]));
        }
        close(ready[1]);
        brd_handle_close(&hc);
        assert_int_equal(read(ready[0], &c, 1), 1);
        close(ready[0]);
        assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
        /* The peeked message was never released: the head is where the
         * consumer found it, the frame still published. */
        assert_int_equal(AO_load(&hdr->head.idx), 0);
        assert_int_equal(AO_load(&hdr->tail.idx), frame);
        /* The ring stays as full as it was: the rest of the room, one frame
         * less than the control's; the producer learns of the death once
         * it would block. */
        room = fill_count(r, buf, sizeof(buf), &e);
        assert_int_equal(room, (int)((st.capacity - frame) / frame));
        assert_int_equal(room, n - 1);
        assert_int_equal(e, -EPIPE);
        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), 0), -EPIPE);
        assert_int_equal(brd_ring_send(r, buf, sizeof(buf), -1), -EPIPE);
        assert_int_equal(AO_load(&hdr->head.idx), 0);
        assert_int_equal(t_wait_child(pid), KILLED);
        brd_ring_close(r);
        munmap(hdr, size);
        t_leak_end(&l);
}

/* A variant of test_consumer_killed_asleep(), named after it. */
#define ASLEEP(name, ...)                                                               \
        { "test_consumer_killed_asleep: " #name, test_consumer_killed_asleep, NULL, look_reset, \
          &(struct asleep){ __VA_ARGS__ } }

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_producer_killed_consumer_blocked),
                cmocka_unit_test(test_flush_sees_dead_consumer),
                cmocka_unit_test(test_producer_killed_sibling_holds_dups),
                cmocka_unit_test(test_batch_held_back_dies_with_producer),
                cmocka_unit_test(test_consumer_killed_producer_blocked),
                ASLEEP(killed_in_futex_sleep, 10000, false, false, false),
                ASLEEP(killed_in_epoll_sleep, 0, false, false, false),
                ASLEEP(killed_in_poll_of_its_fd, -1, false, false, false),
                ASLEEP(stopped_then_killed_in_futex_sleep, 10000, true, false, false),
                ASLEEP(stopped_then_killed_in_epoll_sleep, 0, true, false, false),
                ASLEEP(stopped_then_killed_looks_gated, 0, false, true, false),
                ASLEEP(killed_in_futex_sleep_write_stops, 10000, false, false, true),
                ASLEEP(stopped_then_killed_in_epoll_sleep_write_stops, 0, true, false, true),
                cmocka_unit_test(test_producer_killed_consumer_idle),
                cmocka_unit_test(test_producer_zombie_consumer_nonblocking),
                cmocka_unit_test(test_producer_killed_consumer_polling),
                cmocka_unit_test(test_peer_killed_short_timeouts),
                cmocka_unit_test(test_producer_killed_before_doorbell),
                cmocka_unit_test(test_room_then_consumer_death),
                cmocka_unit_test(test_reused_pid_unread_at_first_look),
                cmocka_unit_test(test_producer_killed_attaching),
                cmocka_unit_test(test_producer_pid_now_a_thread),
                cmocka_unit_test(test_bell_storm_bounded),
                cmocka_unit_test(test_consumer_killed_holding_view),
        };

        look_default = brd__ring_look_ms;
        return cmocka_run_group_tests_name("ringbuf-death", tests, NULL, NULL);
}
