/* SPDX-License-Identifier: MIT */
/* Test helpers: fd counts, /dev/shm leak checks, child waits, SHA-256. */
#ifndef BRD_TEST_HELPERS_H
#define BRD_TEST_HELPERS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <setjmp.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <cmocka.h>

#include <brood/handle.h>

#define T_EXIT_SKIP 77
#define T_EXIT_ORPHAN 125       /* t_fork(): the parent was gone at once */

/* Open fds of this process (/proc/self/fd, the directory's own fd excluded). */
int t_fd_count(void);
/* Which fds are open (the same ones): open[fd] for every fd < @max; returns
 * how many, or -1 if /proc/self/fd cannot be read or an fd is >= @max.  No
 * cmocka call: usable in a forked child. */
int t_fd_set(bool *open, int max);
/* Lower RLIMIT_NOFILE so that exactly @spare (0-16) more fds can be opened,
 * at the lowest free numbers (open fds above the limit stay usable): 0, or
 * -errno.  *@ret_old: the limit before, for setrlimit() to put back.  No
 * cmocka call: usable in a forked child. */
int t_fd_limit_spare(int spare, struct rlimit *ret_old);
/* Entries of /dev/shm whose name starts with "brood.".  A test that creates
 * names must run alone ('parallel': false in tests/meson.build). */
int t_shm_count(void);
/* Mappings of this process backed by a brood segment (a "/memfd:brood:" or
 * "/dev/shm/brood." path in /proc/self/maps): what a leaked mmap leaves
 * once its fd is closed.  -1 if /proc/self/maps cannot be read; no cmocka
 * call: usable in a forked child. */
int t_seg_map_count(void);
/* In a forked child of a threaded test: is the fork state usable (the
 * registry's lock free and its list whole)?  0, or 1 for a failed segment
 * create.  Under ASan it allocates nothing: clang 14's allocator is not
 * fork-safe (a child of a process whose other thread was inside malloc
 * can deadlock in SizeClassAllocator64; glibc's malloc is made safe by
 * fork()), so there it walks the registry under its lock instead of
 * creating a segment.  No cmocka call. */
int t_fork_state_usable(void);
/* Built with AddressSanitizer? */
bool t_asan(void);
/* fork() for a child that works with this test program (shared flags,
 * rings): it is SIGKILLed when the forking thread exits, so that a child
 * left spinning by a failed check cannot outlive the program and hold
 * meson's pipe open until its timeout.  Fork from the main thread. */
pid_t t_fork(void);
/* Run @fn in a child of t_fork() (its limits, fds, mounts and signal state
 * are its own to change): cmocka-asserts that it exits 0, or skips the
 * test when it exits T_EXIT_SKIP.  From the main thread. */
void t_run_forked(int (*fn)(void));
#ifndef T_CHILD_HANG_MS
#define T_CHILD_HANG_MS 60000
#endif
/* waitpid() for @pid: the child's exit code, 128+signal if killed, -1 on
 * error, -2 if it still ran after T_CHILD_HANG_MS (then it is SIGKILLed and
 * reaped, and stderr names it). */
int t_wait_child(pid_t pid);
/* Yield until @cond holds; a test whose child or thread never makes it
 * hold fails after T_CHILD_HANG_MS, naming it, instead of hanging. */
#define T_UNTIL(cond)                                                           \
        do {                                                                    \
                int64_t t_until_end_ = t_now_ms() + T_CHILD_HANG_MS;            \
                while (!(cond)) {                                               \
                        if (t_now_ms() >= t_until_end_)                         \
                                fail_msg("still not (%s) after %d ms", #cond,   \
                                         T_CHILD_HANG_MS);                      \
                        sched_yield();                                          \
                }                                                               \
        } while (0)
/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
int64_t t_now_ms(void);
int64_t t_now_ns(void);
/* CPU time (user+sys) of this process in ms. */
int64_t t_cpu_ms(void);
/* Threads of this process (/proc/self/task). */
int t_thread_count(void);
/*
 * t_thread_count() once it is @want, read again until it is, for at most
 * 2 s; returns the last count.  A joined thread leaves /proc/self/task a
 * moment after pthread_join() returns (the kernel wakes the joiner when it
 * clears the thread's tid, before it releases the task), and there is no
 * event to wait for in between.
 */
int t_thread_count_is(int want);
/* cmocka-asserts that thread @tid (of this process, or a child's: any
 * this process may trace) enters system call @nr_a or @nr_b within 10 s:
 * watched in /proc/TID/syscall (a condition, not a delay; the thread may be
 * between announcing a sleep and sleeping). */
void t_wait_in_syscall(pid_t tid, long nr_a, long nr_b);

/* futex_waitv(2) numbered where the headers predate it (the library then
 * never calls it), and whether this kernel has it: rings sleep in it first
 * where it does (ringbuf/wait.c). */
#include <sys/syscall.h>
#ifndef SYS_futex_waitv
#define SYS_futex_waitv (-1L)
#endif
bool t_have_futex_waitv(void);

/*
 * Runs @fn(@arg) in a grandchild that is pid 1 of a new pid namespace (a
 * child unshares CLONE_NEWPID, then forks it): returns @fn's result as the
 * grandchild's exit code (128+signal if it was killed), or T_EXIT_SKIP when
 * this process may not make a pid namespace (no CAP_SYS_ADMIN).  The child
 * and the grandchild are reaped.
 */
int t_run_in_new_pidns(int (*fn)(void *arg), void *arg);

/*
 * Forks a child that enters a new time namespace whose boottime runs @off_s
 * seconds ahead (unshare(CLONE_NEWTIME): the namespace of its children) and
 * runs @inside(@arg) in a grandchild, which is in it; the child exits with
 * the grandchild's exit code (128+signal if it was killed), or T_EXIT_SKIP
 * when this process may not make a time namespace.  @unshared(@arg), if not
 * NULL, runs first in the child itself, between the unshare and the fork
 * (a process whose own offset cannot be read): non-zero is the child's exit
 * code.  Returns the child's pid (-1 if fork failed): reap it with
 * t_wait_child().
 */
pid_t t_fork_in_new_timens(int off_s, int (*unshared)(void *arg), int (*inside)(void *arg),
                           void *arg);

/* cmocka-asserts that this process has no child, alive or zombie. */
void t_no_children(void);

/* Give the calling thread 3000 supplementary groups (gids 100000 up, with
 * the raw system call: this thread only, safe in a raw clone() child), so
 * that the Groups line pushes what follows it in /proc/PID/status pages in.
 * 0, or -errno (-EPERM without the privilege, -EINVAL where those gids are
 * not mapped in a user namespace): callers skip then. */
int t_set_many_groups(void);

/* A zeroed page (T_SHARED_PAGE bytes) that the children forked afterwards
 * share with us (MAP_SHARED, anonymous): flags, progress counters, times of
 * death.  Unmap it with t_shared_page_free(). */
#define T_SHARED_PAGE 4096
void *t_shared_page(void);
void t_shared_page_free(void *page);

/*
 * A storm of SIGALRM every @period_us (setitimer(ITIMER_REAL)), for
 * RELIABILITY E30: the handler only counts, and has no SA_RESTART, so every
 * hit interrupts the sleep of the thread that takes it (in these tests the
 * only thread that does not block SIGALRM: the forkserver's blocks all).
 * After @max hits the handler stops the timer itself (alarm(0)), so that a
 * call that restarted its whole timeout at each EINTR still ends, late,
 * instead of never.  Stop it before asserting anything.
 */
void t_alarm_storm_start(long period_us, int max);
/* Hits so far. */
int t_alarm_storm_hits(void);
/* Stops the timer, restores SIGALRM's disposition; returns the hits. */
int t_alarm_storm_stop(void);
/*
 * RELIABILITY E30 under a storm of SIGALRM every 1 ms (stopping itself
 * after 2000 hits): @call, which makes one call with a 200 ms timeout and
 * returns its answer, must answer -ETIMEDOUT after at least 200 ms, having
 * been interrupted at least 10 times, every time; and within 400 ms in one
 * of up to three tries (one slow try is the host's; a call that restarted
 * its timeout at each EINTR is slow every time).  @what names it in the
 * message of a try that missed.  The call must change nothing it is asked
 * again about.
 */
void t_storm_times_out(long (*call)(void *), void *arg, const char *what);
/*
 * Run @try up to three times, until it returns true.  A try asserts
 * everything strictly but a wall-clock upper bound (a death seen within
 * 100 ms, say), which it reports by returning false (and saying by how
 * much, naming @what): a vCPU stalled under a loaded host misses such a
 * bound once; a slow library misses it every time.
 */
void t_tries(bool (*try)(void), const char *what);

/* Run the brood command (path in $BRD_BROOD) with @args; its stdout (and
 * stderr with @with_stderr) into @out; returns its exit code, -1 if killed. */
int t_run_brood(const char *args, bool with_stderr, char *out, size_t cap);
/* The same without a shell, for a brood that may hang: @args is its
 * NULL-ended argument list (at most 14), stdout and stderr both go to @out.
 * Its exit code (128+signal if it was killed), or -2 if it still ran after
 * @ms (then it is SIGKILLed and reaped). */
int t_run_brood_within(const char *const *args, int ms, char *out, size_t cap);
/* Start brood with @args (NULL-ended, at most 14), SIGINT at its default
 * and the signals of @ignored (0-ended, may be NULL) ignored, its stdout
 * and stderr into *@ret_fd: its pid, for the caller to reap. */
pid_t t_start_brood(const char *const *args, const int *ignored, int *ret_fd);

/* Leak check around a test: fds and brood's /dev/shm names. */
struct t_leak {
        int fds;
        int shm;
        int maps;
};
void t_leak_begin(struct t_leak *l);
void t_leak_end(const struct t_leak *l);     /* cmocka-asserts no fd, name, mapping or child left */
/* The same as cmocka setup/teardown of a test (state: the struct t_leak). */
int t_leak_setup(void **state);
int t_leak_teardown(void **state);

/* Rings, for the ring tests: both ends attached in this process, their
 * handles closed. */
struct brd_ring;
void t_ring_pair(size_t cap, unsigned flags, struct brd_ring **ret_p, struct brd_ring **ret_c);
/* A reservation and a peeked frame open across fork() (p and c fresh, empty):
 * the child's zero-copy calls are -EBADF and change nothing, the parent then
 * commits and releases them exactly once (cmocka asserts). */
void t_ring_zc_across_fork(struct brd_ring *p, struct brd_ring *c);
/* The same, with a view of the ring's shared memory: the header, and the
 * data area after it (read-only, or writable to play a hostile peer), and
 * the handles' fds as a third process would hold them. */
struct brd_ring_hdr;
struct t_ring_view {
        struct brd_ring *p, *c;         /* closed by t_ring_view_close() unless NULL */
        struct brd_ring_hdr *hdr;
        uint8_t *data;
        size_t size;
        int fd[3];                      /* dups: memfd, "data" doorbell (the consumer
                                         * sleeps on it), "space" doorbell */
};
void t_ring_view_open(struct t_ring_view *v, size_t cap, unsigned flags, bool writable);
void t_ring_view_close(struct t_ring_view *v);
/*
 * A ring whose other end goes to a forked child.  Creates it into *hp and *hc,
 * forks; in the child returns 0 with the parent's end closed (the child's
 * handle still in *hp or *hc); in the parent closes the child's end,
 * attaches its own (the producer if @parent_produces) into *ret_ring,
 * closes that handle and returns the child's pid.
 */
pid_t t_ring_fork(size_t cap, unsigned flags, struct brd_handle *hp, struct brd_handle *hc,
                  bool parent_produces, struct brd_ring **ret_ring);

/* SHA-256 (FIPS 180-4), incremental. */
struct t_sha256 {
        uint32_t h[8];
        uint64_t len;
        uint8_t buf[64];
        size_t fill;
};
void t_sha256_init(struct t_sha256 *s);
void t_sha256_update(struct t_sha256 *s, const void *data, size_t len);
void t_sha256_final(struct t_sha256 *s, uint8_t out[32]);

/* xorshift64*: deterministic pseudo-random numbers for payloads and sizes. */
static inline uint64_t t_rand(uint64_t *state)
{
        uint64_t x = *state;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 0x2545F4914F6CDD1DULL;
}

#endif
