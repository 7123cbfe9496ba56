/* SPDX-License-Identifier: MIT */
/*
 * Forkserver: the SIGINT -> SIGTERM -> SIGKILL ladder, one child at a time
 * and for all children in parallel at brd_fsrv_stop(); ownership of the
 * brd_child objects across the stop.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "fork-util.h"
#include "internal/brd-private.h"
#include "internal/brd-fork.h"

#define GRACE_MS 200
#define SLACK_MS 100            /* the requirement: dead within 2 x grace + 100 ms */

static void exit_on_term(int sig)
{
        (void)sig;
        _exit(7);
}

/* arg: 0 exits on SIGINT, 1 ignores SIGINT, 2 ignores SIGINT and SIGTERM,
 * 3 ignores SIGINT and exits 7 from a SIGTERM handler.  fd 3 (a pipe) gets
 * one byte once the dispositions are in place. */
static int fn_ladder(void *arg, struct brd_handle *h, size_t n)
{
        int kind = (int)(intptr_t)arg;

        if (kind >= 1)
                signal(SIGINT, SIG_IGN);
        if (kind == 2)
                signal(SIGTERM, SIG_IGN);
        if (kind == 3)
                signal(SIGTERM, exit_on_term);
        if (write(3, "r", 1) != 1)
                return 1;
        close(3);
        for (;;)
                pause();
}

static const int expect_sig[3] = { SIGINT, SIGTERM, SIGKILL };

/* A fn_ladder child of @kind with its dispositions in place (no race with a
 * signal); returns the read end of its fd 3, which reads EOF once it died. */
static int spawn_ready(struct brd_fsrv *fs, int kind, struct brd_child **ret_c)
{
        struct brd_handle h;
        struct brd_spawn_opts o = { .fn = fn_ladder, .arg = (void *)(intptr_t)kind,
                                    .handles = &h, .nhandles = 1 };
        int p[2];
        char x;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        h = tf_fd_handle(p[1]);
        assert_int_equal(brd_fsrv_spawn(fs, &o, ret_c), 0);
        close(p[1]);
        assert_int_equal(tf_read1(p[0], &x), 1);
        return p[0];
}

static void spawn_ladder_kids(struct brd_fsrv *fs, struct brd_child *c[3])
{
        int i;

        for (i = 0; i < 3; i++)
                close(spawn_ready(fs, i, &c[i]));
}

/*
 * Each child dies inside its window.  The windows' upper ends are a
 * wall-clock bound that a stalled vCPU can overrun (t_tries()).
 */
static bool stop_ladder_try(void)
{
        struct brd_fsrv *fs;
        struct brd_child *c[3];
        struct t_leak l;
        int64_t t0, dt;
        int i, st;
        bool kept = true;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        spawn_ladder_kids(fs, c);
        for (i = 0; i < 3; i++) {
                t0 = t_now_ms();
                assert_int_equal(brd_child_stop(c[i], GRACE_MS, &st), 0);
                dt = t_now_ms() - t0;
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), expect_sig[i]);
                assert_true(dt >= (int64_t)i * GRACE_MS);
                if (dt >= (int64_t)i * GRACE_MS + (i < 2 ? GRACE_MS : SLACK_MS)) {
                        print_message("child %d: dead after %lld ms\n", i, (long long)dt);
                        kept = false;
                }
                assert_int_equal(brd_child_wait(c[i], 0, &st), -ECHILD);      /* consumed */
                assert_int_equal(brd_child_kill(c[i], SIGKILL), -ESRCH);
                brd_child_free(c[i]);
        }
        brd_fsrv_stop(fs);
        t_leak_end(&l);
        return kept;
}

static void test_child_stop_ladder(void **state)
{
        (void)state;
        t_tries(stop_ladder_try, "child_stop_ladder");
}

static void test_child_stop_exited_needs_no_signal(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        int64_t t0;
        int st;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        close(spawn_ready(fs, 2, &c));
        assert_int_equal(brd_child_kill(c, SIGUSR2), 0);        /* dies of it */
        {
                struct pollfd pf = { .fd = brd_child_fd(c), .events = POLLIN };

                assert_int_equal(poll(&pf, 1, 10000), 1);
        }
        t0 = t_now_ms();
        assert_int_equal(brd_child_stop(c, 60000, &st), 0);    /* returns at once */
        /* Not after a grace of 60 s: no bound a stalled vCPU could miss. */
        assert_true(t_now_ms() - t0 < 30000);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGUSR2);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_no_children();
}

/*
 * A stopped child (SIGSTOP) whose SIGTERM handler ends it: the ladder's
 * SIGTERM comes with a SIGCONT, and the handler runs (exit 7).  It stayed
 * pending in the stopped child, which the SIGKILL then ended.
 */
static void test_child_stop_continues_stopped(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        siginfo_t si;
        int st;

        (void)state;
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        close(spawn_ready(fs, 3, &c));
        assert_int_equal(brd_child_kill(c, SIGSTOP), 0);
        assert_int_equal(waitid(P_PIDFD, (id_t)brd_child_fd(c), &si, WSTOPPED | WNOWAIT), 0);
        assert_int_equal(si.si_code, CLD_STOPPED);
        /* A grace of a second: the handler must get a CPU before the
         * SIGKILL, which on a loaded host 100 ms need not give. */
        assert_int_equal(brd_child_stop(c, 1000, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 7);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_no_children();
}

/* All three ladders at once (as in test_child_stop_ladder(), the upper
 * bound as t_tries() takes it). */
static bool stop_parallel_try(void)
{
        struct brd_fsrv *fs;
        struct brd_child *c[3];
        struct t_leak l;
        int64_t t0, dt;
        int i, st;
        bool kept;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        spawn_ladder_kids(fs, c);
        t0 = t_now_ms();
        brd_fsrv_stop_grace(fs, GRACE_MS);
        dt = t_now_ms() - t0;
        /* In parallel: 2 x grace, not 0 + 1 + 2 graces one after the other. */
        assert_true(dt >= 2 * GRACE_MS);
        kept = dt < 2 * GRACE_MS + SLACK_MS;
        if (!kept)
                print_message("stopped after %lld ms\n", (long long)dt);
        t_no_children();                               /* all reaped before the join */
        for (i = 0; i < 3; i++) {
                /* statuses kept for their owner, exactly once */
                assert_int_equal(brd_child_wait(c[i], 0, &st), 0);
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), expect_sig[i]);
                assert_int_equal(brd_child_wait(c[i], 0, &st), -ECHILD);
        }
        /* free after stop: the forkserver's memory goes with the last child */
        for (i = 0; i < 3; i++)
                brd_child_free(c[i]);
        t_leak_end(&l);
        return kept;
}

static void test_fsrv_stop_parallel(void **state)
{
        (void)state;
        t_tries(stop_parallel_try, "fsrv_stop_parallel");
}

struct exec_spawner {
        struct brd_fsrv *fs;
        int ret;
};

static void *spawn_exec_stuck(void *arg)
{
        struct exec_spawner *a = arg;
        char *argv[] = { "/bin/true", NULL };
        struct brd_spawn_opts o = { .argv = argv };
        struct brd_child *c = NULL;

        a->ret = brd_fsrv_spawn(a->fs, &o, &c);
        if (c)
                brd_child_free(c);
        return NULL;
}

/* One stop of a child stuck before exec, timed for t_tries() (see
 * test_fsrv_stop_kills_child_stuck_before_exec()). */
static bool stuck_before_exec_try(void)
{
        struct exec_spawner a = { .ret = 1 };
        struct brd_fsrv *fs;
        siginfo_t si;
        pthread_t t;
        int64_t t0, dt;

        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        brd__fsrv_set_crash_stage(fs, BRD__STOP_BEFORE_EXEC);
        a.fs = fs;
        assert_int_equal(pthread_create(&t, NULL, spawn_exec_stuck, &a), 0);
        /* Until the child exists and has stopped. */
        T_UNTIL((memset(&si, 0, sizeof(si)),
                 waitid(P_ALL, 0, &si, WSTOPPED | WNOWAIT | WNOHANG | __WALL) == 0 && si.si_pid));
        assert_int_equal(si.si_code, CLD_STOPPED);
        t0 = t_now_ms();
        brd_fsrv_stop_grace(fs, GRACE_MS);
        dt = t_now_ms() - t0;
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(a.ret, -ESHUTDOWN);
        t_no_children();
        /* Killed after min(grace, 20 ms); no other child to stop. */
        if (dt >= 20 + SLACK_MS) {
                print_message("stopped after %lld ms\n", (long long)dt);
                return false;
        }
        return true;
}

/*
 * An exec-mode child stopped before its execve (SIGSTOP; a debugger would
 * do the same) holds the forkserver thread inside clone() (CLONE_VFORK):
 * stop kills it through the pidfd that clone() gave, within
 * min(grace, 20 ms), and its spawn fails with -ESHUTDOWN.  Stop waited for
 * it for good before: the child would never exec nor die.
 */
static void test_fsrv_stop_kills_child_stuck_before_exec(void **state)
{
        struct exec_spawner a;
        struct brd_fsrv *fs;
        struct t_leak l;
        pthread_t t;

        (void)state;
        t_leak_begin(&l);
        t_tries(stuck_before_exec_try, "fsrv_stop_kills_child_stuck_before_exec");
        /* Stop as soon as the spawn holds the forkserver (its reference:
         * no call may begin after stop), wherever it is then: queued,
         * served before its clone() (stop looks again every 20 ms: the
         * pidfd it waits for may come later), or inside it. */
        for (int i = 0; i < 20; i++) {
                a = (struct exec_spawner){ .ret = 1 };
                assert_int_equal(brd_fsrv_start(0, &fs), 0);
                brd__fsrv_set_crash_stage(fs, BRD__STOP_BEFORE_EXEC);
                a.fs = fs;
                assert_int_equal(pthread_create(&t, NULL, spawn_exec_stuck, &a), 0);
                T_UNTIL(AO_load(&fs->refs) > 1);
                if (i & 1)
                        sched_yield();
                brd_fsrv_stop_grace(fs, GRACE_MS);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(a.ret, -ESHUTDOWN);
                t_no_children();
        }
        t_leak_end(&l);
}

struct stopper_thread {
        struct brd_fsrv *fs;
        AO_t tid, returned;
};

static void *stop_then_testcancel(void *arg)
{
        struct stopper_thread *a = arg;

        AO_store(&a->tid, (AO_t)gettid());
        brd_fsrv_stop_grace(a->fs, GRACE_MS);
        AO_store(&a->returned, 1);
        pthread_testcancel();
        return NULL;
}

/*
 * A stop cancelled in its ladder (pthread_cancel() while it waits between
 * two rungs, holding the forkserver's lock) runs to its end, and only then
 * the cancel takes effect: the child is dead and reaped, the forkserver
 * gone.  The stopping thread died there before, the lock held: every later
 * call on the forkserver hung, brd_child_free() included.
 */
static void test_fsrv_stop_survives_cancel(void **state)
{
        struct stopper_thread a = { 0 };
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        pthread_t t;
        void *ret;
        int st;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        close(spawn_ready(fs, 2, &c));          /* ignores SIGINT and SIGTERM */
        a.fs = fs;
        assert_int_equal(pthread_create(&t, NULL, stop_then_testcancel, &a), 0);
        T_UNTIL(AO_load(&a.tid));
        t_wait_in_syscall((pid_t)AO_load(&a.tid), SYS_poll, SYS_ppoll);
        assert_int_equal(pthread_cancel(t), 0);
        assert_int_equal(pthread_join(t, &ret), 0);
        assert_true(ret == PTHREAD_CANCELED);
        assert_int_equal(AO_load(&a.returned), 1);
        t_no_children();
        assert_int_equal(brd_child_wait(c, 0, &st), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        brd_child_free(c);
        t_leak_end(&l);
}

static void test_child_free_kills_running(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int fd;
        char x;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        fd = spawn_ready(fs, 2, &c);
        brd_child_free(c);                              /* ignores INT and TERM: SIGKILL, reaped */
        assert_int_equal(tf_read1(fd, &x), 0);         /* its fd 3 is gone: it is dead */
        close(fd);
        t_no_children();
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

/* A fork-mode child that waits for a byte on its fd 3: 0 on the byte, 1 at EOF. */
static int fn_wait_byte(void *arg, struct brd_handle *h, size_t n)
{
        char x;

        return tf_read1(h[0].fds[0], &x) == 1 ? 0 : 1;
}

struct thread_spawn {
        struct brd_fsrv *fs;
        struct brd_handle h;
        struct brd_child *c;
        int r;
};

static void *spawn_then_exit(void *arg)
{
        struct thread_spawn *t = arg;
        struct brd_spawn_opts o = { .fn = fn_wait_byte, .handles = &t->h, .nhandles = 1 };

        t->r = brd_fsrv_spawn(t->fs, &o, &t->c);
        return NULL;
}

/*
 * RELIABILITY A7: an application thread that spawns a child and exits
 * never kills it.  PR_SET_PDEATHSIG fires when the child's forking thread
 * exits, and that is the forkserver thread, not the caller: once the
 * caller's task is gone from /proc/self/task (its exit, and any death
 * signal it would send, are over), the child still runs, and exits 0 when
 * it gets its byte (not SIGKILL).
 */
static void test_app_thread_exit_keeps_child(void **state)
{
        struct thread_spawn t = { .r = 1 };
        struct t_leak l;
        pthread_t th;
        int p[2], st, n0;

        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &t.fs), 0);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        t.h = tf_fd_handle(p[0]);
        n0 = t_thread_count();
        assert_int_equal(pthread_create(&th, NULL, spawn_then_exit, &t), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(t.r, 0);
        assert_int_equal(t_thread_count_is(n0), n0);
        assert_int_equal(brd_child_wait(t.c, 0, &st), -EAGAIN);     /* alive */
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(brd_child_wait(t.c, 10000, &st), 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
        brd_child_free(t.c);
        close(p[0]);
        close(p[1]);
        brd_fsrv_stop(t.fs);
        t_leak_end(&l);
}

/*
 * RELIABILITY E30: brd_child_wait() with a 200 ms timeout on a child that
 * runs, under a SIGALRM every 1 ms (setitimer, no SA_RESTART; the
 * forkserver thread blocks every signal, so each hit interrupts this
 * thread's poll()).  It returns -ETIMEDOUT, not -EINTR, after at least
 * 200 ms and at most 400 in one of three tries (a wait that restarted its
 * timeout at each EINTR would still be waiting when the storm stops
 * itself, after 2000 hits),
 * and lost nothing: the child still runs, and its status comes once, to
 * the stop.
 */
static long storm_wait(void *arg)
{
        int st;

        return brd_child_wait(arg, 200, &st);
}

static void test_child_wait_alarm_storm_times_out(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int fd, st;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        fd = spawn_ready(fs, 0, &c);
        t_storm_times_out(storm_wait, c, "wait");
        assert_int_equal(brd_child_kill(c, 0), 0);
        assert_int_equal(brd_child_wait(c, 0, &st), -EAGAIN);
        assert_int_equal(brd_child_stop(c, GRACE_MS, &st), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGINT);
        assert_int_equal(brd_child_wait(c, 0, &st), -ECHILD);
        close(fd);
        brd_child_free(c);
        brd_fsrv_stop(fs);
        t_leak_end(&l);
}

/* ------------------------------------------------ BRD_FSRV_EINTR */

static volatile sig_atomic_t usr1_hits;

static void on_usr1(int sig)
{
        (void)sig;
        usr1_hits++;
}

struct waiter {
        struct brd_child *c;
        pid_t tid;
        int ret, status;
};

static void *wait_thread(void *arg)
{
        struct waiter *w = arg;

        __atomic_store_n(&w->tid, gettid(), __ATOMIC_RELEASE);
        w->ret = brd_child_wait(w->c, -1, &w->status);
        return NULL;
}

/* One signal to a thread asleep in brd_child_wait(): with BRD_FSRV_EINTR
 * the wait returns -EINTR and the child and its status are untouched;
 * without it the wait goes on and returns the status. */
static void test_child_wait_eintr_mode(void **state)
{
        struct sigaction sa = { 0 }, old;
        struct t_leak l;
        int mode;

        (void)state;
        t_leak_begin(&l);
        sa.sa_handler = on_usr1;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;       /* poll() is interrupted anyway */
        assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
        for (mode = 0; mode < 2; mode++) {
                struct waiter w = { 0 };
                struct brd_fsrv *fs;
                pthread_t t;
                int fd, st;

                assert_int_equal(brd_fsrv_start(mode ? BRD_FSRV_EINTR : 0, &fs), 0);
                fd = spawn_ready(fs, 0, &w.c);
                usr1_hits = 0;
                assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
                while (!__atomic_load_n(&w.tid, __ATOMIC_ACQUIRE))
                        sched_yield();
                t_wait_in_syscall(w.tid, SYS_poll, SYS_ppoll);
                assert_int_equal(pthread_kill(t, SIGUSR1), 0);
                if (mode) {
                        assert_int_equal(pthread_join(t, NULL), 0);
                        assert_int_equal(w.ret, -EINTR);
                        assert_int_equal(brd_child_kill(w.c, 0), 0);    /* still running */
                        assert_int_equal(brd_child_wait(w.c, 0, &st), -EAGAIN);
                        assert_int_equal(brd_child_stop(w.c, GRACE_MS, &st), 0);
                } else {
                        /* The wait outlives the signal: it ends with the
                         * child.  Its handler has run and the wait is back
                         * in poll() before the child is ended: the restart
                         * after EINTR is what is tested, not a poll() that
                         * the child's end reached first. */
                        T_UNTIL(usr1_hits == 1);
                        t_wait_in_syscall(w.tid, SYS_poll, SYS_ppoll);
                        assert_int_equal(brd_child_kill(w.c, SIGINT), 0);
                        assert_int_equal(pthread_join(t, NULL), 0);
                        assert_int_equal(w.ret, 0);
                        st = w.status;
                }
                assert_int_equal(usr1_hits, 1);
                assert_true(WIFSIGNALED(st));
                assert_int_equal(WTERMSIG(st), SIGINT);
                assert_int_equal(brd_child_wait(w.c, 0, &st), -ECHILD);  /* taken once */
                close(fd);
                brd_child_free(w.c);
                brd_fsrv_stop(fs);
        }
        assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
        t_no_children();
        t_leak_end(&l);
}

/*
 * The stand-in for an LSM that forbids this process to signal its own
 * children: pidfd_send_signal() answers EPERM in the calling thread from
 * now on (a seccomp filter; the forkserver thread is not filtered, and the
 * kernel's PDEATHSIG is no system call).  0, or -errno if seccomp is not
 * available.
 */
static int deny_signals(void)
{
        return tf_deny_syscall(SYS_pidfd_send_signal, EPERM);
}

/* A fn_ladder child that ignores SIGINT and SIGTERM, with its dispositions
 * in place (no cmocka: for a forked host).  NULL on failure. */
static struct brd_child *spawn_stubborn(struct brd_fsrv *fs)
{
        struct brd_handle h;
        struct brd_spawn_opts o = { .fn = fn_ladder, .arg = (void *)(intptr_t)2,
                                    .handles = &h, .nhandles = 1 };
        struct brd_child *c = NULL;
        int p[2];
        char x;

        if (pipe2(p, O_CLOEXEC) < 0)
                return NULL;
        h = tf_fd_handle(p[1]);
        if (brd_fsrv_spawn(fs, &o, &c) != 0)
                c = NULL;
        close(p[1]);
        if (c && read(p[0], &x, 1) != 1)
                c = NULL;
        close(p[0]);
        return c;
}

/* A host whose signals cannot reach its children: every stop and free
 * returns, and the forkserver's exit (PDEATHSIG) still ends the child it
 * could not stop.  Exit code = the number of the first check that failed. */
static int host_cannot_signal(void)
{
        struct brd_child *a, *b;
        struct brd_fsrv *fs;
        struct pollfd pb = { .events = POLLIN };
        int st = 0, e;

        if (brd_fsrv_start(0, &fs))
                return 10;
        a = spawn_stubborn(fs);
        b = spawn_stubborn(fs);
        if (!a || !b)
                return 11;
        e = deny_signals();
        if (e)
                return e == -EINVAL || e == -ENOSYS ? T_EXIT_SKIP : 12;
        if (brd_child_stop(a, 10, &st) != -EPERM)
                return 13;
        if (brd_child_wait(a, 0, &st) != -EAGAIN)      /* left running, not reaped */
                return 14;
        if (brd_child_kill(a, SIGKILL) != -EPERM)
                return 15;
        /* b's pidfd outlives its brd_child: b must die too. */
        pb.fd = fcntl(brd_child_fd(b), F_DUPFD_CLOEXEC, 3);
        if (pb.fd < 0)
                return 17;
        brd_child_free(b);                              /* returns: b is left running */
        brd_fsrv_stop_grace(fs, 10);                    /* returns: the ladder cannot kill a */
        /* The forkserver thread is gone, and with it, through PDEATHSIG,
         * the children the ladder could not reach. */
        if (brd_child_wait(a, 10000, &st) != 0 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
                return 16;
        brd_child_free(a);
        if (poll(&pb, 1, 10000) != 1)
                return 18;
        close(pb.fd);
        return 0;
}

/* A child that SIGKILL cannot reach (-EPERM, as under an LSM) makes
 * brd_child_stop() answer -EPERM, and neither it, brd_child_free() nor
 * brd_fsrv_stop() waits for ever. */
static void test_unsignalable_child_no_hang(void **state)
{
        struct t_leak l;

        t_leak_begin(&l);
        t_run_forked(host_cannot_signal);
        t_leak_end(&l);
}

/* A process that traces @pid (PTRACE_SEIZE) and never reaps it: its exit
 * is reported to us first, and its parent cannot reap it until we do (or
 * until we end).  Writes 1 byte on @ready once it traces, 0 if it cannot. */
static int tracer(pid_t pid, int ready)
{
        char ok = ptrace(PTRACE_SEIZE, pid, NULL, NULL) == 0;

        if (write(ready, &ok, 1) != 1 || !ok)
                return 1;
        for (;;)
                pause();
}

/* @c's process traced by a new tracer process (its pid), or -1: the test
 * skips when this host forbids it (Yama, no privilege). */
static pid_t trace_child(struct brd_child *c)
{
        pid_t tr;
        int p[2];
        char ok = 0;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        tr = t_fork();
        assert_true(tr >= 0);
        if (tr == 0)
                _exit(tracer(brd_child_pid(c), p[1]));
        close(p[1]);
        assert_int_equal(read(p[0], &ok, 1), 1);
        close(p[0]);
        if (ok)
                return tr;
        assert_int_equal(t_wait_child(tr), 1);
        return -1;
}

/*
 * A child that got its SIGKILL but cannot be reaped (a tracer holds its
 * exit and never reaps it; a cgroup v1 freezer or uninterruptible sleep
 * would do the same) is left running after the forkserver's dying time
 * (BRD_FSRV_DYING_MS, 300 ms here): stop says -ETIMEDOUT, and fsrv_stop
 * returns, the child unreaped.  The tracer's end hands it to us: wait
 * reaps it, or free does.  Before, each stop waited for good, fsrv_stop
 * holding the forkserver's lock.
 */
static void test_stop_returns_while_tracer_holds_child(void **state)
{
        struct brd_fsrv *fs;
        struct brd_child *c;
        struct t_leak l;
        int64_t t0;
        pid_t tr;
        int st = 0;

        (void)state;
        t_leak_begin(&l);
        assert_int_equal(brd_fsrv_start(0, &fs), 0);
        brd__fsrv_set_dying_ms(fs, 300);
        close(spawn_ready(fs, 2, &c));  /* ignores SIGINT and SIGTERM */
        tr = trace_child(c);
        if (tr < 0) {
                brd_child_free(c);
                brd_fsrv_stop(fs);
                skip();
        }
        t0 = t_now_ms();
        assert_int_equal(brd_child_stop(c, 10, &st), -ETIMEDOUT);
        assert_true(t_now_ms() - t0 >= 300);
        assert_int_equal(brd_child_wait(c, 0, &st), -EAGAIN);   /* left, unreaped */
        kill(tr, SIGKILL);
        assert_int_equal(t_wait_child(tr), 128 + SIGKILL);
        assert_int_equal(brd_child_wait(c, 10000, &st), 0);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGKILL);
        brd_child_free(c);

        /* The forkserver's stop, then the child's free once the tracer ended. */
        close(spawn_ready(fs, 2, &c));
        tr = trace_child(c);
        assert_true(tr > 0);
        brd_fsrv_stop_grace(fs, 10);                    /* returns */
        assert_int_equal(brd_child_wait(c, 0, &st), -EAGAIN);
        kill(tr, SIGKILL);
        assert_int_equal(t_wait_child(tr), 128 + SIGKILL);
        brd_child_free(c);                              /* reaps it */
        t_no_children();
        t_leak_end(&l);
}

/* A CLONE_VM child of vm_child_thread(): says it runs, waits for a byte.
 * Raw syscalls, not instrumented: it runs on our memory, its own stack. */
struct vm_child {
        int started[2], go[2];
        int pidfd;
        int ret;
};

__attribute__((no_sanitize_address)) static int vm_child_main(void *arg)
{
        struct vm_child *v = arg;
        char b = 1;

        syscall(SYS_write, v->started[1], &b, 1);
        syscall(SYS_read, v->go[0], &b, 1);
        syscall(SYS_exit, 0);
        return 0;
}

/* Inside clone() until its child exits, as the forkserver thread waits
 * for an exec-mode child. */
static void *vm_child_thread(void *arg)
{
        static char stack[64 * 1024] __attribute__((aligned(16)));
        struct vm_child *v = arg;

        v->ret = clone(vm_child_main, stack + sizeof(stack),
                       CLONE_VM | CLONE_VFORK | CLONE_PIDFD, v, &v->pidfd);
        return NULL;
}

/*
 * What stop kills through fs->vfork_pidfd must be the child inside clone():
 * a process that shares our memory.  The kernel writes that number before
 * the clone can still fail (a cgroup's pids.max), and the number, freed
 * again, may name another thread's pidfd of any process by the time stop
 * reads it: stop SIGKILLed that process.  A CLONE_VM child is taken, a
 * forked one is not.
 */
static void test_vfork_pidfd_check(void **state)
{
        struct vm_child v = { .pidfd = -1 };
        siginfo_t si;
        pthread_t t;
        pid_t other;
        int fd;
        char b;

        (void)state;
        assert_int_equal(pipe2(v.started, O_CLOEXEC), 0);
        assert_int_equal(pipe2(v.go, O_CLOEXEC), 0);
        other = t_fork();
        assert_true(other >= 0);
        if (other == 0) {
                (void)read(v.go[0], &b, 1);
                _exit(0);
        }
        fd = (int)syscall(SYS_pidfd_open, other, 0);
        assert_true(fd >= 0);
        assert_false(brd__fsrv_vfork_child(fd));
        assert_int_equal(pthread_create(&t, NULL, vm_child_thread, &v), 0);
        assert_int_equal(read(v.started[0], &b, 1), 1);  /* runs: its pidfd is installed */
        assert_true(brd__fsrv_vfork_child(v.pidfd));
        assert_int_equal(write(v.go[1], "xx", 2), 2);   /* both go */
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(v.ret > 0);
        assert_int_equal(waitid(P_PIDFD, (id_t)v.pidfd, &si, WEXITED | __WALL), 0);
        assert_int_equal(t_wait_child(other), 0);
        close(fd);
        close(v.pidfd);
        close(v.started[0]);
        close(v.started[1]);
        close(v.go[0]);
        close(v.go[1]);
        t_no_children();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_child_stop_ladder, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_child_stop_exited_needs_no_signal, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_child_stop_continues_stopped, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fsrv_stop_parallel, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_fsrv_stop_survives_cancel),
                cmocka_unit_test(test_fsrv_stop_kills_child_stuck_before_exec),
                cmocka_unit_test(test_child_free_kills_running),
                cmocka_unit_test(test_app_thread_exit_keeps_child),
                cmocka_unit_test(test_child_wait_alarm_storm_times_out),
                cmocka_unit_test(test_child_wait_eintr_mode),
                cmocka_unit_test(test_unsignalable_child_no_hang),
                cmocka_unit_test(test_stop_returns_while_tracer_holds_child),
                cmocka_unit_test_setup_teardown(test_vfork_pidfd_check, t_leak_setup, t_leak_teardown),
        };

        return cmocka_run_group_tests_name("fork-stop", tests, NULL, NULL);
}
