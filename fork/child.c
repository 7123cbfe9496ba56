/* SPDX-License-Identifier: MIT */
/*
 * Child control through pidfds: wait (status exactly once), kill (never a
 * recycled pid), the SIGINT -> SIGTERM -> SIGKILL ladder, free.
 *
 * Every waitid() passes __WALL: exec-mode children have exit_signal 0, and
 * without __WALL (or __WCLONE) the kernel does not consider them at all.
 * waitid() runs with WNOHANG under c->lock so that two threads can never
 * both reap, and the sleeping is a poll() on the pidfd outside the lock.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/fork.h>
#include "internal/brd-private.h"
#include "internal/brd-fork.h"

struct brd_child *brd__child_new(struct brd_fsrv *fs)
{
        struct brd_child *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        pthread_mutex_init(&c->lock, NULL);
        c->fs = fs;
        c->pid = -1;
        c->pidfd = -1;
        c->state = BRD_CHILD_RUNNING;
        c->fork_gen = fs->fork_gen;
        c->owner = fs->pid;
        c->eintr = fs->flags & BRD_FSRV_EINTR;
        return c;
}

/* siginfo of a CLD_* event -> the status word waitpid() would have given. */
static int status_of(const siginfo_t *si)
{
        switch (si->si_code) {
        case CLD_EXITED:
                return (si->si_status & 0xff) << 8;
        case CLD_KILLED:
                return si->si_status & 0x7f;
        case CLD_DUMPED:
                return (si->si_status & 0x7f) | 0x80;
        default:
                return 0;
        }
}

/* c->lock held.  1: reaped (now or before), 0: running, -errno (-ECHILD: lost). */
static int child_try_reap(struct brd_child *c)
{
        siginfo_t si;
        int r;

        if (c->state == BRD_CHILD_LOST)
                return -ECHILD;
        if (c->state != BRD_CHILD_RUNNING)
                return 1;
        for (;;) {
                /* The bare syscall: waitid() is a cancellation point, and
                 * c->lock is held (a thread cancelled here would leave it
                 * held, and every later call on the child hang). */
                memset(&si, 0, sizeof(si));
                r = (int)syscall(SYS_waitid, P_PIDFD, (id_t)c->pidfd, &si,
                                 WEXITED | WNOHANG | __WALL, NULL);
                if (r < 0 && errno == EINVAL)   /* no P_PIDFD (< 5.4): the pid is ours until reaped */
                        r = (int)syscall(SYS_waitid, P_PID, (id_t)c->pid, &si,
                                         WEXITED | WNOHANG | __WALL, NULL);
                if (r == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == ECHILD) {
                        /* Reaped behind our back (a host waitpid(-1), or
                         * SIGCHLD = SIG_IGN): the status is gone for good. */
                        c->state = BRD_CHILD_LOST;
                        return -ECHILD;
                }
                return -errno;
        }
        if (si.si_pid == 0)
                return 0;
        c->status = status_of(&si);
        c->state = BRD_CHILD_EXITED;
        return 1;
}

/* Wait until @deadline for the exit; consume: the status is returned only
 * once; eintr: a signal ends the sleep with -EINTR. */
static int child_wait_until(struct brd_child *c, int64_t deadline, bool consume, bool eintr,
                            int *ret_status)
{
        int64_t nap = 0, now, end;
        bool expired = false;
        int r, p;

        for (;;) {
                pthread_mutex_lock(&c->lock);
                r = child_try_reap(c);
                if (r == 1) {
                        if (c->state == BRD_CHILD_CONSUMED) {
                                r = -ECHILD;
                        } else {
                                if (ret_status)
                                        *ret_status = c->status;
                                if (consume)
                                        c->state = BRD_CHILD_CONSUMED;
                                r = 0;
                        }
                        pthread_mutex_unlock(&c->lock);
                        return r;
                }
                pthread_mutex_unlock(&c->lock);
                if (r < 0)
                        return r;
                if (expired)
                        return -ETIMEDOUT;
                if (nap) {
                        /* The pidfd said it exited, yet it cannot be reaped:
                         * a zombie that an outside tracer (gdb -p, strace -p)
                         * alone may reap.  The pidfd stays readable: look
                         * again after a nap (1 ms, doubling up to 64), not
                         * in a busy loop; once more at the deadline. */
                        now = brd__now_ns();
                        end = deadline - now <= nap ? deadline : now + nap;
                        p = brd__poll_wait(-1, 0, end, eintr);
                        if (p < 0)
                                return p;
                        expired = end == deadline;
                        nap = nap < 64000000 ? 2 * nap : nap;
                        continue;
                }
                /* Running: sleep on the pidfd (POLLIN at exit, 0.13 ms after a SIGKILL). */
                p = brd__poll_wait(c->pidfd, POLLIN, deadline, eintr);
                if (p == 0)
                        return -ETIMEDOUT;
                if (p < 0)
                        return p;
                nap = 1000000;
        }
}

static bool child_running(struct brd_child *c)
{
        int r;

        pthread_mutex_lock(&c->lock);
        r = child_try_reap(c);
        pthread_mutex_unlock(&c->lock);
        return r == 0;
}

/* The end of a wait of at least @min_ms from now, or @grace_ms if longer. */
static int64_t child_kill_wait_end(int grace_ms, int min_ms)
{
        return brd__now_ns() + (int64_t)(grace_ms > min_ms ? grace_ms : min_ms) * 1000000;
}

int brd__child_ladder(struct brd_child *first, size_t max, int grace_ms)
{
        static const int sigs[3] = { SIGINT, SIGTERM, SIGKILL };
        int64_t t0 = brd__now_ns(), deadline, stuck = 0;
        struct brd_child *c;
        size_t i;
        int k, e = 0;

        for (k = 0; k < 3; k++) {
                bool any = false;

                /* Every child gets the step's signal at the same moment, then
                 * all are waited with one absolute deadline: in parallel.
                 * No link is read past @max: a single child's ladder runs
                 * without the lock that guards them. */
                for (c = first, i = 0; c && i < max; c = ++i < max ? c->next : NULL) {
                        if (child_running(c)) {
                                int e2 = pidfd_send_signal(c->pidfd, sigs[k], NULL, 0) < 0 &&
                                         errno != ESRCH ? -errno : 0;

                                /* A stopped child (SIGSTOP, a job's SIGTSTP,
                                 * a debugger's) keeps a handled SIGINT or
                                 * SIGTERM pending: continued, its handler
                                 * runs; SIGKILL ends it stopped or not. */
                                if (k < 2)
                                        (void)pidfd_send_signal(c->pidfd, SIGCONT, NULL, 0);
                                if (k == 2)
                                        __atomic_store_n(&c->kill_err, e2, __ATOMIC_RELAXED);
                                any = true;
                        }
                }
                if (!any)
                        return 0;
                /* After the SIGKILL a stop must still return: a child
                 * that could not be sent it (nothing will end it), or one
                 * that got it and cannot be reaped (a tracer that does not
                 * reap it, a freezer, uninterruptible sleep), is waited for
                 * a bounded time, then left running. */
                if (k < 2) {
                        deadline = t0 + (int64_t)(k + 1) * grace_ms * 1000000;
                } else {
                        deadline = child_kill_wait_end(grace_ms, first->fs->dying_ms);
                        stuck = child_kill_wait_end(grace_ms, BRD_FSRV_UNKILLABLE_MS);
                }
                for (c = first, i = 0; c && i < max; c = ++i < max ? c->next : NULL) {
                        int ke = k == 2 ? __atomic_load_n(&c->kill_err, __ATOMIC_RELAXED) : 0;

                        if (child_wait_until(c, ke ? stuck : deadline, false, false,
                                             NULL) == -ETIMEDOUT && k == 2 && !e)
                                e = ke ? ke : -ETIMEDOUT;
                }
        }
        return e;
}

BRD_EXPORT pid_t brd_child_pid(const struct brd_child *c)
{
        return c ? c->pid : -EINVAL;
}

BRD_EXPORT int brd_child_fd(const struct brd_child *c)
{
        if (!c)
                return -EINVAL;
        if (!brd__made_here(c->fork_gen, c->owner))
                return -EBADF;          /* the parent's child: its number is not ours */
        return c->pidfd >= 0 ? c->pidfd : -ECHILD;
}

BRD_EXPORT int brd_child_wait(struct brd_child *c, int timeout_ms, int *ret_status)
{
        int r;

        if (!c)
                return -EINVAL;
        if (!brd__made_here(c->fork_gen, c->owner))
                return -EBADF;          /* the parent's child, not ours */
        r = child_wait_until(c, brd__deadline(timeout_ms), true, c->eintr, ret_status);
        return r == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : r;
}

BRD_EXPORT int brd_child_kill(struct brd_child *c, int sig)
{
        int state;

        if (!c || sig < 0 || sig >= NSIG)
                return -EINVAL;
        if (!brd__made_here(c->fork_gen, c->owner))
                return -EBADF;
        pthread_mutex_lock(&c->lock);
        state = c->state;
        pthread_mutex_unlock(&c->lock);
        if (state != BRD_CHILD_RUNNING || c->pidfd < 0)
                return -ESRCH;
        /* A reap racing with us leaves the pidfd naming the dead process: ESRCH. */
        if (pidfd_send_signal(c->pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

BRD_EXPORT int brd_child_stop(struct brd_child *c, int grace_ms, int *ret_status)
{
        int e, r;

        if (!c || grace_ms < 0)
                return -EINVAL;
        if (!brd__made_here(c->fork_gen, c->owner))
                return -EBADF;
        e = brd__child_ladder(c, 1, grace_ms);
        r = child_wait_until(c, 0, true, false, ret_status);
        return r == -ETIMEDOUT && e ? e : r;
}

BRD_EXPORT void brd_child_free(struct brd_child *c)
{
        struct brd_fsrv *fs;

        if (!c)
                return;
        if (!brd__made_here(c->fork_gen, c->owner)) {
                /* Inherited through fork(): our copy of the pidfd and the
                 * memory; the process is the parent's business.  After a
                 * forkserver prelude the number is not ours any more. */
                if (!brd__fds_gone(c->fork_gen))
                        brd__close(c->pidfd);
                free(c);
                return;
        }
        if (c->linked) {
                /* Nothing outlives its handle: no zombie, no orphan; but a
                 * child that SIGKILL cannot reach (an LSM) is left running.
                 * Not a cancellation point (the wait's poll() is one): a
                 * thread cancelled there would leave the child killed but
                 * unreaped, still linked, and the forkserver referenced. */
                int cancel = brd__nocancel();

                if (child_running(c) &&
                    (pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0) == 0 || errno == ESRCH))
                        (void)child_wait_until(c, INT64_MAX, false, false, NULL);
                brd__cancel_restore(cancel);
                fs = c->fs;
                pthread_mutex_lock(&fs->lock);
                if (c->prev)
                        c->prev->next = c->next;
                else
                        fs->children = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                pthread_mutex_unlock(&fs->lock);
                brd__fsrv_unref(fs);
        }
        brd__close(c->pidfd);
        pthread_mutex_destroy(&c->lock);
        free(c);
}
