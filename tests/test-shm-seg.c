/* SPDX-License-Identifier: MIT */
/* Segments: create/open/attach/close, fork visibility, hostile fds, limits. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include <brood/shm.h>
#include "internal/brd-private.h"

/* Name squatting: shm_open says EEXIST this many more times. */
static int fail_exist;
/* swap: the name the next create makes is unlinked by another process of
 * ours, which puts a file of its own there (swap_fd), and then the create
 * fails (its fallocate). */
static bool swap;
static char swap_name[NAME_MAX + 1];
static int swap_fd = -1;
int __real_shm_open(const char *name, int flags, mode_t mode);
int __wrap_shm_open(const char *name, int flags, mode_t mode);
int __wrap_shm_open(const char *name, int flags, mode_t mode)
{
        int fd;

        if (fail_exist > 0 && (flags & O_CREAT)) {
                fail_exist--;
                errno = EEXIST;
                return -1;
        }
        fd = __real_shm_open(name, flags, mode);
        if (fd >= 0 && (flags & O_CREAT) && swap && !swap_name[0])
                snprintf(swap_name, sizeof(swap_name), "%s", name);
        return fd;
}

/* ENOSPC injection: posix_fallocate fails while this is set (test-only wrap). */
static int fail_fallocate;
/* meson builds with _FILE_OFFSET_BITS=64: glibc's header redirects the call
 * to posix_fallocate64, so that is the symbol to wrap. */
int __real_posix_fallocate64(int fd, off_t off, off_t len);
int __wrap_posix_fallocate64(int fd, off_t off, off_t len);
int __wrap_posix_fallocate64(int fd, off_t off, off_t len)
{
        if (swap && swap_name[0] && swap_fd < 0) {
                shm_unlink(swap_name);
                swap_fd = __real_shm_open(swap_name, O_RDWR | O_CREAT | O_EXCL, 0600);
                return ENOSPC;
        }
        if (fail_fallocate)
                return fail_fallocate;
        return __real_posix_fallocate64(fd, off, len);
}

/*
 * A peer that seals its memfd only after shrinking it, racing our attach:
 * the F_GET_SEALS of this fd (-1: none) first truncates it to 0 and seals
 * it, as the peer would between our two looks.
 */
static int seal_race_fd = -1;
/* ...or seals it against writes right after its seals were read. */
static int write_seal_race_fd = -1;
int __real_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...)
{
        va_list ap;
        long arg;

        va_start(ap, cmd);
        arg = va_arg(ap, long);
        va_end(ap);
        if (cmd == F_GET_SEALS && fd == seal_race_fd) {
                seal_race_fd = -1;
                if (ftruncate(fd, 0) < 0 ||
                    __real_fcntl64(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                        abort();
        }
        if (cmd == F_GET_SEALS && fd == write_seal_race_fd) {
                int seals = __real_fcntl64(fd, cmd, arg);

                write_seal_race_fd = -1;
                if (__real_fcntl64(fd, F_ADD_SEALS, F_SEAL_WRITE) < 0)
                        abort();
                return seals;
        }
        return __real_fcntl64(fd, cmd, arg);
}

static int map_count(void)
{
        FILE *f = fopen("/proc/self/maps", "re");
        int n = 0, c;

        assert_non_null(f);
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

static void test_anon_create_close(void **state)
{
        struct brd_seg *s = NULL;
        int fds = t_fd_count(), seals;
        unsigned char *p;

        assert_int_equal(brd_seg_create("t", 5000, 0, &s), 0);
        assert_non_null(s);
        assert_int_equal(brd_seg_size(s), 8192);
        assert_null(brd_seg_name(s));
        assert_int_equal(brd_seg_is_inherited(s), 0);
        assert_int_equal(t_fd_count(), fds + 1);
        p = brd_seg_addr(s);
        assert_non_null(p);
        memset(p, 0xab, 8192);
        /* sealed: a peer holding the fd can neither shrink nor grow it */
        assert_int_equal(ftruncate(brd_seg_fd(s), 4096), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(brd_seg_fd(s), 1 << 20), -1);
        assert_int_equal(errno, EPERM);
        /* F_SEAL_SEAL refuses any new seal (EPERM); without it, F_SEAL_WRITE
         * would be refused only for our writable mapping (EBUSY). */
        seals = fcntl(brd_seg_fd(s), F_GET_SEALS);
        assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                         F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        assert_int_equal(fcntl(brd_seg_fd(s), F_ADD_SEALS, F_SEAL_WRITE), -1);
        assert_int_equal(errno, EPERM);
        assert_int_equal(fcntl(brd_seg_fd(s), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        brd_seg_close(s);
        brd_seg_close(NULL);
}

static void test_named_create_open_close(void **state)
{
        struct brd_seg *s = NULL, *o = NULL;
        char path[300];
        struct stat st;
        const char *name;

        assert_int_equal(brd_seg_create("named", 4096, BRD_SEG_NAMED, &s), 0);
        name = brd_seg_name(s);
        assert_non_null(name);
        assert_int_equal(strncmp(name, "/brood.", 7), 0);
        {
                /* pid, start time, pid namespace, 128 random bits, label */
                unsigned long long start, ns;
                char hex[33], label[16];
                struct stat nst;
                int pid;

                assert_int_equal(sscanf(name, "/brood.%d.%llu.%llu.%32[0-9a-f].%15s", &pid, &start,
                                        &ns, hex, label), 5);
                assert_int_equal(pid, getpid());
                assert_true(start > 0);
                assert_int_equal(stat("/proc/self/ns/pid", &nst), 0);
                assert_int_equal(ns, (unsigned long long)nst.st_ino);
                assert_int_equal(strlen(hex), 32);
                assert_string_equal(label, "named");
        }
        snprintf(path, sizeof(path), "/dev/shm%s", name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(t_shm_count(), 1);

        assert_int_equal(brd_seg_open(name, &o), 0);
        assert_string_equal(brd_seg_name(o), name);
        memset(brd_seg_addr(s), 0x5c, 4096);
        assert_int_equal(((unsigned char *)brd_seg_addr(o))[4095], 0x5c);
        brd_seg_close(o);               /* an opener only unmaps */
        assert_int_equal(stat(path, &st), 0);
        brd_seg_close(s);               /* the creator unlinks */
        assert_int_equal(stat(path, &st), -1);
        assert_int_equal(brd_seg_open(path + 8, &o), -ENOENT);
}

/* The child of the next test, in a mount namespace without /proc: 0, the
 * failed step, or T_EXIT_SKIP. */
static int open_without_proc(void)
{
        struct brd_seg *s, *o;
        const char *name;
        int r = 0;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            umount2("/proc", MNT_DETACH) < 0)
                return T_EXIT_SKIP;
        if (access("/proc/self/fd", F_OK) == 0)
                return T_EXIT_SKIP;     /* another /proc under it */
        if (brd_seg_create("noproc", 4096, BRD_SEG_NAMED, &s) < 0 || !(name = brd_seg_name(s)))
                return 1;
        if (brd_seg_open(name, &o) < 0)
                r = 2;
        else if (!brd_seg_name(o) || strcmp(brd_seg_name(o), name))
                r = 3;                  /* NULL: the name came from /proc alone */
        else
                brd_seg_close(o);
        brd_seg_close(s);
        return r;
}

/* Opened by name where /proc is not mounted, a segment still has that
 * name (brd_seg_name() answered NULL, as for an anonymous one). */
static void test_named_open_without_proc(void **state)
{
        (void)state;
        t_run_forked(open_without_proc);
        assert_int_equal(t_shm_count(), 0);
}

/* Our pid namespace as /proc told it, for pid_ns_without_proc(). */
static uint64_t parent_pid_ns;

/* The child of the next test: 0 when it tells its pid namespace without
 * /proc, the failed step, or T_EXIT_SKIP. */
static int pid_ns_without_proc(void)
{
        uint64_t ns;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            umount2("/proc", MNT_DETACH) < 0)
                return T_EXIT_SKIP;
        if (access("/proc/self/ns/pid", F_OK) == 0)
                return T_EXIT_SKIP;     /* another /proc under it */
        ns = brd__pid_ns();             /* its first look: the fork dropped the cache */
        if (ns == 0)
                return errno == ENOTTY || errno == EINVAL ? T_EXIT_SKIP : 1;    /* < 6.11 */
        return ns == parent_pid_ns ? 0 : 2;
}

/*
 * Without /proc, a process still knows its pid namespace (a pidfd of its
 * own tells, Linux 6.11 on): the same one its parent read in /proc.  It
 * was unknown (0), which every namespace check takes as "ours": a process
 * of another namespace without /proc judged the lock holders of a pool by
 * its own pids, and took a live one over.
 */
static void test_pid_ns_without_proc(void **state)
{
        (void)state;
        parent_pid_ns = brd__pid_ns();
        assert_true(parent_pid_ns != 0);
        t_run_forked(pid_ns_without_proc);
}

static void test_fork_visibility_both_ways(void **state)
{
        struct brd_seg *s;
        volatile uint32_t *p;
        int pipefd[2];
        pid_t pid;
        char c;

        assert_int_equal(brd_seg_create("fork", 4096, 0, &s), 0);
        p = brd_seg_addr(s);
        p[0] = 0x11111111;
        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int ok = p[0] == 0x11111111 && brd_seg_is_inherited(s);

                p[1] = 0x22222222;
                brd_seg_close(s);
                (void)!write(pipefd[1], "x", 1);
                _exit(ok ? 0 : 1);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(p[1], 0x22222222);
        assert_int_equal(brd_seg_is_inherited(s), 0);
        brd_seg_close(s);
}

static void test_named_closed_by_child_stays_linked(void **state)
{
        struct brd_seg *s;
        char path[300];
        struct stat st;
        pid_t pid;

        assert_int_equal(brd_seg_create("keep", 4096, BRD_SEG_NAMED, &s), 0);
        snprintf(path, sizeof(path), "/dev/shm%s", brd_seg_name(s));
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                brd_seg_close(s);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(stat(path, &st), 0);
        brd_seg_close(s);
        assert_int_equal(stat(path, &st), -1);
}

/* Close unlinks the creator's name only while it names the segment's file:
 * another file put under it since (same user) stays. */
static void test_named_close_spares_replaced_file(void **state)
{
        struct brd_seg *s;
        char path[300];
        struct stat st;
        int fd;

        assert_int_equal(brd_seg_create("swap", 4096, BRD_SEG_NAMED, &s), 0);
        snprintf(path, sizeof(path), "/dev/shm%s", brd_seg_name(s));
        assert_int_equal(unlink(path), 0);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        brd_seg_close(s);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 1);
        assert_int_equal(unlink(path), 0);
        close(fd);
}

static void test_nofork_absent_in_child(void **state)
{
        struct brd_seg *s, *plain;
        struct brd_handle h;
        volatile unsigned char *p;
        pid_t pid;

        assert_int_equal(brd_seg_create("nofork", 4096, BRD_SEG_NOFORK, &s), 0);
        assert_int_equal(brd_seg_create("plain", 4096, 0, &plain), 0);
        p = brd_seg_addr(s);
        p[0] = 1;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (brd_seg_addr(s) != NULL || !brd_seg_is_inherited(s))
                        _exit(1);
                if (brd_seg_export(s, &h) != -EBADF)
                        _exit(2);
                if (brd_seg_addr(plain) == NULL)
                        _exit(3);
                /* Not the child's segment: no fd of it either, as export. */
                if (brd_seg_fd(s) != -EBADF || brd_seg_fd(plain) < 0)
                        _exit(4);
                brd_seg_close(s);       /* must not munmap whatever lives there now */
                brd_seg_close(plain);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        /* Touching the parent's address in a child is a fault, never silent success. */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                signal(SIGSEGV, SIG_DFL);       /* cmocka catches it in the parent's image */
                p[0] = 2;
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 128 + SIGSEGV);
        assert_int_equal(p[0], 1);
        brd_seg_close(s);
        brd_seg_close(plain);
}

/*
 * A forkserver child closes every fd it does not keep and says so
 * (brd__fork_fds_closed()); the numbers its inherited segments held may be
 * its own files' then.  brd_seg_fd() answers -EBADF there, as
 * brd_seg_export() does, instead of a number that is now another file's.
 */
static void test_seg_fd_after_child_fd_cleanup(void **state)
{
        struct brd_handle h;
        struct brd_seg *s;
        struct stat a, b;
        int fd;
        pid_t pid;

        assert_int_equal(brd_seg_create("fdgone", 4096, 0, &s), 0);
        fd = brd_seg_fd(s);
        assert_true(fd > 2);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int other;

                if (brd_seg_fd(s) != fd)        /* a plain fork keeps it */
                        _exit(1);
                /* What the forkserver's child prelude does (close_range,
                 * then brd__fork_fds_closed()), with the number taken
                 * again at once by a file of the child's own. */
                other = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (other < 0 || dup3(other, fd, O_CLOEXEC) != fd)
                        _exit(2);
                close(other);
                brd__fork_fds_closed();
                if (brd_seg_fd(s) != -EBADF || brd_seg_export(s, &h) != -EBADF)
                        _exit(3);
                if (brd_seg_addr(s) == NULL)
                        _exit(4);               /* still mapped: only its fd is gone */
                brd_seg_close(s);               /* must not close /dev/null */
                if (fstat(fd, &a) < 0 || stat("/dev/null", &b) < 0 || a.st_rdev != b.st_rdev)
                        _exit(5);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        assert_int_equal(brd_seg_fd(s), fd);            /* the parent's is untouched */
        brd_seg_close(s);
}

static void expect_attach_fails(int fd, uint64_t size, uint64_t flags, int err)
{
        struct brd_handle h = { .kind = BRD_HANDLE_SEG, .nfds = 1, .fds = { fd, -1, -1, -1 },
                                .size = size, .flags = flags };
        struct brd_seg *s = (struct brd_seg *)0x1;
        int fds = t_fd_count(), maps = map_count();

        assert_int_equal(brd_seg_attach(&h, &s), err);
        assert_ptr_equal(s, (struct brd_seg *)0x1);
        assert_int_equal(t_fd_count(), fds);
        assert_int_equal(map_count(), maps);
}

static void test_hostile_fds(void **state)
{
        char tmpl[] = "/tmp/brood-test-XXXXXX";
        int p[2], fd, sp[2];

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        expect_attach_fails(p[0], 4096, 0, -EINVAL);
        close(p[0]);
        close(p[1]);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        expect_attach_fails(sp[0], 4096, 0, -EINVAL);
        close(sp[0]);
        close(sp[1]);

        fd = mkostemp(tmpl, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(tmpl);
        assert_int_equal(ftruncate(fd, 8192), 0);
        expect_attach_fails(fd, 4096, 0, -EINVAL);      /* a disk file is not shm */
        close(fd);

        fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
        expect_attach_fails(fd, 4096, 0, -EINVAL);
        close(fd);

        /* too small: sealed, but shorter than it claims */
        fd = memfd_create("small", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
        expect_attach_fails(fd, 8192, 0, -EBADMSG);
        close(fd);

        /* sealed only once empty: its size, read before the seals, was a
         * megabyte; mapped, the first touch would be a SIGBUS */
        fd = memfd_create("late-seal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 1 << 20), 0);
        seal_race_fd = fd;
        expect_attach_fails(fd, 1 << 20, 0, -EBADMSG);
        assert_int_equal(seal_race_fd, -1);     /* the race did run */
        close(fd);

        /* hugetlbfs: never ours, and a hole punched there faults SIGBUS
         * once the huge page pool is empty (where the kernel has it) */
        fd = memfd_create("huge", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
        if (fd >= 0) {
                if (ftruncate(fd, 2 << 20) == 0 &&
                    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
                        expect_attach_fails(fd, 2 << 20, 0, -EINVAL);
                close(fd);
        }

        /* unsealed: the peer could truncate it under us */
        fd = memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        expect_attach_fails(fd, 4096, 0, -EBADMSG);
        close(fd);
        fd = memfd_create("nosealing", MFD_CLOEXEC);
        assert_int_equal(ftruncate(fd, 4096), 0);
        expect_attach_fails(fd, 4096, 0, -EBADMSG);
        close(fd);
        /* ... even when the handle claims a named segment (owner and mode
         * right): a memfd is held to the seals whatever it claims */
        fd = memfd_create("claims-named", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        assert_int_equal(fchmod(fd, 0600), 0);
        expect_attach_fails(fd, 4096, BRD_SEG_NAMED, -EBADMSG);
        close(fd);
        fd = memfd_create("claims-named", MFD_CLOEXEC);
        assert_int_equal(ftruncate(fd, 4096), 0);
        assert_int_equal(fchmod(fd, 0600), 0);
        expect_attach_fails(fd, 4096, BRD_SEG_NAMED, -EBADMSG);
        close(fd);

        /* A write seal the peer adds after the seals were read: the
         * mapping is refused, and that is -EBADMSG, as for a file sealed
         * so before (it was mmap's -EPERM, which attach keeps for "the
         * SIGBUS guard is not installed") */
        fd = memfd_create("late-write-seal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
        write_seal_race_fd = fd;
        expect_attach_fails(fd, 4096, 0, -EBADMSG);
        assert_int_equal(write_seal_race_fd, -1);       /* the race did run */
        close(fd);

        /* An O_PATH fd of a sealed memfd: -EBADF, nothing to map through
         * it (it was -EBADMSG, as for a file that lies about its seals). */
        fd = memfd_create("opath", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), 0);
        {
                char self[64];
                int o;

                snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
                o = open(self, O_PATH | O_CLOEXEC);
                assert_true(o >= 0);
                expect_attach_fails(o, 4096, 0, -EBADF);
                close(o);
        }
        close(fd);
        /* ...and of a named one, whatever its owner and mode and whether
         * the guard is on: it was -EPERM (no guard) or -EACCES (mode). */
        {
                char name[64];

                snprintf(name, sizeof(name), "/brood-test-opath-%d", (int)getpid());
                fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 4096), 0);
                close(fd);
                for (int mode = 0; mode < 2; mode++) {
                        char path[128];

                        snprintf(path, sizeof(path), "/dev/shm%s", name);
                        assert_int_equal(chmod(path, mode ? 0644 : 0600), 0);
                        fd = open(path, O_PATH | O_CLOEXEC);
                        assert_true(fd >= 0);
                        expect_attach_fails(fd, 4096, BRD_SEG_NAMED, -EBADF);
                        close(fd);
                }
                assert_int_equal(shm_unlink(name), 0);
        }

        /* malformed handles */
        expect_attach_fails(-1, 4096, 0, -EINVAL);
        fd = memfd_create("x", MFD_CLOEXEC);
        expect_attach_fails(fd, 0, 0, -EINVAL);
        expect_attach_fails(fd, 4096, 1u << 20, -EINVAL);
        close(fd);
}

static void test_attach_roundtrip(void **state)
{
        struct brd_seg *s, *a;
        struct brd_handle h;

        assert_int_equal(brd_seg_create("rt", 65536, BRD_SEG_POPULATE, &s), 0);
        memset(brd_seg_addr(s), 7, 65536);
        assert_int_equal(brd_seg_export(s, &h), 0);
        assert_int_equal(h.kind, BRD_HANDLE_SEG);
        assert_int_equal(h.size, 65536);
        assert_int_equal(brd_seg_attach(&h, &a), 0);
        brd_handle_close(&h);
        assert_ptr_not_equal(brd_seg_addr(a), brd_seg_addr(s));
        assert_int_equal(((unsigned char *)brd_seg_addr(a))[65535], 7);
        brd_seg_close(a);
        /* A handle that asks for its pages to be prefaulted over a sparse
         * file (a peer's, sealed, 256 MiB, no page of it allocated): they
         * are not, or the attach would allocate all of them. */
        {
                int fd = memfd_create("sparse", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                struct brd_handle hs = { .kind = BRD_HANDLE_SEG, .nfds = 1,
                                         .fds = { fd, -1, -1, -1 }, .size = 256 << 20,
                                         .flags = BRD_SEG_POPULATE };
                struct stat st;

                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 256 << 20), 0);
                assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
                assert_int_equal(brd_seg_attach(&hs, &a), 0);
                assert_int_equal(fstat(fd, &st), 0);
                assert_true(st.st_blocks * 512 < (1 << 20));
                brd_seg_close(a);
                close(fd);
        }
        /* A peer's memfd sealed against writes too: no writable mapping
         * can be had, and it is refused as a memfd without its seals is
         * (-EBADMSG; mmap's -EPERM would read as "install the guard"). */
        {
                int fd = memfd_create("wsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                struct brd_handle hw = { .kind = BRD_HANDLE_SEG, .nfds = 1,
                                         .fds = { fd, -1, -1, -1 }, .size = 65536 };

                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 65536), 0);
                assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
                a = (struct brd_seg *)0x1;
                assert_int_equal(brd_seg_attach(&hw, &a), -EBADMSG);
                assert_ptr_equal(a, (struct brd_seg *)0x1);
                close(fd);
        }
        /* A handle that declares less than the file: that much is mapped
         * (the peer's file size chooses nothing), and it reads the same. */
        assert_int_equal(brd_seg_export(s, &h), 0);
        h.size = 4096;
        assert_int_equal(brd_seg_attach(&h, &a), 0);
        brd_handle_close(&h);
        assert_int_equal(brd_seg_size(a), 4096);
        assert_int_equal(((unsigned char *)brd_seg_addr(a))[4095], 7);
        brd_seg_close(a);
        brd_seg_close(s);
}

static void test_enospc_at_create(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;
        int fds = t_fd_count(), shm = t_shm_count();

        fail_fallocate = ENOSPC;
        assert_int_equal(brd_seg_create("full", 1 << 20, 0, &s), -ENOSPC);
        assert_int_equal(brd_seg_create("full", 1 << 20, BRD_SEG_NAMED, &s), -ENOSPC);
        fail_fallocate = ENOMEM;
        assert_int_equal(brd_seg_create("memcg", 1 << 20, 0, &s), -ENOMEM);
        fail_fallocate = 0;
        assert_ptr_equal(s, (struct brd_seg *)0x1);
        assert_int_equal(t_fd_count(), fds);
        assert_int_equal(t_shm_count(), shm);
}

/*
 * A create that fails after its name was swapped for another file (by a
 * process of this user, who may unlink it: /dev/shm is sticky) leaves that
 * file: the name is no longer the create's to remove.  Before, it was
 * unlinked.
 */
static void test_failed_create_leaves_swapped_name(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;
        struct stat want, st;
        char path[PATH_MAX];

        (void)state;
        swap = true;
        assert_int_equal(brd_seg_create("swapped", 1 << 20, BRD_SEG_NAMED, &s), -ENOSPC);
        swap = false;
        assert_true(swap_name[0] && swap_fd >= 0);
        assert_ptr_equal(s, (struct brd_seg *)0x1);
        snprintf(path, sizeof(path), "/dev/shm%s", swap_name);
        assert_int_equal(fstat(swap_fd, &want), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_dev == want.st_dev && st.st_ino == want.st_ino);
        assert_int_equal(shm_unlink(swap_name), 0);
        close(swap_fd);
        swap_fd = -1;
        swap_name[0] = '\0';
}

/*
 * A segment larger than the machine's memory is refused at once (-ENOMEM),
 * before any of it is allocated: a memfd's tmpfs has no size of its own,
 * and its fallocate ran the machine out of memory until the kernel's OOM
 * killer ended it (or another process).  The fallocate is failed here
 * (EIO) so that a regression cannot do that again: it would answer -EIO.
 */
static void test_larger_than_memory_refused(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;
        struct sysinfo si;
        size_t big;

        (void)state;
        assert_int_equal(sysinfo(&si), 0);
        big = 2 * ((size_t)si.totalram + si.totalswap) * si.mem_unit;
        fail_fallocate = EIO;
        assert_int_equal(brd_seg_create("huge", big, 0, &s), -ENOMEM);
        assert_int_equal(brd_seg_create("huge", big, BRD_SEG_NAMED, &s), -ENOMEM);
        fail_fallocate = 0;
        assert_ptr_equal(s, (struct brd_seg *)0x1);
}

static void test_name_collision_retries(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;

        /* A taken name (a squatter, or a collision) means a fresh random
         * name, up to 8 tries; never adopting the existing object. */
        fail_exist = 7;
        assert_int_equal(brd_seg_create("squat", 4096, BRD_SEG_NAMED, &s), 0);
        assert_int_equal(fail_exist, 0);
        assert_int_equal(t_shm_count(), 1);
        brd_seg_close(s);
        s = (struct brd_seg *)0x1;
        fail_exist = 8;
        assert_int_equal(brd_seg_create("squat", 4096, BRD_SEG_NAMED, &s), -EEXIST);
        assert_ptr_equal(s, (struct brd_seg *)0x1);
        fail_exist = 0;
}

static void test_bad_input(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;
        char longlabel[BRD_SEG_LABEL_MAX + 2];
        char longname[300];

        memset(longlabel, 'a', sizeof(longlabel) - 1);
        longlabel[sizeof(longlabel) - 1] = '\0';
        assert_int_equal(brd_seg_create("", 4096, 0, &s), -EINVAL);
        assert_int_equal(brd_seg_create("a/b", 4096, 0, &s), -EINVAL);
        assert_int_equal(brd_seg_create("a b", 4096, 0, &s), -EINVAL);
        assert_int_equal(brd_seg_create(longlabel, 4096, 0, &s), -ENAMETOOLONG);
        assert_int_equal(brd_seg_create("x", 0, 0, &s), -EINVAL);
        assert_int_equal(brd_seg_create("x", SIZE_MAX, 0, &s), -EINVAL);
        assert_int_equal(brd_seg_create("x", 4096, 1u << 9, &s), -EINVAL);
        assert_int_equal(brd_seg_create("x", 4096, 0, NULL), -EINVAL);

        assert_int_equal(brd_seg_open(NULL, &s), -EINVAL);
        assert_int_equal(brd_seg_open("", &s), -EINVAL);
        assert_int_equal(brd_seg_open("/", &s), -EINVAL);
        assert_int_equal(brd_seg_open("noslash", &s), -EINVAL);
        assert_int_equal(brd_seg_open("//x", &s), -EINVAL);
        assert_int_equal(brd_seg_open("/a/b", &s), -EINVAL);
        assert_int_equal(brd_seg_open("/.", &s), -EINVAL);
        assert_int_equal(brd_seg_open("/..", &s), -EINVAL);
        longname[0] = '/';
        memset(longname + 1, 'n', 256);
        longname[257] = '\0';
        assert_int_equal(brd_seg_open(longname, &s), -ENAMETOOLONG);
        assert_ptr_equal(s, (struct brd_seg *)0x1);
        assert_null(brd_seg_addr(NULL));
        assert_int_equal(brd_seg_size(NULL), 0);
        assert_int_equal(brd_seg_export(NULL, NULL), -EINVAL);
}

static void test_rlimit_fsize_is_efbig(void **state)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit rl = { 65536, 65536 };
                struct brd_seg *s;

                if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                        _exit(2);
                if (brd_seg_create("big", 1 << 20, 0, &s) != -EFBIG)
                        _exit(3);
                if (brd_seg_create("big", 1 << 20, BRD_SEG_NAMED, &s) != -EFBIG)
                        _exit(4);
                if (brd_seg_create("small", 4096, 0, &s) != 0)
                        _exit(5);
                brd_seg_close(s);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);         /* not 128+SIGXFSZ */
}

static void test_open_refuses_foreign_and_loose(void **state)
{
        struct brd_seg *s = (struct brd_seg *)0x1;
        const char *loose = "/brood.test-loose-0644";
        const char *link = "/brood.test-symlink";
        char path[300];
        int fd;

        fd = shm_open(loose, O_RDWR | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fchmod(fd, 0644), 0);
        assert_int_equal(ftruncate(fd, 4096), 0);
        close(fd);
        assert_int_equal(brd_seg_open(loose, &s), -EACCES);
        shm_unlink(loose);

        snprintf(path, sizeof(path), "/dev/shm%s", link);
        assert_int_equal(symlink("/etc/passwd", path), 0);
        assert_int_equal(brd_seg_open(link, &s), -ELOOP);       /* O_NOFOLLOW */
        unlink(path);
        /* A directory: not a regular shm file (it was -EISDIR) */
        assert_int_equal(mkdir(path, 0700), 0);
        assert_int_equal(brd_seg_open(link, &s), -EINVAL);
        assert_int_equal(rmdir(path), 0);
        assert_ptr_equal(s, (struct brd_seg *)0x1);
}

/* In a child that became uid/gid 65534: create @n objects at @names with
 * @modes exactly (umask undone by fchmod), 4 KiB each.  0, or the step
 * that failed. */
static int squat_as_nobody(char (*names)[NAME_MAX + 1], const mode_t *modes, int n)
{
        struct stat st;
        int i, fd;

        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
                return 2;
        for (i = 0; i < n; i++) {
                fd = shm_open(names[i], O_RDWR | O_CREAT | O_EXCL, modes[i]);
                if (fd < 0)
                        return 10 + i;
                if (fchmod(fd, modes[i]) < 0 || ftruncate(fd, 4096) < 0 || fstat(fd, &st) < 0)
                        return 20 + i;
                if (st.st_uid != 65534 || (st.st_mode & 0777) != modes[i])
                        return 30 + i;
                close(fd);
        }
        return 0;
}

/*
 * RELIABILITY G38: another user (uid 65534) squats names of brood's own
 * form (this process's pid, start time, pid namespace, 128 random bits),
 * one object of mode 0600, which passes the "no group or other access"
 * check and fails only the owner check, and one of mode 0666.  As root,
 * whose shm_open() opens both (no kernel check stands in the way), each
 * brd_seg_open() must fail closed: -EACCES, *ret_seg untouched, no fd
 * left.  The squatter's objects are unlinked after.
 */
static void test_open_refuses_other_owner(void **state)
{
        static const mode_t modes[2] = { 0600, 0666 };
        char names[2][NAME_MAX + 1];
        char path[sizeof("/dev/shm/") + NAME_MAX];
        uint64_t seed = (uint64_t)t_now_ns() ^ (uint64_t)getpid() << 32;
        struct stat st;
        pid_t pid;
        int i, fd, n0;

        if (geteuid() != 0)
                skip();
        for (i = 0; i < 2; i++)
                snprintf(names[i], sizeof(names[i]),
                         "/" BRD_SEG_NAME_PREFIX "%d.%llu.%llu.%016llx%016llx.squat%04o",
                         (int)getpid(), (unsigned long long)brd__proc_start_time(getpid()),
                         (unsigned long long)brd__pid_ns(), (unsigned long long)t_rand(&seed),
                         (unsigned long long)t_rand(&seed), (unsigned)modes[i]);
        pid = t_fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(squat_as_nobody(names, modes, 2));
        assert_int_equal(t_wait_child(pid), 0);
        for (i = 0; i < 2; i++) {
                struct brd_seg *s = (struct brd_seg *)0x1;

                snprintf(path, sizeof(path), "/dev/shm/%.*s", NAME_MAX, names[i] + 1);
                assert_int_equal(lstat(path, &st), 0);
                assert_true(S_ISREG(st.st_mode));
                assert_int_equal(st.st_uid, 65534);
                assert_int_equal(st.st_mode & 0777, modes[i]);
                /* Nothing but the library's check refuses it. */
                fd = shm_open(names[i], O_RDWR, 0);
                assert_true(fd >= 0);
                close(fd);
                n0 = t_fd_count();
                assert_int_equal(brd_seg_open(names[i], &s), -EACCES);
                assert_ptr_equal(s, (struct brd_seg *)0x1);
                assert_int_equal(t_fd_count(), n0);
                assert_int_equal(shm_unlink(names[i]), 0);
        }
}

static void test_other_user_cannot_open(void **state)
{
        struct brd_seg *s;
        pid_t pid;

        if (geteuid() != 0)
                skip();
        assert_int_equal(brd_seg_create("priv", 4096, BRD_SEG_NAMED, &s), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const char *name = brd_seg_name(s);

                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                if (shm_open(name, O_RDWR, 0) >= 0 || errno != EACCES)
                        _exit(3);
                if (shm_open(name, O_RDONLY, 0) >= 0 || errno != EACCES)
                        _exit(4);
                if (shm_unlink(name) == 0 || errno != EACCES)
                        _exit(5);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);
        brd_seg_close(s);
}

static volatile int hammer_stop;

static void *hammer(void *arg)
{
        while (!__atomic_load_n(&hammer_stop, __ATOMIC_RELAXED)) {
                struct brd_seg *s;
                struct brd_handle h;

                if (brd_seg_create("hammer", 4096, 0, &s) == 0) {
                        if (brd_seg_export(s, &h) == 0)
                                brd_handle_close(&h);
                        brd_seg_close(s);
                }
        }
        return arg;
}

static void test_fork_while_creating(void **state)
{
        pthread_t th;
        pid_t pid = 0;
        int i, st = 0;

        assert_int_equal(pthread_create(&th, NULL, hammer, NULL), 0);
        for (i = 0; i < 1000 && st == 0; i++) {
                pid = fork();
                if (pid < 0)
                        break;
                /* The registry lock must be free and the list whole. */
                if (pid == 0)
                        _exit(t_fork_state_usable());
                st = t_wait_child(pid);
        }
        /* The hammer stops before any check: a failed one must not leave it
         * running into the next tests' leak checks. */
        __atomic_store_n(&hammer_stop, 1, __ATOMIC_RELAXED);
        pthread_join(th, NULL);
        assert_true(pid >= 0);
        assert_int_equal(st, 0);
}

/* A name under a read lease (here our own; another process's in life):
 * open answers -EAGAIN at once, where it waited for the lease's break
 * (lease-break-time, 45 s by default) and then went on. */
static void test_open_leased_is_eagain(void **state)
{
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        char name[64], path[80];
        struct brd_seg *s;
        int fd, rd, e, lease = -1;

        (void)state;
        /* The break starts anyway, and tells the holder by SIGIO. */
        assert_int_equal(sigaction(SIGIO, &ign, &old), 0);
        snprintf(name, sizeof(name), "/brood-test-lease.%d", (int)getpid());
        snprintf(path, sizeof(path), "/dev/shm%s", name);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 4096), 0);
        close(fd);
        rd = open(path, O_RDONLY | O_CLOEXEC);
        if (rd >= 0)
                lease = fcntl(rd, F_SETLEASE, F_RDLCK);
        e = lease == 0 ? brd_seg_open(name, &s) : 0;
        /* Asserted after the clean-up: a failure leaves no file, fd or
         * disposition behind. */
        if (rd >= 0)
                close(rd);
        unlink(path);
        assert_int_equal(sigaction(SIGIO, &old, NULL), 0);
        assert_true(rd >= 0);
        if (lease != 0)
                skip();         /* no leases here (fs.leases-enable = 0, an LSM) */
        assert_int_equal(e, -EAGAIN);
}

static void on_tick(int sig)
{
        (void)sig;
}

/*
 * A 256 MiB create under a 1 kHz SIGALRM (SA_RESTART handler): tmpfs of
 * older kernels gives up a fallocate at a pending signal and frees what
 * that call got, so create, one call for the whole size, started over for
 * ever there (kernels that stop only for a fatal signal, as this host's
 * 6.18, never failed this test).  In a child.
 */
static void test_create_under_signal_storm(void **state)
{
        pid_t pid;

        (void)state;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct sigaction sa = { .sa_handler = on_tick, .sa_flags = SA_RESTART };
                struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
                struct brd_seg *s;

                sigemptyset(&sa.sa_mask);
                if (sigaction(SIGALRM, &sa, NULL) || setitimer(ITIMER_REAL, &it, NULL))
                        _exit(2);
                if (brd_seg_create("storm", 256u << 20, 0, &s))
                        _exit(1);
                brd_seg_close(s);
                _exit(0);
        }
        assert_int_equal(t_wait_child(pid), 0);         /* a hang: killed at 60 s, -2 */
}

/* BRD_SEG_MAX segments at once in a process, then -EMFILE, leaving
 * nothing behind; one closed makes room for one.  Needs that many fds: the
 * soft limit is raised for it (skipped where the hard one is lower). */
static void test_registry_cap(void **state)
{
        struct brd_seg **segs = calloc(BRD_SEG_MAX, sizeof(*segs)), *extra;
        struct rlimit rl, old;
        struct t_leak l;
        int n, made, e = 0, fds, left, again = 0;

        (void)state;
        assert_non_null(segs);
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
        if (old.rlim_max < BRD_SEG_MAX + 256) {
                free(segs);
                skip();
        }
        rl = old;
        rl.rlim_cur = BRD_SEG_MAX + 256;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
        t_leak_begin(&l);
        for (n = 0; n < BRD_SEG_MAX; n++) {
                e = brd_seg_create("cap", 4096, 0, &segs[n]);
                if (e < 0)
                        break;
        }
        /* Checked after everything is closed and the limit restored: a
         * failure leaves later tests neither. */
        made = n;
        fds = t_fd_count();
        if (n == BRD_SEG_MAX)
                e = brd_seg_create("cap", 4096, 0, &extra);
        if (e == 0)
                brd_seg_close(extra);
        left = t_fd_count() - fds;              /* by the refused create */
        if (n > 0) {
                brd_seg_close(segs[n - 1]);
                again = brd_seg_create("cap", 4096, 0, &segs[n - 1]);
                if (again < 0)
                        n--;
        }
        while (n-- > 0)
                brd_seg_close(segs[n]);
        free(segs);
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
        t_leak_end(&l);
        assert_int_equal(made, BRD_SEG_MAX);
        assert_int_equal(e, -EMFILE);
        assert_int_equal(left, 0);
        assert_int_equal(again, 0);             /* one closed made room for one */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_anon_create_close, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_named_create_open_close, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_named_open_without_proc),
                cmocka_unit_test(test_pid_ns_without_proc),
                cmocka_unit_test_setup_teardown(test_fork_visibility_both_ways, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_named_closed_by_child_stays_linked, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_named_close_spares_replaced_file, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_nofork_absent_in_child, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_seg_fd_after_child_fd_cleanup, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_hostile_fds, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_attach_roundtrip, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_enospc_at_create, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_failed_create_leaves_swapped_name, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_larger_than_memory_refused, t_leak_setup,
                                                t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_name_collision_retries, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_bad_input, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_rlimit_fsize_is_efbig, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_open_refuses_foreign_and_loose, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_open_refuses_other_owner, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_other_user_cannot_open, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_fork_while_creating, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_open_leased_is_eagain, t_leak_setup, t_leak_teardown),
                cmocka_unit_test_setup_teardown(test_create_under_signal_storm, t_leak_setup, t_leak_teardown),
                cmocka_unit_test(test_registry_cap),
        };

        return cmocka_run_group_tests_name("shm-seg", tests, NULL, NULL);
}
