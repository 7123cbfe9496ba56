/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"

#include <brood/ringbuf.h>
#include <brood/shm.h>
#include "internal/brd-ring.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080        /* Linux 5.6; glibc headers before 2.36 lack it */
#endif

/*
 * Tests run in parallel and every leak check counts /dev/shm/brood.* names:
 * each test program gets a private /dev/shm in its own mount namespace,
 * inherited by everything it forks or execs.  The kernel's tmpfs behaves the
 * same; only the names are private.  As root (CI) the mount namespace is
 * made directly.  As another user, a user namespace that maps that user's
 * ids to themselves lends the capabilities for it, which are dropped right
 * after: the tests still run as that unprivileged user (the same ids, no
 * capability, root-only tests skip).  A program that defines
 * t_private_pids (test-tools-reap) gets its own pid namespace and /proc that
 * way too: brood's reap scan proves nothing while a process of the user's
 * that it cannot read runs (systemd's "(sd-pam)" of every login), and the
 * scan must see only the test's processes.  Where none of this can be had,
 * the shared /dev/shm is used and tests that create names run alone.
 */
extern const bool t_private_pids __attribute__((weak));

static bool t_write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? write(fd, text, strlen(text)) : -1;

        if (fd >= 0)
                close(fd);
        return n == (ssize_t)strlen(text);
}

/* A user namespace in which this process keeps its own uid and gid. */
static bool t_enter_userns(void)
{
        char uid_map[64], gid_map[64];

        snprintf(uid_map, sizeof(uid_map), "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
        snprintf(gid_map, sizeof(gid_map), "%u %u 1\n", (unsigned)getegid(), (unsigned)getegid());
        if (unshare(CLONE_NEWUSER) < 0)
                return false;
        /* Entered: the ids must map now, or every file would be nobody's. */
        if (!t_write_file("/proc/self/uid_map", uid_map) ||
            !t_write_file("/proc/self/setgroups", "deny") ||
            !t_write_file("/proc/self/gid_map", gid_map)) {
                fprintf(stderr, "tests: cannot map ids in a user namespace: %s\n", strerror(errno));
                _exit(1);
        }
        return true;
}

/* Give up every capability (those the user namespace lent): as the user
 * was, uid not 0, so nothing gives them back. */
static void t_drop_caps(void)
{
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2] = { { 0 } };

        if (syscall(SYS_capset, &h, d) < 0) {
                fprintf(stderr, "tests: cannot drop capabilities: %s\n", strerror(errno));
                _exit(1);
        }
}

/* The exit code of @pid, reaped; -1 if it was killed or not waited for. */
static int t_reap_code(pid_t pid)
{
        pid_t w;
        int st;

        while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
                ;
        return w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Can a pid namespace of ours mount its /proc here?  Tried in throwaway
 * children, in a mount namespace of their own: a namespace whose init
 * failed would leave this process unable to fork ever after. */
static bool t_pidns_proc_works(void)
{
        pid_t x = fork(), y;

        if (x < 0)
                return false;
        if (x == 0) {
                if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(1);
                y = fork();
                if (y == 0)
                        _exit(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                    NULL) < 0);
                _exit(y < 0 ? 1 : t_reap_code(y) != 0);
        }
        return t_reap_code(x) == 0;
}

/*
 * A pid namespace with its own /proc: a first child is its init, which only
 * reaps (orphans go to it, not to the tests), and its child runs the tests
 * (returns).  This process waits and exits as the tests did.  false, with
 * nothing changed, where that cannot be had: the tests then run here, on
 * the host's /proc.
 */
static bool t_enter_pidns(void)
{
        pid_t init, tests, w;
        int st, code = 0;

        if (!t_pidns_proc_works() || unshare(CLONE_NEWPID) < 0)
                return false;
        init = fork();
        if (init < 0) {
                fprintf(stderr, "tests: no init for the pid namespace: %s\n", strerror(errno));
                _exit(1);       /* no child could be forked here any more */
        }
        if (init > 0) {
                code = t_reap_code(init);
                _exit(code < 0 ? 1 : code);
        }
        /* The init: dies with this program (a timeout kills the parent). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                _exit(1);
        tests = fork();
        if (tests < 0)
                _exit(1);
        if (tests == 0)
                return true;
        /* Without them, as the tests' processes are: a scan can read it. */
        t_drop_caps();
        for (;;) {
                w = waitpid(-1, &st, 0);
                if (w < 0 && errno != EINTR)
                        _exit(1);
                if (w == tests) {
                        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                        break;
                }
        }
        _exit(code);    /* as init: the namespace's last processes die with it */
}

/*
 * Without a /dev/shm of our own (no mount namespace for us: a container
 * that refuses unshare() even to root), the tests share the machine's:
 * said on stderr.  A program that runs `brood reap` (t_private_pids) would
 * unlink the machine's names of dead creators: it skips (exit 77) instead.
 */
static void t_shared_devshm(const char *why)
{
        fprintf(stderr, "no private /dev/shm (%s): the machine's is shared\n", why);
        if (&t_private_pids && t_private_pids) {
                fprintf(stderr, "skipped: brood reap would run on the machine's /dev/shm\n");
                _exit(T_EXIT_SKIP);
        }
}

__attribute__((constructor)) static void t_private_devshm(void)
{
        bool userns = false, private;

        if (getenv("BRD_TEST_SHARED_DEVSHM"))
                return;
        if (unshare(CLONE_NEWNS) < 0) {
                if (errno != EPERM || geteuid() == 0 || !t_enter_userns()) {
                        t_shared_devshm(strerror(errno));
                        return;
                }
                userns = true;
                if (unshare(CLONE_NEWNS) < 0) {
                        t_drop_caps();
                        t_shared_devshm(strerror(errno));
                        return;
                }
        }
        /* Never let the new mounts propagate back to the host's namespace. */
        private = mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                  mount("brood-test", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") == 0;
        if (userns) {
                if (private && &t_private_pids && t_private_pids)
                        (void)t_enter_pidns();
                t_drop_caps();
        }
        if (!private)
                t_shared_devshm(strerror(errno));
}

static int count_dir(const char *path, const char *prefix)
{
        DIR *d = opendir(path);
        struct dirent *e;
        int n = 0;

        if (!d)
                return -1;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (prefix && strncmp(e->d_name, prefix, strlen(prefix)))
                        continue;
                n++;
        }
        closedir(d);
        return n;
}

int t_fd_count(void)
{
        return count_dir("/proc/self/fd", NULL) - 1;    /* opendir's own fd */
}

int t_fd_limit_spare(int spare, struct rlimit *ret_old)
{
        struct rlimit rl;
        int fd[17], n, e = 0;

        if (spare < 0 || spare > 16 || getrlimit(RLIMIT_NOFILE, ret_old) < 0)
                return -EINVAL;
        /* The @spare lowest free numbers, and the next one: the new limit. */
        for (n = 0; n <= spare; n++) {
                fd[n] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd[n] < 0) {
                        e = -errno;
                        break;
                }
        }
        if (!e) {
                rl = *ret_old;
                rl.rlim_cur = (rlim_t)fd[spare];
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        e = -errno;
        }
        while (n-- > 0)
                close(fd[n]);
        return e;
}

int t_fd_set(bool *open, int max)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int fd, n = 0;

        if (!d)
                return -1;
        memset(open, 0, (size_t)max * sizeof(open[0]));
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                fd = atoi(e->d_name);
                if (fd == dirfd(d))
                        continue;
                if (fd < 0 || fd >= max) {
                        n = -1;
                        break;
                }
                open[fd] = true;
                n++;
        }
        closedir(d);
        return n;
}

int t_shm_count(void)
{
        return count_dir("/dev/shm", "brood.");
}

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif

bool t_asan(void)
{
#ifdef T_ASAN
        return true;
#else
        return false;
#endif
}

int t_fork_state_usable(void)
{
#ifdef T_ASAN
        (void)brd__registry_created(0, 0);      /* takes the lock, walks the list */
#else
        struct brd_seg *s;

        if (brd_seg_create("child", 4096, 0, &s) != 0)
                return 1;
        brd_seg_close(s);
#endif
        return 0;
}

int t_seg_map_count(void)
{
        /* open() and read(), no stdio: this runs in forked children of
         * threaded tests, where malloc may be locked for good (ASan's
         * allocator, before LLVM 18, takes no lock around fork()). */
        char buf[16384], *line, *nl;
        size_t have = 0;
        ssize_t got;
        int fd, n = 0;

        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        for (;;) {
                got = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        break;
                have += (size_t)got;
                buf[have] = '\0';
                for (line = buf; (nl = strchr(line, '\n')); line = nl + 1) {
                        *nl = '\0';
                        if (strstr(line, " /memfd:brood:") || strstr(line, " /dev/shm/brood."))
                                n++;
                }
                have -= (size_t)(line - buf);
                memmove(buf, line, have);
                if (have == sizeof(buf) - 1)
                        have = 0;       /* a line longer than the buffer: not ours */
        }
        close(fd);
        return got < 0 ? -1 : n;
}

int t_thread_count(void)
{
        return count_dir("/proc/self/task", NULL);
}

int t_thread_count_is(int want)
{
        int64_t deadline = t_now_ns() + 2000000000ll;
        int n;

        while ((n = t_thread_count()) != want && t_now_ns() < deadline)
                sched_yield();
        return n;
}

pid_t t_fork(void)
{
        pid_t parent = getpid(), pid = fork(), pp;

        /* getppid() is 0 in a pid namespace the parent is not in. */
        if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
                         ((pp = getppid()) != parent && pp != 0)))
                _exit(T_EXIT_ORPHAN);   /* the parent is already gone */
        return pid;
}

void t_run_forked(int (*fn)(void))
{
        pid_t pid = t_fork();
        int rc;

        assert_true(pid >= 0);
        if (pid == 0)
                _exit(fn());
        rc = t_wait_child(pid);
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

int t_wait_child(pid_t pid)
{
        int pfd = pidfd_open(pid, 0);
        int st;

        /* A hung child would hang this test program until meson's timeout,
         * which names no test: bounded here, the test that forked it fails
         * (cmocka names it), with the pid on stderr.  The pidfd is only a
         * bound: the exit status still comes from waitpid(). */
        if (pfd >= 0) {
                struct pollfd p = { .fd = pfd, .events = POLLIN };
                int64_t end = t_now_ms() + T_CHILD_HANG_MS, left;
                int n = 0;

                while ((left = end - t_now_ms()) > 0 &&
                       (n = poll(&p, 1, (int)left)) < 0 && errno == EINTR)
                        ;
                close(pfd);
                /* n < 0 too once the deadline is past: a poll cut short
                 * by a signal right at it. */
                if (n == 0 || (n < 0 && left <= 0)) {
                        fprintf(stderr, "child %d still running after %d ms: killed\n",
                                (int)pid, T_CHILD_HANG_MS);
                        kill(pid, SIGKILL);
                        (void)waitpid(pid, &st, 0);
                        return -2;
                }
        } else {
                /* No pidfd (out of fds, a test's pidfd_open() refused):
                 * the same bound, by a look every millisecond. */
                int64_t end = t_now_ms() + T_CHILD_HANG_MS;
                pid_t w;

                while ((w = waitpid(pid, &st, WNOHANG)) == 0 && t_now_ms() < end)
                        (void)poll(NULL, 0, 1);
                if (w == pid)
                        goto done;
                if (w == 0) {
                        fprintf(stderr, "child %d still running after %d ms: killed\n",
                                (int)pid, T_CHILD_HANG_MS);
                        kill(pid, SIGKILL);
                        (void)waitpid(pid, &st, 0);
                        return -2;
                }
        }
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -1;
done:
        if (WIFEXITED(st))
                return WEXITSTATUS(st);
        if (WIFSIGNALED(st))
                return 128 + WTERMSIG(st);
        return -1;
}

/* Both with t_fork(): a test that gives up on the middle child (kills it
 * at its bound) or dies takes the grandchild with it, and with it, as pid
 * 1 of its namespace, everything inside (it ran on, holding meson's pipe). */
int t_run_in_new_pidns(int (*fn)(void *arg), void *arg)
{
        pid_t pid = t_fork();

        if (pid < 0)
                return -1;
        if (pid == 0) {
                pid_t g;
                int rc;

                if (unshare(CLONE_NEWPID) < 0)
                        _exit(errno == EPERM || errno == EINVAL || errno == ENOSPC ?
                              T_EXIT_SKIP : 126);
                g = t_fork();
                if (g < 0)
                        _exit(125);
                if (g == 0)
                        _exit(fn(arg));
                rc = t_wait_child(g);
                _exit(rc < 0 ? 124 : rc);
        }
        return t_wait_child(pid);
}

pid_t t_fork_in_new_timens(int off_s, int (*unshared)(void *arg), int (*inside)(void *arg),
                           void *arg)
{
        pid_t pid = t_fork(), g;
        char off[64];
        int fd, len, rc;

        if (pid != 0)
                return pid;
        if (unshare(CLONE_NEWTIME) < 0)
                _exit(T_EXIT_SKIP);     /* no privilege, or no time namespaces */
        len = snprintf(off, sizeof(off), "boottime %d 0\n", off_s);
        fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, off, (size_t)len) != len)
                _exit(T_EXIT_SKIP);
        close(fd);
        if (unshared && (rc = unshared(arg)) != 0)
                _exit(rc);
        g = t_fork();                   /* dies with us, see t_run_in_new_pidns() */
        if (g < 0)
                _exit(125);
        if (g == 0)
                _exit(inside(arg));
        rc = t_wait_child(g);
        _exit(rc < 0 ? 124 : rc);
}

int64_t t_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t t_now_ms(void)
{
        return t_now_ns() / 1000000;
}

void t_wait_in_syscall(pid_t tid, long nr_a, long nr_b)
{
        int64_t until = t_now_ms() + 10000;
        char path[64], line[64];
        long nr = -1;

        snprintf(path, sizeof(path), "/proc/%d/syscall", (int)tid);   /* a thread id names it too */
        while (nr != nr_a && nr != nr_b) {
                FILE *f = fopen(path, "re");

                if (!f)
                        fail_msg("%s: %s (gone, or not ours to trace)", path, strerror(errno));
                nr = fgets(line, sizeof(line), f) ? strtol(line, NULL, 10) : -1;
                fclose(f);
                assert_true(t_now_ms() < until);
                sched_yield();
        }
}

bool t_have_futex_waitv(void)
{
        /* No waiter: EINVAL where the call exists, ENOSYS (or a filter's
         * EPERM) where it does not. */
        return syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0) < 0 && errno == EINVAL;
}

int64_t t_cpu_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int t_set_many_groups(void)
{
        static gid_t groups[3000];

        for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
                groups[g] = (gid_t)(100000 + g);
        return syscall(SYS_setgroups, sizeof(groups) / sizeof(groups[0]), groups) ? -errno : 0;
}

void *t_shared_page(void)
{
        void *p = mmap(NULL, T_SHARED_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        assert_true(p != MAP_FAILED);
        return p;
}

void t_shared_page_free(void *page)
{
        munmap(page, T_SHARED_PAGE);
}

void t_no_children(void)
{
        siginfo_t si = { 0 };

        /* No child of ours may be left, dead or alive, whatever its exit
         * signal (__WALL: waitpid(-1) misses exit_signal-0 children). */
        assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL), -1);
        assert_int_equal(errno, ECHILD);
}

/*
 * Children a test left because an assertion failed before its t_leak_end()
 * (whose own check fails a test that ends with one): SIGKILLed and reaped
 * at the next t_leak_begin(), named on stderr, so that one failure does not
 * fail every test after it.  Only then: a t_leak_begin() with the last one
 * still open.  Found through /proc/self/task/<tid>/children (every
 * thread's, a forkserver's included; zombies too).
 */
static bool leak_open;

static void reap_leftovers(void)
{
        char path[64], buf[512], *p, *end;
        struct dirent *e;
        DIR *d = opendir("/proc/self/task");
        long pid;
        FILE *f;

        while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%.20s/children", e->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                p = fgets(buf, sizeof(buf), f) ? buf : NULL;
                for (; p && (pid = strtol(p, &end, 10)) > 0; p = end) {
                        fprintf(stderr, "child %ld, left by a failed test: killed\n", pid);
                        kill((pid_t)pid, SIGKILL);
                        (void)waitpid((pid_t)pid, NULL, __WALL);
                }
                fclose(f);
        }
        if (d)
                closedir(d);
}

void t_leak_begin(struct t_leak *l)
{
        if (leak_open)
                reap_leftovers();
        leak_open = true;
        l->fds = t_fd_count();
        l->shm = t_shm_count();
        l->maps = t_seg_map_count();
        /* A count that failed (-1, -2) at both ends would compare equal. */
        assert_true(l->fds >= 0 && l->shm >= 0 && l->maps >= 0);
}
void t_leak_end(const struct t_leak *l)
{
        t_no_children();
        assert_int_equal(t_fd_count(), l->fds);
        assert_int_equal(t_shm_count(), l->shm);
        assert_int_equal(t_seg_map_count(), l->maps);
        leak_open = false;
}

/* ----------------------------------------------------------------- SHA-256 */
static const uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
        uint32_t w[64], a, b, c, d, e, f, g, hh;
        int i;

        for (i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (i = 16; i < 64; i++) {
                uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
        for (i = 0; i < 64; i++) {
                uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
                uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void t_sha256_init(struct t_sha256 *s)
{
        static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

        memcpy(s->h, iv, sizeof(iv));
        s->len = 0;
        s->fill = 0;
}

void t_sha256_update(struct t_sha256 *s, const void *data, size_t len)
{
        const uint8_t *p = data;

        s->len += len;
        while (len) {
                size_t k = 64 - s->fill < len ? 64 - s->fill : len;

                memcpy(s->buf + s->fill, p, k);
                s->fill += k;
                p += k;
                len -= k;
                if (s->fill == 64) {
                        sha256_block(s->h, s->buf);
                        s->fill = 0;
                }
        }
}

void t_sha256_final(struct t_sha256 *s, uint8_t out[32])
{
        uint64_t bits = s->len * 8;
        uint8_t pad = 0x80, zero = 0, lenb[8];
        int i;

        t_sha256_update(s, &pad, 1);
        while (s->fill != 56)
                t_sha256_update(s, &zero, 1);
        for (i = 0; i < 8; i++)
                lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
        t_sha256_update(s, lenb, 8);
        for (i = 0; i < 8; i++) {
                out[4 * i] = (uint8_t)(s->h[i] >> 24);
                out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
                out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
                out[4 * i + 3] = (uint8_t)s->h[i];
        }
}

int t_leak_setup(void **state)
{
        static struct t_leak l;

        t_leak_begin(&l);
        *state = &l;
        return 0;
}

int t_leak_teardown(void **state)
{
        t_leak_end(*state);
        return 0;
}

static volatile sig_atomic_t storm_hits, storm_max;
static struct sigaction storm_old;

static void storm_on_alrm(int sig)
{
        (void)sig;
        if (++storm_hits >= storm_max)
                alarm(0);       /* async-signal-safe; cancels ITIMER_REAL */
}

void t_alarm_storm_start(long period_us, int max)
{
        struct sigaction sa = { 0 };
        struct itimerval it = { { 0, period_us }, { 0, period_us } };

        storm_hits = 0;
        storm_max = max;
        sa.sa_handler = storm_on_alrm;  /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        assert_int_equal(sigaction(SIGALRM, &sa, &storm_old), 0);
        assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

int t_alarm_storm_hits(void)
{
        return storm_hits;
}

int t_alarm_storm_stop(void)
{
        struct itimerval off = { { 0, 0 }, { 0, 0 } };

        assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
        /* A hit already pending is taken here, under the counting handler. */
        assert_int_equal(sigaction(SIGALRM, &storm_old, NULL), 0);
        return storm_hits;
}

void t_storm_times_out(long (*call)(void *), void *arg, const char *what)
{
        for (int k = 0;; k++) {
                int64_t t0, dt;
                long ret;
                int hits;

                t_alarm_storm_start(1000, 2000);
                t0 = t_now_ns();
                ret = call(arg);
                dt = (t_now_ns() - t0) / 1000000;
                hits = t_alarm_storm_stop();
                if (ret != -ETIMEDOUT || dt < 200 || dt > 400)
                        print_message("%s: %ld after %lld ms, %d signals (try %d)\n", what, ret,
                                      (long long)dt, hits, k + 1);
                assert_int_equal(ret, -ETIMEDOUT);
                assert_true(dt >= 200);         /* never cut short */
                assert_true(hits >= 10);        /* the sleep was interrupted, many times */
                if (dt <= 400)
                        return;
                assert_true(k < 2);
        }
}

void t_tries(bool (*try)(void), const char *what)
{
        for (int k = 0; !try(); k++) {
                print_message("%s: bound missed (try %d)\n", what, k + 1);
                assert_true(k < 2);
        }
}

int t_run_brood(const char *args, bool with_stderr, char *out, size_t cap)
{
        const char *exe = getenv("BRD_BROOD");
        char cmd[1024];
        FILE *p;
        size_t n;
        int st;

        assert_non_null(exe);
        /* Quoted: a build directory's path may hold spaces. */
        snprintf(cmd, sizeof(cmd), "'%s' %s%s", exe, args, with_stderr ? " 2>&1" : "");
        p = popen(cmd, "re");
        assert_non_null(p);
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads @fd into @out (up to @cap - 1 bytes, the rest dropped) until EOF or
 * @end (t_now_ms()); false at the deadline. */
static bool read_until(int fd, int64_t end, char *out, size_t cap)
{
        size_t n = 0;
        char buf[4096];

        out[0] = '\0';
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left = end - t_now_ms();
                ssize_t got;

                if (left <= 0)
                        return false;
                if (poll(&p, 1, (int)left) <= 0)
                        continue;       /* EINTR, or the deadline: checked above */
                got = read(fd, buf, sizeof(buf));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        return true;
                if ((size_t)got > cap - 1 - n)
                        got = (ssize_t)(cap - 1 - n);
                memcpy(out + n, buf, (size_t)got);
                n += (size_t)got;
                out[n] = '\0';
        }
}

pid_t t_start_brood(const char *const *args, const int *ignored, int *ret_fd)
{
        const char *exe = getenv("BRD_BROOD"), *argv[16];
        int o[2];
        size_t k;
        pid_t pid;

        assert_non_null(exe);
        argv[0] = exe;
        for (k = 0; args[k]; k++) {
                assert_true(k < 14);
                argv[k + 1] = args[k];
        }
        argv[k + 1] = NULL;
        assert_int_equal(pipe2(o, O_CLOEXEC), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                signal(SIGINT, SIG_DFL);
                for (; ignored && *ignored; ignored++)
                        signal(*ignored, SIG_IGN);
                if (dup2(o[1], STDOUT_FILENO) < 0 || dup2(o[1], STDERR_FILENO) < 0)
                        _exit(127);
                execv(exe, (char *const *)argv);
                _exit(127);
        }
        close(o[1]);
        *ret_fd = o[0];
        return pid;
}

int t_run_brood_within(const char *const *args, int ms, char *out, size_t cap)
{
        int64_t end = t_now_ms() + ms;
        struct pollfd p;
        int fd, st, n = 0;
        pid_t pid;

        pid = t_start_brood(args, NULL, &fd);
        p.fd = pidfd_open(pid, 0);
        p.events = POLLIN;
        assert_true(p.fd >= 0);
        if (read_until(fd, end, out, cap))
                while ((n = poll(&p, 1, (int)(end > t_now_ms() ? end - t_now_ms() : 0))) < 0 &&
                       errno == EINTR)
                        ;
        close(fd);
        close(p.fd);
        if (n <= 0) {
                fprintf(stderr, "brood %s: still running after %d ms: killed\n", args[0], ms);
                kill(pid, SIGKILL);
        }
        while (waitpid(pid, &st, 0) < 0)
                assert_int_equal(errno, EINTR);
        if (n <= 0)
                return -2;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void t_ring_pair(size_t cap, unsigned flags, struct brd_ring **ret_p, struct brd_ring **ret_c)
{
        struct brd_handle hp, hc;

        assert_int_equal(brd_ring_create(cap, flags, &hp, &hc), 0);
        assert_int_equal(brd_ring_attach(&hp, ret_p), 0);
        assert_int_equal(brd_ring_attach(&hc, ret_c), 0);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
}

static int zc_child(struct brd_ring *p, struct brd_ring *c)
{
        const void *view;
        char buf[16];
        void *w;

        /* The parent's reservation and peeked frame are not the child's. */
        if (brd_ring_commit(p, 8) != -EBADF || brd_ring_commit(p, 0) != -EBADF)
                return 10;
        if (brd_ring_release(c) != -EBADF)
                return 11;
        if (brd_ring_reserve(p, 8, &w, 0) != -EBADF || brd_ring_send(p, "x", 1, 0) != -EBADF)
                return 12;
        if (brd_ring_peek(c, &view, 0) != -EBADF ||
            brd_ring_recv(c, buf, sizeof(buf), 0) != -EBADF)
                return 13;
        if (brd_ring_commit(p, 8) != -EBADF || brd_ring_release(c) != -EBADF)
                return 14;
        return 0;
}

void t_ring_zc_across_fork(struct brd_ring *p, struct brd_ring *c)
{
        struct brd_ring_stats sp, sc;
        const void *view;
        char buf[16];
        void *w;
        pid_t pid;

        assert_int_equal(brd_ring_send(p, "m1", 2, 0), 0);
        assert_int_equal(brd_ring_peek(c, &view, 0), 2);
        assert_memory_equal(view, "m1", 2);
        assert_int_equal(brd_ring_reserve(p, 8, &w, 0), 0);
        memcpy(w, "reserved", 8);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(zc_child(p, c));
        assert_int_equal(t_wait_child(pid), 0);
        /* Nothing was published or consumed by the child. */
        assert_int_equal(brd_ring_stats(p, &sp), 0);
        assert_int_equal(sp.messages, 1);
        assert_int_equal(brd_ring_release(c), 0);
        assert_int_equal(brd_ring_release(c), -EINVAL);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(brd_ring_commit(p, 8), 0);
        assert_int_equal(brd_ring_commit(p, 8), -EINVAL);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), 8);
        assert_memory_equal(buf, "reserved", 8);
        assert_int_equal(brd_ring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
        assert_int_equal(brd_ring_stats(p, &sp), 0);
        assert_int_equal(brd_ring_stats(c, &sc), 0);
        assert_int_equal(sp.messages, 2);
        assert_int_equal(sc.messages, 2);
}

void t_ring_view_open(struct t_ring_view *v, size_t cap, unsigned flags, bool writable)
{
        struct brd_handle hp, hc;

        assert_int_equal(brd_ring_create(cap, flags, &hp, &hc), 0);
        v->size = hp.size;
        v->hdr = mmap(NULL, v->size, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
                      hp.fds[0], 0);
        assert_true(v->hdr != MAP_FAILED);
        v->data = (uint8_t *)v->hdr + v->hdr->data_off;
        for (int i = 0; i < 3; i++) {
                v->fd[i] = fcntl(hp.fds[i], F_DUPFD_CLOEXEC, 0);
                assert_true(v->fd[i] >= 0);
        }
        assert_int_equal(brd_ring_attach(&hp, &v->p), 0);
        assert_int_equal(brd_ring_attach(&hc, &v->c), 0);
        brd_handle_close(&hp);
        brd_handle_close(&hc);
}

void t_ring_view_close(struct t_ring_view *v)
{
        brd_ring_close(v->p);
        brd_ring_close(v->c);
        for (int i = 0; i < 3; i++)
                close(v->fd[i]);
        munmap(v->hdr, v->size);
}

pid_t t_ring_fork(size_t cap, unsigned flags, struct brd_handle *hp, struct brd_handle *hc,
                  bool parent_produces, struct brd_ring **ret_ring)
{
        struct brd_handle *mine = parent_produces ? hp : hc, *theirs = parent_produces ? hc : hp;
        pid_t pid;

        assert_int_equal(brd_ring_create(cap, flags, hp, hc), 0);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd_handle_close(mine);         /* no cmocka in the child */
                return 0;
        }
        brd_handle_close(theirs);
        assert_int_equal(brd_ring_attach(mine, ret_ring), 0);
        brd_handle_close(mine);
        return pid;
}
