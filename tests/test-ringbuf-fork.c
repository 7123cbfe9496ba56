/* SPDX-License-Identifier: MIT */
/*
 * Fork (RELIABILITY D29, F35): an endpoint inherited through fork() is not
 * the child's (-EBADF from everything, checked before shared memory is
 * touched; its close frees only the child's copy), while a handle that
 * reaches a child, by inheritance or SCM_RIGHTS, is attached there and works.
 * One endpoint per role: a role held by a live process is -EBUSY to every
 * other attach, and left to the next one when its holder exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include <brood/shm.h>
#include "internal/brd-ring.h"
#include "../ringbuf/endpoint.h"        /* white box: the interrupt count */

static int child_inherited(struct brd_ring *p, struct brd_ring *c)
{
        struct brd_ring_stats s;
        const void *view;
        char buf[16];
        void *w;

        if (brd_ring_send(p, "x", 1, 0) != -EBADF)
                return 10;
        if (brd_ring_send(p, "x", 1, -1) != -EBADF)
                return 11;
        if (brd_ring_recv(c, buf, sizeof(buf), -1) != -EBADF)
                return 12;
        if (brd_ring_reserve(p, 1, &w, 0) != -EBADF || brd_ring_commit(p, 0) != -EBADF)
                return 13;
        if (brd_ring_peek(c, &view, 0) != -EBADF || brd_ring_release(c) != -EBADF)
                return 14;
        if (brd_ring_write(p, "x", 1, 0) != -EBADF || brd_ring_read(c, buf, 1, 0) != -EBADF)
                return 15;
        if (brd_ring_flush(p) != -EBADF || brd_ring_fd(c) != -EBADF)
                return 16;
        if (brd_ring_interrupt(p) != -EBADF || brd_ring_interrupt(c) != -EBADF)
                return 17;
        if (brd_ring_stats(c, &s) != 0 || s.messages != 1)     /* process-local copy */
                return 18;
        /* Must neither mark the ring closed nor wake the parent's ends. */
        brd_ring_close(p);
        brd_ring_close(c);
        return 0;
}

static void test_inherited_endpoint_is_ebadf(void **state)
{
        struct brd_ring *p, *c;
        char buf[16];
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        assert_int_equal(brd_ring_send(p, "a", 1, 0), 0);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_inherited(p, c));
        assert_int_equal(t_wait_child(pid), 0);
        /* The parent's ends are untouched: no EOF, no EPIPE. */
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(brd_ring_send(p, "b", 1, 0), 0);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        assert_int_equal(buf[0], 'b');
        brd_ring_close(p);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EPIPE);
        brd_ring_close(c);
        t_leak_end(&l);
}

/*
 * A fork while another thread of the parent is inside brd_ring_interrupt():
 * the child's copy of the endpoint counts that interrupt for good (nothing
 * there ends it), and its close must not wait for it (it did: a hang,
 * bounded here by an alarm).  The count is set by hand, as the parent's
 * interrupting thread would have it at the fork.
 */
static void test_inherited_close_ignores_interrupt_in_flight(void **state)
{
        struct brd_ring *p, *c;
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        AO_store(&c->intr_busy, 1);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                alarm(10);
                brd_ring_close(c);
                brd_ring_close(p);
                _exit(0);
        }
        AO_store(&c->intr_busy, 0);
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

/* In a child: a ring of its own works before and after it closes the
 * inherited endpoints, whose memory was never mapped here (the new ring may
 * sit where theirs was in the parent). */
static int child_new_ring_then_close_inherited(struct brd_ring *p, struct brd_ring *c)
{
        struct brd_handle hp, hc;
        struct brd_ring *np, *nc;
        char buf[8];
        int k;

        if (brd_ring_create(4096, 0, &hp, &hc) || brd_ring_attach(&hp, &np) || brd_ring_attach(&hc, &nc))
                return 10;
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        for (k = 0; k < 2; k++) {
                if (brd_ring_send(np, "n", 1, 0) != 0 || brd_ring_recv(nc, buf, sizeof(buf), 0) != 1 ||
                    buf[0] != 'n')
                        return 11 + k;
                if (k == 0) {
                        brd_ring_close(p);
                        brd_ring_close(c);
                }
        }
        brd_ring_close(np);
        brd_ring_close(nc);
        return 0;
}

/*
 * RELIABILITY F35: a forked child that was not handed a ring cannot write
 * into it: its memory is not inherited (a store through a pointer the
 * parent had gives SIGSEGV), and closing the inherited copies unmaps
 * nothing of the child's own.
 */
static void test_inherited_ring_memory_absent(void **state)
{
        struct brd_ring *p, *c;
        const void *view;
        struct t_leak l;
        char buf[8];
        void *w;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        assert_int_equal(brd_ring_send(p, "a", 1, 0), 0);
        assert_int_equal(brd_ring_peek(c, &view, 0), 1);
        assert_int_equal(brd_ring_reserve(p, 8, &w, 0), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                signal(SIGSEGV, SIG_DFL);       /* not cmocka's handler */
                *(volatile char *)w = 'x';
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGSEGV);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                signal(SIGSEGV, SIG_DFL);
                _exit(*(const volatile char *)view == 'a' ? 1 : 2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGSEGV);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_new_ring_then_close_inherited(p, c));
        assert_int_equal(t_wait_child(pid), 0);
        /* The parent's ring: the reservation and the view stand. */
        memcpy(w, "b", 1);
        assert_int_equal(brd_ring_commit(p, 1), 0);
        assert_int_equal(brd_ring_release(c), 0);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        assert_int_equal(buf[0], 'b');
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

/* In a child of _Fork(): a page of its own where the parent's ring view
 * (@w) and NOFORK segment (@seg_at) were, then brood's close of both; the
 * pages must still be the child's.  Exit code: 0 ok. */
static int child_fills_holes_then_closes(struct brd_ring *p, struct brd_seg *seg, void *w,
                                         void *seg_at)
{
        long pg = sysconf(_SC_PAGESIZE);
        void *at[2] = { (void *)((uintptr_t)w & ~(uintptr_t)(pg - 1)), seg_at };

        for (int i = 0; i < 2; i++) {
                void *m = mmap(at[i], (size_t)pg, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

                if (m != at[i])
                        return 10 + i;  /* not a hole: the memory was inherited */
                memset(m, 0x5a, (size_t)pg);
        }
        brd_ring_close(p);
        brd_seg_close(seg);
        signal(SIGSEGV, SIG_DFL);       /* not cmocka's handler */
        for (int i = 0; i < 2; i++)
                if (*(volatile unsigned char *)at[i] != 0x5a)
                        return 20 + i;
        return 0;
}

/*
 * A child of _Fork() (no pthread_atfork handlers: the fork generation and
 * the registry stay the parent's): what the parent had mapped there
 * MADV_DONTFORK is a hole the child may fill, and closing the inherited
 * ring or NOFORK segment unmapped whatever the child had put there.
 */
static void test_close_after_fork_without_handlers(void **state)
{
        struct brd_ring *p, *c;
        struct brd_seg *seg;
        struct t_leak l;
        void *w;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        assert_int_equal(brd_seg_create("nofork", 4096, BRD_SEG_NOFORK, &seg), 0);
        assert_int_equal(brd_ring_reserve(p, 8, &w, 0), 0);
        pid = _Fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_fills_holes_then_closes(p, seg, w, brd_seg_addr(seg)));
        assert_int_equal(t_wait_child(pid), 0);
        memcpy(w, "b", 1);
        assert_int_equal(brd_ring_commit(p, 1), 0);
        brd_seg_close(seg);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

/*
 * The same child made while another thread held brood's fork lock (any
 * segment, ring or pool create, attach or close takes it): the child's
 * copy of the lock stays held, by a thread the child does not have.  The
 * inherited ring's close returns there; it waited for that lock for ever.
 */
/* _Fork() with the fork lock held, the child closing inherited @p: its
 * exit code (t_wait_child()), 0 when the close returned. */
static int fork_locked_close(struct brd_ring *p)
{
        pid_t pid;

        brd__fork_lock();
        pid = _Fork();
        if (pid == 0) {
                char b[4] = { 0 };
                int r = brd_ring_send(p, b, sizeof(b), 0);

                brd_ring_close(p);
                _exit(r == -EBADF ? 0 : 1);
        }
        brd__fork_unlock();
        return pid < 0 ? 2 : t_wait_child(pid);
}

static void test_close_after_fork_without_handlers_locked(void **state)
{
        struct brd_ring *p, *c;
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        assert_int_equal(fork_locked_close(p), 0);
        /* And from a child of fork() (its handlers ran there, once): the
         * endpoint's fork generation is not the grandchild's. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(fork_locked_close(p));
        assert_int_equal(t_wait_child(pid), 0);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

/* The zero-copy calls' state: a reservation, a peeked frame. */
static void test_zc_state_not_inherited(void **state)
{
        struct brd_ring *p, *c;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        t_ring_pair(4096, 0, &p, &c);
        t_ring_zc_across_fork(p, c);
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

#define N 5000

static int child_consume(struct brd_handle *h)
{
        struct brd_ring *r;
        int i, v;

        if (brd_ring_attach(h, &r))
                return 10;
        brd_handle_close(h);
        for (i = 0; i < N; i++) {
                if (brd_ring_recv(r, &v, sizeof(v), 10000) != sizeof(v))
                        return 11;
                if (v != i)
                        return 12;
        }
        if (brd_ring_recv(r, &v, sizeof(v), 10000) != -EPIPE)
                return 13;
        brd_ring_close(r);
        return 0;
}

static void produce(struct brd_ring *r)
{
        int i;

        for (i = 0; i < N; i++)
                assert_int_equal(brd_ring_send(r, &i, sizeof(i), 10000), 0);
        brd_ring_close(r);
}

static void test_handle_inherited_then_attached(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        /* The producer end exists before the fork; the child attaches the
         * consumer handle it inherited: that one is the child's. */
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_consume(&hc));
        brd_handle_close(&hc);
        produce(r);
        assert_int_equal(t_wait_child(pid), 0);
        t_leak_end(&l);
}

static int child_recv_handle(int sock)
{
        struct brd_handle h;

        if (brd_handle_recv(sock, &h, 1, 10000) != 1)
                return 20;
        close(sock);
        if (h.kind != BRD_HANDLE_RING_CONSUMER)
                return 21;
        return child_consume(&h);
}

static void test_handle_sent_over_socket(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct t_leak l;
        int sv[2];
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();   /* before the ring exists: it can only arrive as a handle */
        assert_true(pid >= 0);
        if (pid == 0) {
                close(sv[0]);
                _exit(child_recv_handle(sv[1]));
        }
        close(sv[1]);
        assert_int_equal(brd_ring_create(8192, 0, &hp, &hc), 0);
        assert_int_equal(brd_handle_send(sv[0], &hc, 1), 0);
        brd_handle_close(&hc);
        close(sv[0]);
        assert_int_equal(brd_ring_attach(&hp, &r), 0);
        brd_handle_close(&hp);
        produce(r);
        assert_int_equal(t_wait_child(pid), 0);
        t_leak_end(&l);
}

struct pidns_ring {
        struct brd_handle hp, hc;
};

/* In another pid namespace: neither role attaches, nothing is left open.
 * Exit code = the number of the first check that failed. */
static int pidns_attach(void *arg)
{
        struct pidns_ring *c = arg;
        struct brd_ring *r = NULL;
        int fds = t_fd_count();

        if (getpid() != 1)
                return 1;
        if (brd_ring_attach(&c->hc, &r) != -EXDEV || r)
                return 2;
        if (brd_ring_attach(&c->hp, &r) != -EXDEV || r)
                return 3;
        if (t_fd_count() != fds)
                return 4;
        return 0;
}

/*
 * Each end of a ring watches the other by the pid it stamped; in another
 * pid namespace that pid names another process (the grandchild below is
 * pid 1 of its namespace, which in ours is init), and the peer would be
 * taken for dead at once.
 * Attach refuses with -EXDEV instead, and the ring stays whole for the
 * processes of its creator's namespace.  Skipped without the privilege to
 * make a pid namespace.
 */
static void test_attach_in_other_pidns(void **state)
{
        struct pidns_ring c;
        struct brd_ring *p, *q;
        uint64_t v = 0x5eed, got = 0;
        struct t_leak l;
        int rc;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4096, 0, &c.hp, &c.hc), 0);
        rc = t_run_in_new_pidns(pidns_attach, &c);
        if (rc == T_EXIT_SKIP) {
                brd_handle_close(&c.hp);
                brd_handle_close(&c.hc);
                skip();
        }
        assert_int_equal(rc, 0);
        assert_int_equal(brd_ring_attach(&c.hp, &p), 0);
        assert_int_equal(brd_ring_attach(&c.hc, &q), 0);
        brd_handle_close(&c.hp);
        brd_handle_close(&c.hc);
        assert_int_equal(brd_ring_send(p, &v, sizeof(v), 0), 0);
        assert_int_equal(brd_ring_recv(q, &got, sizeof(got), 1000), sizeof(got));
        assert_int_equal(got, v);
        brd_ring_close(p);
        assert_int_equal(brd_ring_recv(q, &got, sizeof(got), 1000), -EPIPE);
        brd_ring_close(q);
        t_leak_end(&l);
}


/* A child of a parent that holds both roles: neither is the child's to
 * attach.  Exit code = the number of the first check that failed. */
static int child_attach_held(struct brd_handle *hp, struct brd_handle *hc)
{
        struct brd_ring *r = NULL;

        if (brd_ring_attach(hp, &r) != -EBUSY || r)
                return 10;
        if (brd_ring_attach(hc, &r) != -EBUSY || r)
                return 11;
        return 0;
}

/*
 * One endpoint per role: a second attach of a role held by a live process
 * gets -EBUSY, in that process or in a forked child, and writes nothing to
 * the ring (its header page is byte for byte what it was: the holder's
 * stamps and its arm state).  A closed role stays -EPIPE.
 */
static void test_role_attached_once(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *p, *c, *r = NULL;
        unsigned char *hdr, before[4096];
        char buf[8];
        struct t_leak l;
        pid_t pid;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        hdr = mmap(NULL, sizeof(before), PROT_READ, MAP_SHARED, hp.fds[0], 0);
        assert_true(hdr != MAP_FAILED);
        assert_int_equal(brd_ring_attach(&hp, &p), 0);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
        /* The consumer's side armed, as a sleeper leaves it: a refused
         * attach must not reset it. */
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 1), -ETIMEDOUT);
        memcpy(before, hdr, sizeof(before));
        assert_int_equal(brd_ring_attach(&hp, &r), -EBUSY);
        assert_null(r);
        assert_int_equal(brd_ring_attach(&hc, &r), -EBUSY);
        assert_null(r);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_attach_held(&hp, &hc));
        assert_int_equal(t_wait_child(pid), 0);
        assert_memory_equal(hdr, before, sizeof(before));
        assert_int_equal(brd_ring_send(p, "a", 1, 0), 0);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
        assert_int_equal(buf[0], 'a');
        brd_ring_close(p);
        assert_int_equal(brd_ring_attach(&hp, &r), -EPIPE);
        assert_null(r);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EPIPE);
        brd_ring_close(c);
        munmap(hdr, sizeof(before));
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

/* Attach the producer, send "a" (published), leave without closing. */
static int child_produce_and_vanish(struct brd_handle *hp)
{
        struct brd_ring *r;

        if (brd_ring_attach(hp, &r))
                return 10;
        if (brd_ring_send(r, "a", 1, 0) || brd_ring_flush(r))
                return 11;
        return 0;
}

/* The consumer attached from @hc receives exactly the one-byte messages of
 * @want, in order, then EOF; both handles are closed after. */
static void consumer_gets_then_eof(struct brd_handle *hp, struct brd_handle *hc, const char *want)
{
        struct brd_ring *c;
        char buf[8];

        assert_int_equal(brd_ring_attach(hc, &c), 0);
        for (; *want; want++) {
                assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 1);
                assert_int_equal(buf[0], *want);
        }
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EPIPE);
        brd_ring_close(c);
        brd_handle_close(hp);
        brd_handle_close(hc);
}

/* A child attached the producer and exited without closing it: this
 * process takes the role over, while the child is a zombie (@zombie) or
 * once it is reaped, and gets what the child sent, then its own. */
static void producer_taken_over(bool zombie)
{
        struct brd_handle hp, hc;
        struct brd_ring *p;
        siginfo_t si;
        pid_t pid;

        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_produce_and_vanish(&hp));
        if (zombie) {
                memset(&si, 0, sizeof(si));
                assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
                assert_int_equal(si.si_code, CLD_EXITED);
                assert_int_equal(si.si_status, 0);
                assert_int_equal(brd_ring_attach(&hp, &p), 0);
                assert_int_equal(t_wait_child(pid), 0);
        } else {
                assert_int_equal(t_wait_child(pid), 0);
                assert_int_equal(brd_ring_attach(&hp, &p), 0);
        }
        assert_int_equal(brd_ring_send(p, "b", 1, 0), 0);
        brd_ring_close(p);
        consumer_gets_then_eof(&hp, &hc, "ab");
}

/* A process that attached a role and exited without closing it leaves the
 * role to the next attach, as soon as it can never run again. */
static void test_role_left_by_exited_process(void **state)
{
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        producer_taken_over(true);
        producer_taken_over(false);
        t_leak_end(&l);
}

/* The consumer of test_role_left_waiting(): one large message, then a
 * wait for the next, in which it is killed.  Exit code: what failed. */
static int child_consume_and_wait(struct brd_handle *hc, size_t len)
{
        struct brd_ring *c;
        void *buf = malloc(len);

        if (!buf || brd_ring_attach(hc, &c))
                return 10;
        if (brd_ring_recv(c, buf, len, 10000) != (ssize_t)len)
                return 11;
        (void)brd_ring_recv(c, buf, len, 60000);
        return 12;
}

/*
 * A consumer of large frames killed in a wait leaves its waiting word set
 * (the producer wraps large frames early while it is); the consumer that
 * takes its role over clears it, and the ring works on.
 */
static void test_role_left_waiting(void **state)
{
        const size_t len = BRD_RING_PAGE_ALIGN_MIN;
        const struct brd_ring_hdr *hdr;
        struct brd_handle hp, hc;
        struct brd_ring *p, *c;
        void *m = calloc(1, len);
        struct t_leak l;
        pid_t pid;

        (void)state;
        assert_non_null(m);
        t_leak_begin(&l);
        assert_int_equal(brd_ring_create(1 << 20, 0, &hp, &hc), 0);
        hdr = mmap(NULL, sizeof(*hdr), PROT_READ, MAP_SHARED, hc.fds[0], 0);
        assert_true(hdr != MAP_FAILED);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_consume_and_wait(&hc, len));
        assert_int_equal(brd_ring_attach(&hp, &p), 0);
        assert_int_equal(brd_ring_send(p, m, len, 10000), 0);
        T_UNTIL(AO_int_load(&hdr->cons.waiting) && AO_load(&hdr->head.idx) == AO_load(&hdr->tail.idx));
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(t_wait_child(pid), 128 + SIGKILL);
        assert_int_equal(AO_int_load(&hdr->cons.waiting), 1);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
        assert_int_equal(AO_int_load(&hdr->cons.waiting), 0);
        assert_int_equal(brd_ring_send(p, m, len, 0), 0);
        assert_int_equal(brd_ring_recv(c, m, len, 0), (ssize_t)len);
        brd_ring_close(p);
        assert_int_equal(brd_ring_recv(c, m, len, 0), -EPIPE);
        brd_ring_close(c);
        munmap((void *)hdr, sizeof(*hdr));
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        free(m);
        t_leak_end(&l);
}

/*
 * A racer: wait for the start (EOF on @go), attach the producer, say it
 * tried (a byte on @tried), hold the role until EOF on @hold, then close.
 * Exit code 0: attached (and sent "w"), 1: -EBUSY, else a failed check.
 */
static int child_race(struct brd_handle *hp, int go, int tried, int hold)
{
        struct brd_ring *r = NULL;
        char b;
        int e;

        if (read(go, &b, 1) != 0)
                return 10;
        e = brd_ring_attach(hp, &r);
        if (e == 0 && (brd_ring_send(r, "w", 1, 0) || brd_ring_flush(r)))
                return 11;
        if (write(tried, "t", 1) != 1 || read(hold, &b, 1) != 0)
                return 12;
        if (e == 0)
                brd_ring_close(r);
        return e == 0 ? 0 : e == -EBUSY ? 1 : 13;
}

/* Two processes attach the same free role at once, 50 times: exactly one
 * wins, and the loser wrote nothing (the consumer then finds the winner's
 * one message and EOF). */
static void test_role_race(void **state)
{
        struct brd_handle hp, hc;
        struct t_leak l;
        pid_t pid[2];
        int go[2], tried[2], hold[2], rc[2], round, k;
        char buf[8];

        (void)state;
        t_leak_begin(&l);
        for (round = 0; round < 50; round++) {
                assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
                assert_int_equal(pipe2(go, O_CLOEXEC), 0);
                assert_int_equal(pipe2(tried, O_CLOEXEC), 0);
                assert_int_equal(pipe2(hold, O_CLOEXEC), 0);
                for (k = 0; k < 2; k++) {
                        pid[k] = t_fork();
                        assert_true(pid[k] >= 0);
                        if (pid[k] == 0) {
                                close(go[1]);
                                close(tried[0]);
                                close(hold[1]);
                                _exit(child_race(&hp, go[0], tried[1], hold[0]));
                        }
                }
                close(go[0]);
                close(tried[1]);
                close(hold[0]);
                close(go[1]);           /* start */
                for (k = 0; k < 2; k++)
                        assert_int_equal(read(tried[0], buf, 1), 1);
                close(hold[1]);         /* both tried: let go */
                close(tried[0]);
                for (k = 0; k < 2; k++)
                        rc[k] = t_wait_child(pid[k]);
                assert_true((rc[0] == 0 && rc[1] == 1) || (rc[0] == 1 && rc[1] == 0));
                consumer_gets_then_eof(&hp, &hc, "w");
        }
        t_leak_end(&l);
}

/* A failed attach gives the role back.  In a child whose fd limit lets the
 * attach open its memory's fd but not the doorbells' (-EMFILE after the
 * claim): once the limit is back up, the same process attaches that role.
 * Exit code = the number of the first check that failed. */
static int child_attach_at_fd_limit(struct brd_handle *hp, struct brd_handle *hc)
{
        struct rlimit old;
        struct brd_ring *r = NULL;

        if (t_fd_limit_spare(1, &old))          /* one more fd: the memfd's dup */
                return 12;
        if (brd_ring_attach(hp, &r) != -EMFILE || r)
                return 13;
        if (setrlimit(RLIMIT_NOFILE, &old))
                return 14;
        if (brd_ring_attach(hp, &r))
                return 15;
        brd_ring_close(r);
        (void)hc;
        return 0;
}

/* A new ring's two handles into *@hp and *@hc, and @child run on them in a
 * forked child, which must exit 0. */
static void ring_child_passes(int (*child)(struct brd_handle *, struct brd_handle *),
                              struct brd_handle *hp, struct brd_handle *hc)
{
        pid_t pid;

        assert_int_equal(brd_ring_create(4096, 0, hp, hc), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child(hp, hc));
        assert_int_equal(t_wait_child(pid), 0);
}

/* The child of test_attach_stamps_start_time_at_fd_limit(): attaches the
 * producer with 0, 1, 2... fds to spare until it can; exit 0 when the
 * attach that worked stamped this process's start time, and the consumer's
 * with none to spare (its start time known now) says -EMFILE; else the
 * failed check. */
static int child_attach_first_fit(struct brd_handle *hp, struct brd_handle *hc)
{
        const struct brd_ring_hdr *hdr;
        struct brd_ring *r = NULL;
        struct rlimit old, low;
        int spare, e = -EMFILE;
        uint64_t stamp;

        hdr = mmap(NULL, hp->size, PROT_READ, MAP_SHARED, hp->fds[0], 0);
        if (hdr == MAP_FAILED)
                return 10;
        for (spare = 0; spare < 16 && e < 0; spare++) {
                if (t_fd_limit_spare(spare, &old))
                        return 11;
                e = brd_ring_attach(hp, &r);
                if (setrlimit(RLIMIT_NOFILE, &old))
                        return 12;
                if (e < 0 && e != -EMFILE)          /* what ran out, at every step */
                        return 13;
        }
        if (e < 0)
                return 14;
        stamp = AO_load(&hdr->prod.start_time);
        if (!stamp)
                return 1;                       /* stamped "unknown" */
        if (stamp != brd__proc_start_time(getpid()))
                return 2;
        brd_ring_close(r);
        /* Its first dup, from fd 3 up, with a limit of 3 or less: EINVAL
         * from fcntl(), which attach passed on as a malformed handle. */
        if (getrlimit(RLIMIT_NOFILE, &old))
                return 15;
        low = old;
        low.rlim_cur = 3;
        if (setrlimit(RLIMIT_NOFILE, &low))
                return 15;
        e = brd_ring_attach(hc, &r);
        if (setrlimit(RLIMIT_NOFILE, &old))
                return 16;
        if (e != -EMFILE)
                return e == -EINVAL ? 3 : 17;
        return 0;
}

/*
 * An attach whose fds fit, at an fd limit that leaves none for the /proc
 * read of this process's start time, stamped 0 ("unknown") in its side:
 * the peer then took a process that reused its pid, once it died, for it.
 * The start time is read first now (or the attach fails, -EMFILE), so the
 * first attach that fits stamps it.
 */
static void test_attach_stamps_start_time_at_fd_limit(void **state)
{
        struct brd_handle hp, hc;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        ring_child_passes(child_attach_first_fit, &hp, &hc);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        t_leak_end(&l);
}

static void test_role_released_by_failed_attach(void **state)
{
        struct brd_handle hp, hc;
        struct t_leak l;

        (void)state;
        t_leak_begin(&l);
        ring_child_passes(child_attach_at_fd_limit, &hp, &hc);
        consumer_gets_then_eof(&hp, &hc, "");
        t_leak_end(&l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_inherited_endpoint_is_ebadf),
                cmocka_unit_test(test_inherited_close_ignores_interrupt_in_flight),
                cmocka_unit_test(test_inherited_ring_memory_absent),
                cmocka_unit_test(test_close_after_fork_without_handlers),
                cmocka_unit_test(test_close_after_fork_without_handlers_locked),
                cmocka_unit_test(test_zc_state_not_inherited),
                cmocka_unit_test(test_handle_inherited_then_attached),
                cmocka_unit_test(test_handle_sent_over_socket),
                cmocka_unit_test(test_attach_in_other_pidns),
                cmocka_unit_test(test_role_attached_once),
                cmocka_unit_test(test_role_left_by_exited_process),
                cmocka_unit_test(test_role_left_waiting),
                cmocka_unit_test(test_role_race),
                cmocka_unit_test(test_role_released_by_failed_attach),
                cmocka_unit_test(test_attach_stamps_start_time_at_fd_limit),
        };

        return cmocka_run_group_tests_name("ringbuf-fork", tests, NULL, NULL);
}
