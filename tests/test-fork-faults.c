/* SPDX-License-Identifier: MIT */
/*
 * Forkserver fault injection (RELIABILITY C19, C24): every resource call of
 * brd_fsrv_start() and brd_fsrv_spawn() (fork and exec mode, with and
 * without handles) fails in turn, the k-th call for every k, until a run
 * makes no k-th call.  Each run must either succeed or return exactly the
 * injected -errno, and leave nothing: fd count, threads and children as
 * before.
 *
 * Linked with -Wl,--wrap for: calloc, malloc, mmap(64), pipe2, pidfd_open, fork,
 * clone, pthread_create, and open64 (to hold a child in its prelude; see
 * tests/meson.build).  Only the library's own
 * calls are wrapped (the static archive is linked into this program); the
 * counter counts calls from any thread (the forkserver makes fork, clone and
 * pidfd_open) while armed.
 */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <brood/shm.h>
#include "fork-util.h"
#include "internal/brd-fork.h"

static volatile int armed;
static int fail_at;             /* 1-based call to fail */
static int ncalls;              /* calls counted while armed (atomic) */
static int injected;            /* the errno injected, 0 if none */
static const char *injected_in;

/* true when this call is the one to fail; sets errno = e */
static int inject(const char *what, int e)
{
        if (!armed || __atomic_add_fetch(&ncalls, 1, __ATOMIC_SEQ_CST) != fail_at)
                return 0;
        injected = e;
        injected_in = what;
        errno = e;
        return 1;
}

void *__real_calloc(size_t n, size_t sz);
void *__real_malloc(size_t sz);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_pipe2(int p[2], int flags);
int __real_pidfd_open(pid_t pid, unsigned int flags);
pid_t __real_fork(void);
int __real_clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...);

void *__wrap_calloc(size_t n, size_t sz);
void *__wrap_malloc(size_t sz);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_pipe2(int p[2], int flags);
int __wrap_pidfd_open(pid_t pid, unsigned int flags);
pid_t __wrap_fork(void);
int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);
int __wrap_clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

void *__wrap_calloc(size_t n, size_t sz)
{
        return inject("calloc", ENOMEM) ? NULL : __real_calloc(n, sz);
}

/* Set: the next malloc() of cut_size bytes first makes cut_envp[cut_at]
 * NULL, as another thread changing a spawn's envp after it was counted. */
static char **cut_envp;
static size_t cut_at, cut_size;

void *__wrap_malloc(size_t sz)
{
        if (cut_envp && sz == cut_size) {
                __atomic_store_n(&cut_envp[cut_at], NULL, __ATOMIC_SEQ_CST);
                cut_envp = NULL;
        }
        return inject("malloc", ENOMEM) ? NULL : __real_malloc(sz);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        return inject("mmap", ENOMEM) ? MAP_FAILED : __real_mmap(addr, len, prot, flags, fd, off);
}

/* The library is built with 64-bit off_t: its mmap calls are mmap64. */
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
        return inject("mmap", ENOMEM) ? MAP_FAILED : __real_mmap64(addr, len, prot, flags, fd, off);
}

/* Set: the next pipe2() call says so on stall_in, then waits on stall_out
 * (eventfds, which are not wrapped). */
static int stall_pipe2;
static int stall_in = -1, stall_out = -1;

/* Nonzero: a child of this pid (a forkserver child in its prelude) that
 * opens /dev/null says so in *stall_null_seen (a shared page: the prelude
 * has closed every fd it was not handed), then stays there until killed. */
static pid_t stall_null_of;
static int *stall_null_seen;

/* Non-NULL: an open of a path that contains it fails with open_fail_errno. */
static const char *open_fail_sub;
static int open_fail_errno;

int __wrap_open64(const char *path, int flags, ...)
{
        pid_t of = __atomic_load_n(&stall_null_of, __ATOMIC_SEQ_CST);
        const char *sub = __atomic_load_n(&open_fail_sub, __ATOMIC_SEQ_CST);
        mode_t mode = 0;
        va_list ap;

        if (sub && strstr(path, sub)) {
                errno = open_fail_errno;
                return -1;
        }
        if (of && getpid() != of && !strcmp(path, "/dev/null")) {
                __atomic_store_n(stall_null_seen, 1, __ATOMIC_SEQ_CST);
                for (;;)
                        pause();
        }
        if (flags & (O_CREAT | O_TMPFILE)) {
                va_start(ap, flags);
                mode = va_arg(ap, mode_t);
                va_end(ap);
        }
        return __real_open64(path, flags, mode);
}

/* Set to an fd: the next fcntl(fd, F_GETFD) (a spawn's look at its
 * handles' fds) says so on stall_in, then waits on stall_out. */
static int stall_getfd = -1;

int __real_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...)
{
        uint64_t one = 1;
        int want = fd;
        va_list ap;
        long arg;

        va_start(ap, cmd);
        arg = va_arg(ap, long);
        va_end(ap);
        if (cmd == F_GETFD && fd >= 0 &&
            __atomic_compare_exchange_n(&stall_getfd, &want, -1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
                if (write(stall_in, &one, sizeof(one)) != sizeof(one) ||
                    read(stall_out, &one, sizeof(one)) != sizeof(one))
                        abort();
        }
        return __real_fcntl64(fd, cmd, arg);
}

int __wrap_pipe2(int p[2], int flags)
{
        uint64_t one = 1;

        if (__atomic_exchange_n(&stall_pipe2, 0, __ATOMIC_SEQ_CST)) {
                if (write(stall_in, &one, sizeof(one)) != sizeof(one) ||
                    read(stall_out, &one, sizeof(one)) != sizeof(one))
                        abort();
        }
        return inject("pipe2", EMFILE) ? -1 : __real_pipe2(p, flags);
}

/* Set: the next pidfd_open() (the forkserver's, right after its fork)
 * first hands the pid to the "host" thread of test_spawn_pid_recycled() on
 * recycle_req and waits for its answer on recycle_rep (eventfds). */
static int recycle_next;
static int recycle_req = -1, recycle_rep = -1;
/* Non-zero: every pidfd_open() fails with this errno (a seccomp filter's
 * EPERM, an LSM's EACCES, ENOSYS on Linux < 5.3). */
static int pidfd_refuse;

int __wrap_pidfd_open(pid_t pid, unsigned int flags)
{
        uint64_t v = (uint64_t)pid;

        if (__atomic_exchange_n(&recycle_next, 0, __ATOMIC_SEQ_CST)) {
                if (write(recycle_req, &v, sizeof(v)) != sizeof(v) ||
                    read(recycle_rep, &v, sizeof(v)) != sizeof(v))
                        abort();
        }
        if (pidfd_refuse) {
                errno = pidfd_refuse;
                return -1;
        }
        return inject("pidfd_open", EMFILE) ? -1 : __real_pidfd_open(pid, flags);
}

/* Set: every SIGKILL is refused (EPERM), as an LSM may refuse it. */
static int kill_refuse;

int __wrap_kill(pid_t pid, int sig)
{
        if (sig == SIGKILL && __atomic_load_n(&kill_refuse, __ATOMIC_SEQ_CST)) {
                errno = EPERM;
                return -1;
        }
        return __real_kill(pid, sig);
}

pid_t __wrap_fork(void)
{
        return inject("fork", EAGAIN) ? -1 : __real_fork();
}

/* brood calls clone(fn, stack, flags, arg, &pidfd): one variadic argument. */
int __wrap_clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
        va_list ap;
        int *pidfd;

        va_start(ap, arg);
        pidfd = va_arg(ap, int *);
        va_end(ap);
        if ((flags & CLONE_PIDFD) && __atomic_load_n(&pidfd_refuse, __ATOMIC_SEQ_CST)) {
                errno = pidfd_refuse == ENOSYS ? EINVAL : pidfd_refuse;   /* as Linux < 5.2 */
                return -1;
        }
        return inject("clone", ENOMEM) ? -1 : __real_clone(fn, stack, flags, arg, pidfd);
}

/* >= 0: the next thread created waits for a byte on this fd before it
 * runs its function (one thread, then it is -1 again). */
static int thread_gate = -1;
static struct {
        void *(*fn)(void *);
        void *arg;
        int fd;
} gated;

static void *gated_main(void *unused)
{
        char c;

        while (read(gated.fd, &c, 1) < 0 && errno == EINTR)
                ;
        return gated.fn(gated.arg);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
        if (inject("pthread_create", EAGAIN))
                return EAGAIN;
        if (thread_gate >= 0) {
                gated.fn = fn;
                gated.arg = arg;
                gated.fd = thread_gate;
                thread_gate = -1;
                return __real_pthread_create(t, a, gated_main, NULL);
        }
        return __real_pthread_create(t, a, fn, arg);
}

static void arm(int k)
{
        __atomic_store_n(&ncalls, 0, __ATOMIC_SEQ_CST);
        fail_at = k;
        injected = 0;
        injected_in = NULL;
        armed = 1;
}

static void disarm(void)
{
        armed = 0;
}

/* ------------------------------------------------------------ start */
static void test_start_faults(void **state)
{
        int k, r, hits = 0;
        struct brd_fsrv *fs;
        struct t_leak l;

        /* This program runs no thread of its own: each forkserver stopped,
         * the main thread is the only one left. */
        assert_int_equal(t_thread_count_is(1), 1);
        for (k = 1; k < 100; k++) {
                fs = NULL;
                t_leak_begin(&l);
                arm(k);
                r = brd_fsrv_start(0, &fs);
                disarm();
                if (!injected) {
                        assert_int_equal(r, 0);         /* no k-th call: done */
                        brd_fsrv_stop(fs);
                        break;
                }
                hits++;
                print_message("  start k=%d: %s -> %d\n", k, injected_in, r);
                if (r != 0 && r != -injected)
                        fail_msg("k=%d: %s failed with %d, start returned %d", k, injected_in, injected, r);
                if (r == 0)
                        brd_fsrv_stop(fs);
                else
                        assert_null(fs);
                t_leak_end(&l);
                assert_int_equal(t_thread_count_is(1), 1);
        }
        print_message("brd_fsrv_start: %d injected calls\n", hits);
        assert_true(hits >= 4);         /* calloc, 2 x mmap, pthread_create */
}

/* ------------------------------------------------------------ spawn */
static int fn_exit7(void *arg, struct brd_handle *h, size_t n)
{
        return n == (size_t)(intptr_t)arg ? 7 : 1;
}

enum mode { FORK, FORK_HANDLES, EXEC, EXEC_HANDLES };

/*
 * Every spawn that succeeds, injected failure or not, must have done all
 * its work: the fork-mode child checks how many handles it got (exit 7);
 * the exec'd helper checks that it holds exactly stdio (exit code 3, its
 * fd count), or that the two handles passed attach (exit 0).
 */
static int spawn_faults(enum mode m)
{
        const char *helper = getenv("BRD_HELPER_FDCOUNT");
        char *argv_count[] = { (char *)helper, "count", NULL };
        char *argv_segs[] = { (char *)helper, "segs-env", "2", "0", NULL };
        struct brd_handle h[2];
        struct brd_spawn_opts o = { 0 };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_seg *seg;
        struct t_leak l;
        int k, r, st, hits = 0, expect;

        assert_non_null(helper);
        assert_int_equal(brd_seg_create("faults", 4096, 0, &seg), 0);
        assert_int_equal(brd_seg_export(seg, &h[0]), 0);
        assert_int_equal(brd_seg_export(seg, &h[1]), 0);
        assert_int_equal(t_thread_count_is(1), 1);     /* as in test_start_faults() */
        if (m == FORK || m == FORK_HANDLES) {
                o.fn = fn_exit7;
                o.arg = (void *)(intptr_t)(m == FORK_HANDLES ? 2 : 0);
                expect = 7;
        } else {
                o.argv = m == EXEC ? argv_count : argv_segs;
                expect = m == EXEC ? 3 : 0;
        }
        if (m == FORK_HANDLES || m == EXEC_HANDLES) {
                o.handles = h;
                o.nhandles = 2;
        }
        for (k = 1; k < 100; k++) {
                assert_int_equal(brd_fsrv_start(0, &fs), 0);
                t_leak_begin(&l);
                c = NULL;
                arm(k);
                r = brd_fsrv_spawn(fs, &o, &c);
                disarm();
                if (r != 0 && (!injected || r != -injected))
                        fail_msg("mode %d k=%d: %s failed with %d, spawn returned %d",
                                 m, k, injected ? injected_in : "nothing", injected, r);
                if (r == 0) {
                        assert_non_null(c);
                        assert_int_equal(brd_child_wait(c, -1, &st), 0);
                        assert_true(WIFEXITED(st));
                        if (WEXITSTATUS(st) != expect)
                                fail_msg("mode %d k=%d: the child exited %d after %s",
                                         m, k, WEXITSTATUS(st), injected ? injected_in : "nothing");
                        brd_child_free(c);
                } else {
                        assert_null(c);                 /* untouched */
                        t_no_children();               /* reaped at once, before stop */
                }
                t_leak_end(&l);
                brd_fsrv_stop(fs);
                assert_int_equal(t_thread_count_is(1), 1);
                if (!injected)
                        break;                          /* no k-th call */
                hits++;
        }
        brd_handle_close(&h[0]);
        brd_handle_close(&h[1]);
        brd_seg_close(seg);
        return hits;
}

static void test_spawn_fork_faults(void **state)
{
        int n = spawn_faults(FORK);

        print_message("spawn fork: %d injected calls\n", n);
        assert_true(n >= 3);            /* calloc (child), pipe2, fork, pidfd_open */
}

/*
 * pidfd_open() (fork mode) or clone(CLONE_PIDFD) (exec mode) refused, not
 * for want of fds or memory: a spawn answers -ENOSYS, its child (if any)
 * reaped, and the forkserver spawns again once pidfds can be had.  It
 * answered the refusal's errno before, -EPERM among them, which spawn
 * documents as the caller's seccomp filters.
 */
static void test_spawn_pidfd_refused(void **state)
{
        static const int errs[] = { EPERM, EACCES, ENOSYS };
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts fork_o = { .fn = fn_exit7 }, exec_o = { .argv = argv };
        const struct brd_spawn_opts *os[] = { &fork_o, &exec_o };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int st;

        (void)state;
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        t_leak_begin(&l);
        for (size_t m = 0; m < 2; m++) {
                for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
                        c = NULL;
                        __atomic_store_n(&pidfd_refuse, errs[i], __ATOMIC_SEQ_CST);
                        assert_int_equal(brd_fsrv_spawn(fs, os[m], &c), -ENOSYS);
                        __atomic_store_n(&pidfd_refuse, 0, __ATOMIC_SEQ_CST);
                        assert_null(c);
                        t_no_children();
                }
                assert_int_equal(brd_fsrv_spawn(fs, os[m], &c), 0);
                assert_int_equal(brd_child_wait(c, -1, &st), 0);
                assert_true(WIFEXITED(st) && WEXITSTATUS(st) == (m ? 0 : 7));
                brd_child_free(c);
        }
        t_leak_end(&l);
        brd_fsrv_stop(fs);
}

/* Non-zero: waitpid() answers as for a child that cannot be reaped yet
 * (a tracer holds it): 0 at once with WNOHANG.  A wait without WNOHANG
 * would last as long as the tracer: it is counted (and then made, so that
 * nothing hangs). */
static int waitpid_hold, waitpid_unbounded;

pid_t __real_waitpid(pid_t pid, int *st, int opts);
pid_t __wrap_waitpid(pid_t pid, int *st, int opts);
pid_t __wrap_waitpid(pid_t pid, int *st, int opts)
{
        if (__atomic_load_n(&waitpid_hold, __ATOMIC_SEQ_CST)) {
                if (opts & WNOHANG)
                        return 0;
                __atomic_add_fetch(&waitpid_unbounded, 1, __ATOMIC_SEQ_CST);
        }
        return __real_waitpid(pid, st, opts);
}

/*
 * pidfd_open() refused (out of fds) for a child that, once SIGKILLed,
 * cannot be reaped (a tracer that does not reap it): the spawn answers
 * within BRD_FSRV_DYING_MS and leaves the child.  The forkserver thread
 * waited for it without a bound, and so did the spawn, every spawn behind
 * it and the stop: here that wait is counted.
 */
/* Ends only by a signal: the spawn's SIGKILL, not an exit of its own that
 * could come first (the fork-mode child may have begun fn by then). */
static __attribute__((noreturn)) int fn_wait_kill(void *arg, struct brd_handle *h, size_t n)
{
        for (;;)
                pause();
}

static void test_spawn_pidfd_refused_child_unreapable(void **state)
{
        struct brd_spawn_opts o = { .fn = fn_wait_kill };
        struct brd_fsrv *fs;
        struct brd_child *c = NULL;
        int64_t t0, dt;
        pid_t pid;
        int st, r;

        (void)state;
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        brd__fsrv_set_dying_ms(fs, 200);
        __atomic_store_n(&waitpid_hold, 1, __ATOMIC_SEQ_CST);
        __atomic_store_n(&pidfd_refuse, ENFILE, __ATOMIC_SEQ_CST);
        t0 = t_now_ms();
        r = brd_fsrv_spawn(fs, &o, &c);
        dt = t_now_ms() - t0;
        __atomic_store_n(&pidfd_refuse, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&waitpid_hold, 0, __ATOMIC_SEQ_CST);
        /* Left: ours to reap now, killed. */
        pid = waitpid(-1, &st, __WALL);
        assert_int_equal(__atomic_load_n(&waitpid_unbounded, __ATOMIC_SEQ_CST), 0);
        assert_int_equal(r, -ENFILE);
        assert_null(c);
        assert_true(pid > 0);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        if (dt >= 5000)
                fail_msg("the spawn waited %lld ms for a child it could not reap", (long long)dt);
        t_no_children();
        brd_fsrv_stop(fs);
}

/* Says its pid in the shared page @arg, then waits for the test's kill. */
static __attribute__((noreturn)) int fn_say_pid_and_wait(void *arg, struct brd_handle *h,
                                                          size_t n)
{
        __atomic_store_n((volatile pid_t *)arg, getpid(), __ATOMIC_SEQ_CST);
        for (;;)
                pause();
}

/*
 * pidfd_open() refused and the SIGKILL of the child refused too (an LSM):
 * the spawn answers at once and the child is left, as a stop leaves one
 * it cannot kill.  The forkserver thread waited for it, so the spawn (and
 * every other) took as long as the child's fn: here for ever.
 */
static void test_spawn_pidfd_and_kill_refused(void **state)
{
        volatile pid_t *pid = t_shared_page();
        struct brd_spawn_opts o = { .fn = fn_say_pid_and_wait, .arg = (void *)pid };
        struct brd_fsrv *fs;
        struct brd_child *c = NULL;
        int st;

        (void)state;
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        __atomic_store_n(&pidfd_refuse, EPERM, __ATOMIC_SEQ_CST);
        __atomic_store_n(&kill_refuse, 1, __ATOMIC_SEQ_CST);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), -ENOSYS);
        __atomic_store_n(&kill_refuse, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&pidfd_refuse, 0, __ATOMIC_SEQ_CST);
        assert_null(c);
        /* Alive and running its fn: the spawn did not wait for its end. */
        T_UNTIL(__atomic_load_n(pid, __ATOMIC_SEQ_CST) != 0);
        assert_int_equal(waitpid(*pid, &st, WNOHANG), 0);
        assert_int_equal(kill(*pid, SIGKILL), 0);
        assert_int_equal(waitpid(*pid, &st, 0), *pid);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        t_no_children();
        brd_fsrv_stop(fs);
        t_shared_page_free((void *)pid);
}

static void test_spawn_fork_handles_faults(void **state)
{
        int n = spawn_faults(FORK_HANDLES);

        print_message("spawn fork + handles: %d injected calls\n", n);
        assert_true(n >= 5);
}

static void test_spawn_exec_faults(void **state)
{
        int n = spawn_faults(EXEC);

        print_message("spawn exec: %d injected calls\n", n);
        assert_true(n >= 3);            /* malloc (env), calloc (child), pipe2, clone */
}

static void test_spawn_exec_handles_faults(void **state)
{
        int n = spawn_faults(EXEC_HANDLES);

        print_message("spawn exec + handles: %d injected calls\n", n);
        assert_true(n >= 6);
}

/* ------------------------------------------------------------ spawn vs stop */
struct racer {
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct brd_handle h;    /* passed when nh is 1 */
        size_t nh;
        int r;
};

static int fn_zero(void *arg, struct brd_handle *h, size_t n)
{
        return 0;
}

static void *spawn_racer(void *arg)
{
        struct racer *x = arg;
        struct brd_spawn_opts o = { .fn = fn_zero, .handles = &x->h, .nhandles = x->nh };

        x->r = brd_fsrv_spawn(x->fs, &o, &x->c);
        return NULL;
}

/*
 * A process that takes @tid (clone3's set_tid: root over our pid
 * namespace) and waits for *@ret_hold's other end to close; -1 where none
 * could be made.
 */
static pid_t take_tid(pid_t tid, int ret_hold[2])
{
        struct clone_args ca = { .exit_signal = SIGCHLD, .set_tid = (uintptr_t)&tid,
                                 .set_tid_size = 1 };
        long c;

        if (pipe2(ret_hold, O_CLOEXEC) < 0)
                return -1;
        c = syscall(SYS_clone3, &ca, sizeof(ca));
        if (c == 0) {
                char b;

                close(ret_hold[1]);
                while (read(ret_hold[0], &b, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        close(ret_hold[0]);
        if (c < 0)
                close(ret_hold[1]);
        return (pid_t)c;
}

/*
 * A spawn of @x held up where *@arm = @val makes a wrapper stop it (it says
 * so on stall_in, then waits on stall_out), while stop runs to its end: it
 * holds fs by then (its reference counted), fs stays valid for it (ASan
 * builds see any use after free), and it fails with -ESHUTDOWN.  With
 * @reuse_tid, another process takes the joined thread's tid meanwhile;
 * false is returned where none could (not root).
 */
static bool spawn_stalled_across_stop(struct racer *x, int *arm, int val, bool reuse_tid)
{
        pid_t other = -1;
        int hold[2], st;
        pthread_t t;
        uint64_t v = 1;

        stall_in = eventfd(0, EFD_CLOEXEC);
        stall_out = eventfd(0, EFD_CLOEXEC);
        assert_true(stall_in >= 0 && stall_out >= 0);
        assert_int_equal(brd_fsrv_start(0, &x->fs), 0);
        __atomic_store_n(arm, val, __ATOMIC_SEQ_CST);
        assert_int_equal(pthread_create(&t, NULL, spawn_racer, x), 0);
        assert_int_equal(read(stall_in, &v, sizeof(v)), sizeof(v));    /* inside spawn */
        assert_int_equal(AO_load(&x->fs->refs), 2);
        brd_fsrv_stop(x->fs);
        if (reuse_tid)
                other = take_tid((pid_t)AO_int_load(&x->fs->tid), hold);
        assert_int_equal(write(stall_out, &v, sizeof(v)), sizeof(v));
        assert_int_equal(pthread_join(t, NULL), 0);
        if (other > 0) {
                close(hold[1]);
                assert_int_equal(waitpid(other, &st, 0), other);
        }
        assert_int_equal(x->r, -ESHUTDOWN);
        close(stall_in);
        close(stall_out);
        stall_in = stall_out = -1;
        return !reuse_tid || other > 0;
}

/* Held up in its pipe2(), before it queued anything. */
static void test_spawn_racing_stop(void **state)
{
        struct racer x = { .r = 1 };
        struct t_leak l;

        t_leak_begin(&l);
        spawn_stalled_across_stop(&x, &stall_pipe2, 1, false);
        t_leak_end(&l);
}

/*
 * Held up in its look at its handles' fds (a system call per fd, before
 * any use of fs).  Before, it took its reference after those looks and a
 * read of fs: the stop freed fs, and the spawn's unref freed it again
 * (ASan: a use after free; the thread's stack unmapped twice).
 */
static void test_spawn_holds_fsrv_from_entry(void **state)
{
        struct racer x = { .r = 1, .nh = 1 };
        struct brd_seg *seg;
        struct t_leak l;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("held", 4096, 0, &seg), 0);
        assert_int_equal(brd_seg_export(seg, &x.h), 0);
        spawn_stalled_across_stop(&x, &stall_getfd, x.h.fds[0], false);
        brd_handle_close(&x.h);
        brd_seg_close(seg);
        t_leak_end(&l);
}

/*
 * Held up before its looks at the forkserver thread, while a stop ends the
 * thread and another process takes its tid: -ESHUTDOWN.  It was -EPERM,
 * "your fd table is not the thread's", as kcmp() compared the caller with
 * that process (or, in the stop, with the exited thread, which has none).
 */
static void test_spawn_after_stop_thread_gone(void **state)
{
        struct racer x = { .r = 1, .nh = 1 };
        struct brd_seg *seg;
        struct t_leak l;
        bool shown;

        t_leak_begin(&l);
        assert_int_equal(brd_seg_create("gone", 4096, 0, &seg), 0);
        assert_int_equal(brd_seg_export(seg, &x.h), 0);
        shown = spawn_stalled_across_stop(&x, &stall_getfd, x.h.fds[0], true);
        brd_handle_close(&x.h);
        brd_seg_close(seg);
        t_leak_end(&l);
        if (!shown)
                skip();
}

/*
 * An exec spawn's envp read once: an entry another thread makes NULL after
 * the spawn counted them (here, as it allocates its copy) ends the copy.
 * Before, the NULL was read again and dereferenced (SIGSEGV).
 */
static void test_spawn_envp_changed_meanwhile(void **state)
{
        const char *helper = getenv("BRD_HELPER_FDCOUNT");
        char *argv[] = { (char *)helper, "count", NULL };
        char *env[] = { "A=1", "B=2", "C=3", "D=4", "E=5", NULL };
        struct brd_spawn_opts o = { .argv = argv, .envp = env };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int st;

        (void)state;
        assert_non_null(helper);
        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        cut_at = 3;
        cut_size = (5 + 3) * sizeof(char *);    /* the copy: n + 3 entries */
        __atomic_store_n(&cut_envp, env, __ATOMIC_SEQ_CST);
        assert_int_equal(brd_fsrv_spawn(fs, &o, &c), 0);
        assert_null(cut_envp);                  /* it was cut there */
        assert_int_equal(brd_child_wait(c, -1, &st), 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);    /* stdio, exactly */
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

static void *spawn_null_stdio(void *arg)
{
        struct brd_spawn_opts o = { .fn = fn_zero, .flags = BRD_SPAWN_NULL_STDIO };
        struct racer *x = arg;

        x->r = brd_fsrv_spawn(x->fs, &o, &x->c);
        return NULL;
}

/* A spawn whose child is still in its prelude (signals blocked) when stop
 * begins, with a grace of 0: its SIGKILL ends the child before it reports,
 * and the spawn fails with -ESHUTDOWN, as fork.h says (it was -ECHILD). */
static void test_spawn_child_stopped_in_prelude(void **state)
{
        struct racer x = { .r = 1 };
        struct t_leak l;
        pthread_t t;

        t_leak_begin(&l);
        stall_null_seen = t_shared_page();
        assert_int_equal(brd_fsrv_start(0, &x.fs), 0);
        __atomic_store_n(&stall_null_of, getpid(), __ATOMIC_SEQ_CST);
        assert_int_equal(pthread_create(&t, NULL, spawn_null_stdio, &x), 0);
        /* In its prelude; or the spawn ended before it got there. */
        T_UNTIL(__atomic_load_n(stall_null_seen, __ATOMIC_SEQ_CST) ||
                __atomic_load_n(&x.r, __ATOMIC_SEQ_CST) != 1);
        __atomic_store_n(&stall_null_of, 0, __ATOMIC_SEQ_CST);
        brd_fsrv_stop_grace(x.fs, 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(*stall_null_seen, 1);
        assert_int_equal(x.r, -ESHUTDOWN);
        t_shared_page_free(stall_null_seen);
        t_leak_end(&l);
}

struct blocked_spawn {
        struct racer x;
        pid_t tid;              /* __atomic */
};

static void *spawn_racer_tid(void *arg)
{
        struct blocked_spawn *b = arg;

        __atomic_store_n(&b->tid, gettid(), __ATOMIC_RELEASE);
        return spawn_racer(&b->x);
}

/*
 * A spawn holds the forkserver before anything that can block: asleep on
 * its lock (held here, as a stop holds it through its ladder), it has its
 * reference already, so a stop that ran to its end meanwhile would not
 * free fs under it.  It took it only once it had the lock, which let the
 * stop's last unref free the lock it slept on.
 */
static void test_spawn_holds_fsrv_while_blocked(void **state)
{
        struct blocked_spawn b = { .x.r = 1 };
        struct t_leak l;
        pthread_t t;
        int st;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &b.x.fs), 0);
        assert_int_equal(AO_load(&b.x.fs->refs), 1);
        pthread_mutex_lock(&b.x.fs->lock);
        assert_int_equal(pthread_create(&t, NULL, spawn_racer_tid, &b), 0);
        while (!__atomic_load_n(&b.tid, __ATOMIC_ACQUIRE))
                sched_yield();
        t_wait_in_syscall(b.tid, SYS_futex, SYS_futex);
        assert_int_equal(AO_load(&b.x.fs->refs), 2);
        pthread_mutex_unlock(&b.x.fs->lock);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(b.x.r, 0);
        assert_int_equal(brd_child_wait(b.x.c, -1, &st), 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        brd_child_free(b.x.c);
        assert_int_equal(AO_load(&b.x.fs->refs), 1);
        brd_fsrv_stop(b.x.fs);
        t_leak_end(&l);
}

/* ------------------------------------------------------------ a recycled pid */
static pid_t impostor = -1;
static int impostor_hold[2] = { -1, -1 };

/*
 * The host, on a thread of its own, between the forkserver's fork() and its
 * pidfd_open(): it reaps brood's child (a SIGCHLD handler's waitpid(-1))
 * and forks a process that gets the same pid (ns_last_pid stands in for a
 * pid space that wrapped).  The impostor waits for EOF on impostor_hold.
 */
static void *host_recycles(void *arg)
{
        uint64_t v;
        char b[16];
        int fd, len;
        pid_t pid;

        if (read(recycle_req, &v, sizeof(v)) != sizeof(v))
                abort();
        pid = (pid_t)v;
        if (waitpid(pid, NULL, 0) == pid) {
                len = snprintf(b, sizeof(b), "%d", pid - 1);
                fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
                if (fd >= 0 && write(fd, b, (size_t)len) == len) {
                        impostor = fork();
                        if (impostor == 0) {
                                char c;

                                close(impostor_hold[1]);
                                while (read(impostor_hold[0], &c, 1) < 0 && errno == EINTR)
                                        ;
                                _exit(0);
                        }
                }
                if (fd >= 0)
                        close(fd);
        }
        v = 1;
        if (write(recycle_rep, &v, sizeof(v)) != sizeof(v))
                abort();
        return NULL;
}

/* In a pid namespace of its own (ns_last_pid).  Exit code: 0 ok, else the
 * failed check. */
static int spawn_pid_recycled(void *arg)
{
        struct brd_spawn_opts o = { .fn = fn_exit7 };
        struct brd_fsrv *fs;
        struct brd_child *c;
        pthread_t t;
        int r, st;

        recycle_req = eventfd(0, EFD_CLOEXEC);
        recycle_rep = eventfd(0, EFD_CLOEXEC);
        if (recycle_req < 0 || recycle_rep < 0 || pipe2(impostor_hold, O_CLOEXEC) < 0)
                return 1;
        if (brd_fsrv_start(0, &fs) < 0 || pthread_create(&t, NULL, host_recycles, NULL))
                return 2;
        __atomic_store_n(&recycle_next, 1, __ATOMIC_SEQ_CST);
        r = brd_fsrv_spawn(fs, &o, &c);
        pthread_join(t, NULL);
        /* The child reached fn before the host took it: the spawn succeeded. */
        if (r < 0)
                return 3;
        if (impostor < 0 || impostor != brd_child_pid(c))
                return T_EXIT_SKIP;     /* the pid was not reused: nothing shown */
        if (brd_child_kill(c, SIGTERM) != -ESRCH)
                return 4;               /* it would have reached the impostor */
        if (brd_child_wait(c, 1000, &st) != -ECHILD)
                return 5;               /* it would have taken the impostor's status */
        if (waitpid(impostor, &st, WNOHANG) != 0)
                return 6;               /* the impostor, untouched, still runs */
        close(impostor_hold[1]);
        if (waitpid(impostor, &st, 0) != impostor || !WIFEXITED(st) || WEXITSTATUS(st))
                return 7;
        brd_child_free(c);
        brd_fsrv_stop(fs);
        return 0;
}

/* RELIABILITY A9: a host that reaps brood's child before the forkserver
 * holds its pidfd, and a pid reused at once, never make brood signal or
 * reap the other process. */
static void test_spawn_pid_recycled(void **state)
{
        int rc = t_run_in_new_pidns(spawn_pid_recycled, NULL);

        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

/* ------------------------------------------------------------ confinement */
static int spawn_refused(struct brd_fsrv *fs, const char *fail_sub, int fail_errno)
{
        struct brd_spawn_opts o = { .fn = fn_zero };
        struct brd_child *c = NULL;
        int r;

        open_fail_errno = fail_errno;
        __atomic_store_n(&open_fail_sub, fail_sub, __ATOMIC_SEQ_CST);
        r = brd_fsrv_spawn(fs, &o, &c);
        __atomic_store_n(&open_fail_sub, NULL, __ATOMIC_SEQ_CST);
        if (c) {
                int st;

                brd_child_wait(c, -1, &st);
                brd_child_free(c);
                return 1000;    /* spawned */
        }
        return r;
}

/*
 * The seccomp check of a spawn (fork.h, Per-thread state) where the
 * forkserver thread's status cannot be read: before the thread first ran
 * (a spawn right after start) or out of fds, it is judged by its filter
 * count at start.  It was not judged at all: a caller with a filter more
 * than the forkserver thread spawned a child without it.  And a caller
 * whose own status read was cut by a signal got no verdict, and spawned:
 * now -EAGAIN.  Exit code: 0 ok.
 */
static int confinement_unread(void)
{
        struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        struct sock_fprog prog = { .len = 1, .filter = &allow };
        struct brd_spawn_opts o = { .fn = fn_zero };
        struct brd_fsrv *fs;
        char buf[8192];
        int gate[2], fd;
        ssize_t n;

        if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0)
                return T_EXIT_SKIP;     /* confined already (a container's profile) */
        fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
                close(fd);
        if (n <= 0 || (buf[n] = 0, !strstr(buf, "\nSeccomp_filters:")))
                return T_EXIT_SKIP;     /* filters not counted (Linux < 5.9) */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return T_EXIT_SKIP;     /* no seccomp here */
        if (pipe2(gate, O_CLOEXEC) < 0)
                return 1;
        thread_gate = gate[0];
        if (brd_fsrv_start(0, &fs) < 0)
                return 2;
        /* Held before its first instruction: its tid is not known yet. */
        if (AO_int_load(&fs->tid) != 0)
                return 3;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return 4;
        if (spawn_refused(fs, NULL, 0) != -EPERM)
                return 5;
        if (write(gate[1], "g", 1) != 1)
                return 6;
        while (!AO_int_load(&fs->tid))
                sched_yield();
        if (spawn_refused(fs, NULL, 0) != -EPERM)
                return 7;       /* read: one filter against two */
        if (spawn_refused(fs, "/task/", EMFILE) != -EPERM)
                return 8;       /* unread: as at start */
        if (spawn_refused(fs, "/proc/thread-self/status", EINTR) != -EAGAIN)
                return 9;       /* the caller's own: no verdict */
        if (spawn_refused(fs, "/proc/thread-self/status", EMFILE) != -EMFILE)
                return 10;
        /* A filter given every thread: the forkserver thread now has as
         * many as the caller and spawns, but judged as it was at start
         * (one) it is refused: stricter, never looser. */
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
                return 11;
        if (tf_spawn_exit(fs, &o) != 0)
                return 12;
        if (spawn_refused(fs, "/task/", EMFILE) != -EPERM)
                return 13;
        brd_fsrv_stop(fs);
        close(gate[0]);
        close(gate[1]);
        return 0;
}

static void test_spawn_confinement_unread(void **state)
{
        t_run_forked(confinement_unread);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_faults),
                cmocka_unit_test(test_spawn_fork_faults),
                cmocka_unit_test(test_spawn_pidfd_refused),
                cmocka_unit_test(test_spawn_pidfd_and_kill_refused),
                cmocka_unit_test(test_spawn_pidfd_refused_child_unreapable),
                cmocka_unit_test(test_spawn_fork_handles_faults),
                cmocka_unit_test(test_spawn_exec_faults),
                cmocka_unit_test(test_spawn_exec_handles_faults),
                cmocka_unit_test(test_spawn_racing_stop),
                cmocka_unit_test(test_spawn_holds_fsrv_from_entry),
                cmocka_unit_test(test_spawn_after_stop_thread_gone),
                cmocka_unit_test(test_spawn_envp_changed_meanwhile),
                cmocka_unit_test(test_spawn_child_stopped_in_prelude),
                cmocka_unit_test(test_spawn_holds_fsrv_while_blocked),
                cmocka_unit_test(test_spawn_pid_recycled),
                cmocka_unit_test(test_spawn_confinement_unread),
        };

        return cmocka_run_group_tests_name("fork-faults", tests, NULL, NULL);
}
