/* SPDX-License-Identifier: MIT */
/*
 * The forkserver: one dedicated thread per process does every fork() brood
 * makes, and children are watched, signalled and reaped through pidfds.
 *
 * Why a thread: a fork() from an arbitrary application thread copies that
 * thread's locks, signal mask and whatever it was in the middle of; and
 * PR_SET_PDEATHSIG fires when the *forking thread* exits, not the process.
 * The forkserver thread has every signal blocked, runs no application code
 * (only the pthread_atfork handlers that fork() itself runs), holds no
 * application lock when it forks, and lives until brd_fsrv_stop(), after
 * every child it made has been reaped.
 *
 * Two ways to start a child:
 *  - fork mode (opts.fn set): fork(); the child runs fn(arg, handles, n) and
 *    _exit()s with its return value.  glibc's fork() runs the atfork handlers,
 *    so malloc, stdio and brood itself are usable in fn.
 *  - exec mode (opts.argv set): clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD),
 *    then execve(), like posix_spawn: the parent's memory is not copied (a
 *    1 GiB parent spawns as fast as a small one).
 *
 * Exit statuses.  Children are watched through pidfds; the library installs
 * no SIGCHLD handler.  A fork-mode child (glibc's fork) and an exec'd program
 * (execve resets exit_signal to SIGCHLD) are ordinary children: a host that
 * reaps with waitpid(-1), or sets SIGCHLD to SIG_IGN, takes their status, and
 * brood then reports -ECHILD ("status unknown") at once, never a hang and
 * never another process's status, even when the host reaped the child before
 * brood held a pidfd of it and the pid went to another process.  The exec clone uses exit_signal 0 for the
 * prelude, so a child that dies before execve is always brood's to reap.
 *
 * In both modes, between the fork and fn/execve the child makes only
 * async-signal-safe calls: it moves the handles' fds to 3, 4, 5... in order,
 * closes every other fd above 2 (close_range) and the close-on-exec ones
 * below 3, resets every signal
 * disposition to SIG_DFL, sets its name (fork mode), sets
 * PR_SET_PDEATHSIG(SIGKILL) and re-checks getppid() against the race where
 * the parent already died, and optionally points stdio at /dev/null.  A
 * fork-mode child then reports to the spawning thread (a word of a shared
 * page the caller spins on, and a CLOEXEC pipe once the caller sleeps) and,
 * only after that report, empties its signal mask (every signal stays
 * blocked until then, so a report that races with the caller's return can
 * never kill it).  An exec-mode child, which shares the forkserver's memory
 * until execve (CLONE_VM | CLONE_VFORK), marks that it got there in that
 * memory, empties its mask and calls execve; it writes its CLOEXEC pipe
 * only on failure (the -errno), and the pipe closes at a successful
 * execve.  So brd_fsrv_spawn() returns only once the child is known to
 * have reached fn (fork mode) or execve (exec mode), and returns the
 * child's -errno otherwise.  (An exec-mode child that a signal kills in the
 * instant between its empty mask and execve, or between a failed execve
 * and its report, counts as spawned: its death is its status, for
 * brd_child_wait().)
 *
 * Memory: a fork-mode child keeps brood's shared memory only where it was
 * handed it (RELIABILITY F35): before fn runs, every segment and pool of the
 * parent whose file is none of the handles' is unmapped, so the inherited
 * objects answer as gone (brd_seg_addr() NULL, -EBADF from pools and
 * arrays) and an old pointer into them faults (SIGSEGV).  A handed segment
 * or pool stays mapped, and its inherited object works there as in any
 * forked child.  A segment or ring that another thread is creating,
 * attaching or closing at the moment of the fork is mapped in the child
 * either listed (and so unmapped) or not at all: fork() waits for the
 * mapping and its listing, or its unlisting and the unmap, to be done.
 * The page through which the child reports to its forkserver (shared with
 * every fork-mode child until it reported) is unmapped before fn runs, and
 * so is every other forkserver's.  A child the host makes with a plain
 * fork() keeps that page, as it keeps every shared mapping: what it writes
 * there can make a spawn under way report a child that has not reached fn.
 * Rings are never inherited (ringbuf.h): a child reaches one only by
 * attaching a handle.  The rest of the parent's memory (heap,
 * stacks, its own mappings) is inherited as after any fork().  An exec-mode
 * child keeps no memory of the parent at all.
 *
 * Per-thread state.  Every child is a child of the forkserver thread, which
 * was made by the thread that called brd_fsrv_start() and kept what that
 * thread had then: capabilities, CPU affinity, nice value and scheduling
 * policy, a seccomp filter, Landlock, namespaces that thread alone entered
 * (unshare, setns), no_new_privs.  Start the forkserver after confining the
 * process, or confine every thread (seccomp's TSYNC, which reaches the
 * forkserver thread too).  brd_fsrv_spawn() refuses (-EPERM) a caller whose
 * thread has a higher seccomp mode than the forkserver thread has now, or
 * more seccomp filters where the kernel counts them (Linux 5.9): its child
 * would run without them.  Where the forkserver thread's own status cannot
 * be read (or it has not run yet) it is judged as it was at start, which
 * can only refuse more.  A different filter in equal number is not seen.
 * It carries a caller's no_new_privs into the child.  It refuses (-EPERM)
 * a caller whose thread has an fd table or fs (cwd, root, umask) of its
 * own (unshare(CLONE_FILES), unshare(CLONE_FS)): the handles' fd numbers
 * are the caller's, the child's fds and cwd the forkserver thread's.  A fork-mode fn runs on the
 * forkserver thread's stack (the default pthread size) with that thread's
 * thread-local variables, not the caller's.
 *
 * stdio.  A child's fds 0-2 that are closed here (or close-on-exec) are
 * opened on /dev/null where it can be opened: its first open() must not
 * take the number that its stdio writes to.  A fork-mode child ends with
 * _exit() when fn returns, which writes no stdio buffer: fn flushes what it
 * printed (fflush(stdout)).  It inherits this process's stdio buffers as
 * they were: flush stdout and stderr before brd_fsrv_spawn(), or a child
 * that flushes (or calls exit()) writes this process's unwritten bytes a
 * second time.  Libraries of the parent that cached an fd number (a syslog
 * socket, a FILE) hold a number that is closed in the child, or is a
 * handle's now: do not use them in fn.
 */
#ifndef BROOD_FORK_H
#define BROOD_FORK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <brood/handle.h>

#ifdef __cplusplus
extern "C" {
#endif

struct brd_fsrv;                /* a dedicated thread that does every fork() of this process */
struct brd_child;               /* one spawned child: its pidfd and exit status */

/*
 * The entry point of a fork-mode child.  @handles holds copies of the
 * spawn's handles whose fds are the child's renumbered ones (3, 4, 5...,
 * still CLOEXEC: pass them on to an exec'd program through brood).  A
 * handle of kind BRD_HANDLE_NONE carries plain fds (a socket, a pipe) in
 * fork mode only: brd_handle_close() owns none of them and only empties
 * it, so the child close()s those fds itself.  The return value is the
 * child's exit code (0..255).
 */
typedef int (*brd_child_fn)(void *arg, struct brd_handle *handles, size_t nhandles);

enum brd_spawn_flags {
        /* stdin, stdout and stderr of the child read/write /dev/null: a child
         * must never hang its tree by filling a pipe nobody drains. */
        BRD_SPAWN_NULL_STDIO    = 1u << 0,
        /* Do not set PR_SET_PDEATHSIG: the child survives its parent's
         * death (not brd_child_free() nor brd_fsrv_stop(), which kill it;
         * it stays in its parent's process group and session). */
        BRD_SPAWN_NO_PDEATHSIG  = 1u << 1,
};

/* Zero-initialise, then set fn (fork mode) or argv (exec mode), not both. */
struct brd_spawn_opts {
        brd_child_fn fn;                /* fork mode: the child runs fn; its return is the exit code */
        /* Passed to fn.  Fork mode: the child is a copy of this process made
         * by the forkserver thread, so the stacks of every other thread,
         * the caller's included, belong to threads that do not exist there:
         * glibc reuses (or unmaps) them at the child's first pthread_create()
         * (brd_fsrv_start() in the child included).  Point arg at heap or
         * static memory, or at the main thread's stack; or have fn copy what
         * it needs before it creates a thread.  Spawning from the main thread,
         * &local is fine. */
        void *arg;
        /* Exec mode: argv[0] is a path, or a name without '/' looked up in
         * this process's PATH as execvp() does, so a file found there that
         * the kernel cannot run (-ENOEXEC with a path) runs under /bin/sh. */
        char *const *argv;
        char *const *envp;              /* exec mode: the environment; NULL = this process's environ */
        const struct brd_handle *handles; /* borrowed: the only fds, beside stdio, the child keeps */
        size_t nhandles;                /* 0..BRD_HANDLE_MAX_BATCH */
        /* Fork mode: the child's process name (comm, 15 bytes); NULL or "" =
         * this process's name (its main thread's, as at brd_fsrv_start()),
         * never the forkserver thread's.  Exec mode: ignored, execve() names the
         * process after the program's file. */
        const char *name;
        unsigned flags;                 /* enum brd_spawn_flags */
};

enum brd_fsrv_flags {
        /* Interruptible waits (RELIABILITY E30): brd_child_wait() on this
         * forkserver's children returns -EINTR when a signal handler ran
         * while it slept, with nothing changed.  Without it the wait goes on,
         * its deadline kept.  Spawn and the stop ladder always go on: cut
         * short, they would leave a child without a handle or half stopped. */
        BRD_FSRV_EINTR          = 1u << 0,
};

/* The grace brd_fsrv_stop() gives between SIGINT, SIGTERM and SIGKILL. */
#define BRD_FSRV_STOP_GRACE_MS 1000
/* How long a stop waits, at least, for a child whose SIGKILL could not be
 * sent (-EPERM from an LSM) before it leaves that child running. */
#define BRD_FSRV_UNKILLABLE_MS 100
/* How long a stop waits, at least, for a child that got its SIGKILL and
 * cannot be reaped yet (traced by a process that does not reap it, frozen
 * by a cgroup v1 freezer, in uninterruptible sleep) before it leaves that
 * child running, unreaped (brd_child_free() waits for it). */
#define BRD_FSRV_DYING_MS 5000

/**
 * brd_fsrv_start() - start this process's forkserver thread.
 * @flags: 0 or BRD_FSRV_EINTR (enum brd_fsrv_flags)
 * @ret_fsrv: the forkserver; untouched on failure
 *
 * The thread is created with every signal blocked and sleeps until a spawn
 * request arrives; handing a request over costs one wake-up.  Several
 * forkservers may coexist (each is its own thread).
 * Return: 0, -EINVAL on unknown flags, -ENOMEM, or -errno from pthread_create
 * (-EINVAL also in a process that called unshare(CLONE_NEWPID): the kernel
 * makes no thread there; start the forkserver before it, and its children
 * stay in this pid namespace).
 * Concurrency: any thread.  Fork: a forkserver is not inherited: in a forked
 * child, brd_fsrv_spawn() on the parent's forkserver returns -ENOTSUP, and
 * the child may start its own.  A child made without fork()'s handlers
 * (_Fork(), clone()) is told by its pid: the same -ENOTSUP, and -EBADF from
 * the parent's children's calls; it may only exec.
 */
int brd_fsrv_start(unsigned flags, struct brd_fsrv **ret_fsrv);

/**
 * brd_fsrv_spawn() - start a child process from the forkserver thread.
 * @fs: the forkserver
 * @o: fn (fork mode) or argv (exec mode), the handles the child keeps (their
 *     fds are borrowed and stay the caller's), name and flags
 * @ret_child: the child; untouched on failure
 *
 * The child keeps exactly fds 0, 1, 2 and its handles' fds, renumbered 3, 4,
 * 5... in order, and (fork mode) of brood's segments and pools only those
 * the handles name (Memory, above).  Of fds 0-2 it closes those that are
 * close-on-exec, as exec would (with stdio closed, brood's own fds or the
 * host's take those numbers, and a child must not hold what it was not
 * handed), and opens every one closed on /dev/null (stdio, above).  It has
 * one thread, default signal dispositions, an empty signal mask and (unless
 * BRD_SPAWN_NO_PDEATHSIG) dies by SIGKILL when this process dies.  The
 * kernel clears that death signal when the child's credentials change: at
 * the execve of a set-user-ID, set-group-ID or file-capability program, or
 * when fn or the program calls setuid(), setgid() or capset() (such a child
 * outlives us unless it sets PR_SET_PDEATHSIG again and then checks
 * getppid()), and when an execve() by another thread of this process ends
 * the forkserver thread while a spawn is in flight: a child still in its
 * prelude then arms its death signal on the thread that exec'd, and the
 * getppid() re-check cannot tell (the pid stays this process's), so that
 * child outlives the old program.  In exec
 * mode the handles are described in the environment
 * (BROOD_HANDLES, BROOD_HANDLES_PID) for brd_handle_from_env(); stale
 * descriptions inherited from an ancestor are removed.  The call returns
 * once the child has reached fn or execve.  Fork mode: memory on the stack
 * of a thread other than the main one is not safe to reach from fn once
 * the child has created a thread (see brd_spawn_opts.arg).
 *
 * Return: 0 and *ret_child; -EINVAL on bad options (none or both of fn/argv,
 * unknown flags, a malformed handle, too many handles; exec mode also needs
 * known handle kinds); -EBADF when a handle's fd is not open, or the handle
 * is closed or stale (brd_handle_close()); -ENOTSUP on
 * a forkserver inherited through fork(); -EPERM when the calling thread has
 * more seccomp filters than the forkserver thread, or an fd table or fs of
 * its own (Per-thread state);
 * -ESHUTDOWN once brd_fsrv_stop() has begun; -EAGAIN/-ENOMEM/-EMFILE/-ENFILE
 * when the child or a resource for it cannot be created, or a confined
 * caller's seccomp state cannot be read for those reasons or for a signal
 * (-EAGAIN) (-EMFILE also when
 * RLIMIT_NOFILE is below 5 + its fd count: the child briefly holds fds
 * 0..3 + that count, its report pipe among them, and one spare; how many
 * fds this process has open does not matter, the child closes them first);
 * the child's own -errno when its setup or execve failed (e.g. -ENOENT,
 * -EACCES); -ECHILD when the child died before fn/execve, or its report
 * could not be read (then it is killed).  On every failure the child, if
 * one was created, has been reaped: no zombie, no fd left (but for one an
 * LSM keeps SIGKILL from, see brd_child_free(), and one without a pidfd
 * that cannot be reaped within BRD_FSRV_DYING_MS of its SIGKILL: traced by
 * a process that does not reap it, frozen).  A fork-mode child whose
 * pidfd cannot be had right after its fork (-ENOMEM, -ENFILE; -EMFILE only
 * where another thread took the fd the report pipe left; -ENOSYS where
 * pidfd_open() is refused: Linux < 5.3, a seccomp filter or an LSM, for
 * every spawn then) is killed too, and may have begun fn by then.  An exec
 * child whose clone(CLONE_PIDFD) is refused so: -ENOSYS as well.
 * Concurrency: any number of threads at once; requests are served in order by
 * the one thread.  Not a cancellation point: a pthread_cancel() of the
 * caller takes effect at its next one.  Fork: the child's handles are
 * copies, the caller still owns and closes its own.
 */
int brd_fsrv_spawn(struct brd_fsrv *fs, const struct brd_spawn_opts *o, struct brd_child **ret_child);

/**
 * brd_fsrv_stop() - refuse new spawns, stop every live child, reap, join.
 * @fs: the forkserver, may be NULL
 *
 * Same as brd_fsrv_stop_grace(fs, BRD_FSRV_STOP_GRACE_MS).
 */
void brd_fsrv_stop(struct brd_fsrv *fs);

/**
 * brd_fsrv_stop_grace() - brd_fsrv_stop() with a chosen grace.
 * @fs: the forkserver, may be NULL
 * @grace_ms: >= 0; the time a child gets after SIGINT, then after SIGTERM;
 *            a negative value is taken as 0
 *
 * New spawns get -ESHUTDOWN.  Every child not yet reaped gets SIGINT, those
 * alive @grace_ms later SIGTERM (each with a SIGCONT, as brd_child_stop()
 * sends them), those alive 2 x @grace_ms later SIGKILL, all
 * in parallel (every child is dead within 2 x grace + a few ms); an
 * exec-mode child not yet exec'd, that holds the thread in its clone()
 * (stopped or traced before its execve), is SIGKILLed after @grace_ms or
 * about 20 ms (looked at every 20 ms), whichever is shorter, and its spawn
 * fails with -ESHUTDOWN (but for one stopped past its prelude, at the
 * execve itself: a tracer's stop at the system call's entry, or a stop
 * signal that stayed blocked until then; its spawn returns 0, a child that
 * this SIGKILL ended); one that this SIGKILL cannot end there (frozen by
 * a cgroup freezer, or in an uninterruptible sleep) holds the thread, and
 * stop with it, until it can.  All are
 * reaped and only then does the thread exit (its exit would SIGKILL children
 * through PDEATHSIG).  A child that the SIGKILL cannot reach (-EPERM from an
 * LSM) is waited for BRD_FSRV_UNKILLABLE_MS or @grace_ms more, whichever is
 * longer, then left: the thread's exit, which sends its PDEATHSIG, is the
 * last try (the same LSM may deny that too), and brd_child_wait() reaps it
 * if that ends it.  One that got its SIGKILL but still cannot be reaped
 * BRD_FSRV_DYING_MS (or @grace_ms, if longer) later is left too (see
 * BRD_FSRV_DYING_MS): a stop returns, whatever holds a child (but for the
 * exec-mode child held inside its clone(), above).  The children's statuses are kept: brd_child_wait()
 * still returns each one once.  The struct brd_child objects stay valid: free
 * them with brd_child_free(), before or after this call; the forkserver's
 * memory goes when both it and its last child are released.
 * Concurrency: call once, from any thread; not a cancellation point (as
 * brd_fsrv_spawn()).  brd_fsrv_spawn() calls already
 * under way when stop begins fail with -ESHUTDOWN or return a child that
 * stop then stops; spawns and brd_child_free() calls made while the ladder
 * runs wait for it to end (up to 2 x @grace_ms, and the waits for a child
 * SIGKILL cannot reach and for one it reached that cannot be reaped, see
 * BRD_FSRV_DYING_MS), then spawns answer
 * -ESHUTDOWN.  Like any freed object, no call on @fs may begin after
 * stop may have returned: stop frees @fs unless a child object or a spawn
 * holds it, and a spawn holds it from its first use of @fs, a few
 * instructions after its entry and before anything that can block.  Fork:
 * in a forked child (an inherited forkserver) it only releases memory.
 */
void brd_fsrv_stop_grace(struct brd_fsrv *fs, int grace_ms);

/**
 * brd_child_pid() - the child's pid.
 * @c: the child
 * Return: the pid (for display and /proc; signal it with brd_child_kill());
 * -EINVAL (as a pid_t) for NULL: never pass the result to kill() unchecked
 * (a negative pid names a process group).
 * Concurrency: any thread.  Fork: in a forked child of the owner it still
 * returns the pid, that of a process the child did not spawn and cannot
 * wait for (brd_child_wait() there is -EBADF).
 */
pid_t brd_child_pid(const struct brd_child *c);

/**
 * brd_child_fd() - the child's pidfd, for poll/epoll loops.
 * @c: the child
 * Return: a pidfd that is readable (POLLIN) once the child has exited; it
 * belongs to @c (do not close it); -ECHILD if the child was reaped by someone
 * else before brood could open one; -EBADF from a forked child of the owner;
 * -EINVAL for NULL.
 * Concurrency: any thread.  Fork: CLOEXEC; -EBADF in a forked child (its
 * copy of that number may be closed, or another file, there).
 */
int brd_child_fd(const struct brd_child *c);

/**
 * brd_child_wait() - wait for the child to exit and reap it.
 * @c: the child
 * @timeout_ms: -1 (any negative) forever, 0 never block, > 0 bound (CLOCK_MONOTONIC, kept across EINTR)
 * @ret_status: waitpid()-format status (WIFEXITED, WEXITSTATUS, WTERMSIG...),
 *              may be NULL; untouched on failure
 *
 * The status is kept from the child's exit (or from brd_fsrv_stop()'s reap)
 * until a wait takes it, and is returned exactly once.
 * Return: 0; -EAGAIN (timeout 0) or -ETIMEDOUT while it runs; -EINTR (the
 * forkserver was started with BRD_FSRV_EINTR) when a signal handler ran
 * while it slept: the child and its status are untouched; -ECHILD when
 * the status was already returned, or when someone else reaped the child
 * (a host waitpid(-1) or SIGCHLD = SIG_IGN) -- promptly, never a hang; -EBADF from a forked child of the
 * owner; -EINVAL on bad arguments.
 * Concurrency: any thread; concurrent waits on one child get the status once.
 * A cancellation point where it sleeps (poll(), no lock held), nowhere else.
 * Fork: -EBADF in a forked child of the owner; the child is the owner's to reap.
 */
int brd_child_wait(struct brd_child *c, int timeout_ms, int *ret_status);

/**
 * brd_child_kill() - send a signal through the pidfd.
 * @c: the child
 * @sig: 0 (probe) or a signal number
 * Return: 0; -ESRCH once the child was reaped (brd_child_wait(), a stop, or
 * a host that stole its status), never a recycled pid's; -EINVAL on a bad
 * signal or NULL @c; -EBADF from a forked child of the owner; any other
 * -errno of pidfd_send_signal(), e.g. -EPERM (an LSM refuses the
 * signal).  A child that exited but
 * is not reaped yet takes the signal as a no-op and answers 0, as kill(2)
 * does: its exit shows on brd_child_fd() and brd_child_wait(c, 0, ...).
 * Concurrency: any thread.  Fork: -EBADF in a forked child of the owner;
 * nothing is sent.
 */
int brd_child_kill(struct brd_child *c, int sig);

/**
 * brd_child_stop() - stop a child with the ladder and reap it.
 * @c: the child
 * @grace_ms: >= 0
 * @ret_status: as brd_child_wait(), may be NULL
 *
 * SIGINT; SIGTERM if it is alive @grace_ms later; SIGKILL if it is alive
 * 2 x @grace_ms after the start; then reap.  SIGINT and SIGTERM are each
 * followed by a SIGCONT, so that a stopped child (SIGSTOP, a job's SIGTSTP)
 * runs its handler for them too.  A child that ignores SIGINT and
 * SIGTERM is dead within 2 x grace plus the kernel's reaction (~0.1 ms).  A
 * child that already exited is reaped without a signal.
 * Return: 0 and the status; -ECHILD if the status was already taken or the
 * child was reaped by someone else; -EINVAL; -EBADF from a forked child;
 * -EPERM (or the kernel's other -errno) when the SIGKILL could not be sent
 * (an LSM forbids it) and the child still ran BRD_FSRV_UNKILLABLE_MS or
 * @grace_ms after it, whichever is longer: it is left running, unreaped;
 * -ETIMEDOUT when it got the SIGKILL and still could not be reaped
 * BRD_FSRV_DYING_MS or @grace_ms after it (see BRD_FSRV_DYING_MS): left
 * unreaped too, for brd_child_wait().
 * Concurrency: any thread.  Fork: -EBADF in a forked child of the owner;
 * nothing is sent or reaped.
 */
int brd_child_stop(struct brd_child *c, int grace_ms, int *ret_status);

/**
 * brd_child_free() - release a child object.
 * @c: the child, may be NULL
 *
 * A child that has not been reaped yet is killed (SIGKILL) and reaped first,
 * so that nothing outlives its handle: no zombie, no orphan.  To let a child
 * run on, keep its brd_child.  One that SIGKILL cannot reach (an LSM) is
 * left running and unreaped: its PDEATHSIG, sent as the forkserver thread
 * exits, is its last chance, which the same LSM may deny too (then it
 * outlives its handle).  One that got the SIGKILL is waited for until it
 * can be reaped: one that a tracer holds (see BRD_FSRV_DYING_MS) until the
 * tracer lets go.  Not to block there: after brd_child_stop() says
 * -ETIMEDOUT, keep @c and free it once brd_child_wait() returned 0.  A
 * spawn that fails after making its child frees it the same way.  Safe
 * before or after brd_fsrv_stop().
 * Concurrency: not with another call on the same child; not a cancellation
 * point (a cancelled caller would leave the child unreaped).  Fork: in a forked
 * child of the owner it only closes the inherited pidfd and frees memory.
 */
void brd_child_free(struct brd_child *c);

#ifdef __cplusplus
}
#endif
#endif /* BROOD_FORK_H */
