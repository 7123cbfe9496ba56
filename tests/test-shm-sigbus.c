/* SPDX-License-Identifier: MIT */
/*
 * Named segments and the SIGBUS guard (RELIABILITY B14): another process's
 * named segment is refused unguarded; guarded, a peer's shrink turns into
 * private zero pages and -EFAULT, never a crash; a SIGBUS the guard does
 * not own goes where it went before.  Every guard lives in a forked child
 * (it is process-wide and stays), which reports through its exit code.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/shm.h>
#include "internal/brd-private.h"

#define SEG_SIZE 65536

static pid_t fork_default_sigbus(void)
{
        pid_t pid = t_fork();

        assert_true(pid >= 0);
        /* cmocka catches SIGBUS; the child starts from the default. */
        if (pid == 0)
                signal(SIGBUS, SIG_DFL);
        return pid;
}

/*
 * Linked with -Wl,--wrap=sigaction too: with race_install set (a
 * struct sigaction), the next look at SIGBUS's action is followed at once
 * by that install, as if another thread had made it between the guard's
 * look and its own install.
 */
static struct sigaction *race_install;

int __real_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
int __wrap_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
int __wrap_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
        int r = __real_sigaction(sig, act, old);
        struct sigaction *race = race_install;

        if (r == 0 && sig == SIGBUS && !act && race) {
                race_install = NULL;
                r = __real_sigaction(SIGBUS, race, NULL);
        }
        return r;
}

/*
 * Linked with -Wl,--wrap=pthread_atfork: the library's registration (at
 * load) is preceded by a child handler of the test's, which runs first in
 * every child, as another component's registered earlier would.  With
 * hole set, it maps a page of its own at that address, where a NOFORK
 * segment was (hole_mapped: it could).
 */
static void *volatile hole;
static volatile int hole_mapped;

static void fill_hole(void)
{
        void *h = hole;
        void *q;

        hole_mapped = 0;
        if (!h)
                return;
        q = mmap(h, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (q == h) {
                *(volatile unsigned char *)q = 0x5a;
                hole_mapped = 1;
        } else if (q != MAP_FAILED) {
                munmap(q, 4096);        /* a kernel before 4.17 took the flag for a hint */
        }
}

int __real_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
int __wrap_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void));
int __wrap_pthread_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
        int e = __real_pthread_atfork(NULL, NULL, fill_hole);

        return e ? e : __real_pthread_atfork(prepare, parent, child);
}

/* In a grandchild forked with @s's address as the hole: 0 if the test's
 * page is still there (@filled) or the range is not mapped at all (not
 * @filled), else 1. */
static int fork_over_hole(struct brd_seg *s, bool filled)
{
        unsigned char *a = brd_seg_addr(s);
        int st;
        pid_t g;

        hole = a;
        g = fork();
        if (g == 0) {
                bool mapped = msync(a, 4096, MS_ASYNC) == 0;

                if (filled)
                        _exit(hole_mapped && mapped && *(volatile unsigned char *)a == 0x5a ? 0 : 1);
                _exit(!hole_mapped && !mapped && errno == ENOMEM ? 0 : 1);
        }
        hole = NULL;
        return g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/*
 * Linked with -Wl,--wrap=madvise too: with fork_in_madvise set, the next
 * MADV_DONTFORK (the guard's cover of a NOFORK segment) is followed at once
 * by a fork(), as another thread's at that instant: the grandchild exits
 * with fork_over_hole()'s verdict on the hole (filled: it must be), and its
 * status lands in madvise_fork_status (-1: no such fork).
 */
static volatile int fork_in_madvise;
static volatile int madvise_fork_status = -1;

int __real_madvise(void *a, size_t l, int adv);
int __wrap_madvise(void *a, size_t l, int adv);
int __wrap_madvise(void *a, size_t l, int adv)
{
        int r = __real_madvise(a, l, adv), st;
        unsigned char *h = hole;
        pid_t g;

        if (adv != MADV_DONTFORK || !fork_in_madvise)
                return r;
        fork_in_madvise = 0;
        g = fork();
        if (g == 0)
                _exit(hole_mapped && msync(h, 4096, MS_ASYNC) == 0 && *(volatile unsigned char *)h == 0x5a ?
                              0 : 1);
        if (g > 0 && waitpid(g, &st, 0) == g)
                madvise_fork_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return r;
}

/* Another process shrinks the file under @name to @size bytes. */
static int shrink(const char *name, off_t size)
{
        int fd = shm_open(name, O_RDWR, 0), r;

        if (fd < 0)
                return -1;
        r = ftruncate(fd, size);
        close(fd);
        return r;
}

static void host_handler(int sig)
{
        (void)sig;
}

/*
 * Linked with -Wl,--wrap=mmap64 (tests/meson.build): with probe_mask set,
 * a MAP_FIXED mapping (the guard's zero pages over a shrunk segment) notes
 * the thread's signal mask as the kernel has it, in probed_mask.
 */
static volatile int probe_mask;
static uint64_t probed_mask;
static int probed;

void *__real_mmap64(void *a, size_t l, int p, int f, int fd, off_t o);
void *__wrap_mmap64(void *a, size_t l, int p, int f, int fd, off_t o);
void *__wrap_mmap64(void *a, size_t l, int p, int f, int fd, off_t o)
{
        if (probe_mask && (f & MAP_FIXED) &&
            syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &probed_mask, sizeof(probed_mask)) == 0)
                probed++;
        return __real_mmap64(a, l, p, f, fd, o);
}

static void test_foreign_named_needs_guard(void **state)
{
        struct brd_seg *s, *o;
        struct brd_handle h;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_seg_create("guard", 4096, BRD_SEG_NAMED, &s), 0);
        memcpy(brd_seg_addr(s), "shared", 7);
        assert_int_equal(brd_seg_export(s, &h), 0);
        /* The creator maps its own unguarded. */
        assert_int_equal(brd_seg_open(brd_seg_name(s), &o), 0);
        brd_seg_close(o);
        {
                /* Not a file that merely bears its name: anyone may make one. */
                char fake[300];
                const char *hex = strrchr(brd_seg_name(s), '.') - 32;
                int fd;

                snprintf(fake, sizeof(fake), "%.*s%032x.guard", (int)(hex - brd_seg_name(s)),
                         brd_seg_name(s), 7);
                fd = shm_open(fake, O_RDWR | O_CREAT | O_EXCL, 0600);
                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 4096), 0);
                close(fd);
                assert_int_equal(brd_seg_open(fake, &o), -EPERM);
                assert_int_equal(shm_unlink(fake), 0);
        }

        pid = fork_default_sigbus();
        if (pid == 0) {
                struct sigaction host = { .sa_handler = host_handler };

                if (brd_seg_open(brd_seg_name(s), &o) != -EPERM || brd_seg_attach(&h, &o) != -EPERM)
                        _exit(1);
                if (brd_seg_sigbus_guard() != 0 || brd_seg_sigbus_guard() != 0)
                        _exit(2);
                if (brd_seg_open(brd_seg_name(s), &o) != 0)
                        _exit(3);
                if (strcmp(brd_seg_addr(o), "shared") || brd_seg_check(o) != 0)
                        _exit(4);
                brd_seg_close(o);
                if (brd_seg_attach(&h, &o) != 0)
                        _exit(5);
                brd_seg_close(o);
                /* The host takes SIGBUS back: the guard is gone. */
                sigemptyset(&host.sa_mask);
                if (sigaction(SIGBUS, &host, NULL) != 0 || brd_seg_open(brd_seg_name(s), &o) != -EPERM)
                        _exit(6);
                if (brd_seg_sigbus_guard() != 0 || brd_seg_open(brd_seg_name(s), &o) != 0)
                        _exit(7);
                brd_seg_close(o);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_handle_close(&h);
        brd_seg_close(s);
}

/*
 * A name that ends in " (deleted)" is a name: the kernel appends that
 * text to the /proc link of an unlinked file, but any name may end so.
 * brd_seg_name() was NULL for such a segment, still linked, as for one
 * unlinked before the open.
 */
static void test_name_ending_deleted(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                char name[96], path[128];
                struct brd_seg *o, *u;
                const char *got;
                int fd, r = 0;

                snprintf(name, sizeof(name), "/brood-test-%d (deleted)", (int)getpid());
                snprintf(path, sizeof(path), "/dev/shm%s", name);
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || ftruncate(fd, 4096) < 0)
                        _exit(1);
                close(fd);
                if (brd_seg_sigbus_guard() != 0 || brd_seg_open(name, &o) != 0)
                        r = 2;
                else if (!(got = brd_seg_name(o)) || strcmp(got, name))
                        r = 3;
                else {
                        /* Unlinked before a second open's look: no name. */
                        fd = open(path, O_RDWR | O_CLOEXEC);
                        if (fd < 0 || shm_unlink(name) != 0)
                                r = 4;
                        else if (brd__seg_attach_fd(fd, 4096, true, NULL, 0, &u) != 0)
                                r = 5;
                        else {
                                if (brd_seg_name(u))
                                        r = 6;
                                brd_seg_close(u);
                        }
                        if (fd >= 0)
                                close(fd);
                        brd_seg_close(o);
                }
                shm_unlink(name);
                if (r)
                        _exit(r);
                /* Opened by a name since unlinked, another hard link left:
                 * no name either (not "<name> (deleted)"). */
                snprintf(name, sizeof(name), "/brood-test-%d-a", (int)getpid());
                snprintf(path, sizeof(path), "/dev/shm%s.link", name);
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || ftruncate(fd, 4096) < 0)
                        _exit(7);
                {
                        char orig[128];

                        snprintf(orig, sizeof(orig), "/dev/shm%s", name);
                        if (link(orig, path) < 0 || shm_unlink(name) < 0)
                                r = 8;
                }
                if (!r && brd__seg_attach_fd(fd, 4096, true, NULL, 0, &u) != 0)
                        r = 9;
                else if (!r) {
                        if (brd_seg_name(u))
                                r = 10;
                        brd_seg_close(u);
                }
                close(fd);
                unlink(path);
                _exit(r);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

static void test_shrunk_segment_reads_zeros(void **state)
{
        struct brd_seg *s;
        struct brd_handle h;
        volatile unsigned char *p;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_seg_create("shrink", SEG_SIZE, BRD_SEG_NAMED, &s), 0);
        p = brd_seg_addr(s);
        memset((void *)p, 0xa5, SEG_SIZE);
        assert_int_equal(brd_seg_export(s, &h), 0);

        pid = fork_default_sigbus();
        if (pid == 0) {
                struct brd_seg *a;
                struct brd_handle x;
                volatile unsigned char *q;

                if (brd_seg_sigbus_guard() != 0 || brd_seg_attach(&h, &a) != 0)
                        _exit(1);
                q = brd_seg_addr(a);
                if (q[8192] != 0xa5 || shrink(brd_seg_name(s), 4096) != 0)
                        _exit(2);
                /* Past the new end: zeros, not SIGBUS; all of it is private now. */
                if (q[8192] != 0 || q[0] != 0 || brd_seg_check(a) != -EFAULT)
                        _exit(3);
                if (brd_seg_export(a, &x) != -EFAULT)
                        _exit(4);
                q[0] = 0x11;    /* reaches no other process */
                /* The mapping inherited from the creator is guarded too. */
                if (brd_seg_check(s) != 0 || p[SEG_SIZE - 1] != 0 || brd_seg_check(s) != -EFAULT)
                        _exit(5);
                brd_seg_close(a);
                brd_seg_close(s);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        /* The creator's view of the first page is untouched. */
        assert_int_equal(p[0], 0xa5);
        assert_int_equal(brd_seg_check(s), 0);
        brd_handle_close(&h);
        brd_seg_close(s);
}

/*
 * While the guard maps the zero pages (its claim on the slot taken), every
 * signal is blocked, glibc's own too: pthread_sigmask() quietly leaves
 * SIGCANCEL (32) and SIGSETXID (33) out, and an asynchronous cancel there
 * unwound the handler with the slot claimed for good, which hung the
 * segment's close under the fork lock (and with it every fork()).
 */
static void test_cover_blocks_every_signal(void **state)
{
        struct brd_seg *s;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_seg_create("mask", SEG_SIZE, BRD_SEG_NAMED, &s), 0);
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *q;
                struct brd_seg *a;

                if (brd_seg_sigbus_guard() != 0 || brd_seg_open(brd_seg_name(s), &a) != 0)
                        _exit(1);
                q = brd_seg_addr(a);
                if (shrink(brd_seg_name(s), 4096) != 0)
                        _exit(2);
                probe_mask = 1;
                if (q[8192] != 0)
                        _exit(3);
                probe_mask = 0;
                if (probed != 1)
                        _exit(4);
                /* Signals 32 and 33: bits 31 and 32; SIGKILL and SIGSTOP
                 * cannot be blocked. */
                if ((probed_mask | (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1))) != ~0ull)
                        _exit(5);
                brd_seg_close(a);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(s);
}

/*
 * A named segment grown past four times RAM + swap (sparse: nothing is
 * allocated), opened, then shrunk: the guard's zero pages over all of it
 * come without a commit charge (MAP_NORESERVE).  Charged, the heuristic
 * overcommit (mode 0, the default) refuses any one mapping that large, and
 * the fault killed the process.  Strict overcommit charges them anyway:
 * skipped there.
 */
static void test_huge_sparse_segment_guarded(void **state)
{
        struct brd_seg *s;
        struct sysinfo si;
        off_t huge;
        pid_t pid;
        char mode = '0';
        int fd;

        (void)state;
        fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                if (read(fd, &mode, 1) != 1)
                        mode = '0';
                close(fd);
        }
        if (mode == '2')
                skip();
        assert_int_equal(sysinfo(&si), 0);
        huge = (off_t)(((uint64_t)si.totalram + si.totalswap) * si.mem_unit * 4);
        huge = (huge + 4095) & ~(off_t)4095;
        assert_int_equal(brd_seg_create("huge", 4096, BRD_SEG_NAMED, &s), 0);
        fd = shm_open(brd_seg_name(s), O_RDWR, 0);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, huge), 0);
        close(fd);
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct brd_seg *a;
                volatile unsigned char *q;

                if (brd_seg_sigbus_guard() != 0 || brd_seg_open(brd_seg_name(s), &a) != 0)
                        _exit(1);
                if (brd_seg_size(a) != (size_t)huge)
                        _exit(2);
                q = brd_seg_addr(a);
                if (shrink(brd_seg_name(s), 0) != 0)
                        _exit(3);
                if (q[0] != 0 || q[huge - 1] != 0 || brd_seg_check(a) != -EFAULT)
                        _exit(4);
                brd_seg_close(a);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(s);
}

/* A mapping of a file that shrank at once: touching @p faults. */
static volatile unsigned char *foreign_shrunk_map(void *where)
{
        int fd = memfd_create("not-brood", MFD_CLOEXEC);
        void *p;

        if (fd < 0 || ftruncate(fd, 8192) != 0)
                _exit(100);
        p = mmap(where, 8192, PROT_READ | PROT_WRITE,
                 MAP_SHARED | (where ? MAP_FIXED_NOREPLACE : 0), fd, 0);
        if (p == MAP_FAILED || (where && p != where) || ftruncate(fd, 0) != 0)
                _exit(101);
        close(fd);
        return p;
}

/* A child with the guard and the default SIGBUS action faults in a foreign
 * mapping at @where (NULL: anywhere): the guard passes the fault on, and
 * the child dies by SIGBUS, as it would unguarded. */
static void guarded_foreign_fault_kills(void *where)
{
        pid_t pid = fork_default_sigbus();

        if (pid == 0) {
                volatile unsigned char *f;

                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(where);
                (void)f[4096];
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
}

static volatile sig_atomic_t host_hits;

static void host_sigbus(int sig, siginfo_t *si, void *uc)
{
        (void)sig;
        (void)uc;
        host_hits++;
        /* The host's own remedy: a zero page over the faulting one. */
        if (mmap((void *)((uintptr_t)si->si_addr & ~(uintptr_t)4095), 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
                _exit(102);
}

static void test_other_sigbus_goes_on(void **state)
{
        struct brd_seg *s;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_seg_create("other", SEG_SIZE, BRD_SEG_NAMED, &s), 0);

        /* To the host's handler, installed before the guard. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct sigaction sa = { .sa_sigaction = host_sigbus, .sa_flags = SA_SIGINFO };
                volatile unsigned char *f;

                sigemptyset(&sa.sa_mask);
                if (sigaction(SIGBUS, &sa, NULL) != 0 || brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                if (f[4096] != 0 || host_hits != 1 || brd_seg_check(s) != 0)
                        _exit(2);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);

        /* To the host's handler installed by another thread while the
         * guard was being installed (between its look at the action and
         * its own install): the guard chains to that one, not to the
         * default it saw (before, the kill() below killed). */
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct sigaction sa = { .sa_sigaction = host_sigbus, .sa_flags = SA_SIGINFO };
                volatile unsigned char *f;

                sigemptyset(&sa.sa_mask);
                race_install = &sa;
                if (brd_seg_sigbus_guard() != 0 || race_install)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                if (f[4096] != 0 || host_hits != 1 || brd_seg_check(s) != 0)
                        _exit(2);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);

        /* To the default action: the fault kills, as it would unguarded. */
        guarded_foreign_fault_kills(NULL);

        /* So does a SIGBUS sent with kill(), and an ignored one is ignored. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        /* A queued one that names a guarded address is no fault either. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                siginfo_t si = { .si_signo = SIGBUS, .si_code = SI_QUEUE };

                si.si_addr = brd_seg_addr(s);
                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                syscall(SYS_rt_sigqueueinfo, getpid(), SIGBUS, &si);
                _exit(brd_seg_check(s) == -EFAULT ? 3 : 2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        /* Nor a misaligned access or a memory error in a guarded segment
         * (queued to ourselves, which the kernel lets a process do with
         * a fault's si_code): zero pages would not cure them, and taken,
         * the access would fault again for ever.  Before, they were. */
        for (int code = 0; code < 2; code++) {
                pid = fork_default_sigbus();
                if (pid == 0) {
                        siginfo_t si = { .si_signo = SIGBUS,
                                         .si_code = code ? BUS_MCEERR_AR : BUS_ADRALN };

                        si.si_addr = brd_seg_addr(s);
                        if (brd_seg_sigbus_guard() != 0)
                                _exit(1);
                        syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGBUS, &si);
                        _exit(brd_seg_check(s) == -EFAULT ? 3 : 2);
                }
                assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        }
        /* With SIGBUS ignored, a kill() and an early memory-failure
         * warning (BUS_MCEERR_AO: sent, not forced) are dropped, as the
         * kernel drops them.  The warning was made fatal before. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                siginfo_t si = { .si_signo = SIGBUS, .si_code = BUS_MCEERR_AO };

                signal(SIGBUS, SIG_IGN);
                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);
                syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGBUS, &si);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(s);
}

static struct sigaction host_saved;
static volatile int *host_calls;

/* A host handler that hands every SIGBUS on to the action it replaced. */
static void host_chains_back(int sig, siginfo_t *si, void *uc)
{
        host_saved.sa_sigaction(sig, si, uc);
}

/* A crash reporter that puts back the action it replaced (the guard, which
 * was then installed again over it) and returns: the fault repeats, for
 * the default action to take, it expects. */
static void host_restores(int sig, siginfo_t *si, void *uc)
{
        (void)sig;
        (void)si;
        (void)uc;
        (*host_calls)++;
        sigaction(SIGBUS, &host_saved, NULL);
}

/* A one-shot crash reporter: counts, returns, and the next one is fatal. */
static void host_once(int sig, siginfo_t *si, void *uc)
{
        (void)sig;
        (void)si;
        (void)uc;
        (*host_calls)++;
}

static void test_chained_action_is_honoured(void **state)
{
        struct sigaction sa = { .sa_flags = SA_SIGINFO };
        pid_t pid;

        (void)state;
        sigemptyset(&sa.sa_mask);
        /* The host saved the guard as its predecessor and the guard was put
         * back over it: each would hand the signal to the other for ever
         * (a stack overflow, SIGSEGV); the default action is taken. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                sa.sa_sigaction = host_chains_back;
                if (brd_seg_sigbus_guard() != 0 || sigaction(SIGBUS, &sa, &host_saved) != 0 ||
                    brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);

        /* A reporter that restores "its predecessor", the guard, and
         * returns: the guard handed it the same fault again and again
         * (the child spun until the watchdog); it ends in the default
         * action after a few rounds. */
        host_calls = t_shared_page();
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *f;

                alarm(20);
                sa.sa_sigaction = host_restores;
                if (brd_seg_sigbus_guard() != 0 || sigaction(SIGBUS, &sa, &host_saved) != 0 ||
                    brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                (void)f[4096];
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        assert_in_range(*host_calls, 2, 16);

        /* SA_RESETHAND: the host's reporter runs once, as it would alone;
         * the fault repeats and the default action kills. */
        *host_calls = 0;
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *f;

                sa.sa_sigaction = host_once;
                sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
                if (sigaction(SIGBUS, &sa, NULL) != 0 || brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                (void)f[4096];
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        assert_int_equal(*host_calls, 1);

        /* ...and what it resets is its own action, not the guard: a
         * shrunk named segment is still covered after it ran. */
        *host_calls = 0;
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *p;
                struct brd_seg *g;

                sa.sa_sigaction = host_once;
                sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
                if (sigaction(SIGBUS, &sa, NULL) != 0 || brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);                 /* the reporter's one call */
                if (*host_calls != 1)
                        _exit(2);
                if (brd_seg_create("reset", SEG_SIZE, BRD_SEG_NAMED, &g) != 0)
                        _exit(3);
                p = brd_seg_addr(g);
                if (ftruncate(brd_seg_fd(g), 0) != 0)
                        _exit(4);
                if (p[4096] != 0 || brd_seg_check(g) != -EFAULT)
                        _exit(5);
                brd_seg_close(g);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        t_shared_page_free((void *)host_calls);
}

/* The default action the guard takes is delivered with the fault's own
 * siginfo, queued again, so that a core dump or a debugger sees the code
 * and the address of the access (raise() made it an SI_TKILL with none).
 * Seen through ptrace: the last SIGBUS the child stops at before it dies. */
static void test_default_keeps_siginfo(void **state)
{
        volatile uintptr_t *at = t_shared_page();
        siginfo_t si, last = { 0 };
        int st = 0, stops = 0;
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *f;

                if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0)
                        _exit(T_EXIT_SKIP);     /* not allowed here (Yama, a profile) */
                raise(SIGSTOP);
                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                *at = (uintptr_t)&f[4096];
                (void)f[4096];
                _exit(2);
        }
        /* No assertion while it is traced: a failure would leave it stopped. */
        while (waitpid(pid, &st, 0) == pid && WIFSTOPPED(st)) {
                if (WSTOPSIG(st) == SIGBUS && ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) == 0)
                        last = si;
                if (++stops > 100 ||
                    ptrace(PTRACE_CONT, pid, NULL,
                           (void *)(uintptr_t)(WSTOPSIG(st) == SIGSTOP ? 0 : WSTOPSIG(st))) != 0) {
                        kill(pid, SIGKILL);
                        (void)waitpid(pid, &st, 0);
                        break;
                }
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == T_EXIT_SKIP) {
                t_shared_page_free((void *)at);
                skip();
        }
        assert_true(stops <= 100);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGBUS);
        assert_int_equal(last.si_signo, SIGBUS);
        assert_int_equal(last.si_code, BUS_ADRERR);
        assert_ptr_equal(last.si_addr, (void *)*at);
        t_shared_page_free((void *)at);
}

static volatile sig_atomic_t nd_depth, nd_max, nd_calls;

/* A host handler with SA_NODEFER that raises SIGBUS again inside itself:
 * delivered at once, nested, as the kernel would. */
static void host_nodefer(int sig, siginfo_t *si, void *uc)
{
        (void)si;
        (void)uc;
        nd_depth++;
        nd_calls++;
        if (nd_depth > nd_max)
                nd_max = nd_depth;
        if (nd_calls == 1)
                kill(getpid(), sig);
        nd_depth--;
}

/* SA_NODEFER of the action the guard chains to is honoured: the guard's
 * own delivery blocks SIGBUS, which that handler must not inherit. */
static void test_chained_nodefer(void **state)
{
        struct sigaction sa = { .sa_sigaction = host_nodefer,
                                .sa_flags = SA_SIGINFO | SA_NODEFER };
        pid_t pid;

        (void)state;
        sigemptyset(&sa.sa_mask);
        pid = fork_default_sigbus();
        if (pid == 0) {
                if (sigaction(SIGBUS, &sa, NULL) != 0 || brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);
                _exit(nd_calls == 2 && nd_max == 2 ? 0 : 10 + nd_max);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

struct racer {
        volatile unsigned char *p;
        pthread_barrier_t *go;
        int lost;
};

static void *race_write(void *arg)
{
        struct racer *r = arg;

        pthread_barrier_wait(r->go);
        (void)r->p[0];          /* faults: the segment shrank to nothing */
        r->p[0] = 1;
        r->lost = r->p[0] != 1;
        return NULL;
}

static void *race_read(void *arg)
{
        struct racer *r = arg;

        pthread_barrier_wait(r->go);
        (void)r->p[4096];       /* faults at the same time */
        return NULL;
}

/* Two threads fault in one segment at once: its zero pages are mapped once,
 * so a write made after the first fault returned is not wiped by a second
 * mapping (it was in a few of thousands of rounds). */
static void test_concurrent_faults_map_once(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                pthread_barrier_t go;
                int round;

                if (brd_seg_sigbus_guard() != 0 || pthread_barrier_init(&go, NULL, 2) != 0)
                        _exit(1);
                for (round = 0; round < 1000; round++) {
                        struct brd_seg *s;
                        struct racer r = { .go = &go };
                        pthread_t a, b;

                        if (brd_seg_create("race", 8192, BRD_SEG_NAMED, &s) != 0 ||
                            shrink(brd_seg_name(s), 0) != 0)
                                _exit(2);
                        r.p = brd_seg_addr(s);
                        if (pthread_create(&a, NULL, race_write, &r) ||
                            pthread_create(&b, NULL, race_read, &r))
                                _exit(3);
                        pthread_join(a, NULL);
                        pthread_join(b, NULL);
                        if (r.lost || brd_seg_check(s) != -EFAULT)
                                _exit(4);
                        brd_seg_close(s);
                }
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

/* A NOFORK segment is absent in a forked child: whatever the child maps at
 * its old address is not the guard's to cover. */
static void test_nofork_range_not_guarded_in_child(void **state)
{
        struct brd_seg *s;

        (void)state;
        assert_int_equal(brd_seg_create("nofork", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &s), 0);
        guarded_foreign_fault_kills(brd_seg_addr(s));
        brd_seg_close(s);
}

/*
 * A NOFORK segment the guard covered (its file shrunk under it) stays out
 * of forked children: the cover's zero pages replaced the mapping that
 * carried MADV_DONTFORK, and a child got them (mapped where it takes the
 * range for gone).  In a child of the test, whose child checks the range.
 */
static void test_nofork_cover_stays_out_of_children(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct brd_seg *s;
                volatile unsigned char *q;
                int st;
                pid_t g;

                if (brd_seg_sigbus_guard() != 0 ||
                    brd_seg_create("nofork-cover", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &s) != 0)
                        _exit(1);
                q = brd_seg_addr(s);
                if (shrink(brd_seg_name(s), 0) != 0 || q[0] != 0 || brd_seg_check(s) != -EFAULT)
                        _exit(2);
                g = fork();
                if (g < 0)
                        _exit(3);
                if (g == 0)     /* the range must not be mapped here */
                        _exit(msync((void *)q, 4096, MS_ASYNC) == -1 && errno == ENOMEM ? 0 : 1);
                if (waitpid(g, &st, 0) != g || !WIFEXITED(st))
                        _exit(4);
                brd_seg_close(s);
                _exit(WEXITSTATUS(st) ? 5 : 0);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

/*
 * A fork while another thread's handler is covering a NOFORK segment (its
 * slot left as that handler leaves it, by a test hook): the child, where
 * the range is not mapped, forgets the slot; it waited for the cover to
 * end, which no thread of the child would ever do (a fork that never
 * returned).  In a child of the test, whose child must be back in 10 s.
 */
static void test_fork_during_nofork_cover(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct brd_seg *s;
                int st = 0, pfd, back;
                pid_t g;

                if (brd_seg_sigbus_guard() != 0 ||
                    brd_seg_create("nofork-claim", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &s) != 0)
                        _exit(1);
                brd__guard_test_claim(s);
                g = fork();
                if (g == 0)
                        _exit(brd_seg_addr(s) == NULL ? 0 : 1);
                pfd = g > 0 ? (int)syscall(SYS_pidfd_open, g, 0) : -1;
                back = pfd >= 0 && poll(&(struct pollfd){ .fd = pfd, .events = POLLIN }, 1, 10000) == 1;
                if (g > 0 && !back)
                        kill(g, SIGKILL);
                if (g > 0)
                        waitpid(g, &st, 0);
                /* The slot stays claimed: unlink the name, close nothing. */
                shm_unlink(brd_seg_name(s));
                _exit(g < 0 || pfd < 0 ? 2 : !back ? 3 : WIFEXITED(st) ? WEXITSTATUS(st) : 4);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

/*
 * A NOFORK segment's range is a hole in a forked child, which a child
 * handler registered before the library's may fill (another component's
 * malloc): the library leaves it alone, anonymous or named, guarded, and
 * with a cover claimed but not yet mapped by another thread's handler, and
 * with one forked the instant a cover was marked MADV_DONTFORK.  In a child
 * of the test.
 */
static void test_nofork_hole_left_to_others(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct brd_seg *a, *n, *c;
                volatile unsigned char *q;

                if (brd_seg_create("nofork-anon", SEG_SIZE, BRD_SEG_NOFORK, &a) != 0)
                        _exit(1);
                if (fork_over_hole(a, true) != 0)
                        _exit(2);
                if (brd_seg_sigbus_guard() != 0 ||
                    brd_seg_create("nofork-hole", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &n) != 0 ||
                    brd_seg_create("nofork-cover", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &c) != 0)
                        _exit(3);
                if (fork_over_hole(n, true) != 0)
                        _exit(4);
                brd__guard_test_claim(n);
                if (fork_over_hole(n, true) != 0)
                        _exit(5);
                /* A fork the instant the cover is marked MADV_DONTFORK,
                 * before its handler says it is done: the cover was never
                 * copied (a hole there too), and the hole stays others'. */
                q = brd_seg_addr(c);
                hole = brd_seg_addr(c);
                fork_in_madvise = 1;
                if (shrink(brd_seg_name(c), 0) != 0 || q[0] != 0)
                        _exit(6);
                hole = NULL;
                if (madvise_fork_status != 0)
                        _exit(7);
                if (brd_seg_check(c) != -EFAULT || fork_over_hole(c, true) != 0)
                        _exit(8);
                /* The claimed slot stays: unlink its name, close nothing. */
                shm_unlink(brd_seg_name(n));
                brd_seg_close(c);
                brd_seg_close(a);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

/*
 * In a forked child (the guard is process-wide): @busy(@arg) runs on a
 * second thread until *@stop, while this thread forks @forks grandchildren,
 * each running @grand(@arg) under a 10 s alarm (a hang is what these look
 * for) and exiting with its result.  Exits: 0, 5 if a grandchild failed or
 * hung, else the failed step.
 */
static __attribute__((noreturn)) void fork_while(void *(*busy)(void *), int *stop, void *arg, int forks,
                                                 int (*grand)(void *))
{
        int i, st, bad = 0;
        pthread_t t;
        void *ret;
        pid_t g;

        if (pthread_create(&t, NULL, busy, arg) != 0)
                _exit(1);
        for (i = 0; i < forks; i++) {
                g = fork();
                if (g < 0)
                        _exit(2);
                if (g == 0) {
                        alarm(10);
                        _exit(grand(arg));
                }
                if (waitpid(g, &st, 0) != g)
                        _exit(3);
                bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
        if (pthread_join(t, &ret) != 0 || ret)
                _exit(4);
        _exit(bad ? 5 : 0);
}

/* Installs the guard again and again until told to stop (__atomic). */
static void *reinstall(void *arg)
{
        int *stop = arg;

        while (!__atomic_load_n(stop, __ATOMIC_ACQUIRE))
                if (brd_seg_sigbus_guard() != 0)
                        return arg;
        return NULL;
}

static int install_once(void *arg)
{
        return brd_seg_sigbus_guard() == 0 ? 0 : 1;
}

#define REINSTALL_FORKS 200

/*
 * fork() while another thread installs the guard: the child can install it
 * too (a forkserver child starts with SIGBUS at its default and must, to
 * open a named segment it was handed).  A fork in the middle of an install
 * once gave the child its install lock held by a thread it does not have:
 * a hang, here bounded by an alarm (SIGALRM).
 */
static void test_fork_during_install(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                int stop = 0;

                fork_while(reinstall, &stop, &stop, REINSTALL_FORKS, install_once);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

struct faulter {
        int stop;                       /* __atomic, both */
        volatile unsigned char *cur;    /* __atomic: the segment being faulted in, or NULL */
};

/* Faults in one fresh shrunk segment after another until told to stop:
 * NULL, or the faulter itself on a failure. */
static void *fault_again(void *arg)
{
        struct faulter *f = arg;
        struct brd_seg *s;

        while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
                if (brd_seg_create("fault", 8192, BRD_SEG_NAMED, &s) != 0 ||
                    shrink(brd_seg_name(s), 0) != 0)
                        return f;
                __atomic_store_n(&f->cur, brd_seg_addr(s), __ATOMIC_RELEASE);
                (void)f->cur[0];
                __atomic_store_n(&f->cur, NULL, __ATOMIC_RELEASE);
                brd_seg_close(s);
        }
        return NULL;
}

/* Reads the segment being faulted in at the fork, if any: zeros. */
static int read_faulted(void *arg)
{
        struct faulter *f = arg;
        volatile unsigned char *p = __atomic_load_n(&f->cur, __ATOMIC_ACQUIRE);

        return p && (p[0] != 0 || p[4096] != 0) ? 1 : 0;
}

#define FAULT_FORKS 1000

/*
 * fork() while another thread's guard is putting zero pages over a shrunk
 * segment: a fork between the handler's claim of the segment and its
 * mapping once left the child a claim that no thread of its own would
 * finish, and every access there faulting again forever (bounded here by
 * an alarm).
 */
static void test_fork_during_fault(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork_default_sigbus();
        if (pid == 0) {
                struct faulter f = { 0 };

                if (brd_seg_sigbus_guard() != 0)
                        _exit(6);
                fork_while(fault_again, &f.stop, &f, FAULT_FORKS, read_faulted);
        }
        assert_int_equal(t_wait_child(pid), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_foreign_named_needs_guard, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_name_ending_deleted, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_shrunk_segment_reads_zeros, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_huge_sparse_segment_guarded, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_cover_blocks_every_signal, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_other_sigbus_goes_on, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_chained_action_is_honoured, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_chained_nodefer),
                cmocka_unit_test_setup_teardown(test_default_keeps_siginfo, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_faults_map_once, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fork_during_install, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fork_during_fault, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nofork_range_not_guarded_in_child, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nofork_cover_stays_out_of_children, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fork_during_nofork_cover, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nofork_hole_left_to_others, t_leak_setup,
                                                t_leak_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
