/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the tests/test-fork-*.c files (static inline: no new .c). */
#ifndef BRD_TEST_FORK_UTIL_H
#define BRD_TEST_FORK_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <brood/fork.h>
#include <brood/shm.h>
#include "helpers.h"

/* From now on, in the calling thread and the threads it starts later, the
 * system call @nr fails with @err (a seccomp filter): the stand-in for a
 * kernel without it, or an LSM that forbids it.  0, or -errno if seccomp
 * is not available. */
static inline int tf_deny_syscall(long nr, int err)
{
        struct sock_filter f[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                return -errno;
        return 0;
}

/* A raw fd carried as a handle: fork mode moves it like any other (kind not interpreted). */
static inline struct brd_handle tf_fd_handle(int fd)
{
        struct brd_handle h = { .kind = BRD_HANDLE_NONE, .nfds = 1, .fds = { fd, -1, -1, -1 } };

        return h;
}

/* read() exactly one byte, across EINTR: 1, 0 at EOF, -errno. */
static inline int tf_read1(int fd, char *c)
{
        ssize_t r;

        do
                r = read(fd, c, 1);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : (int)r;
}

/* tf_spawn_exit()'s answer when the wait failed or the child was killed. */
#define TF_WAIT_FAILED INT_MIN

/* Spawn @o on @fs, wait for the child and free it: its exit code (0-255);
 * the spawn's -errno if it failed; TF_WAIT_FAILED. */
static inline int tf_spawn_exit(struct brd_fsrv *fs, const struct brd_spawn_opts *o)
{
        struct brd_child *c;
        int st = brd_fsrv_spawn(fs, o, &c);

        if (st < 0)
                return st;
        if (brd_child_wait(c, -1, &st) < 0 || !WIFEXITED(st))
                st = TF_WAIT_FAILED;
        else
                st = WEXITSTATUS(st);
        brd_child_free(c);
        return st;
}

#endif
