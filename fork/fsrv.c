/* SPDX-License-Identifier: MIT */
/*
 * The forkserver thread and the child's prelude.
 *
 * Hand-off: a caller queues a request under fs->lock and signals fs->work
 * (one futex wake when the thread sleeps).  The thread forks and never waits
 * for the child; the *caller* waits for the child's report (fork mode), or
 * on fs->done, which the thread broadcasts once the vfork-style exec child
 * has exec'd or died (exec mode).  The thread is free for the next request
 * while children run their prelude.
 *
 * The report (fork mode) is a store to the request's slot of a MAP_SHARED
 * page (struct brd_fsrv_slot): the caller spins on it for a bounded time
 * (BRD_SPAWN_SPIN_NS, yielding), which saves it a sleep and a 20-27 us
 * wake-up.  Only a caller that gave up spinning sleeps, on {report pipe,
 * pidfd}; it says so in the slot first, and the child writes the pipe only
 * then.  The pipe stays the fallback that also tells a death (EOF, or the
 * pidfd once a host's fork holds a copy of its write end).
 *
 * Lazy binding: a libc function first called in a fork-mode child would be
 * resolved there, in every child (the dynamic linker's lookup plus
 * copy-on-write faults: the prelude took 30 us instead of 17).  The first
 * brd_fsrv_start() binds them in the process once (fsrv_bind_once).  The
 * exec-mode child shares our memory (CLONE_VM), where a lookup would run
 * the dynamic linker on the parent's state: the calls only it makes go
 * through pointers filled at load (exec_execve...), not bound by calling
 * them (an execve() is a system call a sandbox may kill for).
 *
 * fork mode uses glibc's fork(): its atfork handling (malloc arenas, stdio,
 * brood's own fork state, the caller's handlers) is what makes running user
 * code in the child sound; a raw clone3 would skip it.  exec mode uses
 * clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD), like posix_spawn: the child
 * only makes syscalls on a private stack until execve, and the parent's page
 * tables are not copied.
 *
 * exit_signal (RELIABILITY A9, E3): 0 would hide a child from a host's
 * waitpid(-1) and from SIGCHLD = SIG_IGN auto-reaping, but execve() resets it
 * to SIGCHLD (de_thread(): "we have changed execution domain"), and fork
 * mode needs glibc's fork(), which always uses SIGCHLD.  So it protects only
 * the exec prelude: the clone uses 0 there, which guarantees that a child
 * dying before execve is ours to reap (spawn's -ECHILD/-errno path), and
 * every waitid passes __WALL.  Afterwards a stolen status is detected
 * (waitid -> ECHILD) and reported as -ECHILD at once.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/fork.h>
#include "internal/brd-private.h"
#include "internal/brd-fork.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FSRV_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FSRV_ASAN)
#define FSRV_ASAN 1
#endif
#ifdef FSRV_ASAN
#include <sanitizer/asan_interface.h>
#endif

extern char **environ;

/* Called through a pointer: a data relocation is bound at load time, so the
 * child's _exit does not go through a lazy PLT slot (see the file comment). */
static void (*volatile brd_child_exit)(int) = _exit;

/* One handle in BROOD_HANDLES: 6 hex fields of at most 16 digits and 6 separators. */
#define BRD_ENV_REC     (6 * 16 + 6)
/* The exec child's stack (CLONE_VM): a few frames of syscall wrappers and
 * execvpe's path buffer; generous for sanitizer builds.  execvpe() runs a
 * file without #! through /bin/sh with a copy of argv on the stack: a
 * longer argv gets BRD_EXEC_FRAMES plus that copy (req_prepare()). */
#define BRD_EXEC_STACK  (256 * 1024)
#define BRD_EXEC_FRAMES (128 * 1024)

enum { BRD_STAGE_START = 0, BRD_STAGE_EXEC = 1 };
/* The child's fd moves (child_place()): every handle's fds and the report. */
#define BRD_CHILD_MAX_MOVES (BRD_HANDLE_MAX_BATCH * BRD_HANDLE_MAX_FDS + 1)
_Static_assert(BRD_HANDLE_MAX_BATCH * BRD_HANDLE_MAX_FDS <= BRD__FORK_KEEP_MAX,
               "every handle fd of a child is looked at (brd__fork_drop_unhanded())");

struct brd_fsrv_req {
        struct brd_fsrv_req *next;
        char **argv;                    /* exec mode: the caller's argv, its pointers copied */
        /* What a fork-mode child reads of @o, copied: the caller's options
         * may sit in shared memory it did not hand the child, which the
         * prelude unmaps (brd__fork_drop_unhanded()). */
        brd_child_fn fn;
        void *arg;
        size_t nhandles;
        unsigned flags;
        char name[16];                  /* opts.name, cut as PR_SET_NAME does; "" = none */
        struct brd_handle *handles;     /* the child's view: fds 3, 4, 5... */
        int *keep;                      /* nkeep source fds */
        size_t nkeep;
        int report;                     /* pipe write end; the thread closes it */
        struct brd_fsrv_slot *slot;     /* fork mode: the stage word, NULL = pipe only */
        AO_t gen;                       /* this spawn's tag for slot->sleeping */
        char **envp;                    /* exec mode: filtered environment + our 2 slots */
        size_t stack_size;              /* exec mode: the child's stack */
        char *envbuf;                   /* "BROOD_HANDLES=...", written by the child */
        size_t envcap;
        char pidbuf[32];                /* "BROOD_HANDLES_PID=...", written by the child */
        pid_t parent;                   /* the forkserver's pid, for the getppid() re-check */
        bool set_nnp;                   /* the caller has no_new_privs (a no-op where the thread has) */
        const char *comm;               /* fork mode, no opts.name: the process's name */
        int crash_stage;
        int stage;                      /* exec child (shares our memory): BRD_STAGE_EXEC before execve */
        /* results, written by the thread under fs->lock */
        AO_t served;                    /* = done, also readable without the lock */
        bool done;
        int err;
        struct brd_child *child;
};

/* ----------------------------------------------- the report slots pages */
/*
 * Every forkserver of this process, listed by its report slots page under
 * the fork lock.  A fork-mode child unmaps them all once it has reported
 * (fsrv_slots_drop()), so that it keeps no page through which other spawns
 * report (RELIABILITY F35).  A page is mapped and listed, or unlisted and
 * unmapped, in one hold of the lock: no fork() sees one without the other.
 */
static struct brd__link *fsrv_all;      /* struct brd_fsrv's all */
#define FSRV_SLOTS_BYTES (BRD_FSRV_SLOTS * sizeof(struct brd_fsrv_slot))

static int fsrv_slots_map(struct brd_fsrv *fs)
{
        int r = 0;

        brd__fork_lock();
        fs->slots = mmap(NULL, FSRV_SLOTS_BYTES, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (fs->slots == MAP_FAILED) {
                r = -errno;
                fs->slots = NULL;
        } else {
                brd__link_push(&fsrv_all, &fs->all);
        }
        brd__fork_unlock();
        return r;
}

/* Unlist @fs and unmap its page (this process's copy, if still mapped). */
static void fsrv_slots_unmap(struct brd_fsrv *fs)
{
        brd__fork_lock();
        if (brd__link_listed(&fsrv_all, &fs->all))
                brd__link_del(&fsrv_all, &fs->all);
        if (fs->slots)
                munmap(fs->slots, FSRV_SLOTS_BYTES);
        fs->slots = NULL;
        brd__fork_unlock();
}

/* A fork-mode child, after its report: single-threaded, the list as the
 * fork found it.  The inherited objects stay listed, for their stop. */
static void fsrv_slots_drop(void)
{
        struct brd__link *l;

        for (l = fsrv_all; l; l = l->next) {
                struct brd_fsrv *fs = BRD__LINK_ENTRY(l, struct brd_fsrv, all);

                if (fs->slots)
                        (void)munmap(fs->slots, FSRV_SLOTS_BYTES);
                fs->slots = NULL;
        }
}

/* ------------------------------------------------------------ the child */
/*
 * Everything from here to execve/fn runs in the child of fork() or of a
 * CLONE_VM clone: async-signal-safe calls only, no allocation, and (CLONE_VM)
 * no write to memory other than the request and the private stack.
 */

static __attribute__((noreturn)) void child_exit(int code)
{
        brd_child_exit(code);
        __builtin_unreachable();
}

static void child_crash(void)
{
        /* A crash, not an exit: the tests of RELIABILITY A5 need a death by signal. */
        kill(getpid(), SIGKILL);
        child_exit(127);
}

/*
 * 4 bytes into a pipe are written whole; if it fails there is nobody to
 * tell.  Called with every signal blocked: see child_report().
 */
static void child_write_report(int fd, int v)
{
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        ssize_t r;

        do
                r = write(fd, &v, sizeof(v));
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EPIPE) {
                /* Drop the SIGPIPE this raised while it is still blocked:
                 * setting SIG_IGN discards a pending signal (POSIX), and
                 * sigaction is async-signal-safe, sigtimedwait is not. */
                sigemptyset(&ign.sa_mask);
                if (sigaction(SIGPIPE, &ign, &old) == 0)
                        (void)sigaction(SIGPIPE, &old, NULL);
        }
}

/*
 * v: 0 reached fn, < 0 -errno.  Called with every signal blocked, and the
 * mask is emptied only after it returned: both sides of the Dekker can see
 * the other's store, so the caller may have taken the result from the slot
 * and closed the read end before our write, which then fails with EPIPE and
 * raises a SIGPIPE that must not kill a child whose spawn succeeded.
 */
static void child_report(struct brd_fsrv_req *q, int fd, int v)
{
        if (q->slot) {
                AO_store(&q->slot->stage, v ? (AO_t)(intptr_t)v : 1);
                AO_nop_full();          /* Dekker with the caller's sleeping/stage */
                /* Otherwise it saw the store while spinning. */
                if (AO_load(&q->slot->sleeping) == q->gen)
                        child_write_report(fd, v);
        } else {
                child_write_report(fd, v);
        }
        if (q->crash_stage == BRD__STALL_REPORT && !v) {
                char b;

                /* Testing: once the caller has returned, write again, as in
                 * the race above: the read end is closed. */
                while (read(3, &b, 1) < 0 && errno == EINTR)
                        ;
                child_write_report(fd, v);
        }
}

static __attribute__((noreturn)) void child_fail(struct brd_fsrv_req *q, int fd, int e)
{
        sigset_t all;

        /* After a failed execve the mask is empty already: block again, so
         * that no signal (SIGPIPE from the report included) ends us before
         * the _exit, and the caller reads our errno, not a death. */
        sigfillset(&all);
        (void)sigprocmask(SIG_SETMASK, &all, NULL);
        child_report(q, fd, e);
        child_exit(127);
}

/* A directory entry's name as an fd number; false if it is none. */
static bool child_fd_name(const char *name, unsigned *ret_fd)
{
        unsigned v = 0;

        if (!*name)
                return false;
        for (; *name; name++) {
                if (*name < '0' || *name > '9' || v > (~0u - 9) / 10)
                        return false;
                v = v * 10 + (unsigned)(*name - '0');
        }
        *ret_fd = v;
        return true;
}

/* Close the fds in @lo..@hi that /proc/self/fd lists (getdents64 into a
 * buffer on this stack: no allocation).  0, or -1 if it could not be read
 * to its end. */
static int child_close_listed(unsigned lo, unsigned hi)
{
        char buf[1024] __attribute__((aligned(8)));
        int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ssize_t n, off;
        unsigned fd;

        if (dfd < 0)
                return -1;
        while ((n = getdents64(dfd, buf, sizeof(buf))) > 0) {
                for (off = 0; off < n; off += ((struct dirent64 *)(void *)(buf + off))->d_reclen) {
                        const struct dirent64 *d = (const void *)(buf + off);

                        if (child_fd_name(d->d_name, &fd) && fd >= lo && fd <= hi &&
                            fd != (unsigned)dfd)
                                (void)close((int)fd);
                }
        }
        (void)close(dfd);
        return n < 0 ? -1 : 0;
}

/*
 * Close fds @lo..@hi.  Without close_range (Linux < 5.9): those that
 * /proc/self/fd lists, and where it cannot be read, one by one up to the
 * fd limit (which misses any fd above a limit that was lowered).
 */
static void child_close_range(unsigned lo, unsigned hi)
{
        struct rlimit rl;
        unsigned fd, max = 1u << 20;

        if (close_range(lo, hi, 0) == 0 || child_close_listed(lo, hi) == 0)
                return;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
                max = (unsigned)rl.rlim_cur;
        for (fd = lo; fd <= hi && fd < max; fd++)
                (void)close((int)fd);
}

/* true if a pending move (src[i] >= 0) reads @fd. */
static bool child_fd_read(const int *src, int m, int fd)
{
        int i;

        for (i = 0; i < m; i++)
                if (src[i] == fd)
                        return true;
        return false;
}

/* Close every fd from @lo up that no move reads. */
static void child_close_unread(const int *src, int m, int lo)
{
        int i, next;

        for (;;) {
                next = -1;
                for (i = 0; i < m; i++)
                        if (src[i] >= lo && (next < 0 || src[i] < next))
                                next = src[i];
                if (next < 0) {
                        child_close_range((unsigned)lo, ~0U);
                        return;
                }
                if (next > lo)
                        child_close_range((unsigned)lo, (unsigned)next - 1);
                lo = next + 1;
        }
}

/*
 * Make the moves from move @i on whose targets no pending move reads:
 * each one done may free the target another waited on (wait[]).  A source
 * at or above 3 + @m goes once no move reads it.
 */
static int child_move_chain(int *src, int *wait, int m, int i, bool exec)
{
        int s, t, r;
        bool inherit;

        while (i >= 0 && src[i] >= 0 && !wait[i]) {
                s = src[i];
                t = 3 + i;
                /* exec: the kept fds lose CLOEXEC, so exactly they reach the
                 * program; fork: they keep it like every fd brood makes.  The
                 * report (the last move) is CLOEXEC in both. */
                inherit = exec && i < m - 1;
                if (s == t)
                        r = fcntl(t, F_SETFD, inherit ? 0 : FD_CLOEXEC);
                else
                        r = dup3(s, t, inherit ? 0 : O_CLOEXEC);
                if (r < 0)
                        return -errno;
                src[i] = -1;
                i = -1;
                if (s >= 3 && s < 3 + m && s != t) {
                        if (--wait[s - 3] == 0)
                                i = s - 3;      /* the move that waited on s */
                } else if (s >= 3 + m && !child_fd_read(src, m, s)) {
                        (void)close(s);
                }
        }
        return 0;
}

/*
 * Put src[i] at fd 3 + i for i < @m (the kept fds, then the report pipe),
 * with as few fds open as can be: a parallel move, as a register allocator
 * resolves one.  First every fd from 3 + @m up that no move reads goes
 * (a process may hold many); then the moves are made in chains, each made
 * once no pending move reads its target (wait[]: how many do); what is
 * left are cycles, each broken through one spare fd.  So the child never
 * holds more than 4 + @m fds, which brd_fsrv_spawn() checks against
 * RLIMIT_NOFILE before it forks.
 */
static int child_place(int *src, int *wait, int m, bool exec)
{
        int i, j, spare, e;

        child_close_unread(src, m, 3 + m);
        for (i = 0; i < m; i++)
                wait[i] = 0;
        for (i = 0; i < m; i++)
                if (src[i] >= 3 && src[i] < 3 + m && src[i] != 3 + i)
                        wait[src[i] - 3]++;
        for (i = 0; i < m; i++) {
                e = child_move_chain(src, wait, m, i, exec);
                if (e)
                        return e;
        }
        /* Only cycles are left: every pending target is read by exactly one
         * pending move.  The spare is free below 3 or from 3 + m up (the
         * targets are all taken); below 3 it is closed with stdio's
         * close-on-exec fds, above by the chain. */
        for (i = 0; i < m; i++) {
                if (src[i] < 0)
                        continue;
                spare = fcntl(3 + i, F_DUPFD_CLOEXEC, 0);
                if (spare < 0)
                        return -errno;
                for (j = 0; j < m; j++)
                        if (src[j] == 3 + i)
                                src[j] = spare;
                wait[i] = 0;
                e = child_move_chain(src, wait, m, i, exec);
                if (e)
                        return e;
        }
        return 0;
}

/*
 * prctl() by its system call: a sanitizer's prctl interceptor records
 * PR_SET_NAME under its thread-registry lock, which another thread of the
 * parent may have held at the fork (the child then hung there for good).
 */
static int child_prctl(int op, unsigned long arg)
{
        return (int)syscall(SYS_prctl, op, arg, 0UL, 0UL, 0UL);
}

/*
 * Point fds 0-2 at /dev/null: every one (@all: BRD_SPAWN_NULL_STDIO, whose
 * failure fails the spawn), or those closed (in the parent, or by the
 * prelude), best effort: left free, the child's first open() would take the
 * number, and its stdio (perror, printf) would write into that file, a
 * segment's memfd say; where /dev/null cannot be had, they stay closed.
 */
static void child_null_stdio(struct brd_fsrv_req *q, int rep, bool all)
{
        bool closed[3];
        int i, fd;

        for (i = 0; i < 3; i++)
                closed[i] = fcntl(i, F_GETFD) < 0;
        if (!all && !closed[0] && !closed[1] && !closed[2])
                return;
        /* Lands on the lowest closed slot, if any: one it fills. */
        fd = open("/dev/null", O_RDWR);
        if (fd < 0) {
                if (all)
                        child_fail(q, rep, -errno);
                return;
        }
        for (i = 0; i < 3; i++)
                if ((all || closed[i]) && fd != i && dup2(fd, i) < 0 && all)
                        child_fail(q, rep, -errno);
        if (fd > 2)
                (void)close(fd);
}

/*
 * Returns the report fd (3 + nkeep), with every signal still blocked: the
 * caller empties the mask after its report (child_report) or right before
 * execve.  On failure reports and _exits.
 */
static int child_prelude(struct brd_fsrv_req *q, bool exec)
{
        int n = (int)q->nkeep, rep, i, fd, e;
        /* On the stack (2 KiB), not in the request: the child then writes
         * no heap page, each of which would cost it a copy-on-write fault. */
        int src[BRD_CHILD_MAX_MOVES], wait[BRD_CHILD_MAX_MOVES];
        /* An empty name is none: kept, it would leave the forkserver
         * thread's ("brd-fsrv"), which the child must never carry. */
        const char *name = q->name[0] ? q->name : q->comm;
        struct sigaction dfl;

        if (q->crash_stage == BRD__CRASH_AFTER_CLONE)
                child_crash();
        for (i = 0; i < n; i++)
                src[i] = q->keep[i];
        src[n] = q->report;
        e = child_place(src, wait, n + 1, exec);
        if (e)
                child_fail(q, src[n] >= 0 ? src[n] : 3 + n, e);       /* where the report is */
        rep = 3 + n;
        /*
         * fds 0-2 that are close-on-exec are not stdio: with stdio closed,
         * brood's own fds (a segment's memfd, this spawn's report pipe) or
         * the host's take those numbers.  exec closes them; fork mode must
         * too, or the child would hold what it was not handed.
         */
        for (fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) > 0)
                        (void)close(fd);
        /* fork mode: tell the objects inherited from the parent that their
         * fd numbers are gone (they may be the handles' numbers now).  Not
         * in exec mode: that child shares our memory (CLONE_VM) but not our
         * fd table, and the objects are ours, their fds intact. */
        if (!exec) {
                brd__fork_fds_closed();
                /* And the memory it was not handed goes too (F35). */
                brd__fork_drop_unhanded(3, n);
        }
        child_null_stdio(q, rep, q->flags & BRD_SPAWN_NULL_STDIO);
        /* Every signal is still blocked (the thread's mask): no handler of the
         * parent can run while the dispositions are reset. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (i = 1; i < NSIG; i++)
                if (i != SIGKILL && i != SIGSTOP)
                        (void)sigaction(i, &dfl, NULL);  /* glibc's own (32, 33) answer EINVAL */
        if (q->set_nnp && child_prctl(PR_SET_NO_NEW_PRIVS, 1) < 0)
                child_fail(q, rep, -errno);
        /* exec mode: execve names the process after the program anyway. */
        if (!exec && name && name[0])
                (void)child_prctl(PR_SET_NAME, (unsigned long)name);
        if (!(q->flags & BRD_SPAWN_NO_PDEATHSIG)) {
                if (child_prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        child_fail(q, rep, -errno);
                /* The parent may have died before PDEATHSIG was armed: then we
                 * were reparented and the signal will never come.  (The
                 * parent is in our pid namespace: a process that unshared
                 * one for its children cannot start the forkserver's thread,
                 * and a thread's unshare is its own.) */
                if (getppid() != q->parent)
                        child_crash();
        }
        if (q->crash_stage == BRD__CRASH_BEFORE_ENTRY)
                child_crash();
        return rep;
}

static void child_unblock(void)
{
        sigset_t none;

        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static __attribute__((noreturn)) void child_fork_main(struct brd_fsrv_req *q)
{
        int rep = child_prelude(q, false);

        child_report(q, rep, 0);        /* reached fn */
        (void)close(rep);
        fsrv_slots_drop();
        child_unblock();                /* only now: see child_report() */
        child_exit(q->fn(q->arg, q->handles, q->nhandles) & 0xff);
}

/* See "Lazy binding" above: data relocations, done at load, never lazily;
 * volatile, or the compiler would call the functions directly again. */
static int (*volatile exec_execve)(const char *, char *const[], char *const[]) = execve;
static int (*volatile exec_execvpe)(const char *, char *const[], char *const[]) = execvpe;
static int (*volatile exec_env_encode)(const struct brd_handle *, size_t, pid_t, char *, size_t,
                                       char *, size_t) = brd_handle_env_encode;

static int child_exec_main(void *arg)
{
        struct brd_fsrv_req *q = arg;
        int rep = child_prelude(q, true), e;

        if (q->nhandles) {
                /* The description names this pid: a grandchild that inherits
                 * the environment does not mistake it for its own. */
                e = exec_env_encode(q->handles, q->nhandles, getpid(),
                                          q->envbuf, q->envcap, q->pidbuf, sizeof(q->pidbuf));
                if (e < 0)
                        child_fail(q, rep, e);
        }
        if (q->crash_stage == BRD__STOP_BEFORE_EXEC)
                kill(getpid(), SIGSTOP);        /* never blocked: stops here */
        q->stage = BRD_STAGE_EXEC;      /* read by the caller once we exec'd or died */
        child_unblock();                /* the program starts with an empty mask */
        if (strchr(q->argv[0], '/'))
                exec_execve(q->argv[0], q->argv, q->envp);
        else
                exec_execvpe(q->argv[0], q->argv, q->envp);
        child_fail(q, rep, -errno);
}

/* ----------------------------------------------------------- the thread */

/*
 * Under ASan only: the exec-mode child ran instrumented code on fs->stack,
 * sharing our shadow memory (CLONE_VM), and left by execve() without
 * returning, so the redzones of its frames stay poisoned.  Clear them, or
 * whatever is mapped at those addresses after the stack's munmap reads as
 * a stack overflow.
 */
static void fsrv_stack_clean(struct brd_fsrv *fs)
{
#ifdef FSRV_ASAN
        ASAN_UNPOISON_MEMORY_REGION(fs->stack, fs->stack_size);
#else
        (void)fs;
#endif
}

/*
 * true if @pid is still a child of this thread, alive or a zombie: then it
 * cannot have been reused, and a pidfd opened before names it.  __WNOTHREAD:
 * a process the host forked from another thread, under a recycled pid, is
 * the process's child too, but not this thread's.
 */
static bool fsrv_child_unreaped(pid_t pid)
{
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT | __WALL | __WNOTHREAD) == 0;
}

/*
 * Reap our child @pid, SIGKILLed, which we hold no pidfd of: waiting at
 * most @ms, with naps of 0.1 ms doubling to 16 ms (no pidfd to sleep on).
 * One that cannot be reaped by then (traced by a process that does not
 * reap it, frozen, in uninterruptible sleep) is left unreaped, as a stop
 * leaves one (BRD_FSRV_DYING_MS): a wait without a bound held this thread,
 * and so every spawn and the stop, for as long as it could not be.
 */
static void fsrv_reap_killed(pid_t pid, int ms)
{
        int64_t end = brd__now_ns() + (int64_t)ms * 1000000, nap = 100000, now;
        pid_t r;

        for (;;) {
                r = waitpid(pid, NULL, WNOHANG | __WALL | __WNOTHREAD);
                if (r == pid || (r < 0 && errno != EINTR))
                        return;
                now = brd__now_ns();
                if (now >= end)
                        return;
                if (r == 0) {
                        (void)brd__poll_wait(-1, 0, end - now > nap ? now + nap : end, false);
                        nap = nap < 16000000 ? 2 * nap : nap;
                }
        }
}

/* Map the exec children's stack: @size bytes, a guard page at the bottom,
 * not inherited by fork-mode children (nor by any fork() meanwhile: the
 * mapping is marked under the fork lock). */
static int fsrv_stack_map(struct brd_fsrv *fs, size_t size)
{
        void *st;

        brd__fork_lock();
        st = mmap(NULL, size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        if (st != MAP_FAILED)
                (void)madvise(st, size, MADV_DONTFORK);
        brd__fork_unlock();
        if (st == MAP_FAILED)
                return -errno;
        (void)mprotect(st, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE);
        if (fs->stack)
                munmap(fs->stack, fs->stack_size);
        fs->stack = st;
        fs->stack_size = size;
        return 0;
}

/* A failed pidfd_open() of our child, or clone(CLONE_PIDFD) of an exec
 * child (@e: its errno), as brd_fsrv_spawn() answers it: out of fds,
 * memory or processes as such; any other refusal (seccomp's EPERM, an LSM's
 * EACCES, ENOSYS or EINVAL on a kernel without pidfds) means this process
 * cannot have the pidfds its children are watched through: -ENOSYS, not an
 * errno that spawn gives another meaning (-EPERM: the caller's seccomp
 * filters). */
static int pidfd_err(int e)
{
        return e == EMFILE || e == ENFILE || e == ENOMEM || e == EAGAIN ? -e : -ENOSYS;
}

static void fsrv_serve(struct brd_fsrv *fs, struct brd_fsrv_req *q)
{
        struct brd_child *c = q->child;
        int pidfd = -1, err = 0;
        pid_t pid;

        q->parent = fs->pid;
        if (q->argv && q->stack_size > fs->stack_size)
                err = fsrv_stack_map(fs, q->stack_size);
        if (err) {
                pid = -1;
        } else if (q->argv) {
                /* exit_signal 0 (the low byte of flags) until execve: see the file comment. */
                pid = clone(child_exec_main, (char *)fs->stack + fs->stack_size,
                            CLONE_VM | CLONE_VFORK | CLONE_PIDFD, q, (int *)&fs->vfork_pidfd);
                if (pid < 0)
                        err = pidfd_err(errno);
                /* Taken back before anything may close it: a stop that reads
                 * it (under the lock) signals this very child. */
                pthread_mutex_lock(&fs->lock);
                pidfd = pid < 0 ? -1 : (int)fs->vfork_pidfd;
                fs->vfork_pidfd = (unsigned)-1;
                pthread_mutex_unlock(&fs->lock);
                fsrv_stack_clean(fs);   /* the child exec'd or died (CLONE_VFORK) */
        } else {
                pid = fork();
                if (pid == 0)
                        child_fork_main(q);
                /* The child has its write end: ours goes first, so the
                 * pidfd can take its number (a caller with two fds to
                 * spare has room for the pipe, then the pidfd; that one
                 * failed, and every retry forked a child to kill). */
                brd__close(q->report);
                q->report = -1;
                if (pid < 0) {
                        err = -errno;
                } else {
                        /* At once: until the pidfd exists the pid is only safe
                         * because the child is ours and unreaped. */
                        pidfd = pidfd_open(pid, 0);
                        err = pidfd < 0 ? pidfd_err(errno) : 0;
                        if (!fsrv_child_unreaped(pid)) {
                                /* A host's waitpid(-1) (or SIGCHLD = SIG_IGN)
                                 * was faster: the pid, and a pidfd of it, may
                                 * name another process by now. */
                                if (pidfd >= 0)
                                        brd__close(pidfd);
                                pidfd = -1;
                                err = 0;
                                c->state = BRD_CHILD_LOST;
                        } else if (pidfd < 0) {
                                /* __WNOTHREAD: reaped by the host meanwhile,
                                 * the pid may be a child of another thread's
                                 * now, which is not ours to wait for.  A kill
                                 * an LSM refuses leaves the child (as a stop
                                 * leaves one): waited for, it would hold
                                 * this thread, and every spawn, while it
                                 * runs its fn. */
                                if (kill(pid, SIGKILL) == 0 || errno == ESRCH)
                                        fsrv_reap_killed(pid, fs->dying_ms);
                        }
                }
        }
        brd__close(q->report);
        q->report = -1;
        c->pid = pid;
        c->pidfd = pidfd;
        q->err = err;
}

/* See "Lazy binding" in the file comment: every libc function of the
 * fork-mode prelude, called once with arguments that fail at once or only
 * read.  Keep in sync with child_prelude()/child_report(). */
static void fsrv_bind(void)
{
        /* Volatile both: strchr() is pure, and would be folded, or
         * dropped with its result unused. */
        const char *volatile none = "", *volatile slash;
        struct stat st;
        struct sigaction sa;
        struct rlimit rl;
        sigset_t set;
        int e = errno, x;

        (void)fcntl(-1, F_GETFD);
        (void)dup2(-1, -1);
        (void)dup3(-1, -1, 0);
        (void)close_range(1, 0, 0);             /* first > last: EINVAL */
        (void)getdents64(-1, &x, 0);            /* EBADF: child_close_listed() */
        (void)close(-1);
        (void)open("", O_RDONLY | O_CLOEXEC);   /* ENOENT */
        (void)fstat(-1, &st);                   /* EBADF: brd__fork_drop_unhanded() */
        (void)munmap(NULL, 0);                  /* EINVAL */
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        (void)sigaction(0, NULL, &sa);          /* EINVAL */
        (void)sigemptyset(&set);
        (void)sigfillset(&set);
        (void)sigprocmask(SIG_BLOCK, NULL, &set);
        (void)child_prctl(PR_GET_PDEATHSIG, (unsigned long)&x);
        (void)getppid();
        (void)kill(getpid(), 0);
        (void)write(-1, "", 0);                 /* EBADF */
        (void)read(-1, NULL, 0);                /* EBADF; BRD__STALL_REPORT */
        (void)sched_yield();                    /* the callers' spins */
        slash = strchr(none, '/');              /* child_exec_main(), in the CLONE_VM child */
        (void)slash;
        errno = e;
}

static pthread_once_t fsrv_bind_once = PTHREAD_ONCE_INIT;

/* The process's name (its main thread's comm), which fork-mode children
 * without opts.name take instead of the forking thread's "brd-fsrv".  The
 * calling thread's own name if /proc is not there. */
static void fsrv_read_comm(char comm[16])
{
        ssize_t k = -1;
        int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                do
                        k = read(fd, comm, 15);
                while (k < 0 && errno == EINTR);
                brd__close(fd);
        }
        if (k > 0) {
                comm[k] = 0;
                comm[strcspn(comm, "\n")] = 0;
        } else if (prctl(PR_GET_NAME, (unsigned long)comm, 0, 0, 0) < 0) {
                comm[0] = 0;
        }
        comm[15] = 0;
}

static void *fsrv_main(void *arg)
{
        struct brd_fsrv *fs = arg;
        struct brd_fsrv_req *q;

        AO_int_store(&fs->tid, (unsigned)gettid());    /* spawn_confinement() reads our status */
        pthread_mutex_lock(&fs->lock);
        for (;;) {
                while (!fs->head && !fs->quit)
                        pthread_cond_wait(&fs->work, &fs->lock);
                q = fs->head;
                if (!q)
                        break;
                fs->head = q->next;
                if (!fs->head)
                        fs->tail = NULL;
                if (fs->stopping) {
                        brd__close(q->report);
                        q->report = -1;
                        q->err = -ESHUTDOWN;
                } else {
                        /* Fork with no lock held: the child must not inherit a
                         * held fs->lock, and callers must not wait on a fork. */
                        fs->busy = true;
                        pthread_mutex_unlock(&fs->lock);
                        fsrv_serve(fs, q);
                        pthread_mutex_lock(&fs->lock);
                        fs->busy = false;
                        if (!q->err) {
                                struct brd_child *c = q->child;

                                c->prev = NULL;
                                c->next = fs->children;
                                if (fs->children)
                                        fs->children->prev = c;
                                fs->children = c;
                                c->linked = true;
                                AO_fetch_and_add1(&fs->refs);
                        }
                }
                q->done = true;
                AO_store_release(&q->served, 1);
                pthread_cond_broadcast(&fs->done);
        }
        pthread_mutex_unlock(&fs->lock);
        return NULL;
}

/* This thread's seccomp mode; a filter that refuses prctl() proves one. */
static int thread_seccomp(void)
{
        int m = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);

        return m < 0 ? SECCOMP_MODE_FILTER : m;
}

/* A thread's seccomp mode and filter count from its status file @path, in
 * one read of it: 0, -errno where it cannot be read, -ENOENT where it has
 * no mode; *@ret_filters -1 where the kernel does not count them (before
 * Linux 5.9).  Past the Groups line, which hundreds of groups make longer
 * than a page (a first page alone made the count unknown, and a thread
 * with a filter more than the forkserver's passed). */
static int status_seccomp(const char *path, int *ret_mode, int *ret_filters)
{
        char mode[32], count[32];
        struct brd__status_key k[2] = { { "Seccomp:", mode, sizeof(mode), false },
                                         { "Seccomp_filters:", count, sizeof(count), false } };
        int r = brd__proc_status(path, k, 2);

        if (r < 0)
                return r;
        if (!k[0].found)
                return -ENOENT;
        *ret_mode = atoi(mode);
        *ret_filters = k[1].found ? atoi(count) : -1;
        return 0;
}

/*
 * The calling thread's confinement against the forkserver thread's.
 * Children are the forkserver thread's: a seccomp filter that the calling
 * thread has and it lacks (installed since, in the calling thread alone)
 * would not reach them, so the spawn is refused (-EPERM) rather than let a
 * child escape it: a higher mode, or more filters where the kernel counts
 * them (a filter installed with TSYNC reached the forkserver thread too,
 * and passes).  Both threads are read as they are now; the forkserver
 * thread's as it was at start where its status cannot be read.
 * no_new_privs, which only tightens, is carried into the child
 * (*@ret_nnp).  The rest of a thread's own state is the forkserver
 * thread's (fork.h).
 */
static int spawn_confinement(const struct brd_fsrv *fs, bool *ret_nnp)
{
        int mode = thread_seccomp(), smode, n = -1, sn = -1, e;
        unsigned tid = AO_int_load(&fs->tid);
        char path[64];

        *ret_nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
        if (mode == SECCOMP_MODE_DISABLED)
                return 0;               /* nothing to escape */
        /* Not running yet (a spawn right after start) or unreadable: as it
         * was at start, which is no more than it is now (filters are only
         * ever added), so the check can only be stricter. */
        snprintf(path, sizeof(path), "/proc/self/task/%u/status", tid);
        if (!tid || status_seccomp(path, &smode, &sn) < 0) {
                smode = fs->seccomp;
                sn = fs->seccomp_filters;
        }
        if (mode > smode)
                return -EPERM;
        /* Out of fds or memory, or a signal: no verdict, and no spawn
         * without one. */
        e = status_seccomp("/proc/thread-self/status", &mode, &n);
        if (e == -EMFILE || e == -ENFILE || e == -ENOMEM || e == -EAGAIN)
                return e;
        if (e == 0 && n >= 0 && sn >= 0 && n > sn)
                return -EPERM;
        return 0;
}

/* Whether brd_fsrv_stop() has begun. */
static bool fsrv_stopping(struct brd_fsrv *fs)
{
        bool stopping;

        pthread_mutex_lock(&fs->lock);
        stopping = fs->stopping;
        pthread_mutex_unlock(&fs->lock);
        return stopping;
}

/*
 * The caller's fd table and fs (cwd, root, umask) must be the forkserver
 * thread's: the spawn's fd numbers (its handles, the report pipe) are the
 * caller's, and the child copies the thread's table and fs.  A caller that
 * unshared either (unshare(CLONE_FILES or CLONE_FS)) would hand the child
 * another table's fds, and close a number of the thread's table: -EPERM.
 * Unknown (the thread not running yet, no kcmp(): a kernel without
 * CONFIG_KCMP) is taken for the same.
 */
static int spawn_same_tables(const struct brd_fsrv *fs)
{
        pid_t tid = (pid_t)AO_int_load(&fs->tid), me = gettid();

        if (!tid || tid == me)
                return 0;
        if (syscall(SYS_kcmp, me, tid, KCMP_FILES, 0, 0) > 0 ||
            syscall(SYS_kcmp, me, tid, KCMP_FS, 0, 0) > 0)
                return -EPERM;
        return 0;
}

BRD_EXPORT int brd_fsrv_start(unsigned flags, struct brd_fsrv **ret_fsrv)
{
        struct brd_fsrv *fs;
        sigset_t all, old;
        int r;

        if ((flags & ~(unsigned)BRD_FSRV_EINTR) || !ret_fsrv)
                return -EINVAL;
        r = brd__fork_ready();
        if (r)
                return r;
        fs = calloc(1, sizeof(*fs));
        if (!fs)
                return -ENOMEM;
        pthread_mutex_init(&fs->lock, NULL);
        pthread_cond_init(&fs->work, NULL);
        pthread_cond_init(&fs->done, NULL);
        fs->vfork_pidfd = (unsigned)-1;
        fs->refs = 1;                   /* the owner's */
        fs->flags = flags;
        fs->fork_gen = brd__fork_gen();
        fs->pid = brd__getpid();
        fsrv_read_comm(fs->comm);      /* before the thread renames itself */
        fs->seccomp = thread_seccomp(); /* the thread's, which it inherits */
        if (status_seccomp("/proc/thread-self/status", &fs->seccomp, &fs->seccomp_filters) < 0)
                fs->seccomp_filters = -1;
        fs->dying_ms = BRD_FSRV_DYING_MS;
        pthread_once(&fsrv_bind_once, fsrv_bind);
        /* The report slots: shared with every fork-mode child until it reported. */
        r = fsrv_slots_map(fs);
        if (r < 0)
                goto fail;
        r = fsrv_stack_map(fs, BRD_EXEC_STACK);
        if (r < 0)
                goto fail;
        /* The thread inherits the creator's mask: block everything around the
         * create so that no signal of the host is ever handled on it, and
         * every child starts from a fully blocked mask until its reset. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&fs->thread, NULL, fsrv_main, fs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r)
                goto fail;
        (void)pthread_setname_np(fs->thread, "brd-fsrv");
        *ret_fsrv = fs;
        return 0;
fail:
        brd__fsrv_destroy(fs);
        return r;
}

void brd__fsrv_destroy(struct brd_fsrv *fs)
{
        if (!fs)
                return;
        if (fs->stack)
                munmap(fs->stack, fs->stack_size);
        fsrv_slots_unmap(fs);
        pthread_cond_destroy(&fs->done);
        pthread_cond_destroy(&fs->work);
        pthread_mutex_destroy(&fs->lock);
        free(fs);
}

void brd__fsrv_set_crash_stage(struct brd_fsrv *fs, int stage)
{
        fs->crash_stage = stage;
}

void brd__fsrv_set_dying_ms(struct brd_fsrv *fs, int ms)
{
        fs->dying_ms = ms;
}

static int opts_check(const struct brd_spawn_opts *o, size_t *ret_nkeep)
{
        size_t i, k = 0;
        uint32_t j;

        if (!o || !o->fn == !o->argv || (o->argv && !o->argv[0]))
                return -EINVAL;
        if (o->flags & ~(unsigned)(BRD_SPAWN_NULL_STDIO | BRD_SPAWN_NO_PDEATHSIG))
                return -EINVAL;
        if (o->nhandles > BRD_HANDLE_MAX_BATCH || (o->nhandles && !o->handles))
                return -EINVAL;
        /* Every argument first (-EINVAL before any syscall), then the fds. */
        for (i = 0; i < o->nhandles; i++) {
                const struct brd_handle *h = &o->handles[i];

                /* fork mode does not interpret handles (NONE: plain fds);
                 * exec mode must describe them.  One closed is neither. */
                if (h->kind == BRD_HANDLE_CLOSED)
                        return -EBADF;
                if (h->nfds > BRD_HANDLE_MAX_FDS || (o->argv && !brd__handle_kind_known(h->kind)))
                        return -EINVAL;
                for (j = 0; j < h->nfds; j++)
                        if (h->fds[j] < 0)
                                return -EINVAL;
                k += h->nfds;
        }
        /* Open, each: a closed number could be the report pipe's by the
         * time the child is made, and the child would take that pipe for
         * the handle. */
        for (i = 0; i < o->nhandles; i++) {
                for (j = 0; j < o->handles[i].nfds; j++)
                        if (fcntl(o->handles[i].fds[j], F_GETFD) < 0)
                                return -EBADF;
                /* A stale copy: its numbers are other files' now. */
                if (brd__handle_current(&o->handles[i]) < 0)
                        return -EBADF;
        }
        *ret_nkeep = k;
        return 0;
}

static bool env_is_ours(const char *e)
{
        return !strncmp(e, BRD_HANDLE_ENV "=", sizeof(BRD_HANDLE_ENV)) ||
               !strncmp(e, BRD_HANDLE_ENV_PID "=", sizeof(BRD_HANDLE_ENV_PID));
}

/* Everything the child needs, in memory, before the fork: the child allocates nothing. */
static int req_prepare(struct brd_fsrv_req *q, const struct brd_spawn_opts *o, size_t nkeep)
{
        char *const *src;
        size_t i, k = 0, n = 0, m = 0, page;
        uint32_t j;
        int fd = 3;

        q->fn = o->fn;
        q->arg = o->arg;
        q->nhandles = o->nhandles;
        q->flags = o->flags;
        if (o->name)
                strncpy(q->name, o->name, sizeof(q->name) - 1);
        q->nkeep = nkeep;
        q->report = -1;
        if (o->nhandles) {
                q->handles = calloc(o->nhandles, sizeof(*q->handles));
                q->keep = calloc(nkeep + 1, sizeof(int));   /* + 1: never calloc(0) */
                if (!q->handles || !q->keep)
                        return -ENOMEM;
                for (i = 0; i < o->nhandles; i++) {
                        q->handles[i] = o->handles[i];
                        for (j = 0; j < BRD_HANDLE_MAX_FDS; j++) {
                                if (j < o->handles[i].nfds) {
                                        q->keep[k++] = o->handles[i].fds[j];
                                        q->handles[i].fds[j] = fd++;
                                } else {
                                        q->handles[i].fds[j] = -1;
                                }
                        }
                }
        }
        if (!o->argv)
                return 0;
        /* The pointers copied (the stack is sized for this many, and
         * execvpe()'s script fallback puts argc + 2 of them on it); the
         * strings, which execve() copies, are the caller's. */
        while (o->argv[n])
                n++;
        q->argv = malloc((n + 1) * sizeof(char *));
        if (!q->argv)
                return -ENOMEM;
        memcpy(q->argv, o->argv, n * sizeof(char *));
        q->argv[n] = NULL;
        if (!q->argv[0])
                return -EINVAL;         /* emptied since opts_check() */
        q->stack_size = BRD_EXEC_FRAMES + (n + 2) * sizeof(char *);
        if (q->stack_size < BRD_EXEC_STACK)
                q->stack_size = BRD_EXEC_STACK;
        page = (size_t)sysconf(_SC_PAGESIZE);
        q->stack_size = (q->stack_size + page - 1) / page * page;
        n = 0;
        /* A filtered copy: descriptions inherited from an ancestor go, ours is added. */
        src = o->envp ? o->envp : environ;
        while (src && src[n])
                n++;
        q->envp = malloc((n + 3) * sizeof(char *));
        if (!q->envp)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                /* Each read once, as the options are (RELIABILITY B17): a
                 * NULL put there since the count ends the copy. */
                char *e = __atomic_load_n(&src[i], __ATOMIC_RELAXED);

                if (!e)
                        break;
                if (!env_is_ours(e))
                        q->envp[m++] = e;
        }
        if (o->nhandles) {
                q->envcap = sizeof(BRD_HANDLE_ENV "=") + o->nhandles * BRD_ENV_REC;
                q->envbuf = malloc(q->envcap);
                if (!q->envbuf)
                        return -ENOMEM;
                q->envp[m++] = q->envbuf;
                q->envp[m++] = q->pidbuf;
        }
        q->envp[m] = NULL;
        return 0;
}

static void req_release(struct brd_fsrv_req *q)
{
        free(q->argv);
        free(q->handles);
        free(q->keep);
        free(q->envp);
        free(q->envbuf);
}

/*
 * fork mode: wait for the child's report.  Normally the pipe answers (0 =
 * reached fn, < 0 = its errno) or hits EOF (it died first).  A host thread
 * that fork()s without exec at that moment holds a copy of the write end
 * and would delay the EOF: once the thread has published the pidfd, the
 * child's death ends the wait too.
 */
/* The slot's report: true and *v (0 reached fn, or -errno) once written. */
static bool slot_result(const struct brd_fsrv_req *q, int *v)
{
        AO_t st = q->slot ? AO_load_acquire(&q->slot->stage) : 0;

        if (!st)
                return false;
        *v = st == 1 ? 0 : (int)(intptr_t)st;
        return true;
}

static ssize_t report_read(struct brd_fsrv *fs, struct brd_fsrv_req *q, int fd, int *v)
{
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };
        ssize_t r;

        if (q->slot) {
                /* Spin first (bounded, yielding): the report usually comes within
                 * the budget, and then nobody sleeps or wakes. */
                int64_t end = brd__now_ns() + BRD_SPAWN_SPIN_NS;

                do {
                        if (slot_result(q, v))
                                return sizeof(*v);
                        brd__spin_pause();
                } while (brd__now_ns() < end);
                /* Going to sleep: from now on the child writes the pipe. */
                AO_store(&q->slot->sleeping, q->gen);
                AO_nop_full();
                if (slot_result(q, v))
                        return sizeof(*v);
        }

        for (;;) {
                r = poll(p, p[1].fd >= 0 ? 2 : 1, p[1].fd >= 0 ? -1 : 100);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0 && p[0].revents)
                        break;
                if (r > 0 && p[1].revents) {
                        /* Dead: whatever it wrote is in the pipe (or slot) already. */
                        if (poll(p, 1, 0) > 0)
                                break;
                        return slot_result(q, v) ? (ssize_t)sizeof(*v) : 0;
                }
                if (p[1].fd < 0) {
                        bool gone = false;

                        pthread_mutex_lock(&fs->lock);
                        if (q->done && !q->err && q->child->pidfd >= 0)
                                p[1].fd = q->child->pidfd;
                        else if (q->done)
                                gone = true;    /* fork failed (EOF comes) or lost */
                        pthread_mutex_unlock(&fs->lock);
                        if (gone && poll(p, 1, 0) <= 0)
                                return slot_result(q, v) ? (ssize_t)sizeof(*v) : 0;
                }
        }
        do
                r = read(fd, v, sizeof(*v));
        while (r < 0 && errno == EINTR);
        if (r == 0 && slot_result(q, v))
                return sizeof(*v);
        return r < 0 ? -errno : r;
}

void brd__fsrv_unref(struct brd_fsrv *fs)
{
        /* Full barrier: every use of fs by this holder comes before the
         * last holder's destroy. */
        if (AO_fetch_and_sub1_full(&fs->refs) == 1)
                brd__fsrv_destroy(fs);
}

/* brd_fsrv_spawn()'s work, under the caller's reference on @fs. */
static int fsrv_spawn_held(struct brd_fsrv *fs, const struct brd_spawn_opts *opts,
                           struct brd_child **ret_child)
{
        struct brd_handle hs[BRD_HANDLE_MAX_BATCH];
        struct brd_spawn_opts oc, *o = &oc;
        struct brd_fsrv_req q;
        struct brd_child *c = NULL;
        int p[2] = { -1, -1 }, r, v = 0;
        struct rlimit rl;
        size_t nkeep;
        ssize_t got;
        bool nnp = false;

        /* Read once: the options and the handles they point at may sit in
         * memory another process writes (RELIABILITY B17), and a count or
         * an fd changed between the check and its use would overrun what
         * was sized from the check.  Every check and use is of the copies
         * (argv's pointers are copied by req_prepare()). */
        oc = *opts;
        if (oc.nhandles > BRD_HANDLE_MAX_BATCH || (oc.nhandles && !oc.handles))
                return -EINVAL;
        if (oc.nhandles) {
                memcpy(hs, oc.handles, oc.nhandles * sizeof(hs[0]));
                oc.handles = hs;
        }
        r = opts_check(o, &nkeep);
        if (r < 0)
                return r;
        r = spawn_confinement(fs, &nnp);
        if (r == 0)
                r = spawn_same_tables(fs);
        /* A stop in progress explains a refusal of these looks at the
         * thread: it may have exited (kcmp then finds no table) or been
         * joined and its tid taken by another process. */
        if (r < 0)
                return fsrv_stopping(fs) ? -ESHUTDOWN : r;
        /* The child holds up to 3 + (nkeep + 1) + 1 fds (child_place()). */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)nkeep + 5)
                return -EMFILE;
        if (fsrv_stopping(fs))
                return -ESHUTDOWN;
        memset(&q, 0, sizeof(q));
        r = req_prepare(&q, o, nkeep);
        if (r < 0)
                goto out;
        q.set_nnp = nnp;
        c = brd__child_new(fs);
        if (!c) {
                r = -ENOMEM;
                goto out;
        }
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        q.report = p[1];
        q.child = c;
        q.comm = fs->comm;
        q.crash_stage = fs->crash_stage;

        pthread_mutex_lock(&fs->lock);
        if (fs->stopping) {
                pthread_mutex_unlock(&fs->lock);
                brd__close(p[1]);
                r = -ESHUTDOWN;
                goto out;
        }
        if (!o->argv && ~fs->slots_used) {
                unsigned i = (unsigned)__builtin_ctzll(~fs->slots_used);

                fs->slots_used |= 1ull << i;
                q.slot = &fs->slots[i];
                q.gen = (AO_t)++fs->spawn_gen;
                AO_store(&q.slot->stage, 0);
                AO_store(&q.slot->sleeping, 0);
        }
        if (fs->tail)
                fs->tail->next = &q;
        else
                fs->head = &q;
        fs->tail = &q;
        pthread_cond_signal(&fs->work);
        pthread_mutex_unlock(&fs->lock);
        /* From here the write end is the thread's. */

        if (!o->argv) {
                int64_t end;

                got = report_read(fs, &q, p[0], &v);
                /* The thread has nearly always published the pidfd by now. */
                end = brd__now_ns() + BRD_SPAWN_SPIN_NS;
                while (!AO_load_acquire(&q.served) && brd__now_ns() < end)
                        brd__spin_pause();
                pthread_mutex_lock(&fs->lock);
                while (!q.done)
                        pthread_cond_wait(&fs->done, &fs->lock);
                pthread_mutex_unlock(&fs->lock);
        } else {
                /* The thread resumes only once the child exec'd or died (CLONE_VFORK). */
                pthread_mutex_lock(&fs->lock);
                while (!q.done)
                        pthread_cond_wait(&fs->done, &fs->lock);
                pthread_mutex_unlock(&fs->lock);
                got = 0;
                if (!q.err) {
                        struct pollfd pf = { .fd = p[0], .events = POLLIN };

                        /* The child wrote before it died: no wait for EOF, which a
                         * host's concurrent fork could delay indefinitely. */
                        if (poll(&pf, 1, 0) > 0 && (pf.revents & POLLIN))
                                got = read(p[0], &v, sizeof(v));
                }
        }

        if (q.err) {
                r = q.err;              /* no child, or the thread reaped it */
        } else if (got == (ssize_t)sizeof(v) && v < 0) {
                r = v;                  /* its setup or execve failed */
        } else if (o->argv ? got == 0 && q.stage == BRD_STAGE_EXEC
                           : got == (ssize_t)sizeof(v) && v == 0) {
                *ret_child = c;
                c = NULL;
                r = 0;
        } else {
                /* Died before fn / execve: stop's ladder may have ended it
                 * (a grace of 0 sends SIGKILL at once), and a spawn under
                 * way when stop began fails with -ESHUTDOWN. */
                pthread_mutex_lock(&fs->lock);
                r = fs->stopping ? -ESHUTDOWN : -ECHILD;
                pthread_mutex_unlock(&fs->lock);
        }
        if (c && !q.err) {
                brd_child_free(c);      /* linked: reaps it (no zombie) and unlinks */
                c = NULL;
        }
        if (q.slot) {
                /* Only now: the child either reported (its one store to the
                 * slot is done) or is reaped, so it can never store into the
                 * slot of the next spawn. */
                pthread_mutex_lock(&fs->lock);
                fs->slots_used &= ~(1ull << (q.slot - fs->slots));
                pthread_mutex_unlock(&fs->lock);
        }
out:
        if (c)
                brd_child_free(c);      /* never linked: no reference of its own */
        brd__close(p[0]);
        req_release(&q);
        return r;
}

static int fsrv_spawn(struct brd_fsrv *fs, const struct brd_spawn_opts *opts,
                      struct brd_child **ret_child)
{
        int r;

        if (!fs || !ret_child || !opts)
                return -EINVAL;
        /* Our reference first, before any other use of fs and anything that
         * can block or take a while (the options' checks make a system call
         * per fd, the lock): a brd_fsrv_stop() running from here on cannot
         * free fs under us (see brd_fsrv_stop_grace() in fork.h). */
        AO_fetch_and_add1_full(&fs->refs);
        /* Inherited through fork(): the thread does not exist in this
         * process ("forkserver absent", RELIABILITY.md F33).  The copy is
         * let go of without a destroy, which is stop's alone there. */
        if (!brd__made_here(fs->fork_gen, fs->pid)) {
                AO_fetch_and_sub1_full(&fs->refs);
                return -ENOTSUP;
        }
        r = fsrv_spawn_held(fs, opts, ret_child);
        brd__fsrv_unref(fs);
        return r;
}

/*
 * Neither a spawn nor a stop ends at a cancellation point (a cancel takes
 * effect at the caller's next one): a spawn's request lives on its stack,
 * where the forkserver thread reads and writes until it is done, and both
 * wait on conditions of fs->lock, which a cancelled wait would take away
 * held (and a stop holds it through the ladder).
 */
BRD_EXPORT int brd_fsrv_spawn(struct brd_fsrv *fs, const struct brd_spawn_opts *o,
                              struct brd_child **ret_child)
{
        int cancel = brd__nocancel(), r = fsrv_spawn(fs, o, ret_child);

        brd__cancel_restore(cancel);
        return r;
}

/*
 * Is the process behind @pidfd one that shares this process's memory, as
 * an exec-mode child inside clone() does (CLONE_VM)?  The number stop reads
 * in fs->vfork_pidfd was written by the kernel before the clone could
 * still fail (a cgroup's pids.max): the number is then freed, and may be
 * another thread's pidfd of some other process by the time stop reads it.
 * No /proc of our pid namespace (its pids are not ours for kcmp()), no
 * kcmp(), or a pid /proc cannot show: taken as that child (only a clone
 * failing at that very moment is mistaken).  Not yet installed: false,
 * looked at again.
 */
bool brd__fsrv_vfork_child(int pidfd)
{
        char path[48], buf[512], *at;
        ssize_t n;
        long pid;
        int fd;

        if (!brd__proc_ours())
                return true;
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno != ENOENT || access("/proc/self/fdinfo", F_OK) != 0;
        n = read(fd, buf, sizeof(buf) - 1);
        brd__close(fd);
        if (n <= 0)
                return true;
        buf[n] = '\0';
        at = strstr(buf, "\nPid:");
        if (!at)
                return true;            /* not a pidfd's fdinfo we know */
        pid = strtol(at + 5, NULL, 10);
        if (pid <= 0)
                return true;            /* exited (-1: the signal finds none), or not shown (0) */
        n = syscall(SYS_kcmp, (pid_t)brd__getpid(), (pid_t)pid, KCMP_VM, 0, 0);
        return n == 0 || (n < 0 && errno != ESRCH);
}

/* How long a stop waits for the exec-mode spawn the thread is inside
 * (clone() returns once its child exec'd or died) before it SIGKILLs that
 * child: one stopped or traced before its execve would hold the stop, and
 * every spawn after it, for as long as it stays so. */
#define FSRV_STOP_VFORK_MS 20

static void fsrv_stop(struct brd_fsrv *fs, int grace_ms)
{
        int64_t window, seen = 0;
        bool killed = false;

        if (!fs)
                return;
        if (grace_ms < 0)
                grace_ms = 0;
        if (!brd__made_here(fs->fork_gen, fs->pid)) {
                /* Inherited: the thread and the children are the parent's; the
                 * lock may have been copied held, and the stack is not mapped
                 * here (MADV_DONTFORK).  Only the memory is ours, and our
                 * copy of the shared slots page (none in a fork-mode
                 * child: fsrv_slots_drop()). */
                fsrv_slots_unmap(fs);
                free(fs);
                return;
        }
        pthread_mutex_lock(&fs->lock);
        fs->stopping = true;
        pthread_cond_signal(&fs->work);
        /* After this no fork can happen: every child there will be is listed. */
        window = (int64_t)(grace_ms < FSRV_STOP_VFORK_MS ? grace_ms : FSRV_STOP_VFORK_MS) * 1000000;
        while (fs->busy || fs->head) {
                /* Read under the lock, which the thread takes to clear it
                 * before the fd can be closed; the kernel wrote it. */
                int vfd = (int)AO_int_load(&fs->vfork_pidfd);
                int64_t now = brd__now_ns(), until;
                struct timespec ts;

                if (!fs->busy || killed) {
                        /* Queued only: the thread refuses it and says so. */
                        pthread_cond_wait(&fs->done, &fs->lock);
                        continue;
                }
                /* Busy: look again every FSRV_STOP_VFORK_MS, the thread may
                 * not be inside clone() yet. */
                until = now + FSRV_STOP_VFORK_MS * INT64_C(1000000);
                if (vfd >= 0) {
                        if (!seen)
                                seen = now;
                        /* The spawn then fails with -ESHUTDOWN.  Not the
                         * child's (yet): the kernel writes the number before
                         * it installs the fd, and it is freed again if the
                         * clone fails; looked at again 20 ms later. */
                        if (now - seen < window) {
                                until = seen + window;
                        } else if (brd__fsrv_vfork_child(vfd) &&
                                   (pidfd_send_signal(vfd, SIGKILL, NULL, 0) == 0 || errno == ESRCH)) {
                                killed = true;
                                continue;
                        }
                }
                ts.tv_sec = (time_t)(until / 1000000000);
                ts.tv_nsec = (long)(until % 1000000000);
                (void)pthread_cond_clockwait(&fs->done, &fs->lock, CLOCK_MONOTONIC, &ts);
        }
        /* Held through the ladder: brd_child_free() waits before unlinking. */
        brd__child_ladder(fs->children, SIZE_MAX, grace_ms);
        fs->quit = true;
        pthread_cond_signal(&fs->work);
        pthread_mutex_unlock(&fs->lock);
        /* Only now: the thread's exit would SIGKILL its children (PDEATHSIG). */
        pthread_join(fs->thread, NULL);
        brd__fsrv_unref(fs);
}

BRD_EXPORT void brd_fsrv_stop(struct brd_fsrv *fs)
{
        brd_fsrv_stop_grace(fs, BRD_FSRV_STOP_GRACE_MS);
}

BRD_EXPORT void brd_fsrv_stop_grace(struct brd_fsrv *fs, int grace_ms)
{
        int cancel = brd__nocancel();

        fsrv_stop(fs, grace_ms);
        brd__cancel_restore(cancel);
}
