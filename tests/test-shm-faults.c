/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for segments, handles, rings and pools (RELIABILITY C19,
 * C21, C22): every resource call of each operation fails in turn, the k-th
 * call for every k, until a run makes no k-th call.  Each run must either
 * succeed or return exactly the injected -errno, and leave nothing behind:
 * no fd, no mapping, no /dev/shm name.
 *
 * Linked with -Wl,--wrap for the calls below (tests/meson.build); only the
 * library's calls are wrapped (the static archive is linked in).
 *
 * And a /proc that misleads: the start times it shows a process in a time
 * namespace, and a /proc mounted for another pid namespace.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/ringbuf.h>
#include <brood/shm.h>
#include "internal/brd-private.h"


static int armed, fail_at, ncalls, injected;
static const char *injected_in;

static int inject_in(const char *what, int e)
{
        if (!armed || ++ncalls != fail_at)
                return 0;
        injected = e;
        injected_in = what;
        errno = e;
        return 1;
}

#define WRAP(ret, name, params, args, e, fail)                          \
        ret __real_##name params;                                       \
        ret __wrap_##name params;                                       \
        ret __wrap_##name params                                        \
        {                                                               \
                return inject_in(#name, e) ? (fail) : __real_##name args; \
        }

WRAP(void *, calloc, (size_t n, size_t sz), (n, sz), ENOMEM, NULL)

/* memfd_kernel: answer memfd_create() as 1: Linux 6.3-6.5 with
 * vm.memfd_noexec=2 (EACCES without MFD_NOEXEC_SEAL), 2: Linux before 6.3
 * (EINVAL for the flag); 0: as this kernel does.  memfd_flags: the last
 * call's flags. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
static int memfd_kernel;
static unsigned memfd_flags;

int __real_memfd_create(const char *name, unsigned flags);
int __wrap_memfd_create(const char *name, unsigned flags);
int __wrap_memfd_create(const char *name, unsigned flags)
{
        memfd_flags = flags;
        if (inject_in("memfd_create", EMFILE))
                return -1;
        if ((memfd_kernel == 1 && !(flags & MFD_NOEXEC_SEAL)) ||
            (memfd_kernel == 2 && (flags & MFD_NOEXEC_SEAL))) {
                errno = memfd_kernel == 1 ? EACCES : EINVAL;
                return -1;
        }
        return __real_memfd_create(name, flags);
}
WRAP(int, shm_open, (const char *name, int fl, mode_t m), (name, fl, m), EMFILE, -1)
WRAP(int, ftruncate64, (int fd, off_t len), (fd, len), EFBIG, -1)
WRAP(int, posix_fallocate64, (int fd, off_t off, off_t len), (fd, off, len), ENOSPC, ENOSPC)
WRAP(void *, mmap64, (void *a, size_t l, int p, int f, int fd, off_t o), (a, l, p, f, fd, o),
     ENOMEM, MAP_FAILED)

/* no_wipe: refuse MADV_WIPEONFORK as kernels before 4.14 do (EINVAL). */
static int no_wipe, wipe_refused;

int __real_madvise(void *a, size_t l, int adv);
int __wrap_madvise(void *a, size_t l, int adv);
int __wrap_madvise(void *a, size_t l, int adv)
{
        if (no_wipe && adv == MADV_WIPEONFORK) {
                wipe_refused++;
                errno = EINVAL;
                return -1;
        }
        return inject_in("madvise", ENOMEM) ? -1 : __real_madvise(a, l, adv);
}
WRAP(int, eventfd, (unsigned v, int fl), (v, fl), EMFILE, -1)
WRAP(int, epoll_create1, (int fl), (fl), EMFILE, -1)
WRAP(int, timerfd_create, (int clk, int fl), (clk, fl), EMFILE, -1)

int __real_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...)
{
        va_list ap;
        long arg;

        va_start(ap, cmd);
        arg = va_arg(ap, long);
        va_end(ap);
        /* Only the calls that create an fd or add seals can fail this way. */
        if ((cmd == F_DUPFD_CLOEXEC || cmd == F_ADD_SEALS) &&
            inject_in("fcntl", cmd == F_DUPFD_CLOEXEC ? EMFILE : EBUSY))
                return -1;
        return __real_fcntl64(fd, cmd, arg);
}

/* Mappings of brood memory (memfds and names): counting every line of
 * /proc/self/maps would count the sanitizers' own growing regions too. */
static int map_count(void)
{
        char line[512];
        FILE *f;
        int n = 0;

        armed = 0;
        f = fopen("/proc/self/maps", "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                n += strstr(line, "memfd:brood") || strstr(line, "/dev/shm/brood") ||
                     strstr(line, "/brood.");
        fclose(f);
        return n;
}

/* Run @op with the k-th call failing, for k = 1, 2, ... until nothing fails. */
static void sweep(const char *what, int (*op)(void))
{
        int k, runs = 0;

        for (k = 1; k < 1000; k++) {
                int fds = t_fd_count(), maps = map_count(), shm = t_shm_count(), r;

                injected = 0;
                ncalls = 0;
                fail_at = k;
                armed = 1;
                r = op();
                armed = 0;
                if (r != 0 && r != -injected)
                        fail_msg("%s: call %d failed with %d, injected %d", what, k, r, injected);
                assert_int_equal(t_fd_count(), fds);
                assert_int_equal(map_count(), maps);
                assert_int_equal(t_shm_count(), shm);
                runs++;
                if (!injected) {
                        assert_int_equal(r, 0);
                        break;
                }
                /* The one failure that may be absorbed: a ring's
                 * MADV_WIPEONFORK token falls back to the fork generation
                 * (kernels before 4.14). */
                if (r == 0 && strcmp(injected_in, "madvise"))
                        fail_msg("%s: call %d (%s) failed with errno %d and was swallowed", what, k,
                                 injected_in, injected);
        }
        assert_true(runs > 1);
}

/* Each op does the whole thing and undoes it: 0 or the -errno of the failure. */
static int op_seg_anon(void)
{
        struct brd_seg *s;
        int r = brd_seg_create("fault", 65536, BRD_SEG_NOFORK, &s);

        if (r == 0)
                brd_seg_close(s);
        return r;
}

static int op_seg_named(void)
{
        struct brd_seg *s;
        int r = brd_seg_create("fault", 65536, BRD_SEG_NAMED, &s);

        if (r == 0)
                brd_seg_close(s);
        return r;
}

static int op_seg_export_attach(void)
{
        struct brd_seg *s, *a;
        struct brd_handle h;
        int r;

        armed = 0;
        assert_int_equal(brd_seg_create("fault", 4096, 0, &s), 0);
        armed = 1;
        r = brd_seg_export(s, &h);
        if (r == 0) {
                r = brd_seg_attach(&h, &a);
                if (r == 0)
                        brd_seg_close(a);
                brd_handle_close(&h);
        }
        armed = 0;
        brd_seg_close(s);
        return r;
}

static int op_ring(void)
{
        struct brd_handle p, c;
        struct brd_ring *rp = NULL, *rc = NULL;
        char buf[64] = "hello";
        int r;

        r = brd_ring_create(65536, 0, &p, &c);
        if (r < 0)
                return r;
        r = brd_ring_attach(&p, &rp);
        if (r == 0)
                r = brd_ring_attach(&c, &rc);
        if (r == 0)
                r = brd_ring_send(rp, buf, 6, 0);
        if (r == 0) {
                ssize_t n = brd_ring_recv(rc, buf, sizeof(buf), 0);

                r = n == 6 ? 0 : (int)n;
        }
        if (r == 0) {
                r = brd_ring_fd(rc);            /* creates the epoll fd lazily */
                r = r >= 0 ? 0 : r;
        }
        brd_ring_close(rp);
        brd_ring_close(rc);
        brd_handle_close(&p);
        brd_handle_close(&c);
        return r;
}

/* A brd_ring_fd() user's -EAGAIN with no producer attached: the fd's
 * wait bound is a timer, made then (the fd's own fds fail as op_ring's). */
static int op_ring_fd_bound(void)
{
        struct brd_handle p, c;
        struct brd_ring *rc = NULL;
        char buf[8];
        int r;

        r = brd_ring_create(4096, 0, &p, &c);
        if (r < 0)
                return r;
        r = brd_ring_attach(&c, &rc);
        if (r == 0) {
                r = brd_ring_fd(rc);
                r = r >= 0 ? 0 : r;
        }
        if (r == 0) {
                ssize_t n = brd_ring_recv(rc, buf, sizeof(buf), 0);

                r = n == -EAGAIN ? 0 : (int)n;
        }
        brd_ring_close(rc);
        brd_handle_close(&p);
        brd_handle_close(&c);
        return r;
}

/* Open a name another segment of this process made. */
static int op_seg_open(void)
{
        struct brd_seg *s, *o;
        int r;

        armed = 0;
        assert_int_equal(brd_seg_create("fault", 65536, BRD_SEG_NAMED, &s), 0);
        armed = 1;
        r = brd_seg_open(brd_seg_name(s), &o);
        if (r == 0)
                brd_seg_close(o);
        armed = 0;
        brd_seg_close(s);
        return r;
}

static int op_pool(void)
{
        struct brd_pool *pool, *other;
        struct brd_array *a;
        struct brd_handle h;
        int r = brd_pool_create(1 << 20, 0, &pool);

        if (r < 0)
                return r;
        r = brd_pool_export(pool, &h);
        if (r == 0) {
                r = brd_pool_attach(&h, &other);
                if (r == 0) {
                        struct brd_pool_stats st;

                        r = brd_array_create(other, 16, 64, 0, 0, &a);
                        if (r == 0)
                                brd_array_destroy(a);
                        /* Failed or destroyed, the array left no block taken. */
                        if (brd_pool_stats(other, &st) < 0 || st.blocks != 0)
                                fail_msg("array create left %llu blocks",
                                         (unsigned long long)st.blocks);
                        brd_pool_close(other);
                }
                brd_handle_close(&h);
        }
        brd_pool_close(pool);
        return r;
}

static int op_handles(void)
{
        struct brd_seg *s;
        struct brd_handle h, got;
        int sp[2], r;

        armed = 0;
        assert_int_equal(brd_seg_create("fault", 4096, 0, &s), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
        armed = 1;
        r = brd_seg_export(s, &h);
        if (r == 0) {
                r = brd_handle_send(sp[0], &h, 1);
                if (r == 0) {
                        r = brd_handle_recv(sp[1], &got, 1, 1000);
                        if (r == 1) {
                                struct brd_handle d;

                                r = brd_handle_dup(&got, &d);
                                if (r == 0)
                                        brd_handle_close(&d);
                                brd_handle_close(&got);
                        }
                }
                brd_handle_close(&h);
        }
        armed = 0;
        close(sp[0]);
        close(sp[1]);
        brd_seg_close(s);
        return r;
}

/*
 * A ring whose endpoints have no wipe-on-fork page (kernels before 4.14):
 * the fork generation stands in for the token, and the reservation lives
 * where commit's fast path does not look.  A fork with a reservation and a
 * peeked frame open, then a zero-copy stream over several laps.
 */
static void test_ring_without_wipeonfork(void **state)
{
        struct brd_ring *p, *c;
        struct t_leak l;
        uint64_t seed = 3;
        const void *view;
        uint8_t want[512];
        void *w;
        int i;

        t_leak_begin(&l);
        no_wipe = 1;
        wipe_refused = 0;
        t_ring_pair(4096, 0, &p, &c);
        no_wipe = 0;
        assert_int_equal(wipe_refused, 2);
        t_ring_zc_across_fork(p, c);
        for (i = 0; i < 2000; i++) {
                size_t len = t_rand(&seed) % sizeof(want);

                for (size_t k = 0; k < len; k++)
                        want[k] = (uint8_t)t_rand(&seed);
                assert_int_equal(brd_ring_reserve(p, len, &w, 0), 0);
                memcpy(w, want, len);
                assert_int_equal(brd_ring_commit(p, len), 0);
                assert_int_equal(brd_ring_commit(p, len), -EINVAL);
                assert_int_equal(brd_ring_peek(c, &view, 0), (ssize_t)len);
                assert_memory_equal(view, want, len);
                assert_int_equal(brd_ring_release(c), 0);
                assert_int_equal(brd_ring_release(c), -EINVAL);
        }
        brd_ring_close(p);
        brd_ring_close(c);
        t_leak_end(&l);
}

/*
 * A memfd is made not executable (MFD_NOEXEC_SEAL) where the kernel knows
 * the flag (6.3): 6.3-6.5 with vm.memfd_noexec=2 refuse a memfd without
 * it (EACCES), and every later one warns once.  A kernel before 6.3 takes
 * it for an unknown flag (EINVAL): made without it there.  Before, every
 * create failed under that sysctl.
 */
static void test_memfd_noexec(void **state)
{
        struct brd_handle hp, hc;
        struct brd_ring *p, *c;
        struct brd_seg *s;
        struct t_leak l;
        int k, r, probe;

        (void)state;
        t_leak_begin(&l);
        for (k = 2; k >= 0; k--) {
                memfd_kernel = k;
                r = brd_seg_create("noexec", 4096, 0, &s);
                memfd_kernel = 0;
                assert_int_equal(r, 0);
                assert_int_equal(memfd_flags & MFD_NOEXEC_SEAL, k == 2 ? 0 : MFD_NOEXEC_SEAL);
                /* This kernel, when it knows the flag: the exec seal is on. */
                probe = memfd_create("probe", MFD_CLOEXEC | MFD_NOEXEC_SEAL);
                if (k == 0 && probe >= 0)
                        assert_true(fcntl(brd_seg_fd(s), F_GET_SEALS) & 0x0020 /* F_SEAL_EXEC */);
                if (probe >= 0)
                        close(probe);
                brd_seg_close(s);
                memfd_kernel = k;
                r = brd_ring_create(4096, 0, &hp, &hc);
                memfd_kernel = 0;
                assert_int_equal(r, 0);
                assert_int_equal(brd_ring_attach(&hp, &p), 0);
                assert_int_equal(brd_ring_attach(&hc, &c), 0);
                brd_handle_close(&hp);
                brd_handle_close(&hc);
                assert_int_equal(brd_ring_send(p, "x", 1, 0), 0);
                assert_int_equal(brd_ring_recv(c, &probe, sizeof(probe), 0), 1);
                brd_ring_close(p);
                brd_ring_close(c);
        }
        t_leak_end(&l);
}

/* /proc/@pid/stat field 22 as the kernel shows it to us (shifted by our
 * time namespace's boottime offset); 0 if unreadable. */
static uint64_t raw_start_time(pid_t pid)
{
        char path[64], buf[1024], *p;
        unsigned long long v = 0;
        int fd, field;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (!p)
                return 0;
        for (field = 2; *p && field < 22; p++)
                if (*p == ' ')
                        field++;
        if (field == 22)
                v = strtoull(p, NULL, 10);
        return v;
}

#define TIMENS_OFF_S 100000     /* the boottime offset of the test's time namespace */

/* What the grandchild in the time namespace reports. */
struct timens_report {
        pid_t pid;
        uint64_t start;         /* its own, brd__proc_start_time() inside */
        AO_t word;              /* its owner word, brd__owner_word() inside */
};

/* The time-namespace test's processes: the test process (parent), its start
 * time as it sees it, and the report and hold pipes. */
struct timens_arg {
        pid_t parent;
        uint64_t outside;
        int rep[2], hold[2];
};

/* The child that made the namespace: keeps no pipe end of the test's. */
static int timens_close_ends(void *arg)
{
        struct timens_arg *a = arg;

        close(a->rep[0]);
        close(a->hold[1]);
        return 0;
}

/* The child that made the time namespace: its own offset cannot be read,
 * so it knows no start time, and judges nothing dead by one.  0, or what
 * failed. */
static int timens_unshared(void *arg)
{
        struct timens_arg *a = arg;

        timens_close_ends(a);
        if (brd__proc_start_time(a->parent) != 0 || brd__proc_start_time(getpid()) != 0)
                return 10;
        if (brd__pid_gone((uint64_t)a->parent, a->outside, UINT64_MAX))
                return 11;
        return 0;
}

/* Run in a process of the new time namespace: report its own start time
 * and owner word, check the parent's, then live until hold's EOF.  0, or
 * what failed. */
static int timens_inside(void *arg)
{
        struct timens_arg *a = arg;
        struct timens_report r = { .pid = getpid() };
        char c;

        r.start = brd__proc_start_time(r.pid);
        if (brd__owner_word(&r.word) < 0)
                return 21;
        if (!r.start)
                return 20;
        /* Really inside: /proc shows the offset added. */
        if (raw_start_time(r.pid) != r.start + (uint64_t)TIMENS_OFF_S * sysconf(_SC_CLK_TCK))
                return 21;
        if (brd__proc_start_time(a->parent) != a->outside)
                return 22;
        if (brd__pid_gone((uint64_t)a->parent, a->outside, UINT64_MAX) ||
            brd__owner_gone(brd__owner_word_of(a->parent)) ||
            brd__owner_word_of(a->parent) !=
                    ((AO_t)(uint32_t)a->parent | (AO_t)(uint32_t)a->outside << 32))
                return 23;
        if (write(a->rep[1], &r, sizeof(r)) != sizeof(r))
                return 24;
        while (read(a->hold[0], &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

/* The test process's side of a time-namespace test: the pipes, the child
 * that makes the namespace (t_fork_in_new_timens()), our ends of the
 * pipes closed.  Returns the child. */
static pid_t timens_start(struct timens_arg *a, int (*unshared)(void *arg),
                          int (*inside)(void *arg))
{
        pid_t c;

        assert_true(a->outside != 0);   /* and cached, with our offset: forks must re-read */
        assert_int_equal(pipe2(a->rep, O_CLOEXEC), 0);
        assert_int_equal(pipe2(a->hold, O_CLOEXEC), 0);
        c = t_fork_in_new_timens(TIMENS_OFF_S, unshared, inside, a);
        assert_true(c >= 0);
        close(a->rep[1]);
        close(a->hold[0]);
        return c;
}

/* Let the namespace's process go (hold's EOF); the child's exit code. */
static int timens_end(struct timens_arg *a, pid_t c)
{
        close(a->hold[1]);
        close(a->rep[0]);
        return t_wait_child(c);
}

/*
 * A live process in a time namespace with a boottime offset: /proc shows
 * the same process a different start time there, which brood takes the
 * offset off again.  Inside and outside agree on start times and owner
 * words, and neither takes the other for dead; the child that made the
 * namespace (unshare(CLONE_NEWTIME): its own offset cannot be read) knows
 * no start time at all, and judges nothing dead by it either.
 */
static void test_start_time_across_time_namespace(void **state)
{
        struct timens_arg a = { .parent = getpid(), .outside = brd__proc_start_time(getpid()) };
        struct timens_report r;
        ssize_t n;
        pid_t c;
        int rc;
        bool same = false, alive = false, word_alive = false;

        (void)state;
        if (!brd__proc_ours())
                skip();                 /* this test's own /proc is another namespace's */
        c = timens_start(&a, timens_unshared, timens_inside);
        n = read(a.rep[0], &r, sizeof(r));
        if (n == sizeof(r)) {
                /* Judged while it surely lives: it waits for hold's EOF. */
                same = brd__proc_start_time(r.pid) == r.start &&
                       brd__owner_word_of(r.pid) == r.word;
                alive = !brd__pid_gone((uint64_t)r.pid, r.start, UINT64_MAX);
                word_alive = !brd__owner_gone(r.word);
        }
        rc = timens_end(&a, c);
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
        assert_int_equal(n, sizeof(r));
        assert_true(same);
        assert_true(alive);
        assert_true(word_alive);
}

/* A process of the new time namespace that only lives there: reports its
 * pid, then waits for hold's EOF. */
static int timens_hold(void *arg)
{
        struct timens_arg *a = arg;
        pid_t me = getpid();
        char c;

        if (write(a->rep[1], &me, sizeof(me)) != sizeof(me))
                return 30;
        while (read(a->hold[0], &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}

/* In a fresh child of the test process: read the offset (0) where we are,
 * then setns() into @ns's time namespace, where /proc adds its offset to
 * every start time.  0, T_EXIT_SKIP, or what failed. */
static int setns_then_judge(const struct timens_arg *a, pid_t ns)
{
        char path[64];
        int fd;

        if (brd__proc_start_time(a->parent) != a->outside)
                return 40;
        snprintf(path, sizeof(path), "/proc/%d/ns/time", (int)ns);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 41;
        if (setns(fd, CLONE_NEWTIME) < 0)
                return errno == EPERM ? T_EXIT_SKIP : 42;
        close(fd);
        if (raw_start_time(a->parent) != a->outside + (uint64_t)TIMENS_OFF_S * sysconf(_SC_CLK_TCK))
                return 43;      /* not really in it */
        /* The offset read before the setns is not this namespace's. */
        if (brd__proc_start_time(a->parent) != a->outside)
                return 44;
        if (brd__pid_gone((uint64_t)a->parent, a->outside, UINT64_MAX))
                return 45;
        return 0;
}

/*
 * A process that setns()es into a time namespace takes the new offset off
 * the start times it reads there: before, it kept the one it had read
 * first, took the live test process for a recycled pid, and answered 44.
 */
static void test_start_time_after_setns(void **state)
{
        struct timens_arg a = { .parent = getpid(), .outside = brd__proc_start_time(getpid()) };
        pid_t c, j, ns = 0;
        ssize_t n;
        int rc, rj = -1;

        (void)state;
        if (!brd__proc_ours())
                skip();
        c = timens_start(&a, timens_close_ends, timens_hold);
        n = read(a.rep[0], &ns, sizeof(ns));
        if (n == sizeof(ns)) {
                j = t_fork();
                assert_true(j >= 0);
                if (j == 0)
                        _exit(setns_then_judge(&a, ns));
                rj = t_wait_child(j);
        }
        rc = timens_end(&a, c);
        if (rc == T_EXIT_SKIP || rj == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
        assert_int_equal(n, sizeof(ns));
        assert_int_equal(rj, 0);
}

/*
 * As pid 1 of a new pid namespace whose /proc is still the parent
 * namespace's: /proc/1 is some other process there.  Nothing read from it
 * may count: no start time is known, and a live process stamped with its
 * true start time (as a process with the right /proc would have written
 * it) is alive.
 */
static int foreign_proc_inside(void *arg)
{
        char buf[32];
        ssize_t n;
        uint64_t truth;
        pid_t host;

        (void)arg;
        if (getpid() != 1)
                return 10;
        if (brd__proc_ours())
                return 11;
        /* Our own start time, through our pid in that /proc. */
        n = readlink("/proc/self", buf, sizeof(buf) - 1);
        if (n <= 0)
                return 12;
        buf[n] = '\0';
        host = (pid_t)atoi(buf);
        truth = raw_start_time(host);
        if (host == 1 || !truth || truth == raw_start_time(1))
                return 13;
        if (brd__proc_start_time(1) != 0)
                return 14;
        if (brd__pid_gone(1, truth, UINT64_MAX) || brd__owner_gone((AO_t)1 | (AO_t)(uint32_t)truth << 32))
                return 15;
        /* A process that is gone still is: kill() says so. */
        {
                pid_t c = fork();
                int st;

                if (c < 0)
                        return 16;
                if (c == 0)
                        _exit(0);
                if (waitpid(c, &st, 0) != c)
                        return 17;
                if (!brd__pid_gone((uint64_t)c, 0, UINT64_MAX))
                        return 18;
        }
        return 0;
}

static void test_foreign_proc_judges_nothing(void **state)
{
        int rc;

        (void)state;
        if (!brd__proc_ours())
                skip();                 /* this test's own /proc is another namespace's */
        rc = t_run_in_new_pidns(foreign_proc_inside, NULL);
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

/*
 * The same foreign /proc, seen by a process whose pid there is the number
 * it has in its own namespace (clone3's set_tid gives it one pid in both)
 * and whose supplementary groups fill the first 4 KiB of its status before
 * the NSpid line: that line, with two pids, still says foreign.  Only the
 * first 4 KiB were read, and a status without NSpid was taken for a kernel
 * before 4.1, whose /proc is ours: kill() and /proc/N then named different
 * processes.  The helper, exec'd (a raw clone3 child skips the fork
 * handlers), judges and reports.
 */
static int same_pid_many_groups_inside(void *arg)
{
        const char *helper = arg;
        char path[64], *argv[] = { "helper-fdcount", "proc-foreign", NULL };
        uint64_t seed = (uint64_t)getpid() << 32 | (uint64_t)time(NULL) | 1;
        long pid_max = 0;
        FILE *f;
        int st;

        /* Ours (per namespace since Linux 6.14: the outer one's may be
         * lower), and never above the smallest default. */
        f = fopen("/proc/sys/kernel/pid_max", "re");
        if (!f || fscanf(f, "%ld", &pid_max) != 1 || pid_max < 1000)
                return 10;
        fclose(f);
        if (pid_max > 32768)
                pid_max = 32768;
        for (int i = 0; i < 64; i++) {
                pid_t want = (pid_t)(pid_max / 2 + (long)(t_rand(&seed) % (uint64_t)(pid_max / 2 - 1)));
                pid_t set_tid[2] = { want, want };
                struct clone_args ca = { .exit_signal = SIGCHLD,
                                         .set_tid = (uintptr_t)set_tid, .set_tid_size = 2 };
                long c;

                snprintf(path, sizeof(path), "/proc/%d", (int)want);
                if (access(path, F_OK) == 0)
                        continue;               /* taken out there */
                c = syscall(SYS_clone3, &ca, sizeof(ca));
                if (c < 0 && errno == EEXIST)
                        continue;
                if (c < 0)
                        return errno == EPERM || errno == ENOSYS || errno == E2BIG ||
                               errno == EINVAL ? T_EXIT_SKIP : 11;
                if (c == 0) {
                        if (t_set_many_groups() < 0)
                                _exit(T_EXIT_SKIP);
                        execve(helper, argv, environ);
                        _exit(21);
                }
                if (waitpid((pid_t)c, &st, 0) != (pid_t)c || !WIFEXITED(st))
                        return 12;
                return WEXITSTATUS(st);
        }
        return T_EXIT_SKIP;                     /* no free pid found */
}

static void test_foreign_proc_same_pid_many_groups(void **state)
{
        const char *helper = getenv("BRD_HELPER_FDCOUNT");
        int rc;

        (void)state;
        assert_non_null(helper);
        if (!brd__proc_ours())
                skip();                 /* this test's own /proc is another namespace's */
        rc = t_run_in_new_pidns(same_pid_many_groups_inside, (void *)helper);
        if (rc == T_EXIT_SKIP)
                skip();
        assert_int_equal(rc, 0);
}

/*
 * A /proc read that fails for now (out of fds) is no verdict: the process
 * reads again, and knows its start time once it can.  Remembered as unknown,
 * it would stamp no start time in its lock words and judge no reused pid
 * dead for as long as it lived.  In a child: fork() forgets what the test
 * process read.  @proc_known: whether /proc is ours was settled before
 * (else that look fails first; then the time namespace's offset does).
 * 0, or what failed.
 */
static int start_time_after_emfile(bool proc_known)
{
        struct rlimit rl;
        int fds[64], n = 0, fd, any = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (any < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max < 64)
                return 10;
        rl.rlim_cur = 64;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 11;
        if (proc_known && !brd__proc_ours())
                return 15;
        while (n < 64 && (fd = dup(any)) >= 0)
                fds[n++] = fd;
        if (errno != EMFILE || n == 64)
                return 12;
        if (brd__proc_start_time(getpid()) != 0)
                return 13;      /* read /proc without an fd? */
        while (n > 0)
                close(fds[--n]);
        if (brd__proc_start_time(getpid()) != raw_start_time(getpid()))
                return 14;
        return 0;
}

static void test_start_time_after_emfile(void **state)
{
        pid_t c;

        (void)state;
        if (!brd__proc_ours() || !brd__proc_start_time(getpid()))
                skip();                 /* no start times here at all */
        for (int known = 0; known < 2; known++) {
                c = t_fork();
                assert_true(c >= 0);
                if (c == 0)
                        _exit(start_time_after_emfile(known));
                assert_int_equal(t_wait_child(c), 0);
        }
}

/*
 * RELIABILITY D25: a bad argument is -EINVAL before any system call and any
 * allocation: with the shim counting (none failing), not one of the calls
 * it wraps (calloc, memfd_create, shm_open, mmap, eventfd...) is made.
 */
static void test_bad_args_call_nothing(void **state)
{
        struct brd_handle hp, hc, bad = { .kind = BRD_HANDLE_RING_PRODUCER, .nfds = 1 };
        struct brd_pool *pool, *scratch;
        struct brd_array *a;
        struct brd_ring *r;
        struct brd_seg *s;
        int res[12], k = 0;

        (void)state;
        assert_int_equal(brd_pool_create(1u << 20, 0, &pool), 0);
        injected = 0;
        ncalls = 0;
        fail_at = INT_MAX;
        armed = 1;
        res[k++] = brd_seg_create("fault", 0, 0, &s);
        res[k++] = brd_seg_create("fa/ult", 4096, 0, &s);
        res[k++] = brd_seg_create("fault", 4096, 1u << 30, &s);
        res[k++] = brd_seg_create("fault", 4096, 0, NULL);
        res[k++] = brd_ring_create(0, 0, &hp, &hc);
        res[k++] = brd_ring_create((size_t)8 << 30, 0, &hp, &hc);
        res[k++] = brd_ring_create(4096, 1u << 30, &hp, &hc);
        res[k++] = brd_ring_attach(&bad, &r);
        res[k++] = brd_pool_create(0, 0, &scratch);
        res[k++] = brd_pool_create(1u << 20, 1u << 30, &scratch);
        res[k++] = brd_array_create(pool, SIZE_MAX / 2, 4, 0, 0, &a);
        res[k++] = brd_array_create(pool, 8, 8, 0, 1u << 30, &a);
        armed = 0;
        assert_int_equal(ncalls, 0);
        for (int i = 0; i < k; i++)
                if (res[i] != -EINVAL)
                        fail_msg("case %d: %d, not -EINVAL", i, res[i]);
        brd_pool_close(pool);
}

static void test_seg_anon(void **state) { sweep("seg anon", op_seg_anon); }
static void test_seg_named(void **state) { sweep("seg named", op_seg_named); }
static void test_seg_export_attach(void **state) { sweep("seg export/attach", op_seg_export_attach); }
static void test_ring(void **state) { sweep("ring", op_ring); }
static void test_ring_fd_bound(void **state) { sweep("ring fd bound", op_ring_fd_bound); }
static void test_seg_open(void **state) { sweep("seg open", op_seg_open); }
static void test_pool(void **state) { sweep("pool", op_pool); }
static void test_handles(void **state) { sweep("handles", op_handles); }

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seg_anon),
                cmocka_unit_test(test_seg_named),
                cmocka_unit_test(test_seg_export_attach),
                cmocka_unit_test(test_ring),
                cmocka_unit_test(test_ring_fd_bound),
                cmocka_unit_test(test_seg_open),
                cmocka_unit_test(test_ring_without_wipeonfork),
                cmocka_unit_test(test_memfd_noexec),
                cmocka_unit_test(test_pool),
                cmocka_unit_test(test_handles),
                cmocka_unit_test(test_start_time_across_time_namespace),
                cmocka_unit_test(test_start_time_after_setns),
                cmocka_unit_test(test_foreign_proc_judges_nothing),
                cmocka_unit_test(test_foreign_proc_same_pid_many_groups),
                cmocka_unit_test(test_start_time_after_emfile),
                cmocka_unit_test(test_bad_args_call_nothing),
        };

        return cmocka_run_group_tests_name("shm-faults", tests, NULL, NULL);
}
