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
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/shm.h>

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

        /* To the default action: the fault kills, as it would unguarded. */
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *f;

                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(NULL);
                (void)f[4096];
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);

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
        pid = fork_default_sigbus();
        if (pid == 0) {
                signal(SIGBUS, SIG_IGN);
                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                kill(getpid(), SIGBUS);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(s);
}

/* A NOFORK segment is absent in a forked child: whatever the child maps at
 * its old address is not the guard's to cover. */
static void test_nofork_range_not_guarded_in_child(void **state)
{
        struct brd_seg *s;
        void *where;
        pid_t pid;

        (void)state;
        assert_int_equal(brd_seg_create("nofork", SEG_SIZE, BRD_SEG_NAMED | BRD_SEG_NOFORK, &s), 0);
        where = brd_seg_addr(s);
        pid = fork_default_sigbus();
        if (pid == 0) {
                volatile unsigned char *f;

                if (brd_seg_sigbus_guard() != 0)
                        _exit(1);
                f = foreign_shrunk_map(where);
                (void)f[4096];
                _exit(2);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGBUS);
        brd_seg_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_foreign_named_needs_guard, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_shrunk_segment_reads_zeros, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_other_sigbus_goes_on, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nofork_range_not_guarded_in_child, t_leak_setup,
                                                t_leak_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
