/* SPDX-License-Identifier: MIT */
/*
 * Forkserver: spawning, fd hygiene, handles, statuses, failures.  Children
 * report only through their exit code.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>

#include <brood/shm.h>
#include <brood/ringbuf.h>
#include "fork-util.h"
#include "internal/brd-fork.h"

static const char *helper_path(void)
{
        const char *p = getenv("BRD_HELPER_FDCOUNT");

        return p ? p : "./helper-fdcount";
}

/* ------------------------------------------------------------ statuses */
static int fn_exit_arg(void *arg, struct brd_handle *h, size_t n)
{
        return (int)(intptr_t)arg;
}

static int fn_pause(void *arg, struct brd_handle *h, size_t n)
{
        for (;;)
                pause();
        return 0;
}

static int fn_sigkill_self(void *arg, struct brd_handle *h, size_t n)
{
        kill(getpid(), SIGKILL);
        return 1;
}

static void test_fork_status_once(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)42, .name = "brd-t-status" };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int st = -1;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        assert_true(brd_child_pid(c) > 0);
        assert_true(brd_child_fd(c) >= 0);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 42);
        st = -7;
        assert_int_equal(brd_child_wait(c, -1, &st), -ECHILD);        /* exactly once */
        assert_int_equal(st, -7);                                       /* untouched */
        assert_int_equal(brd_child_kill(c, SIGTERM), -ESRCH);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void test_fork_wait_timeouts(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_pause };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int64_t t0, dt;
        int st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        assert_int_equal(brd_child_wait(c, 0, &st), -EAGAIN);
        t0 = t_now_ms();
        assert_int_equal(brd_child_wait(c, 150, &st), -ETIMEDOUT);
        dt = t_now_ms() - t0;
        assert_true(dt >= 150);
        assert_true(dt < 150 + 500);                    /* loaded 2-core machine */
        assert_int_equal(brd_child_kill(c, 0), 0);
        assert_int_equal(brd_child_kill(c, SIGUSR1), 0); /* default action: terminate */
        /* Any negative timeout is forever, as -1 (and as poll()'s). */
        assert_int_equal(brd_child_wait(c, -2, &st), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGUSR1);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void test_fork_status_kept_until_wait(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)9 };
        struct pollfd p;
        struct brd_fsrv *fs;
        struct brd_child *c;
        int st;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        p = (struct pollfd){ .fd = brd_child_fd(c), .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);       /* exited, nobody waited */
        /* Not reaped yet: a signal is a no-op, as kill(2)'s (fork.h). */
        assert_int_equal(brd_child_kill(c, 0), 0);
        assert_int_equal(brd_child_wait(c, 0, &st), 0);
        assert_int_equal(WEXITSTATUS(st), 9);
        assert_int_equal(brd_child_kill(c, 0), -ESRCH);
        assert_int_equal(brd_child_kill(c, SIGTERM), -ESRCH);
        brd_child_free(c);
        brd_fsrv_stop(fs);
}

/* ---------------------------------------------------------- fd hygiene */
struct busy {
        int stop[2];
        int epfd;
        pthread_mutex_t m;
        pthread_t t[3];
};

static void *busy_locker(void *arg)
{
        struct busy *b = arg;
        struct pollfd p = { .fd = b->stop[0], .events = POLLIN };

        /* Holds its own lock across every spawn of the test. */
        pthread_mutex_lock(&b->m);
        while (poll(&p, 1, -1) < 0)
                ;
        pthread_mutex_unlock(&b->m);
        return NULL;
}

static void *busy_epoll(void *arg)
{
        struct busy *b = arg;
        struct epoll_event ev;

        while (epoll_wait(b->epfd, &ev, 1, -1) < 0)
                ;
        return NULL;
}

static void *busy_spin(void *arg)
{
        struct busy *b = arg;
        struct pollfd p = { .fd = b->stop[0], .events = POLLIN };
        uint64_t x = 0;
        int i;

        for (;;) {
                for (i = 0; i < 100000; i++)
                        x = x * 31 + (uint64_t)i;
                __asm__ __volatile__("" : : "r"(x));   /* keep the work */
                if (poll(&p, 1, 0) > 0)
                        return NULL;
        }
}

static int dev_null_rdev_matches(int fd)
{
        struct stat a, b;

        return fstat(fd, &a) == 0 && stat("/dev/null", &b) == 0 && S_ISCHR(a.st_mode) &&
               a.st_rdev == b.st_rdev;
}

/* Exit code: 0 ok, else the number of the failed check. */
static int fn_hygiene(void *arg, struct brd_handle *h, size_t n)
{
        bool seen[64] = { false };
        struct sigaction sa;
        struct brd_seg *s;
        sigset_t mask;
        char comm[32];
        int i, fd, sig, pd = -1;
        ssize_t k;

        if (n != 2 || h[0].fds[0] != 3 || h[1].fds[0] != 4 || h[1].kind != BRD_HANDLE_NONE)
                return 1;
        if (t_fd_set(seen, 64) < 0)
                return 3;
        for (i = 0; i < 64; i++)
                if (seen[i] != (i <= 4))
                        return 4;
        if (t_thread_count() != 1)
                return 5;
        if (sigprocmask(SIG_SETMASK, NULL, &mask) < 0)
                return 6;
        for (sig = 1; sig < 32; sig++)
                if (sigismember(&mask, sig))
                        return 7;
        for (sig = 1; sig < NSIG; sig++) {
                if (sig == 32 || sig == 33 || sigaction(sig, NULL, &sa) < 0)
                        continue;
                if (sa.sa_handler != SIG_DFL)
                        return 8;
        }
        fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
        k = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
        if (fd >= 0)
                close(fd);
        if (k <= 0 || strncmp(comm, "brd-t-hygiene\n", (size_t)k))
                return 9;
        if (prctl(PR_GET_PDEATHSIG, &pd) < 0 || pd != SIGKILL)
                return 10;
        if (!(fcntl(3, F_GETFD) & FD_CLOEXEC) || !(fcntl(4, F_GETFD) & FD_CLOEXEC))
                return 11;
        if (!dev_null_rdev_matches(1) || !dev_null_rdev_matches(0) || !dev_null_rdev_matches(2))
                return 12;
        if (brd_seg_attach(&h[0], &s) < 0)
                return 13;
        if (((unsigned char *)brd_seg_addr(s))[0] != 0x5a)
                return 14;
        brd_seg_close(s);
        return 0;
}

/* ------------------------------------------------ no close_range() */
#define HIGH_FD 200             /* above the lowered limit */
#define LOW_LIMIT 64

/* A fork-mode child: stdio and its one handle (fd 3) open, the parent's
 * fds at 10 and HIGH_FD closed.  Exit code = the failed check.  No stdio,
 * no malloc: fcntl only. */
static int fn_only_stdio_and_handle(void *arg, struct brd_handle *h, size_t n)
{
        int fd;

        for (fd = 0; fd <= 3; fd++)
                if (fcntl(fd, F_GETFD) < 0)
                        return 1;
        if (fcntl(10, F_GETFD) >= 0 || errno != EBADF)
                return 2;
        if (fcntl(HIGH_FD, F_GETFD) >= 0 || errno != EBADF)
                return 3;
        return 0;
}

/*
 * Without close_range() a fork-mode child still keeps exactly stdio and its
 * handles, an fd above a lowered RLIMIT_NOFILE included (closing one by
 * one up to the limit missed it); an exec-mode child too.  Child: 0,
 * T_EXIT_SKIP without seccomp, or the failed check (10 + the fork-mode
 * grandchild's code for its checks).
 */
static void test_fork_fds_without_close_range(void **state)
{
        pid_t pid = t_fork();
        int rc;

        assert_true(pid >= 0);
        if (pid == 0) {
                struct brd_spawn_opts o = { .fn = fn_only_stdio_and_handle, .nhandles = 1 };
                char *sh_no_high_fds[] = { "/bin/sh", "-c",
                                           "test ! -e /proc/self/fd/10 && test ! -e /proc/self/fd/200",
                                           NULL };
                struct rlimit rl;
                struct brd_handle h;
                struct brd_fsrv *fs;
                struct brd_child *c;
                int st, fd;

                /* As on Linux < 5.9; the forkserver thread started below
                 * inherits the filter. */
                if (tf_deny_syscall(SYS_close_range, ENOSYS) < 0)
                        _exit(T_EXIT_SKIP);
                if (close_range(3, 3, 0) == 0 || errno != ENOSYS)
                        _exit(1);
                fd = open("/dev/null", O_RDONLY);       /* inheritable, as a host's may be */
                if (fd < 0 || dup2(fd, 10) != 10 || dup2(fd, HIGH_FD) != HIGH_FD)
                        _exit(2);
                if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(3);
                rl.rlim_cur = LOW_LIMIT;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(4);
                h = tf_fd_handle(fd);
                o.handles = &h;
                if (brd_fsrv_start(0, &fs) < 0 || brd_fsrv_spawn(fs, &o, &c) < 0)
                        _exit(5);
                if (brd_child_wait(c, -1, &st) < 0 || !WIFEXITED(st))
                        _exit(6);
                if (WEXITSTATUS(st))
                        _exit(10 + WEXITSTATUS(st));
                brd_child_free(c);
                /* Exec mode too (dash's test is a builtin: /proc/self is sh). */
                o = (struct brd_spawn_opts){ .argv = sh_no_high_fds };
                if (brd_fsrv_spawn(fs, &o, &c) < 0 || brd_child_wait(c, -1, &st) < 0)
                        _exit(7);
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        _exit(8);
                brd_child_free(c);
                brd_fsrv_stop(fs);
                _exit(0);
        }
        rc = t_wait_child(pid);
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

static void sig_noop(int sig)
{
}

static void test_fork_fd_hygiene(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_seg *seg;
        struct brd_handle h[2];
        struct busy b;
        struct sigaction ign = { .sa_handler = SIG_IGN }, hnd = { .sa_handler = sig_noop }, old1, old2;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct epoll_event ev = { .events = EPOLLIN };
        int fds[32], nf = 0, i, st, sv[2], pp[2];
        sigset_t blk;
        struct t_leak l;

        t_leak_begin(&l);
        /* 20+ fds of every kind, some without CLOEXEC: only close_range saves the child. */
        for (i = 0; i < 2; i++) {
                assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
                fds[nf++] = sv[0];
                fds[nf++] = sv[1];
        }
        fds[nf] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[nf] >= 0);
        assert_int_equal(bind(fds[nf], (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(listen(fds[nf], 4), 0);
        nf++;
        for (i = 0; i < 3; i++) {
                assert_int_equal(pipe(pp), 0);
                fds[nf++] = pp[0];
                fds[nf++] = pp[1];
        }
        for (i = 0; i < 3; i++)
                assert_true((fds[nf++] = eventfd(0, i ? EFD_CLOEXEC : 0)) >= 0);
        assert_true((fds[nf++] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) >= 0);
        assert_true((fds[nf++] = memfd_create("brd-t-hyg", 0)) >= 0);
        assert_true((fds[nf++] = memfd_create("brd-t-hyg2", MFD_CLOEXEC)) >= 0);
        assert_true((fds[nf++] = open("/dev/null", O_RDONLY)) >= 0);
        assert_true((fds[nf++] = open("/proc/self/stat", O_RDONLY)) >= 0);
        assert_true((fds[nf++] = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
        assert_true((fds[nf++] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) >= 0);
        assert_true(nf >= 20);

        memset(&b, 0, sizeof(b));
        assert_int_equal(pipe2(b.stop, O_CLOEXEC), 0);
        b.epfd = epoll_create1(0);                      /* no CLOEXEC either */
        assert_true(b.epfd >= 0);
        ev.data.fd = b.stop[0];
        assert_int_equal(epoll_ctl(b.epfd, EPOLL_CTL_ADD, b.stop[0], &ev), 0);
        pthread_mutex_init(&b.m, NULL);
        assert_int_equal(pthread_create(&b.t[0], NULL, busy_locker, &b), 0);
        assert_int_equal(pthread_create(&b.t[1], NULL, busy_epoll, &b), 0);
        assert_int_equal(pthread_create(&b.t[2], NULL, busy_spin, &b), 0);

        /* Dispositions and a mask the child must not inherit. */
        assert_int_equal(sigaction(SIGUSR1, &ign, &old1), 0);
        assert_int_equal(sigaction(SIGUSR2, &hnd, &old2), 0);
        sigemptyset(&blk);
        sigaddset(&blk, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &blk, NULL);

        assert_int_equal(brd_seg_create("hyg", 4096, 0, &seg), 0);
        memset(brd_seg_addr(seg), 0x5a, 4096);
        assert_int_equal(brd_seg_export(seg, &h[0]), 0);
        h[1] = tf_fd_handle(fds[nf - 8]);               /* an eventfd */
        {
                struct brd_spawn_opts o = { .fn = fn_hygiene, .handles = h, .nhandles = 2,
                                            .name = "brd-t-hygiene", .flags = BRD_SPAWN_NULL_STDIO };

                assert_int_equal(brd_fsrv_start(0, &fs), 0);
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
                brd_child_free(c);
        }
        {
                /* exec: exactly 0, 1, 2 + the two handles' fds reach the program. */
                struct brd_handle e[2];
                char *argv[] = { (char *)helper_path(), "count", NULL };
                struct brd_spawn_opts o = { .argv = argv, .handles = e, .nhandles = 2 };

                assert_int_equal(brd_seg_export(seg, &e[0]), 0);
                assert_int_equal(brd_seg_export(seg, &e[1]), 0);
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 5);
                brd_child_free(c);
                brd_handle_close(&e[0]);
                brd_handle_close(&e[1]);
        }
        brd_fsrv_stop(fs);

        pthread_sigmask(SIG_UNBLOCK, &blk, NULL);
        sigaction(SIGUSR1, &old1, NULL);
        sigaction(SIGUSR2, &old2, NULL);
        assert_int_equal(write(b.stop[1], "x", 1), 1);
        for (i = 0; i < 3; i++)
                pthread_join(b.t[i], NULL);
        close(b.stop[0]);
        close(b.stop[1]);
        close(b.epfd);
        brd_handle_close(&h[0]);
        brd_seg_close(seg);
        for (i = 0; i < nf; i++)
                close(fds[i]);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ handles */
static int fn_seg_check(void *arg, struct brd_handle *h, size_t n)
{
        struct brd_seg *s;
        unsigned char *p;
        size_t i;

        if (n != 1 || h[0].fds[0] != 3 || brd_seg_attach(&h[0], &s) < 0)
                return 1;
        brd_handle_close(&h[0]);
        p = brd_seg_addr(s);
        for (i = 0; i < brd_seg_size(s); i++)
                if (p[i] != 7)
                        return 2;
        memset(p, 8, brd_seg_size(s));
        brd_seg_close(s);
        return 0;
}

static void check_fill(struct brd_seg *s, unsigned char v)
{
        unsigned char *p = brd_seg_addr(s);
        size_t i;

        for (i = 0; i < brd_seg_size(s); i++)
                if (p[i] != v)
                        fail_msg("byte %zu is %u, want %u", i, p[i], v);
}

static void test_fork_seg_handle(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_seg *s;
        struct brd_handle h;
        struct t_leak l;
        char *argv[] = { (char *)helper_path(), "seg-env", "8", NULL };
        int st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_seg_create("fsh", 65536, 0, &s), 0);
        memset(brd_seg_addr(s), 7, 65536);
        assert_int_equal(brd_seg_export(s, &h), 0);
        {
                struct brd_spawn_opts o = { .fn = fn_seg_check, .handles = &h, .nhandles = 1 };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_int_equal(st, 0);
                brd_child_free(c);
                check_fill(s, 8);
        }
        {
                /* exec: the helper finds it with brd_handle_from_env, checks 8, writes 9. */
                struct brd_spawn_opts o = { .argv = argv, .handles = &h, .nhandles = 1 };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_int_equal(st, 0);
                brd_child_free(c);
                check_fill(s, 9);
        }
        brd_handle_close(&h);
        brd_seg_close(s);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ inherited fd numbers */
struct inherited {
        struct brd_seg *seg;
        struct brd_ring *ring;
        struct brd_pool *pool;
        struct brd_seg *handed;         /* the parent's object of handle 0's segment */
};

/* After the prelude the inherited objects' fd numbers may be the handles'
 * numbers: closing the inherited objects must leave the handles alone, and
 * exporting an inherited segment must fail rather than dup a stranger: a
 * handed one (still mapped here) as well as one gone here (F35). */
static int fn_inherited_close(void *arg, struct brd_handle *h, size_t n)
{
        struct inherited *in = arg;
        struct brd_handle x;
        size_t i;

        if (brd_seg_export(in->seg, &x) != -EBADF || brd_seg_addr(in->seg))
                return 1;
        if (!brd_seg_addr(in->handed) || brd_seg_export(in->handed, &x) != -EBADF)
                return 2;
        brd_seg_close(in->handed);
        brd_seg_close(in->seg);
        brd_ring_close(in->ring);
        brd_pool_close(in->pool);
        for (i = 0; i < n; i++)
                if (fcntl(h[i].fds[0], F_GETFD) < 0)
                        return 10 + (int)i;     /* one of ours was closed */
        for (i = 0; i < n; i++) {
                struct brd_seg *s;

                if (brd_seg_attach(&h[i], &s) < 0)
                        return 20 + (int)i;
                brd_seg_close(s);
        }
        return 0;
}

static void test_inherited_objects_never_close_handles(void **state)
{
        struct inherited in;
        struct brd_handle rp, rc, h[6];
        struct brd_seg *hs[6];
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int st, i;

        t_leak_begin(&l);
        /* Inherited objects first: they get the low fd numbers that the
         * child's handles (3, 4, ...) will reuse.  The first handed segment
         * before them all: its fd number is handle 0's in the child. */
        assert_int_equal(brd_seg_create("h", 4096, 0, &hs[0]), 0);
        assert_int_equal(brd_seg_create("inh", 4096, 0, &in.seg), 0);
        assert_int_equal(brd_ring_create(4096, 0, &rp, &rc), 0);
        assert_int_equal(brd_ring_attach(&rc, &in.ring), 0);
        assert_int_equal(brd_pool_create(1 << 20, 0, &in.pool), 0);
        for (i = 0; i < 6; i++) {
                if (i > 0)
                        assert_int_equal(brd_seg_create("h", 4096, 0, &hs[i]), 0);
                assert_int_equal(brd_seg_export(hs[i], &h[i]), 0);
        }
        in.handed = hs[0];
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        {
                struct brd_spawn_opts o = { .fn = fn_inherited_close, .arg = &in, .handles = h,
                                            .nhandles = 6 };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_int_equal(st, 0);
                brd_child_free(c);
        }
        brd_fsrv_stop(fs);
        for (i = 0; i < 6; i++) {
                brd_handle_close(&h[i]);
                brd_seg_close(hs[i]);
        }
        brd_pool_close(in.pool);
        brd_ring_close(in.ring);
        brd_handle_close(&rp);
        brd_handle_close(&rc);
        brd_seg_close(in.seg);
        t_leak_end(&l);
}

/* ------------------------------------------ memory not handed (F35) */
struct unhanded {
        struct brd_seg *gone, *kept;            /* handed: kept (h[0]) */
        struct brd_pool *pgone, *pkept;         /* handed: pkept (h[1]) */
        struct brd_array *agone;                /* rows in pgone */
        unsigned char *gone_ptr;                /* the parent's view of gone */
        uint64_t kept_off;                      /* a block of pkept */
};

/* A fork-mode child handed one segment and one pool: those two are all of
 * brood's memory it has, inherited objects of the others answer as gone,
 * and the handed ones work through the inherited objects too.  Exit code =
 * the number of the first check that failed. */
static int fn_unhanded(void *arg, struct brd_handle *h, size_t n)
{
        struct unhanded *u = arg;
        uint64_t row = 7;
        unsigned char *k;
        uint32_t *w;

        if (n != 2 || t_seg_map_count() != 2)
                return 10;
        if (brd_seg_addr(u->gone) != NULL)
                return 11;
        k = brd_seg_addr(u->kept);
        if (!k || k[0] != 0x5a || k[4095] != 0x5a)
                return 12;
        if (brd_pool_alloc(u->pgone, 64) != -EBADF || brd_pool_free(u->pgone, u->kept_off) != -EBADF)
                return 13;
        if (brd_pool_ptr(u->pgone, brd_array_offset(u->agone)) != NULL)
                return 14;
        if (brd_array_push(u->agone, &row, 1) != -EBADF)
                return 15;
        w = brd_pool_ptr(u->pkept, u->kept_off);
        if (!w || brd_pool_alloc(u->pkept, 64) < 0)
                return 16;
        *w = 0xabcd;
        /* Closing the gone ones touches nothing (the parent checks). */
        brd_array_close(u->agone);
        brd_pool_close(u->pgone);
        brd_seg_close(u->gone);
        return 0;
}

/* A child that was not handed a segment and writes through the parent's
 * pointer anyway: SIGSEGV, and nothing written. */
static int fn_touch_unhanded(void *arg, struct brd_handle *h, size_t n)
{
        struct unhanded *u = arg;

        u->gone_ptr[0] = 0x99;
        return 1;
}

/*
 * RELIABILITY F35: a fork-mode child keeps exactly the memory it was
 * handed.  Every other segment, pool and array of the parent is unmapped
 * before fn runs: gone to the API (NULL, -EBADF), SIGSEGV through an old
 * pointer; the handed ones stay mapped and usable.
 */
static void test_unhanded_memory_gone(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_unhanded, .nhandles = 2 };
        struct brd_handle h[2];
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct unhanded u;
        struct t_leak l;
        uint64_t row = 1, first;
        int st;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("gone", 4096, 0, &u.gone), 0);
        assert_int_equal(brd_seg_create("kept", 4096, 0, &u.kept), 0);
        u.gone_ptr = brd_seg_addr(u.gone);
        memset(u.gone_ptr, 0x11, 4096);
        memset(brd_seg_addr(u.kept), 0x5a, 4096);
        assert_int_equal(brd_pool_create(1 << 20, 0, &u.pgone), 0);
        assert_int_equal(brd_array_create(u.pgone, sizeof(row), 16, 0, 0, &u.agone), 0);
        assert_int_equal(brd_pool_create(1 << 20, 0, &u.pkept), 0);
        u.kept_off = (uint64_t)brd_pool_alloc(u.pkept, 64);
        assert_true((int64_t)u.kept_off > 0);
        assert_int_equal(brd_seg_export(u.kept, &h[0]), 0);
        assert_int_equal(brd_pool_export(u.pkept, &h[1]), 0);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);

        o.arg = &u;
        o.handles = h;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        brd_child_free(c);
        assert_int_equal(*(uint32_t *)brd_pool_ptr(u.pkept, u.kept_off), 0xabcd);
        /* The parent's own objects are untouched by the child's closes. */
        assert_int_equal(brd_array_push(u.agone, &row, 1), 0);
        assert_int_equal(brd_array_read(u.agone, &first, &row, 1), 1);
        assert_int_equal(row, 1);
        assert_true(brd_pool_alloc(u.pgone, 64) > 0);

        o.fn = fn_touch_unhanded;
        o.handles = NULL;
        o.nhandles = 0;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSEGV);
        brd_child_free(c);
        assert_int_equal(u.gone_ptr[0], 0x11);

        brd_fsrv_stop(fs);
        brd_handle_close(&h[0]);
        brd_handle_close(&h[1]);
        brd_array_close(u.agone);
        brd_pool_close(u.pgone);
        brd_pool_close(u.pkept);
        brd_seg_close(u.gone);
        brd_seg_close(u.kept);
        t_leak_end(&l);
}

/*
 * F35 with another thread mapping and unmapping brood memory meanwhile:
 * segments created and closed, rings attached and closed.  A fork between
 * a mapping and its entry in the segment registry (or its MADV_DONTFORK),
 * or between an entry's removal and the unmap, would leave the child a
 * mapping that brd__fork_drop_unhanded() cannot see.  Each child, handed
 * nothing, must find no brood mapping at all (exit 0, else 1).
 */
#define CHURN_SPAWNS 300

struct churn {
        int stop;               /* __atomic */
        unsigned long rounds;   /* the churn thread's, read after the join */
        int err;                /* its first failure, 0 if none */
};

static void *churn_main(void *arg)
{
        struct churn *ch = arg;
        struct brd_handle hp, hc;
        struct brd_ring *r;
        struct brd_seg *s;
        int e;

        while (!__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE)) {
                e = brd_seg_create("churn", 4096, 0, &s);
                if (e) {
                        ch->err = e;
                        break;
                }
                brd_seg_close(s);
                e = brd_ring_create(4096, 0, &hp, &hc);
                if (e == 0) {
                        e = brd_ring_attach(&hp, &r);
                        if (e == 0)
                                brd_ring_close(r);
                        brd_handle_close(&hp);
                        brd_handle_close(&hc);
                }
                if (e) {
                        ch->err = e;
                        break;
                }
                ch->rounds++;
        }
        return NULL;
}

static int fn_no_brood_maps(void *arg, struct brd_handle *h, size_t n)
{
        return t_seg_map_count() == 0 ? 0 : 1;
}

static void test_unhanded_memory_gone_while_mapping(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_no_brood_maps };
        struct churn ch = { 0 };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        pthread_t t;
        int i, st, stray = 0;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(pthread_create(&t, NULL, churn_main, &ch), 0);
        for (i = 0; i < CHURN_SPAWNS; i++) {
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                stray += WEXITSTATUS(st) != 0;
                brd_child_free(c);
        }
        __atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(ch.err, 0);
        assert_true(ch.rounds > 0);
        assert_int_equal(stray, 0);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

/* The report slots pages of two forkservers (brd-fork.h). */
struct two_fsrv {
        struct brd_fsrv *a, *b;
        void *slots_a, *slots_b;
};

static bool page_mapped(void *p)
{
        unsigned char v;

        return mincore(p, 1, &v) == 0 || errno != ENOMEM;
}

/* A fork-mode child of a, once reported, has neither forkserver's report
 * page: no other spawn's report is within its reach.  Stopping the
 * inherited forkservers then only frees them.  Exit code = the failed
 * check. */
static int fn_no_report_pages(void *arg, struct brd_handle *h, size_t n)
{
        struct two_fsrv *t = arg;

        if (page_mapped(t->slots_a))
                return 1;
        if (page_mapped(t->slots_b))
                return 2;
        brd_fsrv_stop(t->a);
        brd_fsrv_stop(t->b);
        return 0;
}

/* F35 for the forkservers' own shared page: every spawn of a fork-mode
 * child reports through a MAP_SHARED page of its forkserver, which the
 * child unmaps (every forkserver's) once it reported. */
static void test_child_keeps_no_report_page(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_no_report_pages };
        struct two_fsrv t;
        struct brd_child *c;
        struct t_leak l;
        int st, i;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &t.a), 0);
        assert_int_equal(brd_fsrv_start(0, &t.b), 0);
        t.slots_a = t.a->slots;
        t.slots_b = t.b->slots;
        assert_true(page_mapped(t.slots_a) && page_mapped(t.slots_b));
        o.arg = &t;
        for (i = 0; i < 2; i++) {
                assert_int_equal(brd_fsrv_spawn(i ? t.b : t.a, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
                brd_child_free(c);
        }
        /* Ours stay, and still serve. */
        assert_true(page_mapped(t.slots_a) && page_mapped(t.slots_b));
        brd_fsrv_stop(t.b);
        o.fn = fn_exit_arg;
        o.arg = (void *)(intptr_t)7;
        assert_int_equal(brd_fsrv_spawn(t.a, &o, &c), 0);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_int_equal(WEXITSTATUS(st), 7);
        brd_child_free(c);
        brd_fsrv_stop(t.a);
        t_leak_end(&l);
}

/* --------------------------------------------- CLOEXEC everywhere (F34) */
extern char **environ;

#define CX_FDS 1024             /* fd numbers the snapshot covers */
#define CX_SPAWNS 20

/* Which fds are open now (below CX_FDS), and how many of them a plain
 * fork+exec would pass on (no FD_CLOEXEC). */
static int fd_snapshot(bool open[CX_FDS])
{
        int fd, inheritable = 0;

        assert_true(t_fd_set(open, CX_FDS) >= 0);
        for (fd = 0; fd < CX_FDS; fd++)
                if (open[fd] && !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
                        inheritable++;
        return inheritable;
}

/* How many fds opened since @before are there, and how many of them lack
 * FD_CLOEXEC (each named on stderr). */
static int fds_without_cloexec(const bool before[CX_FDS], int *ret_new)
{
        static bool now[CX_FDS];
        int fd, bad = 0;

        assert_true(t_fd_set(now, CX_FDS) >= 0);
        *ret_new = 0;
        for (fd = 0; fd < CX_FDS; fd++) {
                char link[64], target[256] = "";

                if (!now[fd] || before[fd])
                        continue;
                ++*ret_new;
                if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
                        continue;
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                (void)!readlink(link, target, sizeof(target) - 1);
                print_error("fd %d (%s) has no FD_CLOEXEC\n", fd, target);
                bad++;
        }
        return bad;
}

struct host_spawner {
        int counts[CX_SPAWNS];          /* the helper's exit codes: its fd counts */
        int done;
};

/* The host's own thread: posix_spawn (fork+exec, no file actions) of the
 * fd-counting helper, again and again, while the library works. */
static void *host_spawn_thread(void *arg)
{
        struct host_spawner *hs = arg;
        char count[] = "count", *argv[] = { (char *)helper_path(), count, NULL };
        int i, st;
        pid_t pid;

        for (i = 0; i < CX_SPAWNS; i++) {
                hs->counts[i] = -1;
                if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
                        continue;
                while (waitpid(pid, &st, 0) < 0)
                        if (errno != EINTR)
                                break;
                hs->counts[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        __atomic_store_n(&hs->done, 1, __ATOMIC_RELEASE);
        return NULL;
}

/* The library making fds while the host spawns: a segment and its handle,
 * a ring with its poll fd and a wait (the peer's pidfd).  0, or the step
 * that failed. */
static int churn_once(void)
{
        struct brd_handle h, hp, hc;
        struct brd_ring *p, *c;
        struct brd_seg *s;
        char buf[8];

        if (brd_seg_create("cx-churn", 4096, 0, &s) < 0)
                return 1;
        if (brd_seg_export(s, &h) < 0)
                return 2;
        brd_handle_close(&h);
        brd_seg_close(s);
        if (brd_ring_create(4096, 0, &hp, &hc) < 0)
                return 3;
        if (brd_ring_attach(&hp, &p) < 0 || brd_ring_attach(&hc, &c) < 0)
                return 4;
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        if (brd_ring_fd(c) < 0 || brd_ring_recv(c, buf, sizeof(buf), 0) != -EAGAIN)
                return 5;
        brd_ring_close(p);
        brd_ring_close(c);
        return 0;
}

/*
 * RELIABILITY F34: with one of each library object that owns fds alive (an
 * anonymous and a named segment, a ring whose ends made their poll fds and
 * waited once, a pool, a forkserver with a running child, a handle
 * received over a socket), every fd opened since the test began has
 * FD_CLOEXEC; and a host thread that posix_spawn()s a program meanwhile,
 * 20 times while this thread keeps making and closing segments and rings,
 * never passes it one: the helper counts only the fds that were
 * inheritable before the test began (0, 1 and 2 under meson: 3; a shell
 * may pass down more, which are not the library's).
 */
static void test_library_fds_are_cloexec(void **state)
{
        static bool before[CX_FDS];
        struct brd_spawn_opts o = { .fn = fn_pause };
        struct host_spawner hs = { .done = 0 };
        struct brd_handle h, got, hp, hc;
        struct brd_seg *anon, *named;
        struct brd_ring *p, *c;
        struct brd_pool *pool;
        struct brd_fsrv *fs;
        struct brd_child *ch;
        struct t_leak l;
        int sp[2], inheritable, made, i, churned = 0, churn_err = 0;
        char buf[8];
        pthread_t t;

        (void)state;
        t_leak_begin(&l);
        inheritable = fd_snapshot(before);
        assert_int_equal(brd_seg_create("cx-anon", 4096, 0, &anon), 0);
        assert_int_equal(brd_seg_create("cx-named", 4096, BRD_SEG_NAMED, &named), 0);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hp, &p), 0);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
        assert_true(brd_ring_fd(p) >= 0);
        assert_true(brd_ring_fd(c) >= 0);
        /* A wait: the consumer opens the producer's pidfd and sleeps. */
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 5), -ETIMEDOUT);
        assert_int_equal(brd_pool_create(1 << 20, 0, &pool), 0);
        assert_true(brd_pool_alloc(pool, 100) >= 0);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &ch), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        assert_int_equal(brd_seg_export(anon, &h), 0);
        assert_int_equal(brd_handle_send(sp[0], &h, 1), 0);
        assert_int_equal(brd_handle_recv(sp[1], &got, 1, 10000), 1);

        assert_int_equal(fds_without_cloexec(before, &made), 0);
        assert_true(made >= 10);        /* the objects do hold fds */

        assert_int_equal(pthread_create(&t, NULL, host_spawn_thread, &hs), 0);
        /* At least once, however soon the host's spawns end. */
        do {
                int e = churn_once();

                if (e && !churn_err)
                        churn_err = e;
                churned++;
        } while (!__atomic_load_n(&hs.done, __ATOMIC_ACQUIRE));
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(churn_err, 0);
        for (i = 0; i < CX_SPAWNS; i++) {
                if (hs.counts[i] != inheritable)
                        print_error("spawn %d: the helper had %d fds\n", i, hs.counts[i]);
                assert_int_equal(hs.counts[i], inheritable);
        }
        assert_true(churned > 0);
        assert_int_equal(brd_child_kill(ch, 0), 0);     /* still running all along */

        brd_child_free(ch);
        brd_fsrv_stop(fs);
        brd_pool_close(pool);
        brd_ring_close(p);
        brd_ring_close(c);
        brd_handle_close(&got);
        brd_handle_close(&h);
        close(sp[0]);
        close(sp[1]);
        brd_seg_close(named);
        brd_seg_close(anon);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ many */
static void test_fork_50_children(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c[50];
        struct t_leak l;
        int i, st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        for (i = 0; i < 50; i++) {
                struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)i };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c[i]), 0);
        }
        for (i = 0; i < 50; i++) {
                assert_int_equal(brd_child_wait(c[i], -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), i);
                brd_child_free(c[i]);
        }
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ failures */
static void test_exec_missing_program(void **state)
{
        char *argv1[] = { "/nonexistent/brood-no-such-program", NULL };
        char *argv2[] = { "brood-no-such-program-in-path", NULL };
        struct brd_spawn_opts o = { .argv = argv1 };
        struct brd_child *c = (struct brd_child *)0x1;
        struct brd_fsrv *fs;
        struct t_leak l;
        char *path;
        int e;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -ENOENT);
        assert_ptr_equal(c, (struct brd_child *)0x1);  /* untouched */
        /* A PATH of directories this user may enter: one it may not (su
         * keeps root's PATH) makes the lookup's answer -EACCES, as
         * execvp()'s is. */
        path = getenv("PATH");
        path = path ? strdup(path) : NULL;
        assert_int_equal(setenv("PATH", "/usr/bin:/bin", 1), 0);
        o.argv = argv2;
        e = brd_fsrv_spawn(fs, &o, &c);
        assert_int_equal(path ? setenv("PATH", path, 1) : unsetenv("PATH"), 0);
        free(path);
        assert_int_equal(e, -ENOENT);
        t_no_children();                               /* reaped: no zombie */
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void test_child_dies_at_each_stage(void **state)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int stage, mode, st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        for (mode = 0; mode < 2; mode++) {
                struct brd_spawn_opts o = { .fn = mode ? NULL : fn_exit_arg, .argv = mode ? argv : NULL };

                for (stage = BRD__CRASH_AFTER_CLONE; stage <= BRD__CRASH_BEFORE_ENTRY; stage++) {
                        /* With a segment and a ring's end to hand over: what
                         * the forkserver made or kept for the child goes
                         * with it (the leak check at the end counts fds). */
                        struct brd_handle h[3];
                        struct brd_seg *seg;

                        assert_int_equal(brd_seg_create("stage", 4096, 0, &seg), 0);
                        assert_int_equal(brd_seg_export(seg, &h[0]), 0);
                        assert_int_equal(brd_ring_create(4096, 0, &h[1], &h[2]), 0);
                        o.handles = h;
                        o.nhandles = 2;
                        brd__fsrv_set_crash_stage(fs, stage);
                        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -ECHILD);
                        t_no_children();
                        for (int i = 0; i < 3; i++)
                                brd_handle_close(&h[i]);
                        brd_seg_close(seg);
                        o.handles = NULL;
                        o.nhandles = 0;
                }
                brd__fsrv_set_crash_stage(fs, BRD__CRASH_NONE);
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);       /* and it recovers */
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_int_equal(st, 0);
                brd_child_free(c);
        }
        {
                /* (c) while running: the death comes through the pidfd, exactly once. */
                struct brd_spawn_opts o = { .fn = fn_sigkill_self };

                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), SIGKILL);
                assert_int_equal(brd_child_wait(c, -1, &st), -ECHILD);
                brd_child_free(c);
        }
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void test_host_steals_status(void **state)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts of = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)3 };
        struct brd_spawn_opts oe = { .argv = argv };
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct pollfd p;
        int64_t t0;
        int st, i, e[2], w[2];

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        /* fork mode: exit_signal SIGCHLD, so a host waitpid(-1) can reap it. */
        assert_int_equal(brd_fsrv_spawn(fs, &of, &c), 0);
        p = (struct pollfd){ .fd = brd_child_fd(c), .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);
        assert_int_equal(waitpid(-1, &st, 0), brd_child_pid(c));
        t0 = t_now_ms();
        assert_int_equal(brd_child_wait(c, -1, &st), -ECHILD);  /* promptly, no hang */
        assert_true(t_now_ms() - t0 < 1000);    /* a hang would be for ever: room for a stall */
        brd_child_free(c);
        /* exec mode: the clone has exit_signal 0, but execve() resets it to
         * SIGCHLD (de_thread), so a host waitpid(-1) reaps the program too:
         * the same prompt -ECHILD. */
        assert_int_equal(brd_fsrv_spawn(fs, &oe, &c), 0);
        p = (struct pollfd){ .fd = brd_child_fd(c), .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);
        assert_int_equal(waitpid(-1, &st, 0), brd_child_pid(c));
        t0 = t_now_ms();
        assert_int_equal(brd_child_wait(c, -1, &st), -ECHILD);
        assert_true(t_now_ms() - t0 < 1000);
        assert_int_equal(brd_child_kill(c, SIGKILL), -ESRCH);
        brd_child_free(c);
        /* SIGCHLD = SIG_IGN: children are auto-reaped: -ECHILD, never a
         * hang.  The disposition is restored before anything is asserted:
         * a failure leaves the next tests their SIGCHLD. */
        assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
        for (i = 0; i < 2; i++) {
                e[i] = brd_fsrv_spawn(fs, i ? &oe : &of, &c);
                w[i] = e[i] ? 0 : brd_child_wait(c, 10000, &st);
                if (!e[i])
                        brd_child_free(c);
        }
        sigaction(SIGCHLD, &old, NULL);
        for (i = 0; i < 2; i++) {
                assert_int_equal(e[i], 0);
                assert_int_equal(w[i], -ECHILD);
        }
        brd_fsrv_stop(fs);
        t_no_children();
}

/*
 * In a forked child: the parent's forkserver @fs and child @c.  Every call
 * on the child is -EBADF (nothing sent, nothing reaped), a spawn -ENOTSUP
 * with its child untouched; then free and stop release only memory.  The
 * child calls first: a spawn that is wrongly served waits for ever where
 * the forkserver thread does not exist.  Exit code: 0 ok, 1 a child call,
 * 2 the spawn.
 */
static int parents_objects_refused(struct brd_fsrv *fs, struct brd_child *c,
                                   const struct brd_spawn_opts *o)
{
        struct brd_child *d = NULL;
        int st;

        if (brd_child_kill(c, SIGKILL) != -EBADF || brd_child_wait(c, 0, &st) != -EBADF ||
            brd_child_fd(c) != -EBADF || brd_child_stop(c, 0, &st) != -EBADF)
                return 1;
        if (brd_fsrv_spawn(fs, o, &d) != -ENOTSUP || d)
                return 2;
        brd_child_free(c);      /* only our copy */
        brd_fsrv_stop(fs);      /* only memory */
        return 0;
}

static void test_forked_child_gets_enotsup(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)5 };
        struct brd_fsrv *fs, *mine;
        struct brd_child *c;
        pid_t pid;
        int st;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                st = parents_objects_refused(fs, c, &o);
                if (st)
                        _exit(st);
                if (brd_fsrv_start(0, &mine) < 0 || brd_fsrv_spawn(mine, &o, &c) < 0)
                        _exit(3);
                if (brd_child_wait(c, -1, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 5)
                        _exit(4);
                brd_child_free(c);
                brd_fsrv_stop(mine);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        /* The parent's child was untouched by the forked copy. */
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_int_equal(WEXITSTATUS(st), 5);
        brd_child_free(c);
        brd_fsrv_stop(fs);
}

/*
 * The same in a child of _Fork(), which runs no pthread_atfork() handler:
 * the fork generation stays the parent's, and only the pid tells.  The
 * copies answered as the parent's own: a kill signalled the parent's child,
 * a spawn queued for a thread that does not exist here and waited for ever,
 * a stop joined it.
 */
static void test_fork_without_handlers_gets_enotsup(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)5 };
        struct brd_spawn_opts op = { .fn = fn_pause };
        struct brd_fsrv *fs;
        struct brd_child *c;
        siginfo_t si;
        pid_t pid;
        int st;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &op, &c), 0);
        pid = _Fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(parents_objects_refused(fs, c, &o));
        assert_int_equal(t_wait_child(pid), 0);
        /* The parent's child is still running, untouched. */
        assert_int_equal(waitid(P_PIDFD, (id_t)brd_child_fd(c), &si, WEXITED | WNOHANG | WNOWAIT), 0);
        assert_int_equal(si.si_pid, 0);
        assert_int_equal(brd_child_stop(c, 1000, &st), 0);
        brd_child_free(c);
        assert_int_equal(tf_spawn_exit(fs, &o), 5);
        brd_fsrv_stop(fs);
}

/* ------------------------------------------------------------ exec mode and our objects */
/* Exit code: 0 ok, else the failed check.  Runs in a plain fork()ed child
 * (fork generation 2) that inherited @seg: an exec-mode child shares our
 * memory (CLONE_VM), and must not mark our objects' fds as gone. */
static int exec_spawn_keeps_objects(struct brd_seg *seg)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts o = { .argv = argv };
        struct brd_handle h;
        struct brd_fsrv *fs;
        struct brd_child *c;
        int st, sfd = brd_seg_fd(seg), n0;

        if (sfd < 0 || brd_fsrv_start(0, &fs) < 0)
                return 1;
        if (brd_fsrv_spawn(fs, &o, &c) < 0)
                return 2;
        if (brd_child_wait(c, -1, &st) < 0 || st != 0)
                return 3;
        brd_child_free(c);
        brd_fsrv_stop(fs);
        if (brd_seg_export(seg, &h) != 0)
                return 4;
        brd_handle_close(&h);
        n0 = t_fd_count();
        brd_seg_close(seg);
        if (fcntl(sfd, F_GETFD) >= 0 || errno != EBADF)
                return 5;                       /* the segment's fd leaked */
        if (t_fd_count() != n0 - 1)
                return 6;
        return 0;
}

static void test_exec_spawn_keeps_inherited_objects(void **state)
{
        struct brd_seg *seg;
        struct t_leak l;
        pid_t pid;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("exk", 4096, 0, &seg), 0);
        pid = fork();                           /* a host's plain fork */
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(exec_spawn_keeps_objects(seg));
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(seg);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ names */
static char proc_comm[16];      /* this process's name, copied into every child */

static int read_comm(const char *path, char out[16])
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k = fd >= 0 ? read(fd, out, 15) : -1;

        if (fd >= 0)
                close(fd);
        if (k <= 0)
                return -1;
        out[k] = 0;
        out[strcspn(out, "\n")] = 0;
        return 0;
}

/* Exit code: 0 when our comm is @arg (NULL: this process's name). */
static int fn_check_comm(void *arg, struct brd_handle *h, size_t n)
{
        const char *want = arg ? arg : proc_comm;
        char comm[16];

        if (read_comm("/proc/thread-self/comm", comm) < 0)
                return 1;
        return strcmp(comm, want) ? 2 : 0;
}

struct start_arg {
        struct brd_fsrv *fs;
        int r;
};

static void *start_named(void *arg)
{
        struct start_arg *a = arg;

        /* The thread that starts the forkserver has a name of its own. */
        (void)prctl(PR_SET_NAME, (unsigned long)"brd-t-starter", 0, 0, 0);
        a->r = brd_fsrv_start(0, &a->fs);
        return NULL;
}

static void test_fork_name_defaults_to_process(void **state)
{
        /* "" is no name either (it left the forkserver thread's). */
        static const char *names[] = { NULL, "brd-t-named", "" };
        static const char *want[] = { NULL, "brd-t-named", NULL };      /* static: see opts.arg */
        struct start_arg a = { 0 };
        struct brd_child *c;
        struct t_leak l;
        pthread_t t;
        size_t i;
        int st;

        t_leak_begin(&l);
        assert_int_equal(read_comm("/proc/self/comm", proc_comm), 0);
        assert_string_not_equal(proc_comm, "brd-fsrv");
        assert_int_equal(pthread_create(&t, NULL, start_named, &a), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(a.r, 0);
        for (i = 0; i < 3; i++) {
                struct brd_spawn_opts o = { .fn = fn_check_comm, .arg = (void *)want[i],
                                            .name = names[i] };

                assert_int_equal(brd_fsrv_spawn(a.fs, &o, &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
                brd_child_free(c);
        }
        brd_fsrv_stop(a.fs);
        t_leak_end(&l);
}

/*
 * The options themselves, and the name they point to, in a segment the
 * child is not handed (which its prelude unmaps, F35): the child still gets
 * its fn, arg, flags and name (it read them after the unmap, and died of
 * SIGSEGV or went unnamed).
 */
static void test_fork_opts_in_unhanded_memory(void **state)
{
        static const char want[] = "brd-t-shmopts";
        struct brd_spawn_opts *o;
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_seg *seg;
        struct t_leak l;
        char *name;
        int st;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("opts", 4096, 0, &seg), 0);
        o = brd_seg_addr(seg);
        name = (char *)(o + 1);
        strcpy(name, want);
        *o = (struct brd_spawn_opts){ .fn = fn_check_comm, .arg = (void *)want, .name = name,
                                      .flags = BRD_SPAWN_NULL_STDIO };
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, o, &c), 0);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        brd_seg_close(seg);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ a late report */
static void test_report_after_caller_returned(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_handle h;
        struct t_leak l;
        int go[2], st;

        t_leak_begin(&l);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        h = tf_fd_handle(go[0]);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        brd__fsrv_set_crash_stage(fs, BRD__STALL_REPORT);
        {
                struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)7,
                                            .handles = &h, .nhandles = 1 };

                /* It took the result from the slot and closed the pipe's read end. */
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        }
        /* Now the child writes the pipe: EPIPE, and a SIGPIPE it must survive. */
        assert_int_equal(write(go[1], "x", 1), 1);
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_false(WIFSIGNALED(st));
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 7);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        close(go[0]);
        close(go[1]);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ fd limit */
/* What a fork-mode child must find: fd 3 + i is the file of want[i] (same
 * device and inode), 0-2 are open (on /dev/null where the parent had them
 * closed), nothing else is open. */
struct fd_want {
        int n;
        bool stdio_null;
        dev_t dev[16];
        ino_t ino[16];
};

static void fd_want_add(struct fd_want *w, int fd)
{
        struct stat st;

        assert_int_equal(fstat(fd, &st), 0);
        w->dev[w->n] = st.st_dev;
        w->ino[w->n] = st.st_ino;
        w->n++;
}

/* Exit code: 0 ok, else the failed check. */
static int fn_fds_are(void *arg, struct brd_handle *h, size_t n)
{
        const struct fd_want *w = arg;
        struct rlimit rl;
        struct stat st;
        int fd;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1;
        for (fd = 0; fd < (int)rl.rlim_cur; fd++) {
                bool open = fcntl(fd, F_GETFD) >= 0;

                if (fd < 3 && (!open || (w->stdio_null &&
                                         (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
                                          st.st_rdev != makedev(1, 3)))))
                        return 2;
                if (fd >= 3 + w->n && open)
                        return 3;
                if (fd < 3 || fd >= 3 + w->n)
                        continue;
                if (!open || fstat(fd, &st) < 0)
                        return 4;
                if (st.st_dev != w->dev[fd - 3] || st.st_ino != w->ino[fd - 3])
                        return 5;
        }
        return 0;
}

/* Exit code: 0 ok, else the failed check.  A forked test process: the
 * limit is the process's own. */
static int spawn_under_fd_limit(void)
{
        char count[] = "count", *argv[] = { (char *)helper_path(), count, NULL };
        struct fd_want w = { .n = 0 };
        struct brd_handle h[4];
        struct brd_fsrv *fs;
        struct brd_child *c = NULL;
        struct rlimit rl;
        siginfo_t si;
        int i, mode, n0, r, st, need = 16 + 5;

        for (i = 0; i < 4; i++)
                h[i] = (struct brd_handle){ .kind = BRD_HANDLE_SEG, .nfds = 4, .fds = { 0, 0, 0, 0 } };
        for (i = 0; i < 16; i++)
                fd_want_add(&w, 0);
        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        n0 = t_fd_count();
        /* The child needs 5 + 16 fds (0-2, 16 kept, its report, a spare).
         * This side (pipe, pidfd) still fits under one less. */
        if (n0 + 4 >= need - 1 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 2;
        for (mode = 0; mode < 2; mode++) {
                struct brd_spawn_opts o = { .fn = mode ? NULL : fn_fds_are, .arg = &w,
                                            .argv = mode ? argv : NULL, .handles = h, .nhandles = 4 };

                rl.rlim_cur = (rlim_t)need - 1;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return 3;
                r = brd_fsrv_spawn(fs, &o, &c);
                if (r != -EMFILE)
                        return 10 + mode * 10 + (r == -EINVAL ? 1 : r == 0 ? 2 : 3);
                if (t_fd_count() != n0)
                        return 14 + mode * 10;
                memset(&si, 0, sizeof(si));
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 || errno != ECHILD)
                        return 15 + mode * 10;  /* a child left, zombie or alive */
                /* One more fd, and it fits: the child has its 16 fds. */
                rl.rlim_cur = (rlim_t)need;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return 4;
                if (brd_fsrv_spawn(fs, &o, &c) < 0)
                        return 16 + mode * 10;
                if (brd_child_wait(c, -1, &st) < 0 || !WIFEXITED(st))
                        return 17 + mode * 10;
                brd_child_free(c);
                /* exec: the helper's exit code is its fd count */
                if (WEXITSTATUS(st) != (mode ? 3 + 16 : 0))
                        return 40 + mode * 10 + (WEXITSTATUS(st) < 10 ? WEXITSTATUS(st) : 9);
        }
        brd_fsrv_stop(fs);
        return 0;
}

static void test_spawn_fd_limit_is_emfile(void **state)
{
        t_run_forked(spawn_under_fd_limit);
}

/* memfd_create at exactly @fd (it must be free), or -1. */
static int memfd_at(int fd)
{
        int m = memfd_create("t", MFD_CLOEXEC), r;

        if (m < 0 || m == fd)
                return m;
        r = dup3(m, fd, O_CLOEXEC);
        close(m);
        return r;
}

/*
 * The kept fds trade places (3 and 4 swapped, 5 stays, 4 kept twice, two
 * from high up) in a process whose fd table is full but for the spawn's
 * own pipe and pidfd: the child still gets every fd where it belongs, and
 * nothing else.  Exit code: 0 ok, else the failed check.
 */
static int spawn_fds_trade_places(void)
{
        const int lim = 64;
        struct fd_want w = { .n = 0 };
        struct brd_handle h[6];
        int src[6], i, st, hi1 = lim - 6, hi2 = lim - 9;
        struct brd_spawn_opts o = { .fn = fn_fds_are, .arg = &w, .handles = h, .nhandles = 6 };
        struct brd_fsrv *fs;
        struct rlimit rl;

        (void)close_range(3, ~0U, 0);   /* the layout below needs 3-5 free */
        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 2;
        rl.rlim_cur = (rlim_t)lim;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 3;
        if (memfd_at(3) != 3 || memfd_at(4) != 4 || memfd_at(5) != 5 ||
            memfd_at(hi1) != hi1 || memfd_at(hi2) != hi2)
                return 5;
        src[0] = 4;
        src[1] = 3;
        src[2] = 5;
        src[3] = hi1;
        src[4] = hi2;
        src[5] = 4;
        for (i = 0; i < 6; i++) {
                h[i] = tf_fd_handle(src[i]);
                fd_want_add(&w, src[i]);
        }
        /* Fill the table but for the 3 fds spawn takes here (pipe, pidfd). */
        while (t_fd_count() < lim - 3)
                if (open("/dev/null", O_RDONLY | O_CLOEXEC) < 0)
                        return 6;
        st = tf_spawn_exit(fs, &o);
        if (st)
                return st == TF_WAIT_FAILED ? 8 : st < 0 ? 7 : 10 + st;
        brd_fsrv_stop(fs);
        return 0;
}

static void test_spawn_fds_trade_places(void **state)
{
        t_run_forked(spawn_fds_trade_places);
}

/*
 * A fork-mode spawn needs two fds here: its report pipe, then the pidfd,
 * which takes the number of the pipe's write end (closed once the child
 * has its copy).  It opened the pidfd first: with two fds to spare, every
 * spawn forked a child, killed it and answered -EMFILE.  With one to
 * spare, -EMFILE and no child.  Exit code: 0 ok, else the failed check.
 */
static int spawn_two_fds_spare(void)
{
        struct fd_want w = { .n = 0 };
        struct brd_spawn_opts o = { .fn = fn_fds_are, .arg = &w };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct rlimit old;
        siginfo_t si;
        int st, n0;

        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        n0 = t_fd_count();
        if (t_fd_limit_spare(2, &old))
                return 3;
        st = tf_spawn_exit(fs, &o);
        if (st)
                return st == TF_WAIT_FAILED ? 6 : st < 0 ? 5 : 10 + st;
        if (t_fd_count() != n0)
                return 7;
        if (t_fd_limit_spare(1, &old))
                return 8;
        if (brd_fsrv_spawn(fs, &o, &c) != -EMFILE)
                return 9;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 || errno != ECHILD)
                return 30;                      /* a child left, zombie or alive */
        brd_fsrv_stop(fs);
        return 0;
}

static void test_spawn_two_fds_spare(void **state)
{
        t_run_forked(spawn_two_fds_spare);
}

/*
 * With stdio closed, brood's own fds take 0-2 (the segment's memfd, the
 * spawn's report pipe): a fork-mode child handed nothing holds none of
 * them, and one handed the segment has it at 3 only; its 0-2 are
 * /dev/null (before, they were left closed, for its first open() to take
 * and its stdio to write into).  Exit code: 0 ok.
 */
static int spawn_closed_stdio(void)
{
        struct fd_want none = { .n = 0, .stdio_null = true }, one = { .n = 0, .stdio_null = true };
        struct brd_spawn_opts o = { .fn = fn_fds_are };
        char count[] = "count", *argv[] = { (char *)helper_path(), count, NULL };
        struct brd_handle h;
        struct brd_fsrv *fs;
        struct brd_seg *seg;
        int i, st;

        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        for (i = 0; i < 3; i++)
                close(i);
        if (brd_seg_create("t", 4096, 0, &seg) < 0 || brd_seg_fd(seg) != 0)
                return 2;       /* the memfd took fd 0 */
        for (i = 0; i < 2; i++) {
                o.arg = i ? &one : &none;
                o.handles = i ? &h : NULL;
                o.nhandles = (size_t)i;
                if (i) {
                        h = tf_fd_handle(brd_seg_fd(seg));
                        fd_want_add(&one, brd_seg_fd(seg));
                }
                st = tf_spawn_exit(fs, &o);
                if (st)
                        return st == TF_WAIT_FAILED ? 4 + i * 10 : st < 0 ? 3 + i * 10 :
                               20 + i * 10 + st;
        }
        /* exec mode too: the helper counts exactly 0-2 open. */
        o = (struct brd_spawn_opts){ .argv = argv };
        if (tf_spawn_exit(fs, &o) != 3)
                return 6;
        brd_seg_close(seg);
        brd_fsrv_stop(fs);
        return 0;
}

static void test_spawn_closed_stdio(void **state)
{
        t_run_forked(spawn_closed_stdio);
}

/*
 * exec mode, a program found on PATH that has no #! line: execvpe() runs it
 * through /bin/sh with a copy of argv on the child's stack, which must hold
 * a long argv too.  Exit code: 0 ok, else the failed check (the process
 * dies by SIGSEGV if the copy overruns the stack).
 */
static int spawn_script_long_argv(void)
{
        enum { N = 40000 };
        char dir[] = "/tmp/brd-t-argv-XXXXXX", path[64], name[] = "brd-t-noshebang", x[] = "x";
        char **argv = calloc(N + 2, sizeof(char *));
        struct brd_spawn_opts o = { .argv = argv };
        struct brd_fsrv *fs;
        struct brd_child *c;
        int fd, i, r = 0, st;

        if (!argv || !mkdtemp(dir))
                return 1;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
        if (fd < 0 || write(fd, "exit 3\n", 7) != 7 || close(fd) < 0 || setenv("PATH", dir, 1) < 0) {
                r = 2;
                goto out;
        }
        argv[0] = name;
        for (i = 1; i <= N; i++)
                argv[i] = x;
        if (brd_fsrv_start(0, &fs) < 0) {
                r = 3;
                goto out;
        }
        if (brd_fsrv_spawn(fs, &o, &c) < 0)
                r = 4;
        else if (brd_child_wait(c, -1, &st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
                r = 5;
        if (r != 4)
                brd_child_free(c);
        brd_fsrv_stop(fs);
out:
        unlink(path);
        rmdir(dir);
        free(argv);
        return r;
}

static void test_exec_script_long_argv(void **state)
{
        t_run_forked(spawn_script_long_argv);
}

/* A thread that calls brd_child_wait() (or brd_child_free()) with a
 * cancellation pending, acted upon at the call's first cancellation point. */
struct cancelled_call {
        struct brd_child *c;
        bool free;
};

static void *cancelled_call_main(void *arg)
{
        struct cancelled_call *cc = arg;
        int st;

        pthread_cancel(pthread_self());
        if (cc->free)
                brd_child_free(cc->c);
        else
                (void)brd_child_wait(cc->c, 0, &st);
        return NULL;
}

/* The child of the next test: 0, the failed step, or 128 + SIGALRM when a
 * call hung (a lock left held by the cancelled thread). */
static int child_calls_cancelled(void)
{
        struct brd_spawn_opts o = { .fn = fn_pause };
        struct cancelled_call cc = { 0 };
        struct brd_fsrv *fs;
        pthread_t t;
        void *res;
        int st;

        alarm(10);
        if (brd_fsrv_start(0, &fs) < 0 || brd_fsrv_spawn(fs, &o, &cc.c) < 0)
                return 1;
        if (pthread_create(&t, NULL, cancelled_call_main, &cc) || pthread_join(t, &res))
                return 2;
        if (res != PTHREAD_CANCELED)
                return 3;               /* a wait of 0 ms polls: it is cancelled there */
        if (brd_child_kill(cc.c, SIGKILL) < 0 || brd_child_wait(cc.c, -1, &st) < 0 ||
            !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
                return 4;
        brd_child_free(cc.c);
        /* free, cancelled: it still reaps its child and unlinks it */
        cc.free = true;
        if (brd_fsrv_spawn(fs, &o, &cc.c) < 0)
                return 5;
        if (pthread_create(&t, NULL, cancelled_call_main, &cc) || pthread_join(t, &res))
                return 6;
        if (res == PTHREAD_CANCELED)
                return 7;
        brd_fsrv_stop(fs);
        return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD ? 0 : 8;
}

/*
 * A thread cancelled in brd_child_wait() or brd_child_free(): no lock of
 * the child is left held (the wait's waitid() was a cancellation point
 * under it, and every later call on the child, and brd_fsrv_stop(), hung),
 * and a cancelled free still reaps and unlinks its child.
 */
static void test_child_calls_cancelled(void **state)
{
        (void)state;
        /* ASan's runtime fails a check of its own (sigaltstack) when it
         * tears a cancelled thread down, whatever the thread ran. */
        if (t_asan())
                skip();
        t_run_forked(child_calls_cancelled);
}

static void test_spawn_einval(void **state)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_handle bad = { .kind = BRD_HANDLE_SEG, .nfds = 5 };
        struct brd_handle neg = { .kind = BRD_HANDLE_SEG, .nfds = 1, .fds = { -1 } };
        struct brd_handle raw = tf_fd_handle(0), closed;
        struct brd_spawn_opts o;
        struct brd_fsrv *fs = NULL;
        struct brd_child *c;
        struct t_leak l;

        assert_int_equal(brd_fsrv_start(1u << 1, &fs), -EINVAL);
        assert_null(fs);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, NULL, &c), -EINVAL);
        o = (struct brd_spawn_opts){ 0 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);        /* neither */
        o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .argv = argv };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);        /* both */
        o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .flags = 1u << 7 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
        o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .handles = &bad, .nhandles = 1 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
        o.handles = &neg;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
        o = (struct brd_spawn_opts){ .argv = argv, .handles = &raw, .nhandles = 1 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);        /* exec needs a known kind */
        o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .nhandles = 1 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
        /* A closed fd: -EBADF, not the report pipe that could take its
         * number (and no child, no fd left: t_leak). */
        t_leak_begin(&l);
        closed = tf_fd_handle(dup(0));
        assert_true(closed.fds[0] >= 0);
        close(closed.fds[0]);
        o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .handles = &closed, .nhandles = 1 };
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EBADF);
        o.fn = NULL;
        o.argv = argv;
        closed.kind = BRD_HANDLE_SEG;
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EBADF);
        /* A malformed handle after it: -EINVAL, every argument checked
         * before any fd (it was -EBADF, the first handle's). */
        {
                struct brd_handle two[2] = { closed, bad };

                o = (struct brd_spawn_opts){ .fn = fn_exit_arg, .handles = two, .nhandles = 2 };
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
                two[1] = neg;
                assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -EINVAL);
        }
        t_leak_end(&l);
        assert_int_equal(brd_child_wait(NULL, 0, NULL), -EINVAL);
        assert_int_equal(brd_child_kill(NULL, 0), -EINVAL);
        brd_child_free(NULL);
        brd_fsrv_stop(NULL);
        brd_fsrv_stop(fs);
}

/*
 * A child traced by another process (gdb -p, strace -p) dies: its pidfd
 * turns readable, but only the tracer may reap it until it lets go.  A wait
 * meanwhile naps between looks (where it spun on the readable pidfd, a
 * whole CPU for as long as the tracer held on), and returns the status
 * once the tracer is gone.  The tracer here holds the zombie 300 ms.
 */
static void test_wait_naps_on_traced_zombie(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_pause };
        struct brd_fsrv *fs;
        struct brd_child *c;
        int64_t cpu0, t0, dt, cpu;
        int ready[2], st, rc;
        pid_t cpid, tr;
        char x;

        (void)state;
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        cpid = brd_child_pid(c);
        tr = t_fork();
        assert_true(tr >= 0);
        if (tr == 0) {
                siginfo_t si;

                close(ready[0]);
                if (ptrace(PTRACE_SEIZE, cpid, NULL, NULL) < 0)
                        _exit(errno == EPERM ? T_EXIT_SKIP : 10);
                if (write(ready[1], "r", 1) != 1)
                        _exit(11);
                memset(&si, 0, sizeof(si));
                if (waitid(P_PID, (id_t)cpid, &si, WEXITED | WNOWAIT | __WALL) < 0)
                        _exit(12);
                /* Hold the zombie, which only we may reap. */
                poll(NULL, 0, 300);
                _exit(si.si_code == CLD_KILLED ? 0 : 13);
        }
        close(ready[1]);
        if (read(ready[0], &x, 1) != 1) {
                close(ready[0]);
                rc = t_wait_child(tr);
                brd_child_free(c);
                brd_fsrv_stop(fs);
                if (rc == T_EXIT_SKIP)
                        skip();
                fail_msg("tracer: %d", rc);
        }
        close(ready[0]);
        assert_int_equal(brd_child_kill(c, SIGKILL), 0);
        cpu0 = t_cpu_ms();
        t0 = t_now_ms();
        assert_int_equal(brd_child_wait(c, 10000, &st), 0);
        dt = t_now_ms() - t0;
        cpu = t_cpu_ms() - cpu0;
        assert_int_equal(t_wait_child(tr), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        if (dt < 200 || cpu > dt / 4)
                print_message("waited %lld ms, %lld ms of CPU\n", (long long)dt, (long long)cpu);
        assert_true(dt >= 200);         /* the tracer held it: the case was made */
        assert_true(cpu <= dt / 4);     /* spinning: about dt */
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_no_children();
}

/*
 * RELIABILITY E32: the library installs no signal handler and changes no
 * disposition or mask: segments (named too), a ring used both ways, a pool
 * and an array, a forkserver that spawns in both modes, waits, stops.
 * (The SIGBUS guard is a handler only on request, brd_seg_sigbus_guard().)
 */
static void test_no_signal_disposition_changed(void **state)
{
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts of = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)4 };
        struct brd_spawn_opts oe = { .argv = argv };
        struct sigaction before[NSIG], after;
        sigset_t mask0, mask1;
        struct brd_handle hp, hc;
        struct brd_ring *p, *c;
        struct brd_seg *s1, *s2;
        struct brd_pool *pool;
        struct brd_array *a;
        struct brd_fsrv *fs;
        struct brd_child *ch;
        char b[8];
        int sig, st;

        (void)state;
        for (sig = 1; sig < NSIG; sig++)
                if (sigaction(sig, NULL, &before[sig]) < 0)
                        before[sig].sa_flags = -1;      /* not a signal one may query */
        assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &mask0), 0);

        assert_int_equal(brd_seg_create("sig", 4096, 0, &s1), 0);
        assert_int_equal(brd_seg_create("sig", 4096, BRD_SEG_NAMED, &s2), 0);
        assert_int_equal(brd_ring_create(4096, 0, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hp, &p), 0);
        assert_int_equal(brd_ring_attach(&hc, &c), 0);
        assert_int_equal(brd_ring_send(p, "x", 1, 0), 0);
        assert_int_equal(brd_ring_recv(c, b, sizeof(b), 0), 1);
        assert_int_equal(brd_ring_recv(c, b, sizeof(b), 10), -ETIMEDOUT);
        brd_ring_close(c);
        assert_int_equal(brd_ring_send(p, "x", 1, 0), -EPIPE);  /* no SIGPIPE either */
        brd_ring_close(p);
        assert_int_equal(brd_pool_create(1u << 20, 0, &pool), 0);
        assert_int_equal(brd_array_create(pool, 8, 8, 0, 0, &a), 0);
        assert_int_equal(brd_array_destroy(a), 0);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        assert_int_equal(brd_fsrv_spawn(fs, &of, &ch), 0);
        assert_int_equal(brd_child_wait(ch, 10000, &st), 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 4);
        brd_child_free(ch);
        assert_int_equal(brd_fsrv_spawn(fs, &oe, &ch), 0);
        assert_int_equal(brd_child_stop(ch, 1000, &st), 0);
        brd_child_free(ch);
        brd_fsrv_stop(fs);
        brd_pool_close(pool);
        brd_seg_close(s2);
        brd_seg_close(s1);
        brd_handle_close(&hp);
        brd_handle_close(&hc);

        assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &mask1), 0);
        for (sig = 1; sig < NSIG; sig++) {
                if (before[sig].sa_flags == -1)
                        continue;
                assert_int_equal(sigaction(sig, NULL, &after), 0);
                if (after.sa_handler != before[sig].sa_handler ||
                    after.sa_flags != before[sig].sa_flags)
                        fail_msg("signal %d: its action changed", sig);
                if (sigismember(&mask0, sig) != sigismember(&mask1, sig))
                        fail_msg("signal %d: the thread's mask changed", sig);
        }
        t_no_children();
}

/* ------------------------------------------------------------ confinement */
/* Exit code: no_new_privs * 10 + the seccomp mode. */
static int fn_confinement(void *arg, struct brd_handle *h, size_t n)
{
        return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) * 10 + prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
}

/* Does /proc/self/status count seccomp filters (Linux 5.9)?  Read whole:
 * with many groups the line is pages in. */
static bool status_has_filter_count(void)
{
        static char buf[1 << 20];
        size_t len = 0;
        ssize_t n;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)n;
        close(fd);
        buf[len] = 0;
        return strstr(buf, "\nSeccomp_filters:") != NULL;
}

/*
 * Children are the forkserver thread's, which is confined as the thread
 * that started it was.  A caller that set no_new_privs since has it carried
 * into its children; one that installed a seccomp filter since (in its own
 * thread) is refused (-EPERM): its child would have run unfiltered.  A
 * forkserver started after the filter makes filtered children, and refuses
 * a caller that has added a second filter since.  A filter installed with
 * TSYNC reaches the forkserver threads too: they spawn again.  Exit code:
 * 0 ok.
 */
static int spawn_confinement(void)
{
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = { .len = 1, .filter = &allow };
        struct brd_spawn_opts o = { .fn = fn_confinement };
        struct brd_fsrv *fs, *fs2;
        struct brd_child *c;
        int r;

        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
                return T_EXIT_SKIP;     /* confined already (a container's profile) */
        if (brd_fsrv_start(0, &fs) < 0)
                return 1;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return 2;
        if (tf_spawn_exit(fs, &o) != 10)
                return 4;               /* no_new_privs, no filter */
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return T_EXIT_SKIP;     /* no seccomp here */
        c = NULL;
        if (brd_fsrv_spawn(fs, &o, &c) != -EPERM || c)
                return 5;
        if (brd_fsrv_start(0, &fs2) < 0)
                return 6;
        if (tf_spawn_exit(fs2, &o) != 10 + SECCOMP_MODE_FILTER)
                return 8;
        /* A second filter here, which the second forkserver thread lacks:
         * refused too, where the kernel counts filters (Linux 5.9). */
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return 9;
        c = NULL;
        r = brd_fsrv_spawn(fs2, &o, &c);
        if (status_has_filter_count() ? r != -EPERM || c : r < 0)
                return 11;
        if (c) {
                brd_child_wait(c, -1, &r);
                brd_child_free(c);
        }
        /* A filter given every thread (TSYNC) reaches both forkserver
         * threads: both spawn again, their children filtered. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
                return 12;
        if (tf_spawn_exit(fs, &o) != 10 + SECCOMP_MODE_FILTER ||
            tf_spawn_exit(fs2, &o) != 10 + SECCOMP_MODE_FILTER)
                return 13;
        brd_fsrv_stop(fs2);
        brd_fsrv_stop(fs);
        return 0;
}

/* The same with 3000 supplementary groups, whose Groups line puts the
 * Seccomp lines pages into the status file: the second filter was
 * unknown there (a page was read), and its spawn passed.  As root only. */
static int spawn_confinement_many_groups(void)
{
        return t_set_many_groups() < 0 ? T_EXIT_SKIP : spawn_confinement();
}

static void test_spawn_confinement(void **state)
{
        t_run_forked(spawn_confinement);
        t_run_forked(spawn_confinement_many_groups);
}

/* A thread that unshares @flag (CLONE_FILES, CLONE_FS, or 0), then spawns
 * through the forkserver: its answer (the child's status when it ran). */
struct unshared_spawn {
        struct brd_fsrv *fs;
        int flag;
        int ret;
};

static void *unshared_spawn_main(void *arg)
{
        struct unshared_spawn *u = arg;
        struct brd_spawn_opts o = { .fn = fn_exit_arg, .arg = (void *)(intptr_t)7 };

        u->ret = u->flag && unshare(u->flag) < 0 ? -1000 : tf_spawn_exit(u->fs, &o);
        return NULL;
}

/*
 * A caller whose thread has an fd table or fs of its own is refused
 * (-EPERM): the spawn's fd numbers (its handles, the report pipe) are the
 * caller's, and the child copies the forkserver thread's table and cwd.
 * It spawned before, handing the child another table's fds and closing a
 * number of the thread's table, and its wait for the report could hang.
 */
static void test_spawn_refuses_unshared_tables(void **state)
{
        static const int flags[] = { 0, CLONE_FILES, CLONE_FS };
        struct unshared_spawn u;
        struct brd_fsrv *fs;
        pthread_t t;

        (void)state;
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                u = (struct unshared_spawn){ .fs = fs, .flag = flags[i] };
                assert_int_equal(pthread_create(&t, NULL, unshared_spawn_main, &u), 0);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(u.ret, flags[i] ? -EPERM : 7);
        }
        brd_fsrv_stop(fs);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fork_status_once),
                cmocka_unit_test(test_fork_wait_timeouts),
                cmocka_unit_test_setup_teardown(test_fork_status_kept_until_wait, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_fork_fd_hygiene),
                cmocka_unit_test_setup_teardown(test_fork_fds_without_close_range, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_library_fds_are_cloexec),
                cmocka_unit_test(test_fork_seg_handle),
                cmocka_unit_test(test_inherited_objects_never_close_handles),
                cmocka_unit_test(test_fork_50_children),
                cmocka_unit_test(test_exec_missing_program),
                cmocka_unit_test(test_child_dies_at_each_stage),
                cmocka_unit_test_setup_teardown(test_host_steals_status, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_forked_child_gets_enotsup, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fork_without_handlers_gets_enotsup, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_spawn_einval),
                cmocka_unit_test_setup_teardown(test_child_calls_cancelled, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_exec_spawn_keeps_inherited_objects),
                cmocka_unit_test(test_fork_name_defaults_to_process),
                cmocka_unit_test(test_fork_opts_in_unhanded_memory),
                cmocka_unit_test(test_report_after_caller_returned),
                cmocka_unit_test_setup_teardown(test_spawn_fd_limit_is_emfile, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_spawn_fds_trade_places, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_spawn_two_fds_spare, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_spawn_closed_stdio, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_spawn_confinement, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_spawn_refuses_unshared_tables, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_exec_script_long_argv, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_unhanded_memory_gone),
                cmocka_unit_test(test_unhanded_memory_gone_while_mapping),
                cmocka_unit_test(test_child_keeps_no_report_page),
                cmocka_unit_test_setup_teardown(test_no_signal_disposition_changed, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_wait_naps_on_traced_zombie, t_leak_setup, t_leak_teardown),
        };

        return cmocka_run_group_tests_name("fork-spawn", tests, NULL, NULL);
}
